#include "kling/kling_provider.h"

#include "kling/kling_wire.h"

namespace reelq::providers::kling {

using wire::Op;

KlingProvider::KlingProvider(AccountSpec account, std::string access_key, std::string secret_key,
                             http::ClientPtr client, ClockPtr clock, AdapterOptions options)
    : HttpAdapter(std::move(account), std::move(client), clock, options),
      signer_(std::move(access_key), std::move(secret_key), clock) {}

http::Headers KlingProvider::Auth() { return {{"authorization", "Bearer " + signer_.Token()}}; }

awaitable<Result<std::string>> KlingProvider::Create(GenerationRequest request) {
  auto body = BuildCreateBody(request);
  if (!body) co_return std::unexpected(body.error());
  auto response = co_await Call("POST", std::string(kCreatePath), std::move(*body), Auth());
  if (!response) co_return std::unexpected(response.error());
  co_return ParseCreateResponse(response->status, response->body, response->Header("retry-after"),
                                NowMs());
}

awaitable<Result<std::optional<std::string>>> KlingProvider::FindByIdempotencyId(
    std::string idempotency_id) {
  // GET /v1/videos/text2video/{id} answers for a task id or an external_task_id.
  auto response = co_await Call(
      "GET", std::string(kCreatePath) + "/" + wire::EscapePathSegment(idempotency_id), "", Auth());
  if (!response) co_return std::unexpected(response.error());
  auto status =
      ParsePollResponse(response->status, response->body, response->Header("retry-after"), NowMs());
  if (!status) {
    if (status.error().category == ErrorCategory::kNotFound) {
      co_return std::optional<std::string>();
    }
    co_return std::unexpected(status.error());
  }
  auto parsed = wire::ParseObject(response->body, "kling find");
  if (!parsed) co_return std::unexpected(parsed.error());
  auto task_id = wire::RequireString(*parsed, "data.task_id", "kling find");
  if (!task_id) co_return std::unexpected(task_id.error());
  co_return std::optional<std::string>(*task_id);
}

awaitable<Result<std::vector<std::string>>> KlingProvider::FindLostCreate(GenerationRequest request,
                                                                          int64_t /*sent_at_ms*/) {
  // The create carried the attempt id as external_task_id: an exact, unambiguous lookup.
  std::vector<std::string> ids;
  if (request.idempotency_id.empty()) co_return ids;
  auto found = co_await FindByIdempotencyId(request.idempotency_id);
  if (!found) co_return std::unexpected(found.error());
  if (found->has_value()) ids.push_back(**found);
  co_return ids;
}

awaitable<Result<TaskStatus>> KlingProvider::Poll(std::string task_id) {
  auto response = co_await Call(
      "GET", std::string(kCreatePath) + "/" + wire::EscapePathSegment(task_id), "", Auth());
  if (!response) co_return std::unexpected(response.error());
  co_return ParsePollResponse(response->status, response->body, response->Header("retry-after"),
                              NowMs());
}

awaitable<Result<void>> KlingProvider::Download(std::string task_id, TaskStatus status,
                                                ByteSink& sink) {
  if (status.video_url.empty()) {
    co_return MakeError(ErrorCategory::kInternal,
                        "kling download: task " + task_id + " has no video url");
  }
  // The result URL is a pre-signed CDN link: no credentials go with it.
  auto result = co_await StreamTo(
      status.video_url, {}, 3, sink, [this](int http_status, const http::Response& r) {
        Error e =
            ClassifyError(Op::kDownload, http_status, r.body, r.Header("retry-after"), NowMs());
        // An expired or missing result file will not come back by retrying.
        if (http_status == 403 || http_status == 404 || http_status == 410) {
          e.category = ErrorCategory::kNotFound;
        }
        return e;
      });
  co_return result;
}

awaitable<Result<void>> KlingProvider::Cancel(std::string task_id) {
  co_return MakeError(ErrorCategory::kInvalidRequest,
                      "kling has no cancel API (task " + task_id + " runs to completion)");
}

}  // namespace reelq::providers::kling
