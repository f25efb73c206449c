#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "reelq/common/asio.h"
#include "reelq/common/metrics.h"

namespace reelq::metrics {
namespace {

using namespace std::chrono_literals;

// A plain blocking TCP client with a receive deadline, so that a misbehaving server fails the
// test instead of hanging it, and so that malformed requests can be sent byte for byte.
class RawConnection {
 public:
  explicit RawConnection(uint16_t port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  ~RawConnection() { ::close(fd_); }
  bool connected() const { return connected_; }

  void Send(std::string_view bytes) {
    while (!bytes.empty()) {
      ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return;  // the server may close early (413): the test reads what it said
      bytes.remove_prefix(static_cast<size_t>(n));
    }
  }

  // Reads until the peer closes, `until` appears, or the deadline passes.
  std::string Read(std::string_view until = {}, std::chrono::milliseconds deadline = 5s) {
    const auto end = std::chrono::steady_clock::now() + deadline;
    std::string out;
    char buf[4096];
    for (;;) {
      if (!until.empty() && out.find(until) != std::string::npos) return out;
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          end - std::chrono::steady_clock::now());
      if (left <= 0ms) {
        timed_out_ = true;
        return out;
      }
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) {
        closed_ = true;
        return out;
      }
      out.append(buf, static_cast<size_t>(n));
    }
  }
  bool closed() const { return closed_; }
  bool timed_out() const { return timed_out_; }

 private:
  int fd_;
  bool connected_ = false;
  bool closed_ = false;
  bool timed_out_ = false;
};

struct Reply {
  int status = 0;
  std::string head;
  std::string body;
};

Reply Parse(const std::string& raw) {
  Reply r;
  if (raw.rfind("HTTP/1.1 ", 0) == 0) r.status = std::atoi(raw.c_str() + 9);
  size_t split = raw.find("\r\n\r\n");
  r.head = raw.substr(0, split);
  if (split != std::string::npos) r.body = raw.substr(split + 4);
  return r;
}

class MetricsServerTest : public ::testing::Test {
 protected:
  void StartServer(MetricsServerOptions options = {}) {
    registry_ = std::make_shared<Registry>();
    registry_->AddCounter("reelq_test_total", "A test counter.", {"kind"})
        .WithLabels({"a\"b"})
        .Inc(7);
    auto started = MetricsServer::Start(ioc_.get_executor(), registry_, options);
    ASSERT_TRUE(started.has_value()) << started.error().message;
    server_ = std::move(*started);
    ASSERT_NE(server_->port(), 0);
    thread_ = std::thread([this] { ioc_.run(); });
  }

  void TearDown() override {
    server_.reset();  // stops the listener and every connection
    if (thread_.joinable()) thread_.join();
  }

  Reply Get(std::string_view method, std::string_view target, std::string extra = {}) {
    RawConnection c(server_->port());
    EXPECT_TRUE(c.connected());
    c.Send(std::string(method) + " " + std::string(target) +
           " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" + extra + "\r\n");
    return Parse(c.Read());
  }

  asio::io_context ioc_;
  RegistryPtr registry_;
  std::unique_ptr<MetricsServer> server_;
  std::thread thread_;
};

TEST_F(MetricsServerTest, ServesMetrics) {
  StartServer();
  Reply r = Get("GET", "/metrics");
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.head.find("Content-Type: text/plain; version=0.0.4; charset=utf-8"),
            std::string::npos)
      << r.head;
  EXPECT_EQ(r.body,
            "# HELP reelq_test_total A test counter.\n# TYPE reelq_test_total counter\n"
            "reelq_test_total{kind=\"a\\\"b\"} 7\n");
  // Later increments show up in the next scrape; a query string does not matter.
  registry_->AddCounter("reelq_test_total", "A test counter.", {"kind"}).WithLabels({"a\"b"}).Inc();
  EXPECT_NE(Get("GET", "/metrics?x=1").body.find("} 8\n"), std::string::npos);
}

TEST_F(MetricsServerTest, HealthAndReadiness) {
  StartServer();
  Reply health = Get("GET", "/healthz");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.body, "ok");

  EXPECT_FALSE(server_->ready());
  Reply starting = Get("GET", "/readyz");
  EXPECT_EQ(starting.status, 503);
  EXPECT_EQ(starting.body, "not ready: starting");

  server_->SetReady(true);
  Reply ready = Get("GET", "/readyz");
  EXPECT_EQ(ready.status, 200);
  EXPECT_EQ(ready.body, "ready");

  server_->SetReady(false, "draining");
  Reply draining = Get("GET", "/readyz");
  EXPECT_EQ(draining.status, 503);
  EXPECT_EQ(draining.body, "not ready: draining");
}

TEST_F(MetricsServerTest, UnknownPathsAndMethods) {
  StartServer();
  EXPECT_EQ(Get("GET", "/").status, 404);
  EXPECT_EQ(Get("GET", "/metricsx").status, 404);
  EXPECT_EQ(Get("POST", "/nope", "Content-Length: 0\r\n").status, 404);
  Reply post = Get("POST", "/metrics", "Content-Length: 2\r\n\r\nhi");
  EXPECT_EQ(post.status, 405);
  EXPECT_NE(post.head.find("Allow: GET, HEAD"), std::string::npos) << post.head;
  EXPECT_EQ(Get("DELETE", "/healthz").status, 405);
  EXPECT_EQ(Get("PUT", "/readyz", "Content-Length: 0\r\n").status, 405);
}

