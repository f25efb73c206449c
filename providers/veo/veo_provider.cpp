#include "veo/veo_provider.h"

#include "veo/veo_wire.h"

namespace reelq::providers::veo {

using wire::Op;

namespace {

// "https://host:port" of a URL (scheme + authority), for the same-origin check.
std::string OriginOf(std::string_view url) {
  size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return "";
  size_t path = url.find_first_of("/?#", scheme_end + 3);
  return std::string(url.substr(0, path));
}

}  // namespace

VeoProvider::VeoProvider(AccountSpec account, std::string api_key, http::ClientPtr client,
                         ClockPtr clock, AdapterOptions options)
    : HttpAdapter(std::move(account), std::move(client), std::move(clock), options),
      api_key_(std::move(api_key)) {}

awaitable<Result<std::string>> VeoProvider::Create(GenerationRequest request) {
  auto body = BuildCreateBody(request);
  if (!body) co_return std::unexpected(body.error());
  auto response =
      co_await Call("POST", CreatePath(request.upstream_model), std::move(*body), Auth());
  if (!response) co_return std::unexpected(response.error());
  co_return ParseCreateResponse(response->status, response->body, response->Header("retry-after"),
                                NowMs());
}

awaitable<Result<std::vector<std::string>>> VeoProvider::FindLostCreate(GenerationRequest,
                                                                        int64_t) {
  // Operations have server-chosen names only, and no list of them is documented
  // (shared/providers.md §3): a create whose answer was lost cannot be found again.
  co_return MakeError(ErrorCategory::kInvalidRequest,
                      "veo cannot look up a create whose answer was lost (no list or "
                      "client-chosen id in the API)");
}

awaitable<Result<TaskStatus>> VeoProvider::Poll(std::string task_id) {
  auto path = OperationPath(task_id);
  if (!path) co_return std::unexpected(path.error());
  auto response = co_await Call("GET", *path, "", Auth());
  if (!response) co_return std::unexpected(response.error());
  co_return ParsePollResponse(response->status, response->body, response->Header("retry-after"),
                              NowMs());
}

awaitable<Result<void>> VeoProvider::Download(std::string task_id, TaskStatus status,
                                              ByteSink& sink) {
  if (status.video_url.empty()) {
    co_return MakeError(ErrorCategory::kInternal,
                        "veo download: operation " + task_id + " has no video uri");
  }
  // The file URI needs the API key, but only on the API's own origin: the key is never sent
  // to another host (the HTTP client also drops it on a cross-origin redirect).
  http::Headers headers;
  if (OriginOf(status.video_url) == OriginOf(account_.base_url)) headers = Auth();
  auto result = co_await StreamTo(status.video_url, std::move(headers), kMaxDownloadRedirects, sink,
                                  [this](int http_status, const http::Response& r) {
                                    return ClassifyError(Op::kDownload, http_status, r.body,
                                                         r.Header("retry-after"), NowMs());
                                  });
  co_return result;
}

awaitable<Result<void>> VeoProvider::Cancel(std::string task_id) {
  co_return MakeError(ErrorCategory::kInvalidRequest,
                      "veo has no cancel for generation operations (" + task_id + ")");
}

}  // namespace reelq::providers::veo
