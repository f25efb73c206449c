#include <gtest/gtest.h>

#include <chrono>
#include <optional>

#include "reelq/common/http_client.h"
#include "test_server.h"

namespace reelq::http {
namespace {

using testing::Reply;
using testing::TestServer;
using namespace std::chrono_literals;

template <class T>
T RunSync(asio::io_context& io, awaitable<T> task) {
  std::optional<T> out;
  asio::co_spawn(io, std::move(task), [&](std::exception_ptr e, T value) {
    if (e) std::rethrow_exception(e);
    out = std::move(value);
  });
  io.restart();
  io.run();
  return std::move(*out);
}

// Counts chunks and bytes; never keeps more than one chunk.
class CountingSink final : public ByteSink {
 public:
  awaitable<Result<void>> Write(std::span<const std::byte> chunk) override {
    ++chunks;
    bytes += chunk.size();
    for (auto b : chunk) checksum = checksum * 31 + static_cast<unsigned char>(b);
    co_return Result<void>{};
  }
  size_t chunks = 0;
  size_t bytes = 0;
  uint64_t checksum = 0;
};

uint64_t Checksum(const std::string& s) {
  uint64_t c = 0;
  for (unsigned char b : s) c = c * 31 + b;
  return c;
}

Request Get(std::string url) {
  Request r;
  r.url = std::move(url);
  r.timeout = 5s;
  return r;
}

TEST(HttpClient, GetAndPost) {
  TestServer server([](const testing::ReceivedRequest& r) {
    Reply reply;
    reply.headers = {{"Content-Type", "text/plain"}, {"X-Echo-Method", r.method}};
    reply.body = r.method + " " + r.target + " " + r.body;
    return reply;
  });
  asio::io_context io;
  auto client = MakeClient(io.get_executor());

  auto got = RunSync(io, client->Send(Get(server.Url("/a?b=1"))));
  ASSERT_TRUE(got) << got.error().Describe();
  EXPECT_EQ(got->status, 200);
  EXPECT_EQ(got->body, "GET /a?b=1 ");
  EXPECT_EQ(got->Header("x-echo-method"), "GET");
  EXPECT_EQ(got->Header("content-type"), "text/plain");

  Request post = Get(server.Url("/create"));
  post.method = "POST";
  post.headers = {{"content-type", "application/json"}, {"authorization", "Bearer k"}};
  post.body = R"({"x":1})";
  auto posted = RunSync(io, client->Send(post));
  ASSERT_TRUE(posted) << posted.error().Describe();
  EXPECT_EQ(posted->body, R"(POST /create {"x":1})");
  auto seen = server.requests();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[1].Header("content-type"), "application/json");
  EXPECT_EQ(seen[1].Header("authorization"), "Bearer k");
  EXPECT_EQ(seen[1].Header("content-length"), "7");
}

TEST(HttpClient, ErrorStatusIsNotAnError) {
  TestServer server([](const testing::ReceivedRequest&) {
    return Reply{.status = 429, .headers = {{"Retry-After", "7"}}, .body = "slow down"};
  });
  asio::io_context io;
  auto client = MakeClient(io.get_executor());
  auto got = RunSync(io, client->Send(Get(server.Url("/"))));
  ASSERT_TRUE(got);
  EXPECT_EQ(got->status, 429);
  EXPECT_EQ(got->Header("retry-after"), "7");
  EXPECT_EQ(got->body, "slow down");
}

TEST(HttpClient, KeepAliveReusesOneConnection) {
  TestServer server([](const testing::ReceivedRequest&) { return Reply{.body = "ok"}; });
  asio::io_context io;
  auto client = MakeClient(io.get_executor());
  for (int i = 0; i < 5; ++i) {
    auto got = RunSync(io, client->Send(Get(server.Url("/n"))));
    ASSERT_TRUE(got) << got.error().Describe();
  }
  EXPECT_EQ(server.accepted_connections(), 1);
  EXPECT_EQ(server.requests().size(), 5u);
}

// A worker has many requests to one provider host in the air at once. Every request of a burst
// opens a connection (the pool is empty while they all wait); what the pool keeps of them when
// they come back decides how many the next burst must open anew.
TEST(HttpClient, ABurstReusesAsManyConnectionsAsThePoolKeepsIdle) {
  constexpr int kBurst = 20;
  auto two_bursts = [](size_t max_idle) {
    TestServer server([](const testing::ReceivedRequest&) { return Reply{.body = "ok"}; });
    asio::io_context io;
    ClientOptions options;
    options.max_idle_connections_per_host = max_idle;
    auto client = MakeClient(io.get_executor(), options);
    int ok = 0;
    for (int burst = 0; burst < 2; ++burst) {
      for (int i = 0; i < kBurst; ++i) {
        asio::co_spawn(io, client->Send(Get(server.Url("/poll"))),
                       [&ok](std::exception_ptr e, Result<Response> got) {
                         if (!e && got && got->status == 200) ++ok;
                       });
      }
      io.restart();
      io.run();
    }
    EXPECT_EQ(ok, 2 * kBurst);
    return server.accepted_connections();
  };
  EXPECT_EQ(two_bursts(kBurst), kBurst);
  EXPECT_EQ(two_bursts(8), kBurst + (kBurst - 8));
}

TEST(HttpClient, ServerClosingIdleConnectionIsNotAnError) {
  TestServer server([](const testing::ReceivedRequest&) {
    return Reply{.body = "ok", .close = true};  // "Connection: close" after every answer
  });
  asio::io_context io;
  auto client = MakeClient(io.get_executor());
  for (int i = 0; i < 3; ++i) {
    auto got = RunSync(io, client->Send(Get(server.Url("/n"))));
    ASSERT_TRUE(got) << got.error().Describe();
  }
  EXPECT_EQ(server.accepted_connections(), 3);
}

TEST(HttpClient, FollowsRedirectsAndDropsCredentialsAcrossHosts) {
  TestServer target(
      [](const testing::ReceivedRequest& r) { return Reply{.body = "final " + r.target}; });
  std::string target_url = target.Url("/file?alt=media");
  TestServer origin([&](const testing::ReceivedRequest& r) {
    if (r.target == "/start") return Reply{.status = 302, .headers = {{"Location", "/hop"}}};
    if (r.target == "/hop") return Reply{.status = 307, .headers = {{"Location", target_url}}};
    if (r.target == "/see-other") {
      return Reply{.status = 303, .headers = {{"Location", "/after-post"}}};
    }
    return Reply{.body = "origin " + r.method + " " + r.target};
  });
  asio::io_context io;
  auto client = MakeClient(io.get_executor());

  Request request = Get(origin.Url("/start"));
  request.max_redirects = 5;
  request.headers = {
      {"authorization", "Bearer secret"}, {"x-goog-api-key", "k"}, {"accept", "video/mp4"}};
  auto got = RunSync(io, client->Send(request));
  ASSERT_TRUE(got) << got.error().Describe();
  EXPECT_EQ(got->status, 200);
  EXPECT_EQ(got->body, "final /file?alt=media");
  EXPECT_EQ(got->final_url, target_url);
  // Same origin hop keeps the credentials, the cross-host hop drops them.
  auto at_origin = origin.requests();
  ASSERT_EQ(at_origin.size(), 2u);
  EXPECT_EQ(at_origin[1].target, "/hop");
  EXPECT_EQ(at_origin[1].Header("x-goog-api-key"), "k");
  auto at_target = target.requests();
  ASSERT_EQ(at_target.size(), 1u);
  EXPECT_FALSE(at_target[0].HasHeader("authorization"));
  EXPECT_FALSE(at_target[0].HasHeader("x-goog-api-key"));
  EXPECT_EQ(at_target[0].Header("accept"), "video/mp4");

  // 303 after a POST continues as a GET without the body.
  Request post = Get(origin.Url("/see-other"));
  post.method = "POST";
  post.body = "{}";
  post.max_redirects = 1;
  auto after = RunSync(io, client->Send(post));
  ASSERT_TRUE(after) << after.error().Describe();
  EXPECT_EQ(after->body, "origin GET /after-post");

  // Without max_redirects the redirect itself is the answer.
  auto raw = RunSync(io, client->Send(Get(origin.Url("/start"))));
  ASSERT_TRUE(raw);
  EXPECT_EQ(raw->status, 302);
  EXPECT_EQ(raw->Header("location"), "/hop");

  // A redirect loop stops after max_redirects.
  Request loop = Get(origin.Url("/start"));
  loop.max_redirects = 1;
  auto stopped = RunSync(io, client->Send(loop));
  ASSERT_TRUE(stopped);
  EXPECT_EQ(stopped->status, 307);
}

std::string Pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 7919) % 251);
  return s;
}

