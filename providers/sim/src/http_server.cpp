#include "http_server.h"

#include <fstream>

#include <spdlog/spdlog.h>

#include "reelq/common/spawn.h"

namespace reelq::sim {
namespace {

namespace beast = boost::beast;
using tcp = asio::ip::tcp;

constexpr auto kIdleTimeout = std::chrono::seconds(60);
constexpr auto kWriteTimeout = std::chrono::seconds(30);
constexpr size_t kChunk = 16 * 1024;
constexpr size_t kMaxBody = 8 * 1024 * 1024;

void ParseTarget(std::string_view target, HttpRequest& req) {
  const auto q = target.find('?');
  req.path = PercentDecode(target.substr(0, q), false);
  if (q == std::string_view::npos) return;
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    const auto amp = rest.find('&');
    std::string_view pair = rest.substr(0, amp);
    const auto eq = pair.find('=');
    std::string key = PercentDecode(pair.substr(0, eq), true);
    std::string value =
        eq == std::string_view::npos ? "" : PercentDecode(pair.substr(eq + 1), true);
    if (!key.empty()) req.query[key] = value;
    if (amp == std::string_view::npos) break;
    rest = rest.substr(amp + 1);
  }
}

http::response<http::empty_body> MakeHeader(const HttpResponse& r, unsigned version,
                                            bool keep_alive, uint64_t length) {
  http::response<http::empty_body> head{static_cast<http::status>(r.status), version};
  head.set(http::field::server, "reelq-provider-sim");
  if (!r.content_type.empty()) head.set(http::field::content_type, r.content_type);
  for (const auto& [k, v] : r.headers) head.set(k, v);
  head.keep_alive(keep_alive);
  head.set(http::field::content_length, std::to_string(length));
  return head;
}

}  // namespace

std::string PercentDecode(std::string_view in, bool plus_is_space) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%' && i + 2 < in.size()) {
      auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
      };
      int hi = hex(in[i + 1]), lo = hex(in[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(plus_is_space && in[i] == '+' ? ' ' : in[i]);
  }
  return out;
}

std::string HttpRequest::Header(std::string_view name) const {
  if (!raw) return {};
  auto it = raw->find(beast::string_view(name.data(), name.size()));
  if (it == raw->end()) return {};
  return std::string(it->value());
}

HttpServer::HttpServer(asio::io_context& io, HttpHandler handler, std::function<void()> on_accept)
    : io_(io), handler_(std::move(handler)), on_accept_(std::move(on_accept)), acceptor_(io) {}

uint16_t HttpServer::Listen(const std::string& host, uint16_t port) {
  tcp::endpoint ep(asio::ip::make_address(host), port);
  acceptor_.open(ep.protocol());
  acceptor_.set_option(asio::socket_base::reuse_address(true));
  acceptor_.bind(ep);
  acceptor_.listen();
  SpawnOrDie(io_, "sim-accept", AcceptLoop());
  return acceptor_.local_endpoint().port();
}

void HttpServer::Stop() {
  beast::error_code ec;
  acceptor_.close(ec);
}

awaitable<void> HttpServer::AcceptLoop() {
  while (acceptor_.is_open()) {
    auto [ec, socket] = co_await acceptor_.async_accept(use_nothrow_awaitable);
    if (ec) {
      if (ec == asio::error::operation_aborted) co_return;
      spdlog::warn("accept: {}", ec.message());
      continue;
    }
    if (on_accept_) on_accept_();
    asio::co_spawn(io_, Session(std::move(socket)), [](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        spdlog::debug("session ended: {}", ex.what());
      }
    });
  }
}

