#include "veo/veo_provider.h"

#include "veo/veo_wire.h"

namespace reelq::providers::veo {

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
    : HttpAdapter(std::move(account), std::move(client), std::move(clock), options, &ClassifyError),
      api_key_(std::move(api_key)) {}

http::Headers VeoProvider::AuthHeaders() { return {{"x-goog-api-key", api_key_}}; }

awaitable<Result<std::string>> VeoProvider::Create(GenerationRequest request) {
  auto body = BuildCreateBody(request);
  if (!body) co_return std::unexpected(body.error());
  co_return co_await CallAndParse("POST", CreatePath(request.upstream_model), std::move(*body),
                                  &ParseCreateResponse, "application/json", LabelHeaders(request));
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
  co_return co_await CallAndParse("GET", std::move(*path), "", &ParsePollResponse);
}

awaitable<Result<void>> VeoProvider::Download(std::string task_id, TaskStatus status,
                                              ByteSink& sink) {
  // The file URI needs the API key, but only on the API's own origin: the key is never sent
  // to another host (the HTTP client also drops it on a cross-origin redirect).
  http::Headers headers;
  if (OriginOf(status.video_url) == OriginOf(account_.base_url)) headers = AuthHeaders();
  co_return co_await StreamTo(std::move(task_id), status.video_url, std::move(headers),
                              kMaxDownloadRedirects, sink);
}

awaitable<Result<void>> VeoProvider::Cancel(std::string task_id) {
  co_return MakeError(ErrorCategory::kInvalidRequest,
                      "veo has no cancel for generation operations (" + task_id + ")");
}

}  // namespace reelq::providers::veo
