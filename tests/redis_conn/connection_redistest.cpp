// The asynchronous Redis connection against a real redis-server: reply types, binary safety,
// pipelining under concurrency, per-command deadlines, Close() and destruction with commands
// in flight.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "redis_server.h"
#include "reelq/common/redis.h"
#include "run_async.h"

namespace reelq::redis {
namespace {

using namespace std::chrono_literals;
using testing::RedisServer;
using testing::RunAsync;

class RedisConnectionTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = std::make_unique<RedisServer>(); }
  static void TearDownTestSuite() { server_.reset(); }

  void SetUp() override {
    server_->Run({"FLUSHALL"});
    connection_ = NewConnection();
  }

  ConnectionPtr NewConnection() {
    auto connected = RunAsync(io_, Connect(io_.get_executor(), server_->ClientOptions()));
    if (!connected) throw std::runtime_error(connected.error().Describe());
    return *connected;
  }

  Result<Reply> Cmd(std::vector<std::string> args) {
    return RunAsync(io_, connection_->Command(std::move(args)));
  }

  static std::unique_ptr<RedisServer> server_;
  asio::io_context io_;
  ConnectionPtr connection_;
};

std::unique_ptr<RedisServer> RedisConnectionTest::server_;

TEST_F(RedisConnectionTest, ReplyTypes) {
  auto status = Cmd({"SET", "k", "v"});
  ASSERT_TRUE(status) << status.error().Describe();
  EXPECT_EQ(status->type, Reply::Type::kStatus);
  EXPECT_EQ(status->str, "OK");

  auto str = Cmd({"GET", "k"});
  ASSERT_TRUE(str);
  EXPECT_EQ(str->type, Reply::Type::kString);
  EXPECT_EQ(str->str, "v");

  auto nil = Cmd({"GET", "missing"});
  ASSERT_TRUE(nil);
  EXPECT_TRUE(nil->IsNil());

  auto integer = Cmd({"INCRBY", "n", "-42"});
  ASSERT_TRUE(integer);
  EXPECT_EQ(integer->type, Reply::Type::kInteger);
  EXPECT_EQ(integer->integer, -42);

  // An error reply is a value, not a failed Result.
  auto error = Cmd({"INCR", "k"});
  ASSERT_TRUE(error);
  EXPECT_TRUE(error->IsError());
  EXPECT_TRUE(error->str.starts_with("ERR")) << error->str;

  auto unknown = Cmd({"NOSUCHCOMMAND", "x"});
  ASSERT_TRUE(unknown);
  EXPECT_TRUE(unknown->IsError());

  auto mget = Cmd({"MGET", "k", "missing"});
  ASSERT_TRUE(mget);
  ASSERT_EQ(mget->type, Reply::Type::kArray);
  ASSERT_EQ(mget->elements.size(), 2u);
  EXPECT_EQ(mget->elements[0].str, "v");
  EXPECT_TRUE(mget->elements[1].IsNil());

  auto nested = Cmd({"EVAL", "return {1, {2, 'x', {}}, redis.status_reply('FINE'), 'y'}", "0"});
  ASSERT_TRUE(nested);
  ASSERT_EQ(nested->type, Reply::Type::kArray);
  ASSERT_EQ(nested->elements.size(), 4u);
  EXPECT_EQ(nested->elements[0].integer, 1);
  const Reply& inner = nested->elements[1];
  ASSERT_EQ(inner.type, Reply::Type::kArray);
  ASSERT_EQ(inner.elements.size(), 3u);
  EXPECT_EQ(inner.elements[0].integer, 2);
  EXPECT_EQ(inner.elements[1].str, "x");
  EXPECT_EQ(inner.elements[2].type, Reply::Type::kArray);
  EXPECT_TRUE(inner.elements[2].elements.empty());
  EXPECT_EQ(nested->elements[2].type, Reply::Type::kStatus);
  EXPECT_EQ(nested->elements[2].str, "FINE");
  EXPECT_EQ(nested->elements[3].str, "y");
}

