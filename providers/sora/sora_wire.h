#pragma once

// OpenAI Sora 2 Videos API wire format (shared/providers.md §1).
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "reelq/providers/generation.h"
#include "src/wire_common.h"

namespace reelq::providers::sora {

inline constexpr std::string_view kVideosPath = "/v1/videos";

// {model, prompt, seconds (string), size}; kInvalidRequest for a size Sora cannot make.
Result<std::string> BuildCreateBody(const GenerationRequest& request);
// "1280x720" for 16:9 720p, "720x1280" for 9:16 720p, 1080p sizes (sora-2-pro only upstream).
// With a first frame the create is multipart/form-data instead: the same fields as text parts
// and the image as the `input_reference` file part. Returns {content type, body}. Sora takes
// no last frame or reference images (kInvalidRequest).
struct MultipartBody {
  std::string content_type;  // multipart/form-data; boundary=...
  std::string body;
};
Result<MultipartBody> BuildCreateMultipart(const GenerationRequest& request);
std::optional<std::string> SizeFor(std::string_view aspect_ratio, std::string_view resolution);

Result<std::string> ParseCreateResponse(int http_status, std::string_view body,
                                        std::optional<std::string> retry_after, int64_t now_ms);
// `poll_after_ms`: the openai-poll-after-ms header, copied into TaskStatus::poll_after.
Result<TaskStatus> ParsePollResponse(int http_status, std::string_view body,
                                     std::optional<std::string> retry_after,
                                     std::optional<std::string> poll_after_ms, int64_t now_ms);

// One video of GET /v1/videos, with the fields a lost create is matched on.
struct ListedVideo {
  std::string id, model, prompt, seconds, size;
  int64_t created_at_s = 0;
};
struct VideoPage {
  std::vector<ListedVideo> videos;
  bool has_more = false;
  std::string last_id;  // the cursor for `after=`
};
// {"object":"list","data":[Video...],"has_more","first_id","last_id"}.
Result<VideoPage> ParseListResponse(int http_status, std::string_view body,
                                    std::optional<std::string> retry_after, int64_t now_ms);
// Whether a listed video is what `create_body` (BuildCreateBody's output) asks for.
bool MatchesCreate(const ListedVideo& video, std::string_view create_body);

// The one table (error.code, or error.type without a code) through wire::Classify.
Error ClassifyError(wire::Op op, int http_status, std::string_view body,
                    std::optional<std::string> retry_after, int64_t now_ms);
// A failed video's error {code, message} -> category.
Error ClassifyJobError(std::string_view code, std::string_view message);

}  // namespace reelq::providers::sora
