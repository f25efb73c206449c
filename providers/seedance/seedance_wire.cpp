#include "seedance/seedance_wire.h"

#include <array>

namespace reelq::providers::seedance {
namespace {

using wire::Json;
using wire::Op;

using wire::Contains;
using wire::Exact;
using wire::Prefix;
constexpr auto kAuthFailed = ErrorCategory::kAuthFailed;
constexpr auto kRateLimited = ErrorCategory::kRateLimited;

// Ark's error codes (providers.md §4). Order matters: the first matching row wins.
constexpr std::array kCodes = {
    Prefix("RateLimitExceeded", kRateLimited, "rate limit"),
    Exact("AccountRateLimitExceeded", kRateLimited, "account rate limit"),
    Exact("ModelAccountRpmRateLimitExceeded", kRateLimited, "model rate limit"),
    Exact("ServerOverloaded", kRateLimited, "server overloaded"),
    // Free quota used up / account in arrears: a 429 that no backoff fixes.
    Prefix("QuotaExceeded", kAuthFailed, "quota used up"),
    Prefix("AccountOverdueError", kAuthFailed, "account overdue"),
    Prefix("AuthenticationError", kAuthFailed, "authentication failed"),
    Prefix("AccessDenied", kAuthFailed, "access denied"),
    Contains("SensitiveContentDetected", ErrorCategory::kPolicyRejected, "content policy"),
    Contains("RiskDetection", ErrorCategory::kPolicyRejected, "content policy"),
    Prefix("ModelNotOpen", ErrorCategory::kModelGone, "model not open"),
    Prefix("InvalidEndpointOrModel", ErrorCategory::kModelGone, "model not found"),
    Prefix("InvalidParameter", ErrorCategory::kInvalidRequest, "invalid parameter"),
    Prefix("MissingParameter", ErrorCategory::kInvalidRequest, "missing parameter"),
    Prefix("InternalServiceError", ErrorCategory::kRetryable, "server error"),
};

constexpr std::string_view kOnlyQueued = "only a queued task can be cancelled";
constexpr std::array kStatuses = {
    // content.video_url is a pre-signed URL kept 24 h: a 403 is an expired signature, and an
    // expired result will not come back by retrying (404 is not-found by the shared rule).
    wire::StatusRow{Op::kDownload, 403, ErrorCategory::kNotFound, "result URL expired"},
    // DELETE works on a queued task only: a running or finished one answers 4xx. That is the
    // state of the task, not a broken request, whatever the code says.
    wire::StatusRow{Op::kCancel, 400, ErrorCategory::kInvalidRequest, kOnlyQueued},
    wire::StatusRow{Op::kCancel, 409, ErrorCategory::kInvalidRequest, kOnlyQueued},
};

// Ark's envelope: {error: {code, message, type}}.
wire::ErrorFields Fields(const Json& body) {
  return {.codes = {wire::OptionalString(body, "error.code"), ""},
          .message = wire::OptionalString(body, "error.message")};
}

constexpr wire::ErrorTable kTable{
    .provider = "seedance", .codes = kCodes, .statuses = kStatuses, .fields = &Fields};

}  // namespace

Error ClassifyError(Op op, int http_status, std::string_view raw,
                    std::optional<std::string> retry_after, int64_t now_ms) {
  return wire::Classify(kTable, op, http_status, raw, std::move(retry_after), now_ms);
}

ErrorCategory CategoryForCode(std::string_view code, ErrorCategory fallback) {
  const wire::CodeRow* row = wire::FindCodeRow(kTable.codes, code);
  return row != nullptr ? row->category : fallback;
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
  // Images are content[] entries: an image_url (a base64 data URL) and the image's role.
  Json content = Json::array({{{"type", "text"}, {"text", request.prompt}}});
  auto add_image = [&](const ImageInput& image, const char* role) {
    content.push_back(
        {{"type", "image_url"},
         {"image_url",
          {{"url", "data:" + image.mime_type + ";base64," + wire::Base64Encode(image.bytes)}}},
         {"role", role}});
  };
  if (request.first_frame) add_image(*request.first_frame, "first_frame");
  if (request.last_frame) {
    if (!request.first_frame) {
      return MakeError(ErrorCategory::kInvalidRequest,
                       "seedance: a last frame needs a first frame too");
    }
    add_image(*request.last_frame, "last_frame");
  }
  for (const auto& image : request.reference_images) add_image(image, "reference_image");
  Json body = {{"model", request.upstream_model},      {"content", std::move(content)},
               {"duration", request.duration_seconds}, {"ratio", request.aspect_ratio},
               {"resolution", request.resolution},     {"generate_audio", request.audio}};
  if (!request.idempotency_id.empty()) body["seed"] = DerivedSeed(request.idempotency_id);
  if (request.return_last_frame) body["return_last_frame"] = true;
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
  auto body = wire::ParseAnswer(kTable, Op::kFind, http_status, raw, retry_after, now_ms);
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

Result<std::string> ParseCreateResponse(int http_status, std::string_view raw,
                                        std::optional<std::string> retry_after, int64_t now_ms) {
  return wire::ParseCreated(kTable, "id", http_status, raw, std::move(retry_after), now_ms);
}

Result<TaskStatus> ParsePollResponse(int http_status, std::string_view raw,
                                     std::optional<std::string> retry_after, int64_t now_ms) {
  auto body = wire::ParseAnswer(kTable, Op::kPoll, http_status, raw, retry_after, now_ms);
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
    out.last_frame_url = wire::OptionalString(*body, "content.last_frame_url");
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
  return std::unexpected(ClassifyError(Op::kCancel, http_status, raw, retry_after, now_ms));
}

}  // namespace reelq::providers::seedance