TEST_F(RedisConnectionTest, BinarySafeArguments) {
  const std::string key("bin\0key\r\n", 9);
  std::string value;
  for (int i = 0; i < 256; ++i) value.push_back(static_cast<char>(i));
  value += std::string("\0\0*3\r\n$", 7);
  auto set = Cmd({"SET", key, value});
  ASSERT_TRUE(set);
  EXPECT_EQ(set->str, "OK");
  auto got = Cmd({"GET", key});
  ASSERT_TRUE(got);
  EXPECT_EQ(got->str, value);
  auto len = Cmd({"STRLEN", key});
  ASSERT_TRUE(len);
  EXPECT_EQ(len->integer, static_cast<int64_t>(value.size()));
  // The key with the NUL is not the key cut at the NUL.
  auto cut = Cmd({"EXISTS", "bin"});
  ASSERT_TRUE(cut);
  EXPECT_EQ(cut->integer, 0);
  auto empty = Cmd({"SET", "", ""});
  ASSERT_TRUE(empty);
  auto got_empty = Cmd({"GET", ""});
  ASSERT_TRUE(got_empty);
  EXPECT_EQ(got_empty->type, Reply::Type::kString);
  EXPECT_EQ(got_empty->str, "");
}

// Each worker increments its own counter and appends to its own list; every reply must be the
// one for the command that coroutine sent (no cross-talk between pipelined commands).
awaitable<int> PipelineWorker(ConnectionPtr connection, int id, int count) {
  int mismatches = 0;
  const std::string counter = "counter:" + std::to_string(id);
  const std::string list = "list:" + std::to_string(id);
  for (int i = 1; i <= count; ++i) {
    auto incr = co_await connection->Command(testing::Args("INCR", counter));
    if (!incr || incr->integer != i) ++mismatches;
    auto push = co_await connection->Command(testing::Args("RPUSH", list, std::to_string(i)));
    if (!push || push->integer != i) ++mismatches;
  }
  co_return mismatches;
}

awaitable<int> RunPipeline(ConnectionPtr connection, int workers, int per_worker) {
  auto executor = co_await asio::this_coro::executor;
  std::vector<std::future<int>> futures;
  for (int w = 0; w < workers; ++w) {
    futures.push_back(
        asio::co_spawn(executor, PipelineWorker(connection, w, per_worker), asio::use_future));
  }
  // Wait without blocking the io thread: poll the futures on a timer.
  asio::steady_timer timer(executor);
  int mismatches = 0;
  for (auto& f : futures) {
    while (f.wait_for(0s) != std::future_status::ready) {
      timer.expires_after(1ms);
      co_await timer.async_wait(use_awaitable);
    }
    mismatches += f.get();
  }
  co_return mismatches;
}

TEST_F(RedisConnectionTest, TenThousandPipelinedCommandsFromHundredCoroutines) {
  constexpr int kWorkers = 100;
  constexpr int kPerWorker = 50;  // x2 commands = 10,000 commands
  const auto start = std::chrono::steady_clock::now();
  int mismatches = RunAsync(io_, RunPipeline(connection_, kWorkers, kPerWorker));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(mismatches, 0);
  for (int w : {0, 37, 99}) {
    auto list = Cmd({"LRANGE", "list:" + std::to_string(w), "0", "-1"});
    ASSERT_TRUE(list);
    ASSERT_EQ(list->elements.size(), static_cast<size_t>(kPerWorker));
    for (int i = 0; i < kPerWorker; ++i) EXPECT_EQ(list->elements[i].str, std::to_string(i + 1));
  }
  std::printf("[ bench    ] %d pipelined commands from %d coroutines in %.3f s: %.0f commands/s\n",
              2 * kWorkers * kPerWorker, kWorkers, seconds, 2 * kWorkers * kPerWorker / seconds);
}

