#include "kling/kling_wire.h"

#include <algorithm>
#include <array>
#include <cctype>

namespace reelq::providers::kling {
namespace {

using wire::Json;
using wire::Op;

struct CodeRange {
  int lo;
  int hi;
  ErrorCategory category;
  const char* meaning;
};

// Kling's error table (providers.md §2). 1100-1102 (account exception, arrears, pack depleted)
// arrive as HTTP 429 but no backoff fixes them: auth/billing, not rate limiting.
constexpr std::array kCodes = {
    CodeRange{1000, 1004, ErrorCategory::kAuthFailed, "authentication failed"},
    CodeRange{1100, 1102, ErrorCategory::kAuthFailed, "account or billing problem"},
    CodeRange{1103, 1103, ErrorCategory::kAuthFailed, "no permission"},
    CodeRange{1200, 1201, ErrorCategory::kInvalidRequest, "invalid request"},
    CodeRange{1202, 1203, ErrorCategory::kModelGone, "model or resource not found"},
    CodeRange{1300, 1301, ErrorCategory::kPolicyRejected, "content policy"},
    CodeRange{1302, 1303, ErrorCategory::kRateLimited, "rate or concurrency limit"},
    CodeRange{1304, 1304, ErrorCategory::kAuthFailed, "IP whitelist policy"},
    CodeRange{5000, 5002, ErrorCategory::kRetryable, "server error"},
};

ErrorCategory FromHttpStatus(int status) {
  if (status == 401 || status == 403) return ErrorCategory::kAuthFailed;
  if (status == 429) return ErrorCategory::kRateLimited;
  if (status == 400 || status == 422) return ErrorCategory::kInvalidRequest;
  if (status == 404) return ErrorCategory::kNotFound;
  return ErrorCategory::kRetryable;  // 5xx and anything unexpected
}

std::string Seconds(int s) { return std::to_string(s); }

std::optional<Error> EnvelopeError(Op op, int http_status, const Json& body,
                                   std::optional<std::string> retry_after, int64_t now_ms,
                                   std::string_view raw) {
  const Json* code = wire::Find(body, "code");
  bool ok_code = code == nullptr || (code->is_number_integer() && code->get<int64_t>() == 0);
  if (http_status >= 200 && http_status < 300 && ok_code) return std::nullopt;
  return ClassifyError(op, http_status, raw, std::move(retry_after), now_ms);
}

}  // namespace

Result<std::string> BuildCreateBody(const GenerationRequest& request) {
  auto invalid = [](std::string message) {
    return MakeError(ErrorCategory::kInvalidRequest, "kling: " + std::move(message));
  };
  Json body;
  body["model_name"] = request.upstream_model;
  if (request.resolution == "720p") {
    body["mode"] = "std";
  } else if (request.resolution == "1080p") {
    body["mode"] = "pro";
  } else {
    return invalid("resolution '" + request.resolution + "' (expected 720p or 1080p)");
  }
  body["aspect_ratio"] = request.aspect_ratio;
  body["sound"] = request.audio ? "on" : "off";
  if (!request.negative_prompt.empty()) body["negative_prompt"] = request.negative_prompt;
  if (!request.idempotency_id.empty()) body["external_task_id"] = request.idempotency_id;

  int duration = request.duration_seconds;
  if (!request.shots.empty()) {
    if (request.shots.size() > 6) {
      return invalid(std::to_string(request.shots.size()) + " shots (at most 6)");
    }
    int sum = 0;
    Json shots = Json::array();
    for (size_t i = 0; i < request.shots.size(); ++i) {
      const auto& shot = request.shots[i];
      if (shot.duration_seconds < 1) {
        return invalid("shot " + std::to_string(i + 1) + " duration must be at least 1 s");
      }
      if (shot.prompt.empty()) return invalid("shot " + std::to_string(i + 1) + " has no prompt");
      sum += shot.duration_seconds;
      shots.push_back({{"index", static_cast<int>(i + 1)},
                       {"prompt", shot.prompt},
                       {"duration", Seconds(shot.duration_seconds)}});
    }
    if (duration == 0) duration = sum;
    if (sum != duration) {
      return invalid("shot durations sum to " + std::to_string(sum) + " s, not the clip's " +
                     std::to_string(duration) + " s");
    }
    body["multi_shot"] = true;
    body["shot_type"] = "customize";
    body["multi_prompt"] = std::move(shots);
    // The top-level prompt is ignored with customize shots; send it only as context.
    if (!request.prompt.empty()) body["prompt"] = request.prompt;
  } else {
    if (request.prompt.empty()) return invalid("empty prompt");
    body["prompt"] = request.prompt;
  }
  if (duration <= 0) return invalid("duration must be positive");
  body["duration"] = Seconds(duration);  // a string on the wire
  return body.dump();
}

Error ClassifyError(Op op, int http_status, std::string_view raw,
                    std::optional<std::string> retry_after, int64_t now_ms) {
  Json body = wire::ParseLenient(raw);
  int code = 0;
  if (const Json* c = wire::Find(body, "code"); c != nullptr && c->is_number_integer()) {
    code = static_cast<int>(std::clamp<int64_t>(c->get<int64_t>(), -1, 1'000'000));
  }
  std::string message = wire::OptionalString(body, "message");
  if (message.empty()) message = wire::Snippet(raw, 200);

  ErrorCategory category = FromHttpStatus(http_status);
  const char* meaning = "HTTP error";
  for (const auto& row : kCodes) {
    if (code >= row.lo && code <= row.hi) {
      category = row.category;
      meaning = row.meaning;
      break;
    }
  }
  // "Not found" only means a retired model on create; on poll/find it is the task.
  if (category == ErrorCategory::kModelGone && op != Op::kCreate) {
    category = ErrorCategory::kNotFound;
  }
  std::chrono::milliseconds wait{0};
  if (category == ErrorCategory::kRateLimited || category == ErrorCategory::kRetryable) {
    if (retry_after) wait = wire::ParseRetryAfter(*retry_after, now_ms).value_or(wait);
    // Kling gives no hint; its guidance is to back off at least 1 s.
    if (category == ErrorCategory::kRateLimited && wait.count() == 0)
      wait = std::chrono::seconds(1);
  }
  std::string text = "kling " + std::string(wire::ToString(op)) + ": " + meaning + " (HTTP " +
                     std::to_string(http_status) + "): " + wire::Snippet(message, 300);
  return wire::MakeProviderError(category, std::move(text), code ? std::to_string(code) : "",
                                 http_status, wait);
}

Error ClassifyTaskFailure(std::string_view msg) {
  std::string lower(msg);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  bool policy = lower.find("risk") != std::string::npos ||
                lower.find("policy") != std::string::npos ||
                lower.find("sensitive") != std::string::npos;
  std::string reason = msg.empty() ? "no reason given" : wire::Snippet(msg, 300);
  return wire::MakeProviderError(
      policy ? ErrorCategory::kPolicyRejected : ErrorCategory::kRetryable,
      "kling task failed: " + reason, policy ? "task_failed_policy" : "task_failed", 200);
}

Result<std::string> ParseCreateResponse(int http_status, std::string_view raw,
                                        std::optional<std::string> retry_after, int64_t now_ms) {
  Json lenient = wire::ParseLenient(raw);
  if (auto error = EnvelopeError(Op::kCreate, http_status, lenient, retry_after, now_ms, raw)) {
    return std::unexpected(std::move(*error));
  }
  auto body = wire::ParseObject(raw, "kling create");
  if (!body) return std::unexpected(body.error());
  return wire::RequireString(*body, "data.task_id", "kling create");
}

Result<TaskStatus> ParsePollResponse(int http_status, std::string_view raw,
                                     std::optional<std::string> retry_after, int64_t now_ms) {
  Json lenient = wire::ParseLenient(raw);
  if (auto error = EnvelopeError(Op::kPoll, http_status, lenient, retry_after, now_ms, raw)) {
    return std::unexpected(std::move(*error));
  }
  auto body = wire::ParseObject(raw, "kling poll");
  if (!body) return std::unexpected(body.error());
  auto status = wire::RequireString(*body, "data.task_status", "kling poll");
  if (!status) return std::unexpected(status.error());

  TaskStatus out;
  if (*status == "submitted") {
    out.state = TaskState::kQueued;
  } else if (*status == "processing") {
    out.state = TaskState::kRunning;
  } else if (*status == "succeed") {
    const Json* videos = wire::Find(*body, "data.task_result.videos");
    if (videos == nullptr || !videos->is_array() || videos->empty()) {
      return std::unexpected(wire::MissingField("kling poll", "data.task_result.videos"));
    }
    auto url = wire::RequireString((*videos)[0], "url", "kling poll");
    if (!url)
      return std::unexpected(wire::MissingField("kling poll", "data.task_result.videos[0].url"));
    out.state = TaskState::kSucceeded;
    out.progress_percent = 100;
    out.video_url = *url;
    out.clip_seconds = wire::OptionalNumber((*videos)[0], "duration").value_or(0);
  } else if (*status == "failed") {
    out.state = TaskState::kFailed;
    out.error = ClassifyTaskFailure(wire::OptionalString(*body, "data.task_status_msg"));
  } else {
    return MakeError(ErrorCategory::kRetryable,
                     "kling poll: unknown task_status '" + wire::Snippet(*status, 60) + "'");
  }
  return out;
}

}  // namespace reelq::providers::kling
