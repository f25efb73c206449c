#include <algorithm>
#include <charconv>
#include <optional>
#include <set>

#include <spdlog/spdlog.h>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "reelq/common/asio.h"
#include "reelq/common/metrics.h"
#include "reelq/common/spawn.h"

namespace reelq::metrics {

namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using std::chrono::steady_clock;

// Everything a connection coroutine touches, shared so that coroutines still running after the
// MetricsServer is destroyed stay valid. All members except `ready`/`reason` are used only on
// `strand`.
struct MetricsServer::State {
  State(asio::any_io_executor ex, RegistryPtr r, MetricsServerOptions o)
      : strand(asio::make_strand(ex)),
        acceptor(asio::any_io_executor(strand)),
        registry(std::move(r)),
        options(std::move(o)) {}

  asio::strand<asio::any_io_executor> strand;
  tcp::acceptor acceptor;
  RegistryPtr registry;
  MetricsServerOptions options;
  uint16_t port = 0;
  bool stopped = false;
  std::set<beast::tcp_stream*> connections;

  std::atomic<bool> ready{false};
  mutable std::mutex reason_mutex;
  std::string reason = "starting";
};

namespace {

using State = MetricsServer::State;

std::unexpected<Error> ListenError(const std::string& listen, const std::string& why) {
  return MakeError(ErrorCategory::kInvalidRequest, "metrics listen \"" + listen + "\": " + why);
}

// "host:port", "[v6]:port" or ":port" -> an endpoint; host names are resolved once, here.
Result<tcp::endpoint> ParseListen(const std::string& listen, asio::any_io_executor ex) {
  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos) return ListenError(listen, "expected host:port");
  std::string host = listen.substr(0, colon);
  const std::string port_text = listen.substr(colon + 1);
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() ||
      port > 65535) {
    return ListenError(listen, "port must be a number from 0 to 65535");
  }
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty()) host = "0.0.0.0";
  boost::system::error_code addr_ec;
  auto address = asio::ip::make_address(host, addr_ec);
  if (!addr_ec) return tcp::endpoint(address, static_cast<uint16_t>(port));
  tcp::resolver resolver(ex);
  auto results = resolver.resolve(host, port_text, addr_ec);
  if (addr_ec || results.empty()) {
    return ListenError(listen, "cannot resolve host \"" + host + "\": " + addr_ec.message());
  }
  return results.begin()->endpoint();
}

void LogException(std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    spdlog::error("metrics server: {}", ex.what());
  }
}

using Response = http::response<http::string_body>;

Response MakeResponse(http::status status, unsigned version, bool keep_alive, std::string body,
                      std::string_view content_type, bool head) {
  Response res{status, version};
  res.set(http::field::server, "reelq");
  res.set(http::field::content_type, beast::string_view(content_type.data(), content_type.size()));
  res.set(http::field::cache_control, "no-store");
  res.keep_alive(keep_alive);
  if (head) {
    res.content_length(body.size());  // what a GET would carry; HEAD sends no body
  } else {
    res.body() = std::move(body);
    res.prepare_payload();
  }
  return res;
}

constexpr std::string_view kText = "text/plain; charset=utf-8";

Response Route(const State& s, const http::request<http::string_body>& req) {
  std::string_view target(req.target().data(), req.target().size());
  target = target.substr(0, target.find('?'));
  const bool head = req.method() == http::verb::head;
  const bool get = req.method() == http::verb::get || head;
  const unsigned v = req.version();
  const bool ka = req.keep_alive();

  const bool known = target == "/metrics" || target == "/healthz" || target == "/readyz";
  if (!known) return MakeResponse(http::status::not_found, v, ka, "not found\n", kText, head);
  if (!get) {
    Response res = MakeResponse(http::status::method_not_allowed, v, ka,
                                "method not allowed: use GET\n", kText, false);
    res.set(http::field::allow, "GET, HEAD");
    return res;
  }
  if (target == "/metrics") {
    return MakeResponse(http::status::ok, v, ka, s.registry->Render(), Registry::kContentType,
                        head);
  }
  if (target == "/healthz") return MakeResponse(http::status::ok, v, ka, "ok", kText, head);
  if (s.ready.load()) return MakeResponse(http::status::ok, v, ka, "ready", kText, head);
  std::string reason;
  {
    std::lock_guard lock(s.reason_mutex);
    reason = s.reason;
  }
  return MakeResponse(http::status::service_unavailable, v, ka,
                      reason.empty() ? "not ready" : "not ready: " + reason, kText, head);
}

