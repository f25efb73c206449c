#include "veo/veo_wire.h"

#include <array>
#include <cctype>

namespace reelq::providers::veo {
namespace {

using wire::Json;
using wire::Op;

struct StatusRow {
  std::string_view status;  // google.rpc.Code name
  int grpc_code;
  ErrorCategory category;
};

constexpr std::array kStatuses = {
    StatusRow{"RESOURCE_EXHAUSTED", 8, ErrorCategory::kRateLimited},
    StatusRow{"PERMISSION_DENIED", 7, ErrorCategory::kAuthFailed},
    StatusRow{"UNAUTHENTICATED", 16, ErrorCategory::kAuthFailed},
    StatusRow{"INVALID_ARGUMENT", 3, ErrorCategory::kInvalidRequest},
    StatusRow{"FAILED_PRECONDITION", 9, ErrorCategory::kInvalidRequest},
    StatusRow{"OUT_OF_RANGE", 11, ErrorCategory::kInvalidRequest},
    StatusRow{"NOT_FOUND", 5, ErrorCategory::kModelGone},  // on create; see below
    StatusRow{"UNAVAILABLE", 14, ErrorCategory::kRetryable},
    StatusRow{"INTERNAL", 13, ErrorCategory::kRetryable},
    StatusRow{"DEADLINE_EXCEEDED", 4, ErrorCategory::kRetryable},
    StatusRow{"ABORTED", 10, ErrorCategory::kRetryable},
    StatusRow{"UNKNOWN", 2, ErrorCategory::kRetryable},
    StatusRow{"CANCELLED", 1, ErrorCategory::kRetryable},
};

ErrorCategory FromHttpStatus(int status) {
  if (status == 401 || status == 403) return ErrorCategory::kAuthFailed;
  if (status == 429) return ErrorCategory::kRateLimited;
  if (status == 404) return ErrorCategory::kModelGone;
  if (status == 400) return ErrorCategory::kInvalidRequest;
  return ErrorCategory::kRetryable;
}

std::string Join(const Json* list) {
  std::string out;
  if (list == nullptr || !list->is_array()) return out;
  for (const auto& item : *list) {
    if (!item.is_string()) continue;
    if (!out.empty()) out += "; ";
    out += item.get<std::string>();
  }
  return out;
}

// The generateVideoResponse, wherever this API version put it.
const Json* VideoResponse(const Json& body) {
  if (const Json* r = wire::Find(body, "response.generateVideoResponse")) return r;
  return wire::Find(body, "response");
}

}  // namespace

std::string CreatePath(std::string_view upstream_model) {
  return "/v1beta/models/" + wire::EscapePathSegment(upstream_model) + ":predictLongRunning";
}

Result<std::string> OperationPath(std::string_view name) {
  bool plain = !name.empty() && name.find("..") == std::string_view::npos && name.front() != '/';
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '/' && c != '-' && c != '_' &&
        c != '.') {
      plain = false;
    }
  }
  if (!plain) {
    return MakeError(
        ErrorCategory::kInvalidRequest,
        "veo: operation name '" + wire::Snippet(name, 100) + "' is not a resource path");
  }
  return "/v1beta/" + std::string(name);
}

Result<std::string> BuildCreateBody(const GenerationRequest& request) {
  if (!request.shots.empty()) {
    return MakeError(ErrorCategory::kInvalidRequest, "veo: no multi-shot parameter");
  }
  if (request.prompt.empty()) return MakeError(ErrorCategory::kInvalidRequest, "veo: empty prompt");
  if (request.duration_seconds <= 0) {
    return MakeError(ErrorCategory::kInvalidRequest, "veo: duration must be positive");
  }
  Json parameters = {{"aspectRatio", request.aspect_ratio},
                     {"durationSeconds", request.duration_seconds},  // an integer here
                     {"resolution", request.resolution}};
  if (!request.negative_prompt.empty()) parameters["negativePrompt"] = request.negative_prompt;
  Json body = {{"instances", Json::array({{{"prompt", request.prompt}}})},
               {"parameters", std::move(parameters)}};
  return body.dump();
}

