#pragma once

// What the four adapters share: calling the provider's API over http::Client with the
// account's base URL, bounded timeouts, and streaming a finished clip into a sink.
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
  HttpAdapter(AccountSpec account, http::ClientPtr client, ClockPtr clock, AdapterOptions options)
      : account_(std::move(account)),
        client_(std::move(client)),
        clock_(std::move(clock)),
        options_(options) {}

  // An API call to base_url + path with a JSON body (when not empty) and the given auth headers.
  awaitable<Result<http::Response>> Call(std::string method, std::string path, std::string body,
                                         http::Headers auth_headers);

  // Classifies a non-2xx download answer.
  using DownloadClassifier = std::function<Error(int status, const http::Response&)>;

  // Streams `url` (absolute) into `sink`, following up to `max_redirects` redirects; a non-2xx
  // final answer goes through `classify`.
  awaitable<Result<void>> StreamTo(std::string url, http::Headers headers, int max_redirects,
                                   ByteSink& sink, DownloadClassifier classify);

  int64_t NowMs() const { return clock_->NowMs(); }

  AccountSpec account_;
  http::ClientPtr client_;
  ClockPtr clock_;
  AdapterOptions options_;
};

}  // namespace reelq::providers
