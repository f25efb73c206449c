#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>

#include "reelq/common/asio.h"
#include "reelq/common/error.h"
#include "transport_error.h"
#include "url.h"

namespace reelq::http::internal {

namespace beast = boost::beast;
namespace ssl = boost::asio::ssl;
using Deadline = std::chrono::steady_clock::time_point;

// ClientOptions::refuse_address.
using AddressFilter =
    std::function<std::optional<std::string>(std::string_view host, const asio::ip::address&)>;

// One keep-alive connection to one origin: a TCP stream, wrapped in TLS for https. Used by one
// exchange at a time; the pool hands it from one to the next.
class Connection {
 public:
  using TlsStream = beast::ssl_stream<beast::tcp_stream>;

  // Resolves, connects and (for https) handshakes with SNI and certificate + host name
  // verification, every step bounded by `deadline`.
  static awaitable<Result<std::unique_ptr<Connection>>> Open(Url url, ssl::context& tls_context,
                                                             bool verify_tls, Deadline deadline,
                                                             std::chrono::milliseconds timeout,
                                                             const AddressFilter* refuse = nullptr);

  beast::tcp_stream& Lowest() { return tls_ ? beast::get_lowest_layer(*tls_) : *plain_; }
  beast::tcp_stream* plain() { return plain_ ? &*plain_ : nullptr; }
  TlsStream* tls() { return tls_ ? &*tls_ : nullptr; }
  beast::flat_buffer& buffer() { return buffer_; }

  // True when the peer has not closed the idle connection (nothing readable, no EOF). A
  // keep-alive server may close an idle connection at any time; checking before reuse keeps
  // us from sending a request (perhaps a paid create) into a dead socket.
  bool LooksReusable();
  void Close();

  bool reused = false;
  std::chrono::steady_clock::time_point idle_since;

 private:
  std::optional<beast::tcp_stream> plain_;
  std::optional<TlsStream> tls_;
  beast::flat_buffer buffer_;
};

// Idle keep-alive connections per origin, bounded per origin and by age.
class ConnectionPool {
 public:
  ConnectionPool(size_t max_idle_per_origin, std::chrono::milliseconds idle_timeout)
      : max_idle_(max_idle_per_origin), idle_timeout_(idle_timeout) {}

  std::unique_ptr<Connection> Take(const std::string& origin);
  void Put(const std::string& origin, std::unique_ptr<Connection> connection);
  size_t IdleCount();

 private:
  std::mutex mutex_;
  size_t max_idle_;
  std::chrono::milliseconds idle_timeout_;
  std::map<std::string, std::deque<std::unique_ptr<Connection>>> idle_;
};

}  // namespace reelq::http::internal
