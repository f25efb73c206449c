#include "test_server.h"

#include <algorithm>

namespace reelq::testing {
namespace bhttp = boost::beast::http;

TestServer::TestServer(Handler handler)
    : handler_(std::move(handler)),
      acceptor_(io_, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
  port_ = acceptor_.local_endpoint().port();
  asio::co_spawn(io_, AcceptLoop(), asio::detached);
  thread_ = std::thread([this] { io_.run(); });
}

TestServer::~TestServer() {
  io_.stop();
  thread_.join();
}

std::vector<ReceivedRequest> TestServer::requests() {
  std::lock_guard lock(mutex_);
  return requests_;
}

awaitable<void> TestServer::AcceptLoop() {
  for (;;) {
    auto [ec, socket] = co_await acceptor_.async_accept(use_nothrow_awaitable);
    if (ec) co_return;
    ++accepted_;
    asio::co_spawn(io_, Serve(std::move(socket)), asio::detached);
  }
}

awaitable<void> TestServer::Serve(asio::ip::tcp::socket socket) {
  boost::beast::flat_buffer buffer;
  for (;;) {
    bhttp::request<bhttp::string_body> request;
    auto [ec, n] = co_await bhttp::async_read(socket, buffer, request, use_nothrow_awaitable);
    if (ec) co_return;
    ReceivedRequest received;
    received.method = std::string(request.method_string());
    received.target = std::string(request.target());
    for (const auto& field : request) {
      std::string name(field.name_string());
      std::transform(name.begin(), name.end(), name.begin(), ::tolower);
      received.headers.emplace_back(name, std::string(field.value()));
    }
    received.body = request.body();
    {
      std::lock_guard lock(mutex_);
      requests_.push_back(received);
    }
    Reply reply = handler_(received);
    if (reply.mode == Reply::Mode::kNeverAnswer) {
      // Hold the connection open without a byte of answer until the peer gives up.
      char byte;
      co_await socket.async_read_some(asio::buffer(&byte, 1), use_nothrow_awaitable);
      co_return;
    }
    std::string head = "HTTP/1.1 " + std::to_string(reply.status) + " X\r\n";
    for (auto& [name, value] : reply.headers) head += name + ": " + value + "\r\n";
    if (reply.close) head += "Connection: close\r\n";
    if (reply.chunked) {
      head += "Transfer-Encoding: chunked\r\n\r\n";
      co_await asio::async_write(socket, asio::buffer(head), use_nothrow_awaitable);
      const size_t piece = 100'000;
      for (size_t off = 0; off < reply.body.size(); off += piece) {
        size_t len = std::min(piece, reply.body.size() - off);
        char size_line[32];
        snprintf(size_line, sizeof size_line, "%zx\r\n", len);
        std::string chunk = size_line + reply.body.substr(off, len) + "\r\n";
        auto [wec, wn] =
            co_await asio::async_write(socket, asio::buffer(chunk), use_nothrow_awaitable);
        if (wec) co_return;
      }
      co_await asio::async_write(socket, asio::buffer(std::string("0\r\n\r\n")),
                                 use_nothrow_awaitable);
    } else {
      head += "Content-Length: " + std::to_string(reply.body.size()) + "\r\n\r\n";
      std::string body = reply.body;
      if (reply.mode == Reply::Mode::kTruncate || reply.mode == Reply::Mode::kStall) {
        body.resize(reply.truncate_at);
      }
      auto [wec, wn] =
          co_await asio::async_write(socket, asio::buffer(head + body), use_nothrow_awaitable);
      if (wec) co_return;
    }
    if (reply.mode == Reply::Mode::kStall) {
      char byte;
      co_await socket.async_read_some(asio::buffer(&byte, 1), use_nothrow_awaitable);
      co_return;
    }
    if (reply.close || reply.mode == Reply::Mode::kTruncate) {
      boost::system::error_code ignored;
      socket.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
      socket.close(ignored);
      co_return;
    }
  }
}

}  // namespace reelq::testing
