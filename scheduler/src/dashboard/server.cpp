// The dashboard's HTTP shell: listening, reading requests, writing replies, and streaming a
// clip's bytes (or a range of them) from the filesystem store without holding it in memory.
#include <charconv>
#include <fstream>

#include <openssl/rand.h>
#include <spdlog/spdlog.h>

#include "internal.h"

namespace reelq::scheduler {

using namespace dashboard_detail;
using tcp = asio::ip::tcp;
using std::chrono::steady_clock;

namespace {

std::unexpected<Error> ListenError(const std::string& listen, const std::string& why) {
  return MakeError(ErrorCategory::kInvalidRequest,
                   "scheduler.dashboard_listen \"" + listen + "\": " + why);
}

Result<tcp::endpoint> ParseListen(const std::string& listen) {
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
  if (host == "localhost") host = "127.0.0.1";
  if (host.empty()) host = "0.0.0.0";
  boost::system::error_code addr_ec;
  auto address = asio::ip::make_address(host, addr_ec);
  if (addr_ec) return ListenError(listen, "host must be an IP address (or localhost)");
  return tcp::endpoint(address, static_cast<uint16_t>(port));
}

void LogException(std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    spdlog::error("dashboard: {}", ex.what());
  }
}

void SetCommonHeaders(http::response_header<>& h, const Reply& reply) {
  h.set(http::field::server, "reelq");
  h.set(http::field::cache_control, reply.cacheable ? "public, max-age=300" : "no-store");
  h.set("X-Content-Type-Options", "nosniff");
  h.set("X-Frame-Options", "DENY");
  h.set("Referrer-Policy", "no-referrer");
  // Everything the pages use is served from here; presigned S3 clips come from their bucket.
  h.set("Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; media-src 'self' https: http:; "
        "connect-src 'self'; style-src 'self'; script-src 'self'; object-src 'none'; "
        "base-uri 'none'; frame-ancestors 'none'; form-action 'self'");
  for (const auto& [field, value] : reply.headers) h.set(field, value);
}

// Writes the file part of a reply in 64 KiB chunks, each with its own deadline.
awaitable<bool> WriteFile(beast::tcp_stream& stream, const Reply& reply, unsigned version,
                          bool keep_alive, bool head, std::chrono::milliseconds io_timeout,
                          steady_clock::time_point end) {
  const auto& file = *reply.file;
  const uint64_t first = file.range ? file.range->first : 0;
  const uint64_t last = file.range ? file.range->last : (file.size == 0 ? 0 : file.size - 1);
  const uint64_t length = file.size == 0 ? 0 : last - first + 1;
  http::response<http::empty_body> res{reply.status, version};
  SetCommonHeaders(res.base(), reply);
  res.set(http::field::content_type, reply.content_type);
  res.set(http::field::accept_ranges, "bytes");
  if (file.range) {
    res.set(http::field::content_range, "bytes " + std::to_string(first) + "-" +
                                            std::to_string(last) + "/" + std::to_string(file.size));
  }
  res.content_length(length);
  res.keep_alive(keep_alive);
  http::response_serializer<http::empty_body> serializer(res);
  stream.expires_after(io_timeout);
  auto [head_ec, head_n] =
      co_await http::async_write_header(stream, serializer, use_nothrow_awaitable);
  (void)head_n;
  if (head_ec) co_return false;
  if (head || length == 0) co_return true;
  std::ifstream in(file.path, std::ios::binary);
  if (!in || !in.seekg(static_cast<std::streamoff>(first))) co_return false;
  std::vector<char> chunk(64 * 1024);
  uint64_t left = length;
  while (left > 0) {
    const auto want = static_cast<std::streamsize>(std::min<uint64_t>(left, chunk.size()));
    in.read(chunk.data(), want);
    if (in.gcount() != want) co_return false;  // the file shrank under us: end the connection
    stream.expires_at(std::min(steady_clock::now() + io_timeout, end));
    auto [ec, n] = co_await asio::async_write(
        stream, asio::buffer(chunk.data(), static_cast<size_t>(want)), use_nothrow_awaitable);
    (void)n;
    if (ec) co_return false;
    left -= static_cast<uint64_t>(want);
  }
  co_return true;
}

awaitable<void> Serve(std::shared_ptr<Dashboard::State> s, tcp::socket socket) {
  boost::system::error_code peer_ec;
  const auto peer = socket.remote_endpoint(peer_ec);
  const bool loopback = !peer_ec && peer.address().is_loopback();
  beast::tcp_stream stream(std::move(socket));
  s->connections.insert(&stream);
  struct Untrack {
    Dashboard::State& s;
    beast::tcp_stream* stream;
    ~Untrack() { s.connections.erase(stream); }
  } untrack{*s, &stream};

  beast::flat_buffer buffer(s->options.max_request_bytes + 1);
  while (!s->stopped) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(s->options.max_request_bytes));
    parser.body_limit(s->options.max_request_bytes);
    stream.expires_after(s->options.io_timeout);
    auto [read_ec, read_n] =
        co_await http::async_read(stream, buffer, parser, use_nothrow_awaitable);
    (void)read_n;
    if (read_ec) {
      if (read_ec == http::error::body_limit || read_ec == http::error::header_limit) {
        http::response<http::string_body> res{http::status::payload_too_large, 11};
        res.body() = "request too large\n";
        res.prepare_payload();
        res.keep_alive(false);
        stream.expires_after(s->options.io_timeout);
        co_await http::async_write(stream, res, use_nothrow_awaitable);
      }
      break;
    }
    Request request = parser.release();
    const unsigned version = request.version();
    const bool keep_alive = request.keep_alive();
    const bool head = request.method() == http::verb::head;
    Reply reply = co_await Route(s, std::move(request), loopback);
    if (s->stopped) break;
    if (reply.file) {
      const auto end = steady_clock::now() + s->options.clip_timeout;
      if (!co_await WriteFile(stream, reply, version, keep_alive, head, s->options.io_timeout,
                              end)) {
        break;
      }
    } else {
      http::response<http::string_body> res{reply.status, version};
      SetCommonHeaders(res.base(), reply);
      res.set(http::field::content_type, reply.content_type);
      res.keep_alive(keep_alive);
      if (head) {
        res.content_length(reply.body.size());
      } else {
        res.body() = std::move(reply.body);
        res.prepare_payload();
      }
      stream.expires_after(s->options.io_timeout);
      auto [write_ec, write_n] = co_await http::async_write(stream, res, use_nothrow_awaitable);
      (void)write_n;
      if (write_ec) break;
    }
    if (!keep_alive) break;
  }
  boost::system::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

