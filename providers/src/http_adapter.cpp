#include "src/http_adapter.h"

namespace reelq::providers {

http::Headers HttpAdapter::LabelHeaders(const GenerationRequest& request) {
  http::Headers headers;
  if (!request.job_id.empty()) headers.emplace_back("x-reelq-job", request.job_id);
  if (request.shot_number > 0) {
    headers.emplace_back("x-reelq-shot", std::to_string(request.shot_number));
  }
  return headers;
}

awaitable<Result<http::Response>> HttpAdapter::Send(std::string method, std::string path,
                                                    std::string body, std::string content_type,
                                                    http::Headers extra) {
  http::Request request;
  request.method = std::move(method);
  request.url = wire::JoinUrl(account_.base_url, path);
  request.headers = AuthHeaders();
  request.headers.emplace_back("accept", "application/json");
  if (!body.empty()) request.headers.emplace_back("content-type", std::move(content_type));
  for (auto& header : extra) request.headers.push_back(std::move(header));
  request.body = std::move(body);
  request.timeout = options_.api_timeout;
  auto response = co_await client_->Send(std::move(request));
  co_return response;
}

awaitable<Result<void>> HttpAdapter::StreamTo(std::string task_id, std::string url,
                                              http::Headers headers, int max_redirects,
                                              ByteSink& sink) {
  if (url.empty()) {
    co_return MakeError(ErrorCategory::kInternal,
                        account_.provider + " download: task " + task_id + " has no video url");
  }
  http::Request request;
  request.url = std::move(url);
  request.headers = std::move(headers);
  request.timeout = options_.download_timeout;
  request.max_redirects = max_redirects;
  auto response = co_await client_->Stream(std::move(request), sink);
  if (!response) co_return std::unexpected(response.error());
  if (response->status < 200 || response->status >= 300) {
    co_return std::unexpected(classify_(wire::Op::kDownload, response->status, response->body,
                                        response->Header("retry-after"), NowMs()));
  }
  co_return Result<void>{};
}

}  // namespace reelq::providers
