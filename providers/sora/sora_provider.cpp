#include "sora/sora_provider.h"

#include "sora/sora_wire.h"

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

awaitable<Result<std::optional<std::string>>> SoraProvider::FindByIdempotencyId(std::string) {
  co_return std::optional<std::string>();  // no client-chosen ids in the Videos API
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
