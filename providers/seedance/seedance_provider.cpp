#include "seedance/seedance_provider.h"

#include "seedance/seedance_wire.h"

namespace reelq::providers::seedance {

SeedanceProvider::SeedanceProvider(AccountSpec account, std::string api_key, http::ClientPtr client,
                                   ClockPtr clock, AdapterOptions options)
    : HttpAdapter(std::move(account), std::move(client), std::move(clock), options, &ClassifyError),
      api_key_(std::move(api_key)) {}

http::Headers SeedanceProvider::AuthHeaders() { return {{"authorization", "Bearer " + api_key_}}; }

std::string SeedanceProvider::TaskPath(const std::string& task_id) const {
  return std::string(kTasksPath) + "/" + wire::EscapePathSegment(task_id);
}

awaitable<Result<std::string>> SeedanceProvider::Create(GenerationRequest request) {
  auto body = BuildCreateBody(request);
  if (!body) co_return std::unexpected(body.error());
  co_return co_await CallAndParse("POST", std::string(kTasksPath), std::move(*body),
                                  &ParseCreateResponse, "application/json", LabelHeaders(request));
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
  bool searched_back_to_send = false;  // the pages reached the send time, or the list's end
  int pages = 0;
  for (int page_num = 1; page_num <= kMaxListPages; ++page_num) {
    std::string path = std::string(kTasksPath) + "?page_num=" + std::to_string(page_num) +
                       "&page_size=" + std::to_string(options_.list_page_size) +
                       "&filter.model=" + wire::EscapePathSegment(request.upstream_model);
    auto page = co_await CallAndParse("GET", std::move(path), "", &ParseListResponse);
    if (!page) co_return std::unexpected(page.error());
    ++pages;
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
      searched_back_to_send = true;
      break;
    }
  }
  if (!searched_back_to_send && ids.empty()) {
    // Newer tasks filled every page read: the lost one may lie further back, so "none found"
    // would be a guess, and the caller would pay for a second create on it. (A match needs no
    // more pages: the seed is the attempt's own.)
    co_return MakeError(ErrorCategory::kRetryable,
                        "seedance lost-create lookup incomplete: " + std::to_string(pages) +
                            " pages of " + std::to_string(options_.list_page_size) + " " +
                            request.upstream_model +
                            " tasks searched (newest first) without reaching the create's send "
                            "time; the account made too many tasks since then to tell whether "
                            "it made one");
  }
  co_return ids;
}

awaitable<Result<TaskStatus>> SeedanceProvider::Poll(std::string task_id) {
  co_return co_await CallAndParse("GET", TaskPath(task_id), "", &ParsePollResponse);
}

awaitable<Result<void>> SeedanceProvider::Download(std::string task_id, TaskStatus status,
                                                   ByteSink& sink) {
  // content.video_url is a pre-signed object-store URL: no API key goes with it.
  co_return co_await StreamTo(std::move(task_id), status.video_url, {}, 3, sink);
}

awaitable<Result<void>> SeedanceProvider::Cancel(std::string task_id) {
  co_return co_await CallAndParse("DELETE", TaskPath(task_id), "", &ParseCancelResponse);
}

}  // namespace reelq::providers::seedance
