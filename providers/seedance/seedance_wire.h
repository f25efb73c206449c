#pragma once

// BytePlus ModelArk / Volcengine Ark Seedance wire format (shared/providers.md §4).
#include <optional>
#include <string>
#include <string_view>

#include "reelq/providers/generation.h"
#include "src/wire_common.h"

namespace reelq::providers::seedance {

inline constexpr std::string_view kTasksPath = "/api/v3/contents/generations/tasks";

// {model, content:[{type:"text", text}], duration (int), ratio, resolution, generate_audio}.
Result<std::string> BuildCreateBody(const GenerationRequest& request);

Result<std::string> ParseCreateResponse(int http_status, std::string_view body,
                                        std::optional<std::string> retry_after, int64_t now_ms);
Result<TaskStatus> ParsePollResponse(int http_status, std::string_view body,
                                     std::optional<std::string> retry_after, int64_t now_ms);
// DELETE on a task: 2xx is done; a task that is no longer queued cannot be cancelled.
Result<void> ParseCancelResponse(int http_status, std::string_view body,
                                 std::optional<std::string> retry_after, int64_t now_ms);

// The one table: Ark error.code (exact or prefix/suffix pattern) and HTTP status -> category.
Error ClassifyError(wire::Op op, int http_status, std::string_view body,
                    std::optional<std::string> retry_after, int64_t now_ms);
// A failed task's error.code -> category.
ErrorCategory CategoryForCode(std::string_view code, ErrorCategory fallback);

}  // namespace reelq::providers::seedance
