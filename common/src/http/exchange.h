#pragma once

#include <optional>
#include <string>

#include "connection.h"
#include "reelq/common/http_client.h"

namespace reelq::http::internal {

struct ExchangeInput {
  Url url;
  std::string method;
  Headers headers;
  std::string body;
  Deadline deadline;
  std::chrono::milliseconds timeout{0};
  ByteSink* sink = nullptr;  // stream a 2xx body here; otherwise read it whole
  size_t max_body_bytes = 0;
  bool accept_partial_body = false;  // Request::accept_partial_body
};

struct ExchangeOutcome {
  Response response;
  bool keep_alive = false;
  // On failure: the classified error, and enough to tell a stale pooled connection (failed
  // before any byte of the response arrived) from a real failure.
  std::optional<Error> error;
  Step failed_step = Step::kWrite;
  boost::system::error_code ec;
  bool got_response_bytes = false;
};

// One request/response on an open connection, every step bounded by the input's deadline.
awaitable<ExchangeOutcome> Exchange(Connection& connection, ExchangeInput input);

}  // namespace reelq::http::internal
