#include "kling/kling_wire.h"

#include <algorithm>
#include <array>
#include <cctype>

#include "reelq/common/utf8.h"

namespace reelq::providers::kling {
namespace {

using wire::Json;
using wire::Op;

using wire::Contains;
using wire::Range;
constexpr auto kAuthFailed = ErrorCategory::kAuthFailed;

// Kling's error table (providers.md §2). 1100-1102 (account exception, arrears, pack depleted)
// arrive as HTTP 429 but no backoff fixes them: auth/billing, not rate limiting.
constexpr std::array kCodes = {
    Range(1000, 1004, kAuthFailed, "authentication failed"),
    Range(1100, 1102, kAuthFailed, "account or billing problem"),
    Range(1103, 1103, kAuthFailed, "no permission"),
    Range(1200, 1201, ErrorCategory::kInvalidRequest, "invalid request"),
    Range(1202, 1203, ErrorCategory::kModelGone, "model or resource not found"),
    Range(1300, 1301, ErrorCategory::kPolicyRejected, "content policy"),
    Range(1302, 1302, ErrorCategory::kRateLimited, "rate limit"),
    wire::OverConcurrency(
        Range(1303, 1303, ErrorCategory::kRateLimited, "concurrency over resource pack")),
    Range(1304, 1304, kAuthFailed, "IP whitelist policy"),
    Range(5000, 5002, ErrorCategory::kRetryable, "server error"),
};

// The result URL is a pre-signed CDN link: a 403 there is an expired signature, and an expired
// result will not come back by retrying (404 and 410 are not-found by the shared rule).
constexpr std::array kStatuses = {
    wire::StatusRow{Op::kDownload, 403, ErrorCategory::kNotFound, "result file expired"},
};

// Kling's envelope: {code, message, data}; code 0 is success, any other code an error.
wire::ErrorFields Fields(const Json& body) {
  wire::ErrorFields fields{.message = wire::OptionalString(body, "message")};
  if (const Json* code = wire::Find(body, "code"); code != nullptr && !code->is_null()) {
    const bool success = code->is_number_integer() && code->get<int64_t>() == 0;
    if (!success)
      fields.codes[0] = code->is_number_integer() ? std::to_string(code->get<int64_t>())
                                                  : wire::Snippet(code->dump(), 60);
  }
  return fields;
}

// Kling gives no wait with a rate limit; its guidance is to back off at least 1 s.
constexpr wire::ErrorTable kTable{.provider = "kling",
                                  .codes = kCodes,
                                  .statuses = kStatuses,
                                  .fields = &Fields,
                                  .code_in_2xx_is_error = true,
                                  .min_rate_limit_wait = std::chrono::seconds(1)};

// A failed task's task_status_msg, lower-cased: risk control is a policy rejection.
constexpr std::array kTaskFailures = {
    Contains("risk", ErrorCategory::kPolicyRejected, "risk control"),
    Contains("policy", ErrorCategory::kPolicyRejected, "content policy"),
    Contains("sensitive", ErrorCategory::kPolicyRejected, "sensitive content"),
};

std::string Seconds(int s) { return std::to_string(s); }

}  // namespace

Error ClassifyError(Op op, int http_status, std::string_view raw,
                    std::optional<std::string> retry_after, int64_t now_ms) {
  return wire::Classify(kTable, op, http_status, raw, std::move(retry_after), now_ms);
}

bool UsesImage2Video(const GenerationRequest& request) {
  return request.first_frame.has_value() || request.last_frame.has_value();
}

std::string_view CreatePathFor(const GenerationRequest& request) {
  return UsesImage2Video(request) ? kImage2VideoPath : kCreatePath;
}

std::pair<std::string_view, std::string> TaskPathAndId(std::string_view upstream_id) {
  if (upstream_id.starts_with(kImage2VideoIdPrefix)) {
    return {kImage2VideoPath, std::string(upstream_id.substr(kImage2VideoIdPrefix.size()))};
  }
  return {kCreatePath, std::string(upstream_id)};
}

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
  if (!request.reference_images.empty()) {
    return invalid("reference images are not supported by text2video or image2video");
  }
  if (request.first_frame) body["image"] = wire::Base64Encode(request.first_frame->bytes);
  if (request.last_frame) body["image_tail"] = wire::Base64Encode(request.last_frame->bytes);

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
      if (const size_t chars = CountCodePoints(shot.prompt); chars > kMaxShotPromptChars) {
        return invalid("shot " + std::to_string(i + 1) + " prompt has " + std::to_string(chars) +
                       " characters (at most " + std::to_string(kMaxShotPromptChars) + ")");
      }
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

Error ClassifyTaskFailure(std::string_view msg) {
  std::string lower(msg);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  const bool policy = wire::FindCodeRow(kTaskFailures, lower) != nullptr;
  std::string reason = msg.empty() ? "no reason given" : wire::Snippet(msg, 300);
  return wire::MakeProviderError(
      policy ? ErrorCategory::kPolicyRejected : ErrorCategory::kRetryable,
      "kling task failed: " + reason, policy ? "task_failed_policy" : "task_failed", 200);
}

Result<std::string> ParseCreateResponse(int http_status, std::string_view raw,
                                        std::optional<std::string> retry_after, int64_t now_ms) {
  return wire::ParseCreated(kTable, "data.task_id", http_status, raw, std::move(retry_after),
                            now_ms);
}

Result<std::optional<std::string>> ParseFindResponse(int http_status, std::string_view raw,
                                                     std::optional<std::string> retry_after,
                                                     int64_t now_ms) {
  auto body = wire::ParseAnswer(kTable, Op::kFind, http_status, raw, retry_after, now_ms);
  if (!body && body.error().category == ErrorCategory::kNotFound) {
    return std::optional<std::string>();  // no task has this external_task_id
  }
  if (!body) return std::unexpected(body.error());
  auto task_id = wire::RequireString(*body, "data.task_id", "kling find");
  if (!task_id) return std::unexpected(task_id.error());
  return std::optional<std::string>(std::move(*task_id));
}

Result<TaskStatus> ParsePollResponse(int http_status, std::string_view raw,
                                     std::optional<std::string> retry_after, int64_t now_ms) {
  auto body = wire::ParseAnswer(kTable, Op::kPoll, http_status, raw, retry_after, now_ms);
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