awaitable<void> AcceptLoop(std::shared_ptr<Dashboard::State> s) {
  for (;;) {
    auto [ec, socket] = co_await s->acceptor.async_accept(use_nothrow_awaitable);
    if (s->stopped || !s->acceptor.is_open() || ec == asio::error::operation_aborted) co_return;
    if (ec) {
      spdlog::warn("dashboard: accept failed: {}", ec.message());
      asio::steady_timer pause(s->executor, std::chrono::milliseconds(100));
      co_await pause.async_wait(use_nothrow_awaitable);
      continue;
    }
    if (s->connections.size() >= s->options.max_connections) {
      boost::system::error_code ignored;
      socket.close(ignored);
      continue;
    }
    asio::co_spawn(s->executor, Serve(s, std::move(socket)), LogException);
  }
}

}  // namespace

Result<std::unique_ptr<Dashboard>> Dashboard::Start(asio::any_io_executor executor, JobApi& jobs,
                                                    DashboardModels& models, Activity& activity,
                                                    DashboardOptions options) {
  auto endpoint = ParseListen(options.listen);
  if (!endpoint) return std::unexpected(endpoint.error());
  if (!options.resolve_token && !endpoint->address().is_loopback()) {
    return ListenError(options.listen,
                       "without API tokens the dashboard is read-only and serves loopback only: "
                       "use 127.0.0.1 or ::1");
  }
  auto state = std::make_shared<State>(executor, jobs, models, activity, std::move(options));
  if (RAND_bytes(state->csrf_key.data(), static_cast<int>(state->csrf_key.size())) != 1) {
    return MakeError(ErrorCategory::kInternal, "dashboard: no random bytes for the CSRF key");
  }
  const std::string listen = state->options.listen;
  boost::system::error_code ec;
  auto fail = [&](std::string_view step) {
    return ListenError(listen, std::string(step) + ": " + ec.message());
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
  asio::co_spawn(executor, AcceptLoop(state), LogException);
  return std::unique_ptr<Dashboard>(new Dashboard(std::move(state)));
}

Dashboard::~Dashboard() { Stop(); }

uint16_t Dashboard::port() const { return state_->port; }

void Dashboard::Stop() {
  // Inline on the executor's thread, queued to it from any other.
  asio::dispatch(state_->executor, [s = state_] {
    if (s->stopped) return;
    s->stopped = true;
    boost::system::error_code ignored;
    s->acceptor.close(ignored);
    for (auto* stream : s->connections) stream->cancel();
  });
}

}  // namespace reelq::scheduler
