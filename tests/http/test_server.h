#pragma once

// A tiny HTTP/1.1 server for the client's tests: runs on its own thread on 127.0.0.1:<port 0>,
// records every request, counts accepted connections and can misbehave on purpose (never
// answer, close half-way through a body or stall there).
#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "reelq/common/asio.h"

namespace reelq::testing {

struct ReceivedRequest {
  std::string method;
  std::string target;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-case
  std::string body;
  std::string Header(const std::string& name) const {
    for (auto& [n, v] : headers) {
      if (n == name) return v;
    }
    return "";
  }
  bool HasHeader(const std::string& name) const {
    for (auto& [n, v] : headers) {
      if (n == name) return true;
    }
    return false;
  }
};

struct Reply {
  // kStall: like kTruncate, but the connection then stays open without another byte until the
  // peer gives up (a body still arriving at the client's deadline).
  enum class Mode { kNormal, kNeverAnswer, kTruncate, kStall };
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  Mode mode = Mode::kNormal;
  size_t truncate_at = 0;  // kTruncate, kStall: send the full Content-Length, then this many bytes
  bool chunked = false;
  bool close = false;
};

class TestServer {
 public:
  using Handler = std::function<Reply(const ReceivedRequest&)>;
  explicit TestServer(Handler handler);
  ~TestServer();

  int port() const { return port_; }
  std::string Url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  int accepted_connections() const { return accepted_.load(); }
  std::vector<ReceivedRequest> requests();

 private:
  awaitable<void> AcceptLoop();
  awaitable<void> Serve(asio::ip::tcp::socket socket);

  Handler handler_;
  asio::io_context io_;
  asio::ip::tcp::acceptor acceptor_;
  int port_ = 0;
  std::atomic<int> accepted_{0};
  std::mutex mutex_;
  std::vector<ReceivedRequest> requests_;
  std::thread thread_;
};

}  // namespace reelq::testing
