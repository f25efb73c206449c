// AUTH and SELECT in the connection handshake, including after a reconnect.
#include <gtest/gtest.h>

#include "redis_server.h"
#include "reelq/common/redis.h"
#include "run_async.h"

namespace reelq::redis {
namespace {

using namespace std::chrono_literals;
using testing::RedisServer;
using testing::RedisServerOptions;
using testing::RunAsync;

class RedisAuthTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = std::make_unique<RedisServer>(RedisServerOptions{.password = "s3cret-p4ss"});
  }
  static void TearDownTestSuite() { server_.reset(); }

  Result<ConnectionPtr> ConnectWith(Options options) {
    return RunAsync(io_, Connect(io_.get_executor(), std::move(options)));
  }

  static std::unique_ptr<RedisServer> server_;
  asio::io_context io_;
};

std::unique_ptr<RedisServer> RedisAuthTest::server_;

TEST_F(RedisAuthTest, RightPasswordAndDatabase) {
  Options options = server_->ClientOptions();
  options.db = 5;
  auto connected = ConnectWith(options);
  ASSERT_TRUE(connected) << connected.error().Describe();
  auto set = RunAsync(io_, (*connected)->Command({"SET", "in-db-5", "x"}));
  ASSERT_TRUE(set) << set.error().Describe();
  EXPECT_EQ(set->str, "OK");
  // The key landed in db 5, not db 0.
  auto keyspace = server_->InfoField("db5", "keyspace");
  ASSERT_TRUE(keyspace.has_value());
  EXPECT_NE(keyspace->find("keys=1"), std::string::npos) << *keyspace;
  EXPECT_EQ(server_->Run({"EXISTS", "in-db-5"}).integer, 0);
}

TEST_F(RedisAuthTest, WrongPasswordIsAnAuthFailure) {
  Options options = server_->ClientOptions();
  options.password = "wrong";
  auto connected = ConnectWith(options);
  ASSERT_FALSE(connected);
  EXPECT_EQ(connected.error().category, ErrorCategory::kAuthFailed);
  EXPECT_NE(connected.error().message.find("AUTH refused"), std::string::npos)
      << connected.error().message;
  // The password never appears in the message.
  EXPECT_EQ(connected.error().message.find("wrong"), std::string::npos)
      << connected.error().message;
}

TEST_F(RedisAuthTest, MissingPasswordIsAnAuthFailure) {
  Options options = server_->ClientOptions();
  options.password.clear();
  auto connected = ConnectWith(options);
  ASSERT_FALSE(connected);
  EXPECT_EQ(connected.error().category, ErrorCategory::kAuthFailed);
  EXPECT_NE(connected.error().message.find("NOAUTH"), std::string::npos)
      << connected.error().message;
}

TEST_F(RedisAuthTest, BadDatabaseIsRefused) {
  Options options = server_->ClientOptions();
  options.db = 9999;  // redis has 16 by default
  auto connected = ConnectWith(options);
  ASSERT_FALSE(connected);
  EXPECT_NE(connected.error().message.find("SELECT 9999 failed"), std::string::npos)
      << connected.error().message;
}

TEST_F(RedisAuthTest, ReconnectAuthenticatesAgain) {
  Options options = server_->ClientOptions();
  options.db = 2;
  auto connected = ConnectWith(options);
  ASSERT_TRUE(connected) << connected.error().Describe();
  ConnectionPtr connection = std::move(*connected);
  server_->Restart();
  testing::RunFor(io_, 50ms);
  auto set = RunAsync(io_, connection->Command({"INCR", "after-restart"}));
  ASSERT_TRUE(set) << set.error().Describe();
  EXPECT_EQ(set->integer, 1);
  auto keyspace = server_->InfoField("db2", "keyspace");
  ASSERT_TRUE(keyspace.has_value());
}

}  // namespace
}  // namespace reelq::redis