// The answer to a request that could not be read, or nothing when the connection just ends
// (peer closed, timeout, cancelled).
std::optional<Response> ReadFailure(const boost::system::error_code& ec) {
  if (ec == http::error::body_limit) {
    return MakeResponse(http::status::payload_too_large, 11, false, "request too large\n", kText,
                        false);
  }
  if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
    return MakeResponse(http::status::request_header_fields_too_large, 11, false,
                        "request head too large\n", kText, false);
  }
  if (ec == http::error::end_of_stream || ec == http::error::partial_message ||
      ec == http::error::need_more || ec == http::error::need_buffer) {
    return std::nullopt;
  }
  if (ec.category() == http::make_error_code(http::error::bad_target).category()) {
    return MakeResponse(http::status::bad_request, 11, false, "bad request: " + ec.message() + "\n",
                        kText, false);
  }
  return std::nullopt;
}

awaitable<void> Serve(std::shared_ptr<State> s, tcp::socket socket) {
  beast::tcp_stream stream(std::move(socket));
  s->connections.insert(&stream);
  struct Untrack {
    State& s;
    beast::tcp_stream* stream;
    ~Untrack() { s.connections.erase(stream); }
  } untrack{*s, &stream};

  const auto end = steady_clock::now() + s->options.connection_timeout;
  auto step_deadline = [&] { return std::min(steady_clock::now() + s->options.io_timeout, end); };
  const size_t limit = s->options.max_request_bytes;
  beast::flat_buffer buffer(limit + 1);

  while (!s->stopped) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(std::min<size_t>(limit, UINT32_MAX)));
    parser.body_limit(limit);
    stream.expires_at(step_deadline());
    auto [read_ec, read_n] =
        co_await http::async_read(stream, buffer, parser, use_nothrow_awaitable);
    (void)read_n;
    std::optional<Response> res;
    if (read_ec) {
      res = ReadFailure(read_ec);
      if (!res) break;
    } else {
      res = Route(*s, parser.get());
    }
    stream.expires_at(step_deadline());
    auto [write_ec, write_n] = co_await http::async_write(stream, *res, use_nothrow_awaitable);
    (void)write_n;
    if (write_ec || read_ec || !res->keep_alive()) break;
  }
  boost::system::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

awaitable<void> AcceptLoop(std::shared_ptr<State> s) {
  for (;;) {
    auto [ec, socket] = co_await s->acceptor.async_accept(use_nothrow_awaitable);
    if (s->stopped || !s->acceptor.is_open() || ec == asio::error::operation_aborted) co_return;
    if (ec) {
      // Out of file descriptors and the like: back off instead of spinning.
      spdlog::warn("metrics server: accept failed: {}", ec.message());
      asio::steady_timer pause(s->strand, std::chrono::milliseconds(100));
      co_await pause.async_wait(use_nothrow_awaitable);
      continue;
    }
    if (s->connections.size() >= s->options.max_connections) {
      boost::system::error_code ignored;
      socket.close(ignored);
      continue;
    }
    asio::co_spawn(s->strand, Serve(s, std::move(socket)), LogException);
  }
}

}  // namespace

Result<std::unique_ptr<MetricsServer>> MetricsServer::Start(asio::any_io_executor executor,
                                                            RegistryPtr registry,
                                                            MetricsServerOptions options) {
  if (!registry) return MakeError(ErrorCategory::kInvalidRequest, "metrics server: no registry");
  auto endpoint = ParseListen(options.listen, executor);
  if (!endpoint) return std::unexpected(endpoint.error());
  auto state = std::make_shared<State>(executor, std::move(registry), options);
  boost::system::error_code ec;
  auto fail = [&](std::string_view step) {
    return MakeError(ErrorCategory::kInternal, "metrics listen \"" + options.listen + "\": " +
                                                   std::string(step) + ": " + ec.message());
  };
  state->acceptor.open(endpoint->protocol(), ec);
  if (ec) return fail("open");
  state->acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (ec) return fail("SO_REUSEADDR");
  state->acceptor.bind(*endpoint, ec);
  if (ec) return fail("bind");
  state->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return fail("listen");
  state->port = state->acceptor.local_endpoint(ec).port();
  if (ec) return fail("local address");
  SpawnOrDie(state->strand, "metrics-accept", AcceptLoop(state));
  return std::unique_ptr<MetricsServer>(new MetricsServer(std::move(state)));
}

MetricsServer::~MetricsServer() { Stop(); }

uint16_t MetricsServer::port() const { return state_->port; }

void MetricsServer::SetReady(bool ready, std::string reason) {
  {
    std::lock_guard lock(state_->reason_mutex);
    state_->reason = std::move(reason);
  }
  state_->ready.store(ready);
}

bool MetricsServer::ready() const { return state_->ready.load(); }

void MetricsServer::Stop() {
  asio::post(state_->strand, [s = state_] {
    if (s->stopped) return;
    s->stopped = true;
    boost::system::error_code ignored;
    s->acceptor.close(ignored);
    for (auto* stream : s->connections) stream->cancel();
  });
}

}  // namespace reelq::metrics
