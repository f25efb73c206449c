#include "sora/sora_provider.h"

#include "sora/sora_wire.h"

#include <algorithm>
#include <cstdlib>

namespace reelq::providers::sora {

using wire::Op;

SoraProvider::SoraProvider(AccountSpec account, std::string api_key, http::ClientPtr client,
                           ClockPtr clock, AdapterOptions options)
    : HttpAdapter(std::move(account), std::move(client), std::move(clock), options),
      api_key_(std::move(api_key)) {}

awaitable<Result<std::string>> SoraProvider::Create(GenerationRequest request) {
  auto body = BuildCreateBody(request);
  if (!body) co_return std::unexpected(body.error());
  auto response = co_await Call("POST", std::string(kVideosPath), std::move(*body), Auth());
  if (!response) co_return std::unexpected(response.error());
  co_return ParseCreateResponse(response->status, response->body, response->Header("retry-after"),
                                NowMs());
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
  for (int page_no = 0; page_no < kMaxListPages; ++page_no) {
    std::string path =
        std::string(kVideosPath) + "?order=desc&limit=" + std::to_string(options_.list_page_size);
    if (!after.empty()) path += "&after=" + wire::EscapePathSegment(after);
    auto response = co_await Call("GET", std::move(path), "", Auth());
    if (!response) co_return std::unexpected(response.error());
    auto page = ParseListResponse(response->status, response->body, response->Header("retry-after"),
                                  NowMs());
    if (!page) co_return std::unexpected(page.error());
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
    if (older_reached || !page->has_more || page->last_id.empty()) break;
    after = page->last_id;
  }
  std::stable_sort(found.begin(), found.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::string> ids;
  for (auto& [distance, id] : found) ids.push_back(std::move(id));
  co_return ids;
}

awaitable<Result<TaskStatus>> SoraProvider::Poll(std::string task_id) {
  auto response = co_await Call(
      "GET", std::string(kVideosPath) + "/" + wire::EscapePathSegment(task_id), "", Auth());
  if (!response) co_return std::unexpected(response.error());
  auto status = ParsePollResponse(response->status, response->body, response->Header("retry-after"),
                                  response->Header("openai-poll-after-ms"), NowMs());
  if (status && status->state == TaskState::kSucceeded) {
    status->video_url =
        wire::JoinUrl(account_.base_url, std::string(kVideosPath) + "/" +
                                             wire::EscapePathSegment(task_id) + "/content");
  }
  co_return status;
}

awaitable<Result<void>> SoraProvider::Download(std::string task_id, TaskStatus status,
                                               ByteSink& sink) {
  std::string url =
      status.video_url.empty()
          ? wire::JoinUrl(account_.base_url, std::string(kVideosPath) + "/" +
                                                 wire::EscapePathSegment(task_id) + "/content")
          : status.video_url;
  auto result =
      co_await StreamTo(url, Auth(), 3, sink, [this](int http_status, const http::Response& r) {
        return ClassifyError(Op::kDownload, http_status, r.body, r.Header("retry-after"), NowMs());
      });
  co_return result;
}

awaitable<Result<void>> SoraProvider::Cancel(std::string task_id) {
  co_return MakeError(ErrorCategory::kInvalidRequest,
                      "sora has no cancel API (DELETE would delete the assets of video " + task_id +
                          ", not stop it)");
}

}  // namespace reelq::providers::sora
