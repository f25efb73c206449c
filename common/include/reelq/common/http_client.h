#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "reelq/common/asio.h"
#include "reelq/common/byte_sink.h"
#include "reelq/common/error.h"

namespace reelq::http {

// Header names are matched case-insensitively; store them lower-case.
using Headers = std::vector<std::pair<std::string, std::string>>;

struct Request {
  std::string method = "GET";
  std::string url;  // absolute: http://host:port/path?query or https://...
  Headers headers;
  std::string body;
  // Deadline for the whole exchange (connect, TLS, write, read of the head and body).
  std::chrono::milliseconds timeout{30'000};
  int max_redirects = 0;  // follow 301/302/303/307/308 up to this many times
  // For a caller that acts on the status alone (a webhook's answer): once the head has arrived,
  // a body (not streamed to a sink) over max_body_bytes, cut off, or still arriving at the
  // deadline ends the read instead of failing the request, and Response::body_cut_short says
  // why. Off, such a body fails the request, as a download must.
  bool accept_partial_body = false;
};

struct Response {
  int status = 0;
  Headers headers;
  std::string body;       // empty for streamed responses
  std::string final_url;  // after redirects
  // Only with Request::accept_partial_body: why the body stopped short ("response body from
  // host:port exceeds max_body_bytes (65536)", a timeout...); `body` then holds at most
  // max_body_bytes of it.
  std::optional<std::string> body_cut_short;
  // The request went out twice: first on a pooled connection that closed before any answer
  // (taken for one the server had closed while idle), then on a fresh one. The first may have
  // reached the server all the same.
  bool sent_again = false;

  // First header with this (lower-case) name, if any.
  std::optional<std::string> Header(std::string_view lower_name) const;
};

struct ClientOptions {
  // Verify TLS peer certificates and host names (always on in production).
  bool verify_tls = true;
  std::string ca_file;  // empty: the system default store
  size_t max_idle_connections_per_host = 8;
  std::chrono::milliseconds idle_timeout{30'000};
  size_t max_body_bytes = 64 * 1024 * 1024;  // for non-streamed bodies
  // Called with the host and every address it resolves to, before connecting (redirects
  // included): a reason refuses the connection (kInvalidRequest naming the host, the address and
  // the reason). Unset: any address.
  std::function<std::optional<std::string>(std::string_view host, const asio::ip::address&)>
      refuse_address;
};

// An asynchronous HTTP/1.1 client (Boost.Beast, OpenSSL) with keep-alive connection reuse per
// host. Transport failures (refused, reset, timeout, truncated body, TLS failure) come back as
// ErrorCategory::kRetryable with a message naming what failed; HTTP error statuses are not
// errors here: the caller reads `status` and maps it with its own table.
class Client {
 public:
  virtual ~Client() = default;

  // Sends the request and reads the whole body (up to max_body_bytes).
  virtual awaitable<Result<Response>> Send(Request request) = 0;

  // Sends the request; when the final status is 2xx, streams the body into `sink` chunk by
  // chunk (bounded memory) and returns the head with an empty body. A non-2xx body is read
  // whole (bounded) into Response::body instead, so the caller can map the error.
  virtual awaitable<Result<Response>> Stream(Request request, ByteSink& sink) = 0;
};
using ClientPtr = std::shared_ptr<Client>;

ClientPtr MakeClient(asio::any_io_executor executor, ClientOptions options = {});

// The host of an absolute http(s) URL (lower-case, IPv6 without brackets); kInvalidRequest
// naming what is wrong with the URL.
Result<std::string> UrlHost(std::string_view url);

}  // namespace reelq::http
