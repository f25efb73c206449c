#pragma once

// What the four adapters share: the one path of an API call (send, then the provider's wire
// function parses the answer or classifies its error), and streaming a finished clip into a
// sink, over http::Client with the account's base URL and bounded timeouts.
#include <chrono>
#include <functional>
#include <string>

#include "reelq/common/clock.h"
#include "reelq/common/http_client.h"
#include "reelq/providers/catalogue.h"
#include "reelq/providers/factory.h"
#include "src/wire_common.h"

namespace reelq::providers {

class HttpAdapter {
 protected:
  // A provider's one error table, as its wire code applies it to an answer
  // (`<name>::ClassifyError`).
  using ErrorClassifier = Error (*)(wire::Op op, int http_status, std::string_view body,
                                    std::optional<std::string> retry_after, int64_t now_ms);
  // A provider's wire function for one call's answer: parses a 2xx body, or classifies the
  // error (`<name>::ParsePollResponse`, ...). Pure: the fuzzers call the same functions.
  template <class T>
  using WireParser = Result<T> (*)(int http_status, std::string_view body,
                                   std::optional<std::string> retry_after, int64_t now_ms);
  // For the rare call that needs more of the answer than status, body and Retry-After.
  template <class T>
  using ResponseParser = std::function<Result<T>(const http::Response&, int64_t now_ms)>;

  HttpAdapter(AccountSpec account, http::ClientPtr client, ClockPtr clock, AdapterOptions options,
              ErrorClassifier classify)
      : account_(std::move(account)),
        client_(std::move(client)),
        clock_(std::move(clock)),
        options_(options),
        classify_(classify) {}
  virtual ~HttpAdapter() = default;

  // The account's credentials, as headers for an API call.
  virtual http::Headers AuthHeaders() = 0;

  // Every API call of every adapter: `method` on base_url + `path` with AuthHeaders() and the
  // JSON `body` (none when empty), within api_timeout. A transport failure comes back as the
  // HTTP client made it (maybe_delivered from the write on); an answer, whatever its status,
  // goes to the provider's `parse`. (Plain string parameters, not a request struct: g++ 12
  // copies an aggregate coroutine argument bitwise, leaving its strings pointing into the
  // caller's frame.)
  // `content_type` is the body's (JSON unless the provider wants a multipart upload); `extra`
  // headers go with AuthHeaders().
  template <class T>
  awaitable<Result<T>> CallAndParse(std::string method, std::string path, std::string body,
                                    ResponseParser<T> parse,
                                    std::string content_type = "application/json",
                                    http::Headers extra = {}) {
    auto response = co_await Send(std::move(method), std::move(path), std::move(body),
                                  std::move(content_type), std::move(extra));
    if (!response) co_return std::unexpected(response.error());
    co_return parse(*response, NowMs());
  }
  template <class T>
  awaitable<Result<T>> CallAndParse(std::string method, std::string path, std::string body,
                                    WireParser<T> parse,
                                    std::string content_type = "application/json",
                                    http::Headers extra = {}) {
    return CallAndParse<T>(std::move(method), std::move(path), std::move(body),
                           ResponseParser<T>([parse](const http::Response& r, int64_t now_ms) {
                             return parse(r.status, r.body, r.Header("retry-after"), now_ms);
                           }),
                           std::move(content_type), std::move(extra));
  }

  // The create's labels for the simulator's visible clips (x-reelq-job, x-reelq-shot): real
  // providers ignore headers they do not know, and these carry nothing secret.
  static http::Headers LabelHeaders(const GenerationRequest& request);

  // Streams task `task_id`'s clip from `url` (absolute) into `sink`, following up to
  // `max_redirects` redirects, within download_timeout; a non-2xx final answer goes through the
  // provider's table as a download. No url (a poll that said "succeeded" without one) is
  // kInternal.
  awaitable<Result<void>> StreamTo(std::string task_id, std::string url, http::Headers headers,
                                   int max_redirects, ByteSink& sink);

  int64_t NowMs() const { return clock_->NowMs(); }

  AccountSpec account_;
  http::ClientPtr client_;
  ClockPtr clock_;
  AdapterOptions options_;

 private:
  awaitable<Result<http::Response>> Send(std::string method, std::string path, std::string body,
                                         std::string content_type, http::Headers extra);

  ErrorClassifier classify_;
};

}  // namespace reelq::providers