Error ClassifyError(Op op, int http_status, std::string_view raw,
                    std::optional<std::string> retry_after, int64_t now_ms) {
  Json body = wire::ParseLenient(raw);
  std::string status = wire::OptionalString(body, "error.status");
  std::string message = wire::OptionalString(body, "error.message");
  if (message.empty()) message = wire::Snippet(raw, 200);
  ErrorCategory category = FromHttpStatus(http_status);
  for (const auto& row : kStatuses) {
    if (row.status == status) {
      category = row.category;
      break;
    }
  }
  if (http_status >= 500) category = ErrorCategory::kRetryable;
  // The Gemini API answers a bad key with 400 INVALID_ARGUMENT; only the ErrorInfo reason
  // tells it apart from a bad parameter.
  if (const Json* details = wire::Find(body, "error.details");
      details != nullptr && details->is_array()) {
    for (const auto& detail : *details) {
      std::string reason = wire::OptionalString(detail, "reason");
      if (reason == "API_KEY_INVALID" || reason == "API_KEY_EXPIRED") {
        category = ErrorCategory::kAuthFailed;
      }
    }
  }
  // NOT_FOUND means a retired model only on create; later it is the operation or file.
  if (category == ErrorCategory::kModelGone && op != Op::kCreate) {
    category = ErrorCategory::kNotFound;
  }
  std::chrono::milliseconds wait{0};
  if (IsRetryable(category) && retry_after) {
    wait = wire::ParseRetryAfter(*retry_after, now_ms).value_or(wait);
  }
  std::string text = "veo " + std::string(wire::ToString(op)) + " (HTTP " +
                     std::to_string(http_status) + (status.empty() ? "" : " " + status) +
                     "): " + wire::Snippet(message, 300);
  return wire::MakeProviderError(category, std::move(text), status, http_status, wait);
}

Error ClassifyOperationError(const Json& status) {
  int code = 0;
  if (const Json* c = wire::Find(status, "code"); c != nullptr && c->is_number_integer()) {
    code = static_cast<int>(c->get<int64_t>());
  }
  std::string name = wire::OptionalString(status, "status");
  ErrorCategory category = ErrorCategory::kRetryable;
  for (const auto& row : kStatuses) {
    if ((!name.empty() && row.status == name) || (name.empty() && row.grpc_code == code)) {
      category = row.category;
      if (name.empty()) name = std::string(row.status);
      break;
    }
  }
  // Inside a running operation NOT_FOUND cannot mean a retired model (it was accepted).
  if (category == ErrorCategory::kModelGone) category = ErrorCategory::kNotFound;
  std::string message = wire::OptionalString(status, "message");
  return wire::MakeProviderError(
      category,
      "veo operation failed: " + (name.empty() ? std::to_string(code) : name) + ": " +
          wire::Snippet(message, 300),
      name.empty() ? std::to_string(code) : name, 200);
}

Result<std::string> ParseCreateResponse(int http_status, std::string_view raw,
                                        std::optional<std::string> retry_after, int64_t now_ms) {
  if (http_status < 200 || http_status >= 300) {
    return std::unexpected(ClassifyError(Op::kCreate, http_status, raw, retry_after, now_ms));
  }
  auto body = wire::ParseObject(raw, "veo create");
  if (!body) return std::unexpected(body.error());
  return wire::RequireString(*body, "name", "veo create");
}

Result<TaskStatus> ParsePollResponse(int http_status, std::string_view raw,
                                     std::optional<std::string> retry_after, int64_t now_ms) {
  if (http_status < 200 || http_status >= 300) {
    return std::unexpected(ClassifyError(Op::kPoll, http_status, raw, retry_after, now_ms));
  }
  auto body = wire::ParseObject(raw, "veo poll");
  if (!body) return std::unexpected(body.error());
  TaskStatus out;
  const Json* done = wire::Find(*body, "done");
  if (done == nullptr || (done->is_boolean() && !done->get<bool>())) {
    out.state = TaskState::kRunning;  // the LRO gives no progress and no queued state
    return out;
  }
  if (!done->is_boolean()) {
    return MakeError(ErrorCategory::kRetryable, "veo poll: field 'done' is not a boolean");
  }
  if (const Json* error = wire::Find(*body, "error"); error != nullptr && error->is_object()) {
    out.state = TaskState::kFailed;
    out.error = ClassifyOperationError(*error);
    return out;
  }
  const Json* response = VideoResponse(*body);
  if (response == nullptr || !response->is_object()) {
    return std::unexpected(wire::MissingField("veo poll", "response"));
  }
  auto filtered = wire::OptionalNumber(*response, "raiMediaFilteredCount").value_or(0);
  const Json* samples = wire::Find(*response, "generatedSamples");
  bool has_sample = samples != nullptr && samples->is_array() && !samples->empty();
  if (filtered > 0 || !has_sample) {
    std::string reasons = Join(wire::Find(*response, "raiMediaFilteredReasons"));
    out.state = TaskState::kFailed;
    out.error = wire::MakeProviderError(
        ErrorCategory::kPolicyRejected,
        "veo: video filtered by safety (responsible AI) filters: " +
            (reasons.empty() ? std::string("no sample returned, no reason given")
                             : wire::Snippet(reasons, 400)),
        "raiMediaFiltered", 200);
    return out;
  }
  auto uri = wire::RequireString((*samples)[0], "video.uri", "veo poll");
  if (!uri) {
    return std::unexpected(wire::MissingField(
        "veo poll", "response.generateVideoResponse.generatedSamples[0].video.uri"));
  }
  out.state = TaskState::kSucceeded;
  out.progress_percent = 100;
  out.video_url = *uri;
  return out;
}

}  // namespace reelq::providers::veo
