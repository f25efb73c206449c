#include "veo/veo_wire.h"

#include <algorithm>
#include <array>
#include <cctype>

namespace reelq::providers::veo {
namespace {

using wire::Json;
using wire::Op;

// google.rpc.Code: its name (an HTTP error's error.status) and its number (an operation's
// error.code), with the category each means.
struct RpcCode {
  std::string_view name;
  int number;
  ErrorCategory category;
};
constexpr std::array kRpcCodes = {
    RpcCode{"RESOURCE_EXHAUSTED", 8, ErrorCategory::kRateLimited},
    RpcCode{"PERMISSION_DENIED", 7, ErrorCategory::kAuthFailed},
    RpcCode{"UNAUTHENTICATED", 16, ErrorCategory::kAuthFailed},
    RpcCode{"INVALID_ARGUMENT", 3, ErrorCategory::kInvalidRequest},
    RpcCode{"FAILED_PRECONDITION", 9, ErrorCategory::kInvalidRequest},
    RpcCode{"OUT_OF_RANGE", 11, ErrorCategory::kInvalidRequest},
    RpcCode{"NOT_FOUND", 5, ErrorCategory::kModelGone},  // on create; later the task or file
    RpcCode{"UNAVAILABLE", 14, ErrorCategory::kRetryable},
    RpcCode{"INTERNAL", 13, ErrorCategory::kRetryable},
    RpcCode{"DEADLINE_EXCEEDED", 4, ErrorCategory::kRetryable},
    RpcCode{"ABORTED", 10, ErrorCategory::kRetryable},
    RpcCode{"UNKNOWN", 2, ErrorCategory::kRetryable},
    RpcCode{"CANCELLED", 1, ErrorCategory::kRetryable},
};

using wire::Exact;

// The ErrorInfo reasons first: the Gemini API answers a bad key with 400 INVALID_ARGUMENT, and
// only the reason tells it apart from a bad parameter. Then the status names of kRpcCodes.
constexpr auto kCodes = [] {
  std::array<wire::CodeRow, 2 + kRpcCodes.size()> rows{
      Exact("API_KEY_INVALID", ErrorCategory::kAuthFailed, "API key invalid"),
      Exact("API_KEY_EXPIRED", ErrorCategory::kAuthFailed, "API key expired"),
  };
  for (size_t i = 0; i < kRpcCodes.size(); ++i) {
    rows[2 + i] = Exact(kRpcCodes[i].name, kRpcCodes[i].category, "");
  }
  return rows;
}();

// google.rpc's envelope: {error: {code, message, status, details: [{reason}...]}}. The
// first ErrorInfo reason that has a row goes first: it is more specific than the status.
wire::ErrorFields Fields(const Json& body) {
  wire::ErrorFields fields{.codes = {"", wire::OptionalString(body, "error.status")},
                           .message = wire::OptionalString(body, "error.message")};
  if (const Json* details = wire::Find(body, "error.details");
      details != nullptr && details->is_array()) {
    for (const auto& detail : *details) {
      std::string reason = wire::OptionalString(detail, "reason");
      if (fields.codes[0].empty() && wire::FindCodeRow(kCodes, reason) != nullptr) {
        fields.codes[0] = std::move(reason);
      }
    }
  }
  return fields;
}

// The file URI is on the API's own origin, with the key: the shared HTTP rule holds.
constexpr wire::ErrorTable kTable{.provider = "veo", .codes = kCodes, .fields = &Fields};

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

Error ClassifyError(Op op, int http_status, std::string_view raw,
                    std::optional<std::string> retry_after, int64_t now_ms) {
  return wire::Classify(kTable, op, http_status, raw, std::move(retry_after), now_ms);
}

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
  // Images go on the instance, each as {bytesBase64Encoded, mimeType} (the Vertex REST form;
  // the Gemini API's placement is unconfirmed, see providers.md §3).
  auto inline_image = [](const ImageInput& image) {
    return Json{{"bytesBase64Encoded", wire::Base64Encode(image.bytes)},
                {"mimeType", image.mime_type}};
  };
  Json instance = {{"prompt", request.prompt}};
  if (request.first_frame) instance["image"] = inline_image(*request.first_frame);
  if (request.last_frame) instance["lastFrame"] = inline_image(*request.last_frame);
  if (!request.reference_images.empty()) {
    if (request.reference_images.size() > 3) {
      return MakeError(ErrorCategory::kInvalidRequest,
                       "veo: at most 3 reference images, got " +
                           std::to_string(request.reference_images.size()));
    }
    if (request.duration_seconds != 8) {
      return MakeError(ErrorCategory::kInvalidRequest,
                       "veo: reference images need an 8 s clip, not " +
                           std::to_string(request.duration_seconds) + " s");
    }
    Json references = Json::array();
    for (const auto& image : request.reference_images) {
      references.push_back({{"image", inline_image(image)}, {"referenceType", "asset"}});
    }
    instance["referenceImages"] = std::move(references);
  }
  Json body = {{"instances", Json::array({std::move(instance)})},
               {"parameters", std::move(parameters)}};
  return body.dump();
}

Error ClassifyOperationError(const Json& status) {
  int code = 0;
  if (const Json* c = wire::Find(status, "code"); c != nullptr && c->is_number_integer()) {
    code = static_cast<int>(std::clamp<int64_t>(c->get<int64_t>(), -1, 1'000'000));
  }
  std::string name = wire::OptionalString(status, "status");
  for (const auto& row : kRpcCodes) {
    if (name.empty() && row.number == code) name = std::string(row.name);
  }
  const wire::CodeRow* row = wire::FindCodeRow(kTable.codes, name);
  ErrorCategory category = row != nullptr ? row->category : ErrorCategory::kRetryable;
  // Inside a running operation NOT_FOUND cannot mean a retired model (it was accepted).
  if (category == ErrorCategory::kModelGone) category = ErrorCategory::kNotFound;
  std::string message = wire::OptionalString(status, "message");
  return wire::MakeProviderError(
      category,
      "veo operation failed: " + (name.empty() ? std::to_string(code) : name) + ": " +
          wire::Snippet(message, 300),
      name.empty() ? std::to_string(code) : wire::Snippet(name, 100), 200);
}

Result<std::string> ParseCreateResponse(int http_status, std::string_view raw,
                                        std::optional<std::string> retry_after, int64_t now_ms) {
  return wire::ParseCreated(kTable, "name", http_status, raw, std::move(retry_after), now_ms);
}

Result<TaskStatus> ParsePollResponse(int http_status, std::string_view raw,
                                     std::optional<std::string> retry_after, int64_t now_ms) {
  auto body = wire::ParseAnswer(kTable, Op::kPoll, http_status, raw, retry_after, now_ms);
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