TEST(HttpClient, StreamsLargeBodyInChunks) {
  const std::string body = Pattern(3 * 1024 * 1024 + 17);
  TestServer server([&](const testing::ReceivedRequest& r) {
    return Reply{.body = body, .chunked = r.target == "/chunked"};
  });
  asio::io_context io;
  ClientOptions options;
  options.max_body_bytes = 1024;  // streaming is not bounded by the in-memory limit
  auto client = MakeClient(io.get_executor(), options);
  for (std::string path : {"/length", "/chunked"}) {
    CountingSink sink;
    auto got = RunSync(io, client->Stream(Get(server.Url(path)), sink));
    ASSERT_TRUE(got) << path << ": " << got.error().Describe();
    EXPECT_EQ(got->status, 200);
    EXPECT_TRUE(got->body.empty());
    EXPECT_EQ(sink.bytes, body.size()) << path;
    EXPECT_GT(sink.chunks, 1u) << path;
    EXPECT_EQ(sink.checksum, Checksum(body)) << path;
  }
}

TEST(HttpClient, StreamReadsErrorBodiesWhole) {
  TestServer server([](const testing::ReceivedRequest&) {
    return Reply{.status = 404, .body = R"({"error":"gone"})"};
  });
  asio::io_context io;
  auto client = MakeClient(io.get_executor());
  CountingSink sink;
  auto got = RunSync(io, client->Stream(Get(server.Url("/x")), sink));
  ASSERT_TRUE(got);
  EXPECT_EQ(got->status, 404);
  EXPECT_EQ(got->body, R"({"error":"gone"})");
  EXPECT_EQ(sink.bytes, 0u);
}

