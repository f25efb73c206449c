// Script: EVALSHA by a locally computed SHA-1, and recovery from NOSCRIPT.
#include <gtest/gtest.h>

#include "redis_server.h"
#include "reelq/common/redis.h"
#include "run_async.h"

namespace reelq::redis {
namespace {

using namespace std::chrono_literals;
using testing::RedisServer;
using testing::RunAsync;

TEST(RedisScriptTest, ShaIsComputedLocally) {
  // Known SHA-1 of "return 1" (as SCRIPT LOAD reports it).
  Script script("one", "return 1");
  EXPECT_EQ(script.sha(), "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
  EXPECT_EQ(script.name(), "one");
}

TEST(RedisScriptTest, LoadsOnNoscriptAndRetriesOnce) {
  RedisServer server;
  asio::io_context io;
  auto connected = RunAsync(io, Connect(io.get_executor(), server.ClientOptions()));
  ASSERT_TRUE(connected) << connected.error().Describe();
  ConnectionPtr connection = std::move(*connected);

  Script add("add", "return redis.call('INCRBY', KEYS[1], ARGV[1])");
  auto first = RunAsync(io, add.Call(*connection, {"total"}, {"5"}));
  ASSERT_TRUE(first) << first.error().Describe();
  EXPECT_EQ(first->integer, 5);
  EXPECT_EQ(server.CommandCalls("script|load"), 1);

  auto loaded = server.Run({"SCRIPT", "EXISTS", add.sha()});
  ASSERT_EQ(loaded.elements.size(), 1u);
  EXPECT_EQ(loaded.elements[0].integer, 1);

  // Cached: no second load.
  auto second = RunAsync(io, add.Call(*connection, {"total"}, {"2"}));
  ASSERT_TRUE(second);
  EXPECT_EQ(second->integer, 7);
  EXPECT_EQ(server.CommandCalls("script|load"), 1);

  server.Run({"SCRIPT", "FLUSH"});
  auto third = RunAsync(io, add.Call(*connection, {"total"}, {"3"}));
  ASSERT_TRUE(third) << third.error().Describe();
  EXPECT_EQ(third->integer, 10);
  EXPECT_EQ(server.CommandCalls("script|load"), 2);
  EXPECT_EQ(server.CommandCalls("evalsha"), 5);  // 2 NOSCRIPT + 3 that ran

  // A script's own error reply is a value, not a failure, and is not retried.
  Script failing("failing", "return redis.error_reply('DOMAIN something went wrong')");
  auto domain = RunAsync(io, failing.Call(*connection, {}, {}));
  ASSERT_TRUE(domain);
  EXPECT_TRUE(domain->IsError());
  EXPECT_EQ(domain->str, "DOMAIN something went wrong");

  // A script that does not compile is reported with its name.
  Script broken("broken", "this is not lua");
  auto bad = RunAsync(io, broken.Call(*connection, {}, {}));
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().category, ErrorCategory::kInternal);
  EXPECT_NE(bad.error().message.find("broken"), std::string::npos) << bad.error().message;
}

}  // namespace
}  // namespace reelq::redis