TEST_F(RedisConnectionTest, CommandTimeoutLeavesConnectionUsable) {
  ASSERT_TRUE(Cmd({"SET", "after", "value"}));
  // DEBUG SLEEP blocks the server; our 50 ms deadline fires first.
  auto slept = RunAsync(io_, connection_->Command({"DEBUG", "SLEEP", "0.3"}, 50ms));
  ASSERT_FALSE(slept);
  EXPECT_EQ(slept.error().category, ErrorCategory::kRetryable);
  EXPECT_NE(slept.error().message.find("redis command DEBUG timed out after 50ms"),
            std::string::npos)
      << slept.error().message;
  // The late "+OK" of DEBUG SLEEP must not be taken as the answer to GET.
  auto got = Cmd({"GET", "after"});
  ASSERT_TRUE(got) << got.error().Describe();
  EXPECT_EQ(got->type, Reply::Type::kString);
  EXPECT_EQ(got->str, "value");
}

// A master short of min-replicas-to-write (a freshly promoted one, until a replica has synced)
// refuses writes for now: a retryable failure naming why, not an error reply a caller would
// take as final; nothing was written, and the connection stays usable.
TEST_F(RedisConnectionTest, AServerRefusingForNowIsARetryableFailure) {
  ASSERT_TRUE(Cmd({"CONFIG", "SET", "min-replicas-to-write", "1"}));
  auto refused = Cmd({"SET", "k", "v"});
  ASSERT_TRUE(Cmd({"CONFIG", "SET", "min-replicas-to-write", "0"}));
  ASSERT_FALSE(refused) << "answered " << refused->str;
  EXPECT_EQ(refused.error().category, ErrorCategory::kRetryable);
  EXPECT_NE(refused.error().message.find("NOREPLICAS"), std::string::npos)
      << refused.error().message;
  auto got = Cmd({"GET", "k"});
  ASSERT_TRUE(got) << got.error().Describe();
  EXPECT_EQ(got->type, Reply::Type::kNil) << "the refused write was made";
  // Any other error reply is still a reply: scripts report their outcomes that way.
  auto wrong = Cmd({"INCR", "no-such-command-arity", "x"});
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->type, Reply::Type::kError);
}

TEST_F(RedisConnectionTest, BlockingCommandOnItsOwnConnectionTimesOut) {
  auto blocking = NewConnection();
  // Redis blocks for up to 1 s; we give up after 100 ms.
  auto popped = RunAsync(io_, blocking->Command({"BLPOP", "empty", "1"}, 100ms));
  ASSERT_FALSE(popped);
  EXPECT_EQ(popped.error().category, ErrorCategory::kRetryable);
  // The main connection was never held up.
  auto pong = Cmd({"PING"});
  ASSERT_TRUE(pong);
  EXPECT_EQ(pong->str, "PONG");
  // The blocking connection is usable again once the server-side block ends.
  auto after = RunAsync(io_, blocking->Command({"PING"}, 3s));
  ASSERT_TRUE(after) << after.error().Describe();
  EXPECT_EQ(after->str, "PONG");
}

TEST_F(RedisConnectionTest, CloseIsIdempotentAndCancels) {
  connection_->Close();
  connection_->Close();
  auto after = Cmd({"PING"});
  ASSERT_FALSE(after);
  EXPECT_EQ(after.error().category, ErrorCategory::kCancelled);
}

TEST_F(RedisConnectionTest, RefusesCommandsThatBreakThePipeline) {
  auto subscribe = Cmd({"subscribe", "channel"});
  ASSERT_FALSE(subscribe);
  EXPECT_EQ(subscribe.error().category, ErrorCategory::kInvalidRequest);
  auto empty = Cmd({});
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().category, ErrorCategory::kInvalidRequest);
  EXPECT_TRUE(Cmd({"PING"}));
}

awaitable<void> Issue(ConnectionPtr connection, std::vector<std::string> args,
                      std::shared_ptr<std::vector<Result<Reply>>> results) {
  auto command = connection->Command(std::move(args));
  connection.reset();  // only the command keeps the connection's state alive now
  results->push_back(co_await std::move(command));
}