TEST(HttpClient, TimesOutOnServerThatNeverAnswers) {
  TestServer server(
      [](const testing::ReceivedRequest&) { return Reply{.mode = Reply::Mode::kNeverAnswer}; });
  asio::io_context io;
  auto client = MakeClient(io.get_executor());
  Request request = Get(server.Url("/hang"));
  request.timeout = 300ms;
  auto start = std::chrono::steady_clock::now();
  auto got = RunSync(io, client->Send(request));
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().category, ErrorCategory::kRetryable);
  EXPECT_EQ(got.error().message,
            "read from 127.0.0.1:" + std::to_string(server.port()) + " timed out after 300ms");
  EXPECT_LT(took, 5s);
}

TEST(HttpClient, TruncatedBodyIsAnErrorNamingTheBytes) {
  const std::string body = Pattern(67890);
  TestServer server([&](const testing::ReceivedRequest&) {
    return Reply{.body = body, .mode = Reply::Mode::kTruncate, .truncate_at = 12345};
  });
  asio::io_context io;
  auto client = MakeClient(io.get_executor());
  auto whole = RunSync(io, client->Send(Get(server.Url("/t"))));
  ASSERT_FALSE(whole);
  EXPECT_EQ(whole.error().category, ErrorCategory::kRetryable);
  EXPECT_NE(whole.error().message.find("truncated at 12345 of 67890 bytes"), std::string::npos)
      << whole.error().message;

  CountingSink sink;
  auto streamed = RunSync(io, client->Stream(Get(server.Url("/t")), sink));
  ASSERT_FALSE(streamed);
  EXPECT_NE(streamed.error().message.find("truncated at 12345 of 67890 bytes"), std::string::npos)
      << streamed.error().message;
  EXPECT_EQ(sink.bytes, 12345u);
}

