#include "sora/sora_wire.h"

#include <array>
#include <cctype>
#include <charconv>

namespace reelq::providers::sora {
namespace {

using wire::Json;
using wire::Op;

using wire::Exact;

// OpenAI's error.code (or error.type when there is no code).
constexpr std::array kCodes = {
    Exact("moderation_blocked", ErrorCategory::kPolicyRejected, "content policy"),
    Exact("content_policy_violation", ErrorCategory::kPolicyRejected, "content policy"),
    Exact("model_not_found", ErrorCategory::kModelGone, "model not found"),
    Exact("invalid_api_key", ErrorCategory::kAuthFailed, "invalid API key"),
    // Billing: no backoff fixes it.
    Exact("insufficient_quota", ErrorCategory::kAuthFailed, "quota or billing"),
    Exact("billing_hard_limit_reached", ErrorCategory::kAuthFailed, "quota or billing"),
    Exact("rate_limit_exceeded", ErrorCategory::kRateLimited, "rate limit"),
    Exact("invalid_request_error", ErrorCategory::kInvalidRequest, "invalid request"),
    Exact("server_error", ErrorCategory::kRetryable, "server error"),
};

// The clip comes from the API itself (/videos/{id}/content, with the key): the shared HTTP
// rule holds on every call.
// OpenAI's envelope: {error: {message, type, param, code}}. The type is a class of errors
// ("invalid_request_error"); it counts only without a code.
wire::ErrorFields Fields(const Json& body) {
  wire::ErrorFields fields{.codes = {wire::OptionalString(body, "error.code"), ""},
                           .message = wire::OptionalString(body, "error.message")};
  if (fields.codes[0].empty()) fields.codes[1] = wire::OptionalString(body, "error.type");
  return fields;
}

constexpr wire::ErrorTable kTable{.provider = "sora", .codes = kCodes, .fields = &Fields};

}  // namespace

Error ClassifyError(Op op, int http_status, std::string_view raw,
                    std::optional<std::string> retry_after, int64_t now_ms) {
  return wire::Classify(kTable, op, http_status, raw, std::move(retry_after), now_ms);
}

std::optional<std::string> SizeFor(std::string_view aspect_ratio, std::string_view resolution) {
  if (resolution == "720p") {
    if (aspect_ratio == "16:9") return "1280x720";
    if (aspect_ratio == "9:16") return "720x1280";
  } else if (resolution == "1080p") {
    if (aspect_ratio == "16:9") return "1920x1080";
    if (aspect_ratio == "9:16") return "1080x1920";
  }
  return std::nullopt;
}

Result<std::string> BuildCreateBody(const GenerationRequest& request) {
  if (!request.shots.empty()) {
    return MakeError(ErrorCategory::kInvalidRequest,
                     "sora: no multi-shot parameter (a single continuous shot only)");
  }
  if (request.prompt.empty())
    return MakeError(ErrorCategory::kInvalidRequest, "sora: empty prompt");
  if (request.duration_seconds <= 0) {
    return MakeError(ErrorCategory::kInvalidRequest, "sora: duration must be positive");
  }
  auto size = SizeFor(request.aspect_ratio, request.resolution);
  if (!size) {
    return MakeError(ErrorCategory::kInvalidRequest,
                     "sora: no size for " + request.aspect_ratio + " at " + request.resolution);
  }
  if (request.last_frame || !request.reference_images.empty()) {
    return MakeError(ErrorCategory::kInvalidRequest,
                     "sora: takes a first frame (input_reference) only, no last frame or "
                     "reference images");
  }
  Json body = {{"model", request.upstream_model},
               {"prompt", request.prompt},
               {"seconds", std::to_string(request.duration_seconds)},  // a string enum
               {"size", *size}};
  return body.dump();
}

Result<MultipartBody> BuildCreateMultipart(const GenerationRequest& request) {
  auto json_body = BuildCreateBody(request);
  if (!json_body) return std::unexpected(json_body.error());
  if (!request.first_frame) {
    return MakeError(ErrorCategory::kInvalidRequest,
                     "sora: a multipart create needs a first frame");
  }
  const auto& image = *request.first_frame;
  // A boundary that occurs nowhere in the parts.
  std::string boundary = "reelq-form-boundary-7f3a9c";
  for (int n = 0; image.bytes.find(boundary) != std::string::npos ||
                  request.prompt.find(boundary) != std::string::npos;
       ++n) {
    boundary = "reelq-form-boundary-7f3a9c-" + std::to_string(n);
  }
  const Json fields = Json::parse(*json_body);
  std::string body;
  for (const char* name : {"model", "prompt", "seconds", "size"}) {
    body += "--" + boundary + "\r\n";
    body += std::string("Content-Disposition: form-data; name=\"") + name + "\"\r\n\r\n";
    body += fields[name].get<std::string>() + "\r\n";
  }
  std::string extension = "png";
  if (image.mime_type == "image/jpeg") extension = "jpg";
  if (image.mime_type == "image/webp") extension = "webp";
  body += "--" + boundary + "\r\n";
  body += "Content-Disposition: form-data; name=\"input_reference\"; filename=\"input_reference." +
          extension + "\"\r\n";
  body += "Content-Type: " + image.mime_type + "\r\n\r\n";
  body += image.bytes;
  body += "\r\n--" + boundary + "--\r\n";
  return MultipartBody{"multipart/form-data; boundary=" + boundary, std::move(body)};
}

Result<VideoPage> ParseListResponse(int http_status, std::string_view raw,
                                    std::optional<std::string> retry_after, int64_t now_ms) {
  auto body = wire::ParseAnswer(kTable, Op::kFind, http_status, raw, retry_after, now_ms);
  if (!body) return std::unexpected(body.error());
  const Json* data = wire::Find(*body, "data");
  if (data == nullptr || !data->is_array())
    return std::unexpected(wire::MissingField("sora list", "data"));
  VideoPage page;
  for (const Json& v : *data) {
    if (!v.is_object()) continue;
    ListedVideo video;
    video.id = wire::OptionalString(v, "id");
    if (video.id.empty()) continue;  // nothing to resume without an id
    video.model = wire::OptionalString(v, "model");
    video.prompt = wire::OptionalString(v, "prompt");
    video.seconds = wire::OptionalString(v, "seconds");
    video.size = wire::OptionalString(v, "size");
    video.created_at_s = static_cast<int64_t>(wire::OptionalNumber(v, "created_at").value_or(0));
    page.videos.push_back(std::move(video));
  }
  const Json* more = wire::Find(*body, "has_more");
  page.has_more = more != nullptr && more->is_boolean() && more->get<bool>();
  page.last_id = wire::OptionalString(*body, "last_id");
  if (page.last_id.empty() && !page.videos.empty()) page.last_id = page.videos.back().id;
  return page;
}

bool MatchesCreate(const ListedVideo& video, std::string_view create_body) {
  Json sent = wire::ParseLenient(create_body);
  if (!sent.is_object()) return false;
  // A snapshot answer ("sora-2-2025-10-06") to an alias request ("sora-2") is the same model.
  const std::string model = wire::OptionalString(sent, "model");
  // ("sora-2-pro" is another model: a snapshot suffix starts with a digit.)
  const bool snapshot = video.model.size() > model.size() + 1 &&
                        video.model.starts_with(model + "-") &&
                        std::isdigit(static_cast<unsigned char>(video.model[model.size() + 1]));
  const bool same_model = video.model == model || snapshot;
  return same_model && video.prompt == wire::OptionalString(sent, "prompt") &&
         video.seconds == wire::OptionalString(sent, "seconds") &&
         video.size == wire::OptionalString(sent, "size");
}

Error ClassifyJobError(std::string_view code, std::string_view message) {
  const wire::CodeRow* row = wire::FindCodeRow(kTable.codes, code);
  // A generation that just failed, for no reason the table knows: try again.
  const ErrorCategory category = row != nullptr ? row->category : ErrorCategory::kRetryable;
  std::string text = "sora video failed: " + std::string(code.empty() ? "unknown" : code);
  if (!message.empty()) text += ": " + wire::Snippet(message, 300);
  return wire::MakeProviderError(category, std::move(text), std::string(code), 200);
}

Result<std::string> ParseCreateResponse(int http_status, std::string_view raw,
                                        std::optional<std::string> retry_after, int64_t now_ms) {
  return wire::ParseCreated(kTable, "id", http_status, raw, std::move(retry_after), now_ms);
}

Result<TaskStatus> ParsePollResponse(int http_status, std::string_view raw,
                                     std::optional<std::string> retry_after,
                                     std::optional<std::string> poll_after_ms, int64_t now_ms) {
  auto body = wire::ParseAnswer(kTable, Op::kPoll, http_status, raw, retry_after, now_ms);
  if (!body) return std::unexpected(body.error());
  auto status = wire::RequireString(*body, "status", "sora poll");
  if (!status) return std::unexpected(status.error());
  TaskStatus out;
  if (auto progress = wire::OptionalNumber(*body, "progress");
      progress && *progress >= 0 && *progress <= 100) {
    out.progress_percent = static_cast<int>(*progress);
  }
  if (poll_after_ms) {
    int64_t ms = 0;
    auto [ptr, ec] =
        std::from_chars(poll_after_ms->data(), poll_after_ms->data() + poll_after_ms->size(), ms);
    if (ec == std::errc() && ms > 0 && ms <= 600'000)
      out.poll_after = std::chrono::milliseconds(ms);
  }
  if (*status == "queued") {
    out.state = TaskState::kQueued;
  } else if (*status == "in_progress") {
    out.state = TaskState::kRunning;
  } else if (*status == "completed") {
    out.state = TaskState::kSucceeded;
    out.progress_percent = 100;
    out.clip_seconds = wire::OptionalNumber(*body, "seconds").value_or(0);
    // The clip is fetched from /videos/{id}/content; the adapter builds that URL.
  } else if (*status == "failed") {
    out.state = TaskState::kFailed;
    out.error = ClassifyJobError(wire::OptionalString(*body, "error.code"),
                                 wire::OptionalString(*body, "error.message"));
  } else {
    return MakeError(ErrorCategory::kRetryable,
                     "sora poll: unknown status '" + wire::Snippet(*status, 60) + "'");
  }
  return out;
}

}  // namespace reelq::providers::sora
