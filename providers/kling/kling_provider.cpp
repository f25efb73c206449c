#include "kling/kling_provider.h"

#include "kling/kling_wire.h"

namespace reelq::providers::kling {

KlingProvider::KlingProvider(AccountSpec account, std::string access_key, std::string secret_key,
                             http::ClientPtr client, ClockPtr clock, AdapterOptions options)
    : HttpAdapter(std::move(account), std::move(client), clock, options, &ClassifyError),
      signer_(std::move(access_key), std::move(secret_key), clock) {}

http::Headers KlingProvider::AuthHeaders() {
  return {{"authorization", "Bearer " + signer_.Token()}};
}

awaitable<Result<std::string>> KlingProvider::Create(GenerationRequest request) {
  auto body = BuildCreateBody(request);
  if (!body) co_return std::unexpected(body.error());
  const bool image2video = UsesImage2Video(request);
  auto created =
      co_await CallAndParse("POST", std::string(CreatePathFor(request)), std::move(*body),
                            &ParseCreateResponse, "application/json", LabelHeaders(request));
  if (created && image2video) *created = std::string(kImage2VideoIdPrefix) + *created;
  co_return created;
}

awaitable<Result<std::optional<std::string>>> KlingProvider::FindByIdempotencyId(
    std::string idempotency_id, bool image2video) {
  // GET /v1/videos/{text2video|image2video}/{id} answers for a task id or an external_task_id.
  auto found = co_await CallAndParse("GET",
                                     std::string(image2video ? kImage2VideoPath : kCreatePath) +
                                         "/" + wire::EscapePathSegment(idempotency_id),
                                     "", &ParseFindResponse);
  if (found && image2video && found->has_value()) {
    **found = std::string(kImage2VideoIdPrefix) + **found;
  }
  co_return found;
}

awaitable<Result<std::vector<std::string>>> KlingProvider::FindLostCreate(GenerationRequest request,
                                                                          int64_t /*sent_at_ms*/) {
  // The create carried the attempt id as external_task_id: an exact, unambiguous lookup.
  std::vector<std::string> ids;
  if (request.idempotency_id.empty()) co_return ids;
  auto found = co_await FindByIdempotencyId(request.idempotency_id, UsesImage2Video(request));
  if (!found) co_return std::unexpected(found.error());
  if (found->has_value()) ids.push_back(**found);
  co_return ids;
}

awaitable<Result<TaskStatus>> KlingProvider::Poll(std::string task_id) {
  auto [path, id] = TaskPathAndId(task_id);
  co_return co_await CallAndParse("GET", std::string(path) + "/" + wire::EscapePathSegment(id), "",
                                  &ParsePollResponse);
}

awaitable<Result<void>> KlingProvider::Download(std::string task_id, TaskStatus status,
                                                ByteSink& sink) {
  // The result URL is a pre-signed CDN link: no credentials go with it.
  co_return co_await StreamTo(std::move(task_id), status.video_url, {}, 3, sink);
}

awaitable<Result<void>> KlingProvider::Cancel(std::string task_id) {
  co_return MakeError(ErrorCategory::kInvalidRequest,
                      "kling has no cancel API (task " + task_id + " runs to completion)");
}

}  // namespace reelq::providers::kling