TEST(HttpClient, BodyOverLimitIsAClearError) {
  TestServer server([](const testing::ReceivedRequest&) { return Reply{.body = Pattern(5000)}; });
  asio::io_context io;
  ClientOptions options;
  options.max_body_bytes = 4096;
  auto client = MakeClient(io.get_executor(), options);
  auto got = RunSync(io, client->Send(Get(server.Url("/big"))));
  ASSERT_FALSE(got);
  EXPECT_NE(got.error().message.find("exceeds max_body_bytes (4096)"), std::string::npos)
      << got.error().message;
}

TEST(HttpClient, ConnectRefusedNamesHost) {
  // Bind a port and close it again: nothing listens there now.
  int port;
  {
    asio::io_context tmp;
    asio::ip::tcp::acceptor a(tmp, {asio::ip::make_address("127.0.0.1"), 0});
    port = a.local_endpoint().port();
  }
  asio::io_context io;
  auto client = MakeClient(io.get_executor());
  auto got = RunSync(io, client->Send(Get("http://127.0.0.1:" + std::to_string(port) + "/")));
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().category, ErrorCategory::kRetryable);
  EXPECT_EQ(got.error().message, "connect to 127.0.0.1:" + std::to_string(port) + " refused");
}

// The typed flag the adapters and the worker read: from the write on, the peer may have acted on
// the request (a create may have made a paid task); before it, nothing was sent.
TEST(HttpClient, TransportFailuresSayWhetherTheRequestMayHaveBeenDelivered) {
  asio::io_context io;
  auto client = MakeClient(io.get_executor());
  int closed_port;
  {
    asio::io_context tmp;
    asio::ip::tcp::acceptor a(tmp, {asio::ip::make_address("127.0.0.1"), 0});
    closed_port = a.local_endpoint().port();
  }
  auto refused =
      RunSync(io, client->Send(Get("http://127.0.0.1:" + std::to_string(closed_port) + "/")));
  ASSERT_FALSE(refused);
  EXPECT_FALSE(refused.error().maybe_delivered) << refused.error().message;
  EXPECT_EQ(refused.error().provider_code, "");

  TestServer hanging(
      [](const testing::ReceivedRequest&) { return Reply{.mode = Reply::Mode::kNeverAnswer}; });
  Request request = Get(hanging.Url("/create"));
  request.method = "POST";
  request.body = "{}";
  request.timeout = 200ms;
  auto lost = RunSync(io, client->Send(request));
  ASSERT_FALSE(lost);
  EXPECT_TRUE(lost.error().maybe_delivered) << lost.error().message;
  EXPECT_EQ(lost.error().provider_code, "") << "the flag is a field, not a code string";

  TestServer cut([](const testing::ReceivedRequest&) {
    return Reply{.body = std::string(1000, 'x'), .mode = Reply::Mode::kTruncate, .truncate_at = 10};
  });
  auto truncated = RunSync(io, client->Send(Get(cut.Url("/t"))));
  ASSERT_FALSE(truncated);
  EXPECT_TRUE(truncated.error().maybe_delivered) << truncated.error().message;
}

TEST(HttpClient, BadUrlIsInvalidRequest) {
  asio::io_context io;
  auto client = MakeClient(io.get_executor());
  auto got = RunSync(io, client->Send(Get("ftp://example.com/")));
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().category, ErrorCategory::kInvalidRequest);
  EXPECT_NE(got.error().message.find("scheme"), std::string::npos);
}

