#pragma once

// Gemini API Veo 3.1 wire format (shared/providers.md §3): predictLongRunning + operations.
#include <optional>
#include <string>
#include <string_view>

#include "reelq/providers/generation.h"
#include "src/wire_common.h"

namespace reelq::providers::veo {

std::string CreatePath(std::string_view upstream_model);  // /v1beta/models/{m}:predictLongRunning
// /v1beta/{operation name}; kInvalidRequest for a name that is not a plain resource path.
Result<std::string> OperationPath(std::string_view operation_name);

Result<std::string> BuildCreateBody(const GenerationRequest& request);

Result<std::string> ParseCreateResponse(int http_status, std::string_view body,
                                        std::optional<std::string> retry_after, int64_t now_ms);
Result<TaskStatus> ParsePollResponse(int http_status, std::string_view body,
                                     std::optional<std::string> retry_after, int64_t now_ms);

// The one table (ErrorInfo reason, then google.rpc status name) through wire::Classify.
Error ClassifyError(wire::Op op, int http_status, std::string_view body,
                    std::optional<std::string> retry_after, int64_t now_ms);
// An operation's `error` (google.rpc.Status): numeric gRPC code, message.
Error ClassifyOperationError(const wire::Json& status);

}  // namespace reelq::providers::veo