TEST_F(RedisConnectionTest, DestroyingTheConnectionWithCommandsInFlight) {
  auto results = std::make_shared<std::vector<Result<Reply>>>();
  constexpr int kCommands = 500;
  // The server sleeps, so everything behind the DEBUG SLEEP is written to the socket and still
  // waiting for its reply when the connection goes away.
  asio::co_spawn(io_, Issue(connection_, {"DEBUG", "SLEEP", "0.2"}, results), asio::detached);
  for (int i = 0; i < kCommands; ++i) {
    asio::co_spawn(io_, Issue(connection_, {"INCR", "destroyed"}, results), asio::detached);
  }
  testing::RunFor(io_, 50ms);
  EXPECT_TRUE(results->empty());
  connection_.reset();
  testing::RunFor(io_, 100ms);
  ASSERT_EQ(results->size(), static_cast<size_t>(kCommands + 1));
  for (const auto& r : *results) {
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().category, ErrorCategory::kCancelled) << r.error().Describe();
  }
  // Commands still in the caller's hands when the connection dies are cancelled as well.
  auto late = NewConnection();
  auto command = late->Command({"PING"});
  late.reset();
  auto result = RunAsync(io_, std::move(command));
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().category, ErrorCategory::kCancelled);
}

TEST_F(RedisConnectionTest, LargeValuesNeedManyReadsAndWrites) {
  // Well above hiredis's 16 KiB read chunk and the socket buffers: the adapter must keep
  // re-arming its waits until the whole reply has arrived.
  std::string big(1 << 20, 'x');
  for (size_t i = 0; i < big.size(); i += 4096) big[i] = static_cast<char>('a' + (i / 4096) % 26);
  auto set = Cmd({"SET", "big", big});
  ASSERT_TRUE(set) << set.error().Describe();
  auto got = Cmd({"GET", "big"});
  ASSERT_TRUE(got) << got.error().Describe();
  EXPECT_EQ(got->str.size(), big.size());
  EXPECT_TRUE(got->str == big);
  auto many = Cmd({"MGET", "big", "big", "big", "missing"});
  ASSERT_TRUE(many);
  ASSERT_EQ(many->elements.size(), 4u);
  EXPECT_TRUE(many->elements[2].str == big);
  EXPECT_TRUE(many->elements[3].IsNil());
}

TEST(RedisConnectTest, UnreachableServerFailsRetryable) {
  asio::io_context io;
  Options options;
  options.port = testing::FreePort();  // nothing listens there
  options.connect_timeout = 500ms;
  auto start = std::chrono::steady_clock::now();
  auto connected = RunAsync(io, Connect(io.get_executor(), options));
  ASSERT_FALSE(connected);
  EXPECT_EQ(connected.error().category, ErrorCategory::kRetryable);
  EXPECT_NE(connected.error().message.find("cannot connect to redis"), std::string::npos)
      << connected.error().message;
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
}

TEST(RedisConnectTest, ConnectTimeoutWhenTheServerNeverAnswers) {
  // A listener that never accepts: the kernel completes the TCP handshake, nobody answers PING.
  asio::io_context io;
  asio::ip::tcp::acceptor silent(io, {asio::ip::make_address("127.0.0.1"), 0});
  Options options;
  options.port = silent.local_endpoint().port();
  options.connect_timeout = 200ms;
  auto start = std::chrono::steady_clock::now();
  auto connected = RunAsync(io, Connect(io.get_executor(), options));
  auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(connected);
  EXPECT_EQ(connected.error().category, ErrorCategory::kRetryable);
  EXPECT_NE(connected.error().message.find("connect timed out after 200ms"), std::string::npos)
      << connected.error().message;
  EXPECT_GE(elapsed, 190ms);
  EXPECT_LT(elapsed, 2s);
}

TEST(RedisConnectTest, MalformedOptionsAreRefused) {
  asio::io_context io;
  Options options;
  options.port = 70000;
  auto connected = RunAsync(io, Connect(io.get_executor(), options));
  ASSERT_FALSE(connected);
  EXPECT_EQ(connected.error().category, ErrorCategory::kInvalidRequest);
  EXPECT_NE(connected.error().message.find("port"), std::string::npos);
}

}  // namespace
}  // namespace reelq::redis