awaitable<void> HttpServer::Session(tcp::socket socket) {
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(kMaxBody);
    stream.expires_after(kIdleTimeout);
    auto [rec, _] = co_await http::async_read(stream, buffer, parser, use_nothrow_awaitable);
    if (rec) {
      if (rec != http::error::end_of_stream && rec != beast::error::timeout &&
          rec != asio::error::connection_reset && rec != asio::error::eof) {
        // A request we cannot even parse: answer plainly and hang up.
        http::response<http::string_body> bad{http::status::bad_request, 11};
        bad.set(http::field::content_type, "text/plain");
        bad.body() = "malformed HTTP request: " + rec.message() + "\n";
        bad.keep_alive(false);
        bad.prepare_payload();
        stream.expires_after(kWriteTimeout);
        co_await http::async_write(stream, bad, use_nothrow_awaitable);
      }
      break;
    }
    const auto& raw = parser.get();
    HttpRequest req;
    req.method = raw.method();
    req.raw = &raw;
    req.body = raw.body();
    req.host = std::string(raw[http::field::host]);
    ParseTarget(std::string_view(raw.target().data(), raw.target().size()), req);
    const bool keep_alive = raw.keep_alive();

    HttpResponse res;
    try {
      res = handler_(req);
    } catch (const std::exception& e) {
      spdlog::error("handler for {} threw: {}", req.path, e.what());
      res = HttpResponse::Json(500, R"({"error":"internal simulator error"})");
    }

    if (res.delay.count() > 0) {
      // Other connections are served meanwhile: this coroutine alone waits.
      asio::steady_timer hold(stream.get_executor());
      hold.expires_after(res.delay);
      co_await hold.async_wait(use_nothrow_awaitable);
    }
    if (res.mode == HttpResponse::Mode::kDrop) break;
    stream.expires_after(kWriteTimeout);
    if (res.mode == HttpResponse::Mode::kNormal || res.mode == HttpResponse::Mode::kTruncate) {
      const bool truncate = res.mode == HttpResponse::Mode::kTruncate;
      auto head = MakeHeader(res, raw.version(), keep_alive && !truncate, res.body.size());
      http::response_serializer<http::empty_body> sr{head};
      auto [hec, hn] = co_await http::async_write_header(stream, sr, use_nothrow_awaitable);
      if (hec) break;
      const size_t n = truncate ? res.body.size() / 2 : res.body.size();
      auto [bec, bn] = co_await asio::async_write(stream, asio::buffer(res.body.data(), n),
                                                  use_nothrow_awaitable);
      if (bec || truncate || !keep_alive) break;
      continue;
    }

    // File download, in chunks, never held whole in memory.
    std::ifstream in(res.file, std::ios::binary);
    std::error_code fec;
    const uint64_t size = std::filesystem::file_size(res.file, fec);
    if (!in || fec) {
      auto err = MakeHeader(HttpResponse::Json(500, ""), raw.version(), false, 0);
      http::response_serializer<http::empty_body> sr{err};
      co_await http::async_write_header(stream, sr, use_nothrow_awaitable);
      break;
    }
    const bool hang = res.mode == HttpResponse::Mode::kFileHang;
    auto head = MakeHeader(res, raw.version(), keep_alive, size);
    http::response_serializer<http::empty_body> sr{head};
    auto [hec, hn] = co_await http::async_write_header(stream, sr, use_nothrow_awaitable);
    if (hec) break;
    const uint64_t limit = hang ? size / 2 : size;
    uint64_t sent = 0;
    std::vector<char> chunk(kChunk);
    bool failed = false;
    while (sent < limit) {
      const size_t want = static_cast<size_t>(std::min<uint64_t>(kChunk, limit - sent));
      in.read(chunk.data(), static_cast<std::streamsize>(want));
      const size_t got = static_cast<size_t>(in.gcount());
      if (got == 0) {
        failed = true;
        break;
      }
      stream.expires_after(kWriteTimeout);
      auto [wec, wn] = co_await asio::async_write(stream, asio::buffer(chunk.data(), got),
                                                  use_nothrow_awaitable);
      if (wec) {
        failed = true;
        break;
      }
      sent += got;
    }
    if (failed) break;
    if (hang) {
      // Stall with the connection open; it ends when the client gives up (or the sim stops).
      stream.expires_never();
      char sink[256];
      for (;;) {
        auto [rec2, n2] =
            co_await stream.socket().async_read_some(asio::buffer(sink), use_nothrow_awaitable);
        if (rec2) break;
      }
      break;
    }
    if (!keep_alive) break;
  }
  beast::error_code ec;
  stream.socket().shutdown(tcp::socket::shutdown_both, ec);
}

}  // namespace reelq::sim
