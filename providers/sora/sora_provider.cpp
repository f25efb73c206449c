#include "sora/sora_provider.h"

#include "sora/sora_wire.h"

#include <algorithm>
#include <cstdlib>

namespace reelq::providers::sora {

SoraProvider::SoraProvider(AccountSpec account, std::string api_key, http::ClientPtr client,
                           ClockPtr clock, AdapterOptions options)
    : HttpAdapter(std::move(account), std::move(client), std::move(clock), options, &ClassifyError),
      api_key_(std::move(api_key)) {}

http::Headers SoraProvider::AuthHeaders() { return {{"authorization", "Bearer " + api_key_}}; }

std::string SoraProvider::ContentUrl(const std::string& task_id) const {
  return wire::JoinUrl(account_.base_url, std::string(kVideosPath) + "/" +
                                              wire::EscapePathSegment(task_id) + "/content");
}

awaitable<Result<std::string>> SoraProvider::Create(GenerationRequest request) {
  if (request.first_frame) {
    auto form = BuildCreateMultipart(request);
    if (!form) co_return std::unexpected(form.error());
    co_return co_await CallAndParse("POST", std::string(kVideosPath), std::move(form->body),
                                    &ParseCreateResponse, std::move(form->content_type),
                                    LabelHeaders(request));
  }
  auto body = BuildCreateBody(request);
  if (!body) co_return std::unexpected(body.error());
  co_return co_await CallAndParse("POST", std::string(kVideosPath), std::move(*body),
                                  &ParseCreateResponse, "application/json", LabelHeaders(request));
}

awaitable<Result<std::vector<std::string>>> SoraProvider::FindLostCreate(GenerationRequest request,
                                                                         int64_t sent_at_ms) {
  // The Videos API takes no client-chosen id, so the lost video is found by what was asked
  // for: newest first, every video created since the send (less clock slack) whose model,
  // prompt, seconds and size equal the request. Several identical requests can match; the
  // caller claims the candidates in order and skips those another job already owns.
  auto body = BuildCreateBody(request);
  if (!body) co_return std::unexpected(body.error());
  const int64_t oldest_s = (sent_at_ms - kLostCreateClockSlackMs) / 1000;
  std::vector<std::pair<int64_t, std::string>> found;  // (distance from the send, id)
  std::string after;
  bool searched_back_to_send = false;  // the pages reached the send time, or the list's end
  int pages = 0;
  for (int page_no = 0; page_no < kMaxListPages; ++page_no) {
    std::string path =
        std::string(kVideosPath) + "?order=desc&limit=" + std::to_string(options_.list_page_size);
    if (!after.empty()) path += "&after=" + wire::EscapePathSegment(after);
    auto page = co_await CallAndParse("GET", std::move(path), "", &ParseListResponse);
    if (!page) co_return std::unexpected(page.error());
    ++pages;
    bool older_reached = false;
    for (const auto& video : page->videos) {
      if (video.created_at_s < oldest_s) {
        older_reached = true;  // newest first: everything after this is older still
        break;
      }
      if (MatchesCreate(video, *body)) {
        found.emplace_back(std::abs(video.created_at_s * 1000 - sent_at_ms), video.id);
      }
    }
    if (older_reached || !page->has_more || page->last_id.empty()) {
      searched_back_to_send = true;
      break;
    }
    after = page->last_id;
  }
  if (!searched_back_to_send) {
    // Newer videos filled every page read: the lost one may lie further back, so "none found"
    // would be a guess, and the caller would pay for a second create on it. Even with matches:
    // they may all be identical requests of other jobs, which the caller skips.
    co_return MakeError(
        ErrorCategory::kRetryable,
        "sora lost-create lookup incomplete: " + std::to_string(pages) + " pages of " +
            std::to_string(options_.list_page_size) +
            " videos searched (newest first) without reaching the create's send time; the "
            "account made too many videos since then to tell whether it made one");
  }
  std::stable_sort(found.begin(), found.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::string> ids;
  for (auto& [distance, id] : found) ids.push_back(std::move(id));
  co_return ids;
}

Result<TaskStatus> SoraProvider::ParsePollAnswer(const http::Response& response, int64_t now_ms) {
  return ParsePollResponse(response.status, response.body, response.Header("retry-after"),
                           response.Header("openai-poll-after-ms"), now_ms);
}

awaitable<Result<TaskStatus>> SoraProvider::Poll(std::string task_id) {
  auto status = co_await CallAndParse<TaskStatus>(
      "GET", std::string(kVideosPath) + "/" + wire::EscapePathSegment(task_id), "",
      &ParsePollAnswer);
  if (status && status->state == TaskState::kSucceeded) status->video_url = ContentUrl(task_id);
  co_return status;
}

awaitable<Result<void>> SoraProvider::Download(std::string task_id, TaskStatus status,
                                               ByteSink& sink) {
  // The content endpoint is the API itself: the key goes with it.
  std::string url = status.video_url.empty() ? ContentUrl(task_id) : status.video_url;
  co_return co_await StreamTo(std::move(task_id), std::move(url), AuthHeaders(), 3, sink);
}

awaitable<Result<void>> SoraProvider::Cancel(std::string task_id) {
  co_return MakeError(ErrorCategory::kInvalidRequest,
                      "sora has no cancel API (DELETE would delete the assets of video " + task_id +
                          ", not stop it)");
}

}  // namespace reelq::providers::sora
