#include "connection.h"

#include <sys/socket.h>

#include <cerrno>

#include <openssl/ssl.h>

namespace reelq::http::internal {
namespace {

bool IsIpLiteral(const std::string& host) {
  boost::system::error_code ec;
  boost::asio::ip::make_address(host, ec);
  return !ec;
}

Error Fail(Step step, const Url& url, boost::system::error_code ec,
           std::chrono::milliseconds timeout) {
  return MapTransportError(
      TransportFailure{.step = step, .authority = url.Authority(), .ec = ec, .timeout = timeout});
}

}  // namespace

awaitable<Result<std::unique_ptr<Connection>>> Connection::Open(Url url, ssl::context& tls_context,
                                                                bool verify_tls, Deadline deadline,
                                                                std::chrono::milliseconds timeout,
                                                                const AddressFilter* refuse) {
  auto executor = co_await asio::this_coro::executor;
  auto connection = std::make_unique<Connection>();

  // The resolver has no deadline of its own: a timer cancels it. Both handlers share the
  // resolver's ownership so neither can outlive it.
  auto resolver = std::make_shared<asio::ip::tcp::resolver>(executor);
  auto timer = std::make_shared<asio::steady_timer>(executor, deadline);
  auto fired = std::make_shared<bool>(false);
  timer->async_wait([resolver, fired](boost::system::error_code ec) {
    if (!ec) {
      *fired = true;
      resolver->cancel();
    }
  });
  auto [resolve_ec, endpoints] =
      co_await resolver->async_resolve(url.host, std::to_string(url.port), use_nothrow_awaitable);
  timer->cancel();
  if (*fired) resolve_ec = beast::error::timeout;
  if (resolve_ec) co_return std::unexpected(Fail(Step::kResolve, url, resolve_ec, timeout));
  if (refuse && *refuse) {
    for (const auto& entry : endpoints) {
      const auto address = entry.endpoint().address();
      if (auto reason = (*refuse)(url.host, address)) {
        co_return MakeError(
            ErrorCategory::kInvalidRequest,
            url.host + " resolves to " + address.to_string() + ", " + *reason + ": refused");
      }
    }
  }

  beast::tcp_stream* tcp = nullptr;
  if (url.tls) {
    connection->tls_.emplace(executor, tls_context);
    tcp = &beast::get_lowest_layer(*connection->tls_);
  } else {
    connection->plain_.emplace(executor);
    tcp = &*connection->plain_;
  }
  tcp->expires_at(deadline);
  auto [connect_ec, endpoint] = co_await tcp->async_connect(endpoints, use_nothrow_awaitable);
  if (connect_ec) co_return std::unexpected(Fail(Step::kConnect, url, connect_ec, timeout));
  tcp->socket().set_option(asio::ip::tcp::no_delay(true));

  if (url.tls) {
    auto& stream = *connection->tls_;
    // SNI: servers hosting several names pick the certificate by it. Not sent for IP
    // literals (RFC 6066 forbids it).
    if (!IsIpLiteral(url.host) &&
        !SSL_set_tlsext_host_name(stream.native_handle(), url.host.c_str())) {
      boost::system::error_code ec(static_cast<int>(::ERR_get_error()),
                                   asio::error::get_ssl_category());
      co_return std::unexpected(Fail(Step::kTlsHandshake, url, ec, timeout));
    }
    if (verify_tls) {
      stream.set_verify_mode(ssl::verify_peer);
      stream.set_verify_callback(ssl::host_name_verification(url.host));
    } else {
      stream.set_verify_mode(ssl::verify_none);
    }
    tcp->expires_at(deadline);
    auto [hs_ec] = co_await stream.async_handshake(ssl::stream_base::client, use_nothrow_awaitable);
    if (hs_ec) co_return std::unexpected(Fail(Step::kTlsHandshake, url, hs_ec, timeout));
  }
  co_return connection;
}

bool Connection::LooksReusable() {
  auto& socket = Lowest().socket();
  if (!socket.is_open()) return false;
  // An idle HTTP/1.1 connection has nothing to read. Readable means the peer closed it (EOF),
  // reset it, or sent something unsolicited (a TLS close_notify): either way, do not reuse.
  char byte;
  ssize_t n = ::recv(socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return buffer_.size() == 0;
  return false;
}

void Connection::Close() {
  // No TLS close_notify on purpose: HTTP/1.1 framing (Content-Length / chunked) already told
  // both sides where each message ends, so a missing close_notify cannot truncate anything
  // either side accepts. Servers treat the resulting truncated shutdown as the harmless thing
  // it is, as we do when a server closes on us.
  boost::system::error_code ignored;
  Lowest().socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  Lowest().socket().close(ignored);
}

std::unique_ptr<Connection> ConnectionPool::Take(const std::string& origin) {
  std::unique_ptr<Connection> found;
  std::vector<std::unique_ptr<Connection>> stale;
  {
    std::lock_guard lock(mutex_);
    auto it = idle_.find(origin);
    if (it == idle_.end()) return nullptr;
    auto now = std::chrono::steady_clock::now();
    auto& queue = it->second;
    while (!queue.empty()) {
      // Most recently used first: it is the one least likely to have been closed.
      auto candidate = std::move(queue.back());
      queue.pop_back();
      if (now - candidate->idle_since < idle_timeout_ && candidate->LooksReusable()) {
        found = std::move(candidate);
        break;
      }
      stale.push_back(std::move(candidate));
    }
    if (queue.empty()) idle_.erase(it);
  }
  for (auto& c : stale) c->Close();
  if (found) found->reused = true;
  return found;
}

void ConnectionPool::Put(const std::string& origin, std::unique_ptr<Connection> connection) {
  std::unique_ptr<Connection> evicted;
  connection->idle_since = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(mutex_);
    auto& queue = idle_[origin];
    queue.push_back(std::move(connection));
    if (queue.size() > max_idle_) {
      evicted = std::move(queue.front());
      queue.pop_front();
    }
  }
  if (evicted) evicted->Close();
}

size_t ConnectionPool::IdleCount() {
  std::lock_guard lock(mutex_);
  size_t n = 0;
  for (auto& [origin, queue] : idle_) n += queue.size();
  return n;
}

}  // namespace reelq::http::internal
