#include "seedance/seedance_provider.h"

#include "seedance/seedance_wire.h"

namespace reelq::providers::seedance {

using wire::Op;

SeedanceProvider::SeedanceProvider(AccountSpec account, std::string api_key, http::ClientPtr client,
                                   ClockPtr clock, AdapterOptions options)
    : HttpAdapter(std::move(account), std::move(client), std::move(clock), options),
      api_key_(std::move(api_key)) {}

std::string SeedanceProvider::TaskPath(const std::string& task_id) const {
  return std::string(kTasksPath) + "/" + wire::EscapePathSegment(task_id);
}

awaitable<Result<std::string>> SeedanceProvider::Create(GenerationRequest request) {
  auto body = BuildCreateBody(request);
  if (!body) co_return std::unexpected(body.error());
  auto response = co_await Call("POST", std::string(kTasksPath), std::move(*body), Auth());
  if (!response) co_return std::unexpected(response.error());
  co_return ParseCreateResponse(response->status, response->body, response->Header("retry-after"),
                                NowMs());
}

awaitable<Result<std::vector<std::string>>> SeedanceProvider::FindLostCreate(
    GenerationRequest request, int64_t sent_at_ms) {
  // Ark has no client-chosen task ids and its task list does not echo the prompt; the create
  // carried a seed derived from the attempt id (DerivedSeed), which the list does echo. Pages
  // of one model's tasks, newest first, until a task older than the send (less clock slack).
  if (request.idempotency_id.empty()) co_return std::vector<std::string>{};
  auto body = BuildCreateBody(request);
  if (!body) co_return std::unexpected(body.error());
  const int64_t oldest_s = (sent_at_ms - kLostCreateClockSlackMs) / 1000;
  std::vector<std::string> ids;
  for (int page_num = 1; page_num <= kMaxListPages; ++page_num) {
    std::string path = std::string(kTasksPath) + "?page_num=" + std::to_string(page_num) +
                       "&page_size=" + std::to_string(options_.list_page_size) +
                       "&filter.model=" + wire::EscapePathSegment(request.upstream_model);
    auto response = co_await Call("GET", std::move(path), "", Auth());
    if (!response) co_return std::unexpected(response.error());
    auto page = ParseListResponse(response->status, response->body, response->Header("retry-after"),
                                  NowMs());
    if (!page) co_return std::unexpected(page.error());
    bool older_reached = false;
    for (const auto& task : page->items) {
      if (task.created_at_s < oldest_s) {
        older_reached = true;
        break;
      }
      if (MatchesCreate(task, *body)) ids.push_back(task.id);
    }
    if (older_reached || page->items.empty() ||
        static_cast<int64_t>(page_num) * options_.list_page_size >= page->total) {
      break;
    }
  }
  co_return ids;
}

awaitable<Result<TaskStatus>> SeedanceProvider::Poll(std::string task_id) {
  auto response = co_await Call("GET", TaskPath(task_id), "", Auth());
  if (!response) co_return std::unexpected(response.error());
  co_return ParsePollResponse(response->status, response->body, response->Header("retry-after"),
                              NowMs());
}

awaitable<Result<void>> SeedanceProvider::Download(std::string task_id, TaskStatus status,
                                                   ByteSink& sink) {
  if (status.video_url.empty()) {
    co_return MakeError(ErrorCategory::kInternal,
                        "seedance download: task " + task_id + " has no video_url");
  }
  // content.video_url is a pre-signed object-store URL: no API key goes with it.
  auto result = co_await StreamTo(
      status.video_url, {}, 3, sink, [this](int http_status, const http::Response& r) {
        Error e =
            ClassifyError(Op::kDownload, http_status, r.body, r.Header("retry-after"), NowMs());
        // Expired (24 h) or missing result: retrying cannot help.
        if (http_status == 403 || http_status == 404) {
          e.category = ErrorCategory::kNotFound;
        }
        return e;
      });
  co_return result;
}

awaitable<Result<void>> SeedanceProvider::Cancel(std::string task_id) {
  auto response = co_await Call("DELETE", TaskPath(task_id), "", Auth());
  if (!response) co_return std::unexpected(response.error());
  co_return ParseCancelResponse(response->status, response->body, response->Header("retry-after"),
                                NowMs());
}

}  // namespace reelq::providers::seedance
