// The connection when Redis goes away: SIGKILL with commands in flight, commands issued while
// it is down, and the reconnect after Restart().
#include <gtest/gtest.h>

#include <memory>

#include "redis_server.h"
#include "reelq/common/redis.h"
#include "run_async.h"

namespace reelq::redis {
namespace {

using namespace std::chrono_literals;
using testing::RedisServer;
using testing::RedisServerOptions;
using testing::RunAsync;

awaitable<Result<Reply>> After(std::chrono::milliseconds delay, ConnectionPtr connection,
                               std::vector<std::string> args, std::chrono::milliseconds timeout) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  timer.expires_after(delay);
  co_await timer.async_wait(use_awaitable);
  co_return co_await connection->Command(std::move(args), timeout);
}

TEST(RedisFaultTest, KillFailsInFlightCommandsThenReconnectsAfterRestart) {
  RedisServer server(RedisServerOptions{.appendonly = true, .appendfsync = "always"});
  asio::io_context io;
  auto connected = RunAsync(io, Connect(io.get_executor(), server.ClientOptions()));
  ASSERT_TRUE(connected) << connected.error().Describe();
  ConnectionPtr connection = *connected;
  ASSERT_TRUE(RunAsync(io, connection->Command({"SET", "durable", "yes"})));

  // A command the server is still working on when it dies.
  auto in_flight =
      asio::co_spawn(io, connection->Command({"DEBUG", "SLEEP", "5"}, 10s), asio::use_future);
  testing::RunFor(io, 100ms);
  server.Kill();
  auto start = std::chrono::steady_clock::now();
  io.restart();
  while (in_flight.wait_for(0s) != std::future_status::ready &&
         std::chrono::steady_clock::now() - start < 5s) {
    io.run_one_for(10ms);
  }
  ASSERT_EQ(in_flight.wait_for(0s), std::future_status::ready) << "in-flight command hung";
  auto lost = in_flight.get();
  ASSERT_FALSE(lost);
  EXPECT_EQ(lost.error().category, ErrorCategory::kRetryable);
  EXPECT_NE(lost.error().message.find("lost"), std::string::npos) << lost.error().message;

  // While Redis is down, a command waits for the reconnect and then gives up at its deadline.
  auto down = RunAsync(io, connection->Command({"GET", "durable"}, 200ms));
  ASSERT_FALSE(down);
  EXPECT_EQ(down.error().category, ErrorCategory::kRetryable);
  EXPECT_NE(down.error().message.find("not connected"), std::string::npos) << down.error().message;

  // A command issued now waits for the reconnect that follows the restart.
  auto waiting =
      asio::co_spawn(io, After(0ms, connection, {"GET", "durable"}, 10s), asio::use_future);
  testing::RunFor(io, 50ms);
  server.Restart();
  auto got = RunAsync(io, [](std::future<Result<Reply>> f) -> awaitable<Result<Reply>> {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    while (f.wait_for(0s) != std::future_status::ready) {
      timer.expires_after(5ms);
      co_await timer.async_wait(use_awaitable);
    }
    co_return f.get();
  }(std::move(waiting)));
  ASSERT_TRUE(got) << got.error().Describe();
  EXPECT_EQ(got->str, "yes");  // appendfsync always: the write survived SIGKILL

  auto after = RunAsync(io, connection->Command({"INCR", "after-restart"}));
  ASSERT_TRUE(after) << after.error().Describe();
  EXPECT_EQ(after->integer, 1);
}

TEST(RedisFaultTest, CleanRestartReconnects) {
  RedisServer server;
  asio::io_context io;
  auto connected = RunAsync(io, Connect(io.get_executor(), server.ClientOptions()));
  ASSERT_TRUE(connected) << connected.error().Describe();
  ConnectionPtr connection = *connected;
  server.Restart();
  // The first command after a restart may race the close notification; it either fails
  // retryable or succeeds, and a command shortly after must succeed.
  auto first = RunAsync(io, connection->Command({"PING"}));
  if (!first) {
    EXPECT_EQ(first.error().category, ErrorCategory::kRetryable);
  }
  auto second = RunAsync(io, connection->Command({"PING"}));
  ASSERT_TRUE(second) << second.error().Describe();
  EXPECT_EQ(second->str, "PONG");
}

}  // namespace
}  // namespace reelq::redis