TEST(HttpClient, HttpsToPlainServerFailsInHandshake) {
  TestServer server([](const testing::ReceivedRequest&) { return Reply{.body = "plain"}; });
  asio::io_context io;
  auto client = MakeClient(io.get_executor());
  Request request = Get("https://127.0.0.1:" + std::to_string(server.port()) + "/");
  request.timeout = 2s;
  auto got = RunSync(io, client->Send(request));
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().category, ErrorCategory::kRetryable);
  EXPECT_NE(got.error().message.find("TLS handshake with 127.0.0.1"), std::string::npos)
      << got.error().message;
}

}  // namespace
}  // namespace reelq::http

namespace reelq::http {
namespace {

TEST(HttpClient, ChunkedBodyOverLimitIsAClearError) {
  const std::string body(300'000, 'x');
  TestServer server(
      [&](const testing::ReceivedRequest&) { return Reply{.body = body, .chunked = true}; });
  asio::io_context io;
  ClientOptions options;
  options.max_body_bytes = 150'000;
  auto client = MakeClient(io.get_executor(), options);
  auto got = RunSync(io, client->Send(Get(server.Url("/big"))));
  ASSERT_FALSE(got);
  EXPECT_NE(got.error().message.find("exceeds max_body_bytes (150000)"), std::string::npos)
      << got.error().message;
}

}  // namespace
}  // namespace reelq::http

namespace reelq::http {
namespace {

// A caller that acts on the status alone (the webhook deliverer) gets the head of an answer whose
// body is over the limit, cut off or still arriving at the deadline, and why; the same answers
// fail a request that did not ask for that (a download).
TEST(HttpClient, PartialBodyKeepsTheStatusOnlyWhenAsked) {
  TestServer server([](const testing::ReceivedRequest& r) {
    if (r.target == "/big") return Reply{.status = 200, .body = Pattern(5000)};
    if (r.target == "/chunked") return Reply{.status = 201, .body = Pattern(5000), .chunked = true};
    if (r.target == "/cut") {
      return Reply{
          .status = 202, .body = Pattern(3000), .mode = Reply::Mode::kTruncate, .truncate_at = 100};
    }
    if (r.target == "/slow") {
      return Reply{
          .status = 200, .body = Pattern(3000), .mode = Reply::Mode::kStall, .truncate_at = 100};
    }
    return Reply{.body = "ok"};
  });
  asio::io_context io;
  ClientOptions options;
  options.max_body_bytes = 4096;
  auto client = MakeClient(io.get_executor(), options);
  struct Case {
    std::string target;
    int status;
    std::string why;
  };
  const std::vector<Case> cases = {
      {"/big", 200, "exceeds max_body_bytes (4096)"},
      {"/chunked", 201, "exceeds max_body_bytes (4096)"},
      {"/cut", 202, "truncated at 100 of 3000 bytes"},
      {"/slow", 200, "timed out after 300ms"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.target);
    Request request = Get(server.Url(c.target));
    request.timeout = 300ms;
    auto failed = RunSync(io, client->Send(request));
    ASSERT_FALSE(failed) << "status " << failed->status;
    EXPECT_EQ(failed.error().category, ErrorCategory::kRetryable);
    EXPECT_NE(failed.error().message.find(c.why), std::string::npos) << failed.error().message;

    request.accept_partial_body = true;
    auto got = RunSync(io, client->Send(request));
    ASSERT_TRUE(got) << got.error().Describe();
    EXPECT_EQ(got->status, c.status);
    ASSERT_TRUE(got->body_cut_short);
    EXPECT_NE(got->body_cut_short->find(c.why), std::string::npos) << *got->body_cut_short;
    EXPECT_LE(got->body.size(), 4096u);
  }
  // The connection left mid-body was closed, not pooled: the next request gets a clean answer.
  Request next = Get(server.Url("/ok"));
  next.accept_partial_body = true;
  auto ok = RunSync(io, client->Send(next));
  ASSERT_TRUE(ok) << ok.error().Describe();
  EXPECT_EQ(ok->body, "ok");
  EXPECT_FALSE(ok->body_cut_short);
}

}  // namespace
}  // namespace reelq::http