TEST_F(MetricsServerTest, HeadHasTheLengthButNoBody) {
  StartServer();
  Reply r = Get("HEAD", "/healthz");
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.head.find("Content-Length: 2"), std::string::npos) << r.head;
  EXPECT_EQ(r.body, "");
}

TEST_F(MetricsServerTest, KeepAliveServesPipelinedRequests) {
  StartServer();
  RawConnection c(server_->port());
  ASSERT_TRUE(c.connected());
  c.Send(
      "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  std::string all = c.Read();
  EXPECT_TRUE(c.closed());
  size_t responses = 0;
  for (size_t at = all.find("HTTP/1.1 "); at != std::string::npos;
       at = all.find("HTTP/1.1 ", at + 1)) {
    ++responses;
  }
  EXPECT_EQ(responses, 3u) << all;
  EXPECT_NE(all.find("HTTP/1.1 503"), std::string::npos);
}

TEST_F(MetricsServerTest, OversizedRequestsAreRefused) {
  StartServer({.max_request_bytes = 1024});
  RawConnection body(server_->port());
  body.Send("POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" +
            std::string(4096, 'x'));
  Reply r = Parse(body.Read());
  EXPECT_EQ(r.status, 413);
  EXPECT_TRUE(body.closed());

  RawConnection head(server_->port());
  head.Send("GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(4096, 'h') + "\r\n\r\n");
  EXPECT_EQ(Parse(head.Read()).status, 431);
}

TEST_F(MetricsServerTest, MalformedRequestGets400) {
  StartServer();
  RawConnection c(server_->port());
  c.Send("this is not http\r\n\r\n");
  Reply r = Parse(c.Read());
  EXPECT_EQ(r.status, 400);
  EXPECT_TRUE(c.closed());
}

TEST_F(MetricsServerTest, IdleConnectionIsClosedAtTheDeadline) {
  StartServer({.io_timeout = 200ms});
  RawConnection c(server_->port());
  ASSERT_TRUE(c.connected());
  const auto start = std::chrono::steady_clock::now();
  std::string got = c.Read({}, 5s);
  EXPECT_TRUE(c.closed()) << "the server kept an idle connection open";
  EXPECT_EQ(got, "");
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
}

TEST_F(MetricsServerTest, ConnectionLimitClosesExtraConnections) {
  StartServer({.max_connections = 1});
  RawConnection first(server_->port());
  first.Send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_NE(first.Read("\r\n\r\nok").find("200 OK"), std::string::npos);  // first is tracked

  RawConnection second(server_->port());
  second.Send("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(second.Read(), "");
  EXPECT_TRUE(second.closed());

  first.Send("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_TRUE(first.Read().find("200 OK") != std::string::npos);
  EXPECT_TRUE(first.closed());
  // With the first connection gone, a new one is served. The server notices the close
  // asynchronously, so allow it a moment.
  int status = 0;
  for (int i = 0; i < 50 && status != 200; ++i) {
    status = Get("GET", "/healthz").status;
    if (status != 200) std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(status, 200);
}

TEST_F(MetricsServerTest, StopClosesTheListener) {
  StartServer();
  const uint16_t port = server_->port();
  EXPECT_EQ(Get("GET", "/healthz").status, 200);
  server_->Stop();
  bool refused = false;
  for (int i = 0; i < 50 && !refused; ++i) {
    RawConnection c(port);
    refused = !c.connected();
    if (!refused) std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(refused);
}

TEST(MetricsServerStartTest, BadListenAddressesAreErrorsNamingThem) {
  asio::io_context ioc;
  auto registry = std::make_shared<Registry>();
  for (const std::string& bad :
       std::vector<std::string>{"nonsense", "127.0.0.1:", "127.0.0.1:70000", "127.0.0.1:12ab",
                                "no-such-host.invalid:0"}) {
    auto r = MetricsServer::Start(ioc.get_executor(), registry, {.listen = bad});
    ASSERT_FALSE(r.has_value()) << bad;
    EXPECT_NE(r.error().message.find("metrics listen \"" + bad + "\""), std::string::npos)
        << r.error().message;
  }
}

TEST(MetricsServerStartTest, PortInUseIsAnError) {
  asio::io_context ioc;
  auto registry = std::make_shared<Registry>();
  auto first = MetricsServer::Start(ioc.get_executor(), registry, {});
  ASSERT_TRUE(first.has_value());
  const std::string listen = "127.0.0.1:" + std::to_string((*first)->port());
  auto second = MetricsServer::Start(ioc.get_executor(), registry, {.listen = listen});
  ASSERT_FALSE(second.has_value());
  EXPECT_NE(second.error().message.find("bind"), std::string::npos) << second.error().message;
}

TEST(MetricsServerStartTest, Ipv6LoopbackWhenAvailable) {
  asio::io_context ioc;
  auto r =
      MetricsServer::Start(ioc.get_executor(), std::make_shared<Registry>(), {.listen = "[::1]:0"});
  if (!r.has_value()) GTEST_SKIP() << "no IPv6 loopback here: " << r.error().message;
  EXPECT_NE((*r)->port(), 0);
}

}  // namespace
}  // namespace reelq::metrics
