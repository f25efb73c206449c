#pragma once

// Kling text2video wire format (shared/providers.md §2): request builder, response parsers and
// the one error table. Pure functions, no I/O: the adapter and the fuzzer call them.
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "reelq/providers/generation.h"
#include "src/wire_common.h"

namespace reelq::providers::kling {

inline constexpr std::string_view kCreatePath = "/v1/videos/text2video";
// A job with a first or last frame goes to image2video (a separate endpoint, polled under its
// own path): `image` and `image_tail` as plain base64 (no data: prefix).
inline constexpr std::string_view kImage2VideoPath = "/v1/videos/image2video";
// multi_prompt[].prompt: at most this many characters (providers.md, Kling).
inline constexpr size_t kMaxShotPromptChars = 512;
// reelq's upstream id for an image2video task is this prefix + Kling's task id, so a poll after
// a worker restart knows which endpoint the task lives under.
inline constexpr std::string_view kImage2VideoIdPrefix = "image2video:";

bool UsesImage2Video(const GenerationRequest& request);
// text2video or image2video, for this request.
std::string_view CreatePathFor(const GenerationRequest& request);
// The query path of a stored upstream id (text2video or, with the prefix, image2video) and
// Kling's own task id.
std::pair<std::string_view, std::string> TaskPathAndId(std::string_view upstream_id);

// The JSON body of POST /v1/videos/text2video; kInvalidRequest when the request cannot be
// expressed (resolution other than 720p/1080p, 0 or more than 6 shots, shot durations that do
// not sum to the clip duration).
Result<std::string> BuildCreateBody(const GenerationRequest& request);

// Any Kling answer: the envelope {code, message, data}. A non-zero code (even with HTTP 200) or
// a non-2xx status is classified by ClassifyError.
Result<std::string> ParseCreateResponse(int http_status, std::string_view body,
                                        std::optional<std::string> retry_after, int64_t now_ms);
Result<TaskStatus> ParsePollResponse(int http_status, std::string_view body,
                                     std::optional<std::string> retry_after, int64_t now_ms);
// GET /v1/videos/text2video/{external_task_id}: the task that idempotency id made; nullopt when
// Kling has none (its not-found answer).
Result<std::optional<std::string>> ParseFindResponse(int http_status, std::string_view body,
                                                     std::optional<std::string> retry_after,
                                                     int64_t now_ms);

// The one table (Kling codes, and a download's 403) through wire::Classify.
Error ClassifyError(wire::Op op, int http_status, std::string_view body,
                    std::optional<std::string> retry_after, int64_t now_ms);

// A failed task's task_status_msg -> category (risk control: policy; otherwise retryable).
Error ClassifyTaskFailure(std::string_view task_status_msg);

}  // namespace reelq::providers::kling
