// The connection when Redis goes away: SIGKILL with commands in flight, commands issued while
// it is down, and the reconnect after Restart().
#include <gtest/gtest.h>

#include <signal.h>

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
  ConnectionPtr connection = std::move(*connected);
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

awaitable<Result<Reply>> AwaitFuture(std::future<Result<Reply>> f) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  while (f.wait_for(0s) != std::future_status::ready) {
    timer.expires_after(2ms);
    co_await timer.async_wait(use_awaitable);
  }
  co_return f.get();
}

TEST(RedisFaultTest, CommandsIssuedWhileDownAreSentInOrderAfterReconnect) {
  RedisServer server;
  asio::io_context io;
  auto connected = RunAsync(io, Connect(io.get_executor(), server.ClientOptions()));
  ASSERT_TRUE(connected) << connected.error().Describe();
  ConnectionPtr connection = std::move(*connected);
  server.Stop();
  testing::RunFor(io, 50ms);  // the connection notices and starts reconnecting
  std::vector<std::future<Result<Reply>>> pushes;
  for (int i = 0; i < 50; ++i) {
    pushes.push_back(asio::co_spawn(
        io, connection->Command({"RPUSH", "order", std::to_string(i)}, 10s), asio::use_future));
  }
  testing::RunFor(io, 100ms);
  server.Restart();
  for (int i = 0; i < 50; ++i) {
    auto pushed = RunAsync(io, AwaitFuture(std::move(pushes[i])));
    ASSERT_TRUE(pushed) << pushed.error().Describe();
    EXPECT_EQ(pushed->integer, i + 1);
  }
  auto list = server.Run({"LRANGE", "order", "0", "-1"});
  ASSERT_EQ(list.elements.size(), 50u);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(list.elements[i].str, std::to_string(i));
}

TEST(RedisFaultTest, CleanRestartReconnects) {
  RedisServer server;
  asio::io_context io;
  auto connected = RunAsync(io, Connect(io.get_executor(), server.ClientOptions()));
  ASSERT_TRUE(connected) << connected.error().Describe();
  ConnectionPtr connection = std::move(*connected);
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

TEST(RedisFaultTest, ServerThatNeverComesBackFailsCommandsAtTheirDeadline) {
  auto server = std::make_unique<RedisServer>();
  asio::io_context io;
  auto connected = RunAsync(io, Connect(io.get_executor(), server->ClientOptions()));
  ASSERT_TRUE(connected) << connected.error().Describe();
  ConnectionPtr connection = std::move(*connected);
  auto in_flight =
      asio::co_spawn(io, connection->Command({"DEBUG", "SLEEP", "5"}, 30s), asio::use_future);
  testing::RunFor(io, 50ms);
  server->Kill();
  server.reset();  // the port is free now; nothing will ever answer there again
  // The in-flight command fails at once (connection lost), not at its 30 s deadline.
  auto lost = RunAsync(io, AwaitFuture(std::move(in_flight)), 2s);
  ASSERT_FALSE(lost);
  EXPECT_EQ(lost.error().category, ErrorCategory::kRetryable);
  // Each later command fails at its own deadline while the reconnect loop keeps trying.
  for (auto timeout : {100ms, 300ms, 100ms}) {
    const auto start = std::chrono::steady_clock::now();
    auto result = RunAsync(io, connection->Command({"PING"}, timeout), 5s);
    const auto elapsed = std::chrono::steady_clock::now() - start;
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().category, ErrorCategory::kRetryable);
    EXPECT_NE(result.error().message.find("not connected"), std::string::npos)
        << result.error().message;
    EXPECT_GE(elapsed, timeout - 5ms);
    EXPECT_LT(elapsed, timeout + 1s);
  }
  // Dropping the connection while it is reconnecting stops the loop and cancels a waiter.
  auto waiter = asio::co_spawn(io, connection->Command({"PING"}, 30s), asio::use_future);
  testing::RunFor(io, 20ms);
  connection.reset();
  auto cancelled = RunAsync(io, AwaitFuture(std::move(waiter)), 2s);
  ASSERT_FALSE(cancelled);
  EXPECT_EQ(cancelled.error().category, ErrorCategory::kCancelled);
  // Nothing is left running: the io_context runs out of work.
  io.restart();
  const auto start = std::chrono::steady_clock::now();
  io.run_for(3s);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s) << "something kept the loop alive";
}

