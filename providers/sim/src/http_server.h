#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "reelq/common/asio.h"

namespace reelq::sim {

namespace http = boost::beast::http;

struct HttpRequest {
  http::verb method = http::verb::unknown;
  std::string path;                          // percent-decoded, without the query
  std::map<std::string, std::string> query;  // percent-decoded
  std::string body;
  std::string host;  // Host header, used to build absolute media URLs
  const http::request<http::string_body>* raw = nullptr;

  std::string Header(std::string_view name) const;
  bool HasQuery(const std::string& name) const { return query.contains(name); }
};

struct HttpResponse {
  // How the body goes on the wire. The broken modes exist to test clients' error handling.
  enum class Mode {
    kNormal,
    kTruncate,  // advertise the full length, send half the body, close the connection
    kFile,      // stream `file` with Content-Length, in chunks
    kFileHang,  // stream part of `file`, then stall until the client goes away
    kDrop,      // close the connection without answering (after `delay`)
  };
  unsigned status = 200;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  Mode mode = Mode::kNormal;
  std::filesystem::path file;
  // Wait this long before answering (the request's effects have already happened).
  std::chrono::milliseconds delay{0};

  static HttpResponse Json(unsigned status, std::string body) {
    HttpResponse r;
    r.status = status;
    r.body = std::move(body);
    return r;
  }
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

// HTTP/1.1 server with keep-alive; one coroutine per connection on the caller's io_context.
class HttpServer {
 public:
  // `on_accept` (optional) is called once per accepted connection: the simulator counts them so
  // a test or bench can see whether a client reuses its connections.
  HttpServer(asio::io_context& io, HttpHandler handler, std::function<void()> on_accept = {});
  // Binds and starts accepting; returns the bound port (0 in `port` picks one).
  uint16_t Listen(const std::string& host, uint16_t port);
  void Stop();

 private:
  awaitable<void> AcceptLoop();
  awaitable<void> Session(asio::ip::tcp::socket socket);

  asio::io_context& io_;
  HttpHandler handler_;
  std::function<void()> on_accept_;
  asio::ip::tcp::acceptor acceptor_;
};

std::string PercentDecode(std::string_view in, bool plus_is_space);

}  // namespace reelq::sim
