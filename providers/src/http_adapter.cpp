#include "src/http_adapter.h"

#include <optional>
#include <span>

#include "reelq/common/utf8.h"

namespace reelq::providers {

namespace {

// A refused body is still read to its end (the connection stays reusable, and the message can
// name its content type) up to this much; past it the download stops.
constexpr uint64_t kRefusedBodyBytes = 64 * 1024;

// Holds a download's first bytes until they tell whether the body can be a video at all
// (wire::NotAVideo), then passes everything on to the clip's sink. A 2xx body that is clearly
// not one (an empty answer, an HTML or JSON page from a CDN or a proxy) never reaches it, so it
// is neither stored as <job>.mp4 nor counted as the job's clip.
class ClipCheck final : public ByteSink {
 public:
  ClipCheck(ByteSink& sink, std::string what) : sink_(sink), what_(std::move(what)) {}

  awaitable<Result<void>> Write(std::span<const std::byte> chunk) override {
    bytes_ += chunk.size();
    if (passing_) co_return co_await sink_.Write(chunk);
    if (refused_) {
      if (bytes_ > kRefusedBodyBytes) {
        co_return MakeError(ErrorCategory::kRetryable,
                            what_ + " is not a video (" + *refused_ + ", starting " +
                                QuoteForMessage(head_, 48) + ", and over " +
                                std::to_string(kRefusedBodyBytes / 1024) +
                                " KiB of it); nothing was stored");
      }
      co_return Result<void>{};
    }
    const size_t take = std::min(chunk.size(), wire::kClipSniffBytes - head_.size());
    head_.append(reinterpret_cast<const char*>(chunk.data()), take);
    if (head_.size() < wire::kClipSniffBytes) co_return Result<void>{};
    const auto rest = chunk.subspan(take);
    co_return co_await Decide(rest);
  }

  // The body has ended: decides on one shorter than kClipSniffBytes (passing it on, or not).
  awaitable<Result<void>> End() {
    if (passing_ || refused_) co_return Result<void>{};
    const std::span<const std::byte> nothing;
    co_return co_await Decide(nothing);
  }

  // Why the body is not a video, once decided so.
  const std::optional<std::string>& refused() const { return refused_; }
  const std::string& head() const { return head_; }
  uint64_t bytes() const { return bytes_; }

 private:
  awaitable<Result<void>> Decide(std::span<const std::byte> rest) {
    refused_ = wire::NotAVideo(head_);
    if (refused_) co_return Result<void>{};
    passing_ = true;
    const auto held = std::as_bytes(std::span<const char>(head_.data(), head_.size()));
    auto written = co_await sink_.Write(held);
    if (!written || rest.empty()) co_return written;
    co_return co_await sink_.Write(rest);
  }

  ByteSink& sink_;
  const std::string what_;  // "kling download: task t-1's answer", for messages
  std::string head_;        // the first kClipSniffBytes
  uint64_t bytes_ = 0;
  bool passing_ = false;
  std::optional<std::string> refused_;
};

}  // namespace

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
  ClipCheck check(sink, account_.provider + " download: task " + task_id + "'s answer");
  auto response = co_await client_->Stream(std::move(request), check);
  if (!response) co_return std::unexpected(response.error());
  if (response->status < 200 || response->status >= 300) {
    co_return std::unexpected(classify_(wire::Op::kDownload, response->status, response->body,
                                        response->Header("retry-after"), NowMs()));
  }
  auto ended = co_await check.End();
  if (!ended) co_return ended;
  if (check.refused()) {
    // Retryable: the task's clip is still upstream, and the attempt that fails with this keeps
    // the task (the worker's FailAfterGeneration), so a later try fetches it again without
    // paying for another generation.
    const std::string type = response->Header("content-type").value_or("none");
    std::string message = account_.provider + " download: task " + task_id + "'s answer (HTTP " +
                          std::to_string(response->status) + ", content-type " +
                          QuoteForMessage(type, 64) + ", " + std::to_string(check.bytes()) +
                          " bytes) is not a video: " + *check.refused();
    if (!check.head().empty()) message += ", starting " + QuoteForMessage(check.head(), 48);
    message += "; nothing was stored";
    co_return MakeError(ErrorCategory::kRetryable, std::move(message));
  }
  co_return Result<void>{};
}

}  // namespace reelq::providers