TEST(RedisFaultTest, FrozenServerTimesOutThenLateRepliesAreIgnored) {
  RedisServer server;
  asio::io_context io;
  auto connected = RunAsync(io, Connect(io.get_executor(), server.ClientOptions()));
  ASSERT_TRUE(connected) << connected.error().Describe();
  ConnectionPtr connection = std::move(*connected);
  ::kill(server.pid(), SIGSTOP);
  std::vector<std::future<Result<Reply>>> incrs;
  for (int i = 0; i < 100; ++i) {
    incrs.push_back(
        asio::co_spawn(io, connection->Command({"INCR", "frozen"}, 100ms), asio::use_future));
  }
  for (auto& f : incrs) {
    auto r = RunAsync(io, AwaitFuture(std::move(f)), 3s);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().category, ErrorCategory::kRetryable);
    EXPECT_NE(r.error().message.find("timed out after 100ms"), std::string::npos);
  }
  ::kill(server.pid(), SIGCONT);
  // The 100 late replies arrive and are dropped; the next reply belongs to the next command.
  auto next = RunAsync(io, connection->Command({"INCR", "frozen"}));
  ASSERT_TRUE(next) << next.error().Describe();
  EXPECT_EQ(next->integer, 101);  // the server did run the timed-out ones
}

// A server that leaves a command unanswered for seconds may be gone without the socket knowing:
// a host powered off or cut off sends no reset (here: the process stopped, which the kernel
// does not report either). The connection is made again, which finds out (and, with
// sentinels, finds the master they promoted meanwhile), rather than kept and every later
// command timed out on it; once the server answers, commands go through.
TEST(RedisFaultTest, ASilentServerPastAFullDeadlineIsConnectedToAgain) {
  RedisServer server;
  asio::io_context io;
  auto connected = RunAsync(io, Connect(io.get_executor(), server.ClientOptions()));
  ASSERT_TRUE(connected) << connected.error().Describe();
  ConnectionPtr connection = std::move(*connected);
  const uint64_t session = connection->Session();
  ::kill(server.pid(), SIGSTOP);
  auto silent = RunAsync(io, connection->Command({"INCR", "silent"}, 2s), 5s);
  testing::RunFor(io, 100ms);
  const uint64_t after = connection->Session();
  ::kill(server.pid(), SIGCONT);
  ASSERT_FALSE(silent);
  EXPECT_NE(silent.error().message.find("timed out after 2000ms"), std::string::npos)
      << silent.error().message;
  EXPECT_NE(after, session) << "the silent connection was kept";
  auto next = RunAsync(io, connection->Command({"INCR", "silent"}));
  ASSERT_TRUE(next) << next.error().Describe();
}

// The silence that makes a connection be made again is the server's, counted from when the
// command was sent, not from when the caller issued it. A command issued while Redis is down
// (restarting, loading its AOF) is sent on the new connection with little of its deadline left;
// when that deadline passes, it alone times out: the connection, ready a moment ago, is kept,
// and the commands sent on it behind that one are answered.
TEST(RedisFaultTest, ACommandSentLateOnANewConnectionTimesOutAloneAndTheConnectionIsKept) {
  RedisServer server;
  asio::io_context io;
  redis::Options options = server.ClientOptions();
  options.connect_timeout = 20s;  // the handshake waits for the stopped server below
  options.reconnect_max = 100ms;
  auto connected = RunAsync(io, Connect(io.get_executor(), options));
  ASSERT_TRUE(connected) << connected.error().Describe();
  ConnectionPtr connection = std::move(*connected);
  server.Kill();
  testing::RunFor(io, 50ms);  // the connection notices and starts reconnecting
  server.Restart();
  // Stopped, the server still takes TCP connections (the kernel does) but answers nothing: the
  // next connect waits in its handshake, as on a server loading its data set.
  ::kill(server.pid(), SIGSTOP);
  // Issued while not connected: a blocking pop that, once sent, answers only after 3 s, so its
  // 3 s deadline passes while the server has it; and a command pipelined behind it.
  auto late =
      asio::co_spawn(io, connection->Command({"BLPOP", "nothing", "3"}, 3s), asio::use_future);
  auto behind = asio::co_spawn(io, connection->Command({"INCR", "behind"}, 15s), asio::use_future);
  testing::RunFor(io, 1500ms);
  const uint64_t session = connection->Session();
  // The handshake is answered: both are sent with 1.5 s of the first one's deadline left.
  ::kill(server.pid(), SIGCONT);
  auto timed_out = RunAsync(io, AwaitFuture(std::move(late)), 5s);
  ASSERT_FALSE(timed_out);
  EXPECT_NE(timed_out.error().message.find("timed out after 3000ms"), std::string::npos)
      << timed_out.error().message;
  EXPECT_EQ(timed_out.error().message.find("not connected"), std::string::npos)
      << "the command was never sent, so this test proves nothing: " << timed_out.error().message;
  auto answered = RunAsync(io, AwaitFuture(std::move(behind)), 10s);
  ASSERT_TRUE(answered) << "the new connection was dropped: " << answered.error().Describe();
  EXPECT_EQ(answered->integer, 1);
  EXPECT_EQ(connection->Session(), session) << "the new connection was made again";
}

}  // namespace
}  // namespace reelq::redis
