#include "seedance/seedance_wire.h"

#include <array>

namespace reelq::providers::seedance {
namespace {

using wire::Json;
using wire::Op;

enum class Match { kExact, kPrefix, kContains };

struct CodeRow {
  Match match;
  std::string_view pattern;
  ErrorCategory category;
};

// Ark's error codes (providers.md §4). Order matters: the first matching row wins.
constexpr std::array kCodes = {
    CodeRow{Match::kPrefix, "RateLimitExceeded", ErrorCategory::kRateLimited},
    CodeRow{Match::kExact, "AccountRateLimitExceeded", ErrorCategory::kRateLimited},
    CodeRow{Match::kExact, "ModelAccountRpmRateLimitExceeded", ErrorCategory::kRateLimited},
    CodeRow{Match::kExact, "ServerOverloaded", ErrorCategory::kRateLimited},
    // Free quota used up / account in arrears: a 429 that no backoff fixes.
    CodeRow{Match::kPrefix, "QuotaExceeded", ErrorCategory::kAuthFailed},
    CodeRow{Match::kPrefix, "AccountOverdueError", ErrorCategory::kAuthFailed},
    CodeRow{Match::kPrefix, "AuthenticationError", ErrorCategory::kAuthFailed},
    CodeRow{Match::kPrefix, "AccessDenied", ErrorCategory::kAuthFailed},
    CodeRow{Match::kContains, "SensitiveContentDetected", ErrorCategory::kPolicyRejected},
    CodeRow{Match::kContains, "RiskDetection", ErrorCategory::kPolicyRejected},
    CodeRow{Match::kPrefix, "ModelNotOpen", ErrorCategory::kModelGone},
    CodeRow{Match::kPrefix, "InvalidEndpointOrModel", ErrorCategory::kModelGone},
    CodeRow{Match::kPrefix, "InvalidParameter", ErrorCategory::kInvalidRequest},
    CodeRow{Match::kPrefix, "MissingParameter", ErrorCategory::kInvalidRequest},
    CodeRow{Match::kPrefix, "InternalServiceError", ErrorCategory::kRetryable},
};

bool Matches(const CodeRow& row, std::string_view code) {
  switch (row.match) {
    case Match::kExact:
      return code == row.pattern;
    case Match::kPrefix:
      return code.starts_with(row.pattern);
    case Match::kContains:
      return code.find(row.pattern) != std::string_view::npos;
  }
  return false;
}

ErrorCategory FromHttpStatus(int status) {
  if (status == 401 || status == 403) return ErrorCategory::kAuthFailed;
  if (status == 429) return ErrorCategory::kRateLimited;
  if (status == 404) return ErrorCategory::kNotFound;
  if (status == 400) return ErrorCategory::kInvalidRequest;
  return ErrorCategory::kRetryable;
}

}  // namespace

ErrorCategory CategoryForCode(std::string_view code, ErrorCategory fallback) {
  for (const auto& row : kCodes) {
    if (Matches(row, code)) return row.category;
  }
  return fallback;
}

Result<std::string> BuildCreateBody(const GenerationRequest& request) {
  if (!request.shots.empty()) {
    return MakeError(ErrorCategory::kInvalidRequest, "seedance: no multi-shot parameter");
  }
  if (request.prompt.empty()) {
    return MakeError(ErrorCategory::kInvalidRequest, "seedance: empty prompt");
  }
  if (request.duration_seconds <= 0) {
    return MakeError(ErrorCategory::kInvalidRequest, "seedance: duration must be positive");
  }
  Json body = {{"model", request.upstream_model},
               {"content", Json::array({{{"type", "text"}, {"text", request.prompt}}})},
               {"duration", request.duration_seconds},
               {"ratio", request.aspect_ratio},
               {"resolution", request.resolution},
               {"generate_audio", request.audio}};
  if (!request.idempotency_id.empty()) body["seed"] = DerivedSeed(request.idempotency_id);
  return body.dump();
}

int64_t DerivedSeed(std::string_view idempotency_id) {
  uint64_t h = 1469598103934665603ULL;  // FNV-1a 64: stable across builds and machines
  for (unsigned char c : idempotency_id) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return static_cast<int64_t>(h % 2147483647ULL);
}

Result<TaskPage> ParseListResponse(int http_status, std::string_view raw,
                                   std::optional<std::string> retry_after, int64_t now_ms) {
  if (http_status < 200 || http_status >= 300) {
    return std::unexpected(ClassifyError(Op::kFind, http_status, raw, retry_after, now_ms));
  }
  auto body = wire::ParseObject(raw, "seedance list");
  if (!body) return std::unexpected(body.error());
  const Json* items = wire::Find(*body, "items");
  if (items == nullptr || !items->is_array()) {
    return std::unexpected(wire::MissingField("seedance list", "items"));
  }
  TaskPage page;
  for (const Json& t : *items) {
    if (!t.is_object()) continue;
    ListedTask task;
    task.id = wire::OptionalString(t, "id");
    if (task.id.empty()) continue;
    task.model = wire::OptionalString(t, "model");
    task.ratio = wire::OptionalString(t, "ratio");
    task.resolution = wire::OptionalString(t, "resolution");
    task.seed = static_cast<int64_t>(wire::OptionalNumber(t, "seed").value_or(-1));
    task.duration = static_cast<int64_t>(wire::OptionalNumber(t, "duration").value_or(0));
    task.created_at_s = static_cast<int64_t>(wire::OptionalNumber(t, "created_at").value_or(0));
    page.items.push_back(std::move(task));
  }
  page.total = static_cast<int64_t>(wire::OptionalNumber(*body, "total").value_or(0));
  return page;
}

bool MatchesCreate(const ListedTask& task, std::string_view create_body) {
  Json sent = wire::ParseLenient(create_body);
  if (!sent.is_object() || !sent.contains("seed") || !sent["seed"].is_number_integer()) {
    return false;  // without our seed there is nothing unambiguous to match on
  }
  return task.model == wire::OptionalString(sent, "model") &&
         task.seed == sent["seed"].get<int64_t>() &&
         task.duration ==
             static_cast<int64_t>(wire::OptionalNumber(sent, "duration").value_or(0)) &&
         task.ratio == wire::OptionalString(sent, "ratio") &&
         task.resolution == wire::OptionalString(sent, "resolution");
}

Error ClassifyError(Op op, int http_status, std::string_view raw,
                    std::optional<std::string> retry_after, int64_t now_ms) {
  Json body = wire::ParseLenient(raw);
  std::string code = wire::OptionalString(body, "error.code");
  std::string message = wire::OptionalString(body, "error.message");
  if (message.empty()) message = wire::Snippet(raw, 200);
  ErrorCategory category = CategoryForCode(code, FromHttpStatus(http_status));
  if (http_status >= 500 && category != ErrorCategory::kRateLimited) {
    category = ErrorCategory::kRetryable;  // 5xx: retry, whatever the code
  }
  // A model that is not open / not found is "gone" only on create; on poll 404 is the task.
  if (category == ErrorCategory::kModelGone && op != Op::kCreate) {
    category = ErrorCategory::kNotFound;
  }
  std::chrono::milliseconds wait{0};
  if (IsRetryable(category) && retry_after) {
    wait = wire::ParseRetryAfter(*retry_after, now_ms).value_or(wait);
  }
  std::string text = "seedance " + std::string(wire::ToString(op)) + " (HTTP " +
                     std::to_string(http_status) + (code.empty() ? "" : " " + code) +
                     "): " + wire::Snippet(message, 300);
  return wire::MakeProviderError(category, std::move(text), code, http_status, wait);
}

Result<std::string> ParseCreateResponse(int http_status, std::string_view raw,
                                        std::optional<std::string> retry_after, int64_t now_ms) {
  if (http_status < 200 || http_status >= 300) {
    return std::unexpected(ClassifyError(Op::kCreate, http_status, raw, retry_after, now_ms));
  }
  auto body = wire::ParseObject(raw, "seedance create");
  if (!body) return std::unexpected(body.error());
  return wire::RequireString(*body, "id", "seedance create");
}

Result<TaskStatus> ParsePollResponse(int http_status, std::string_view raw,
                                     std::optional<std::string> retry_after, int64_t now_ms) {
  if (http_status < 200 || http_status >= 300) {
    return std::unexpected(ClassifyError(Op::kPoll, http_status, raw, retry_after, now_ms));
  }
  auto body = wire::ParseObject(raw, "seedance poll");
  if (!body) return std::unexpected(body.error());
  auto status = wire::RequireString(*body, "status", "seedance poll");
  if (!status) return std::unexpected(status.error());
  TaskStatus out;
  if (*status == "queued") {
    out.state = TaskState::kQueued;
  } else if (*status == "running") {
    out.state = TaskState::kRunning;
  } else if (*status == "succeeded") {
    auto url = wire::RequireString(*body, "content.video_url", "seedance poll");
    if (!url) return std::unexpected(url.error());
    out.state = TaskState::kSucceeded;
    out.progress_percent = 100;
    out.video_url = *url;
    out.clip_seconds = wire::OptionalNumber(*body, "duration").value_or(0);
  } else if (*status == "failed") {
    std::string code = wire::OptionalString(*body, "error.code");
    std::string message = wire::OptionalString(*body, "error.message");
    out.state = TaskState::kFailed;
    // Output moderation reportedly fails at random on identical input; it is still reported
    // as a policy rejection and the caller decides about resubmitting.
    out.error = wire::MakeProviderError(
        CategoryForCode(code, ErrorCategory::kRetryable),
        "seedance task failed: " + (code.empty() ? std::string("unknown") : code) +
            (message.empty() ? "" : ": " + wire::Snippet(message, 300)),
        code, 200);
  } else if (*status == "cancelled") {
    out.state = TaskState::kCancelled;
  } else if (*status == "expired") {
    out.state = TaskState::kFailed;
    out.error = wire::MakeProviderError(ErrorCategory::kRetryable,
                                        "seedance task expired before it ran", "expired", 200);
  } else {
    return MakeError(ErrorCategory::kRetryable,
                     "seedance poll: unknown status '" + wire::Snippet(*status, 60) + "'");
  }
  return out;
}

Result<void> ParseCancelResponse(int http_status, std::string_view raw,
                                 std::optional<std::string> retry_after, int64_t now_ms) {
  if (http_status >= 200 && http_status < 300) return {};
  Error error = ClassifyError(Op::kCancel, http_status, raw, retry_after, now_ms);
  // Only queued tasks can be cancelled: a running or finished one answers 4xx; that is the
  // state of the task, not a broken request.
  if (http_status == 400 || http_status == 409) {
    error.category = ErrorCategory::kInvalidRequest;
    error.message = "seedance cancel: only a queued task can be cancelled (" + error.message + ")";
  }
  return std::unexpected(error);
}

}  // namespace reelq::providers::seedance
