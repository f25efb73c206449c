// The set-up the queue's Redis tests share: one real redis-server per test suite, emptied
// before each test, a ManualClock, and a JobStore on prefix "t" over its own connection.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "redis_server.h"
#include "reelq/common/clock.h"
#include "reelq/common/redis.h"
#include "reelq/queue/job_store.h"
#include "run_async.h"

namespace reelq::queue {

class StoreTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = std::make_unique<testing::RedisServer>(); }
  static void TearDownTestSuite() { server_.reset(); }

  void SetUp() override {
    server_->Run({"FLUSHALL"});
    clock_ = std::make_shared<ManualClock>();
    store_ = NewStore();
  }

  // A connection of its own, for stores that race the test's store_.
  redis::ConnectionPtr NewConnection() {
    auto connected =
        testing::RunAsync(io_, redis::Connect(io_.get_executor(), server_->ClientOptions()));
    if (!connected) throw std::runtime_error(connected.error().Describe());
    return *connected;
  }

  std::unique_ptr<JobStore> NewStore() {
    return std::make_unique<JobStore>(NewConnection(), "t", clock_);
  }

  void Sync(const QueueSettings& settings) {
    auto r = testing::RunAsync(io_, store_->SyncSettings(settings));
    ASSERT_TRUE(r) << r.error().Describe();
  }

  // An account whose rate and concurrency never hold a test's jobs back.
  static AccountSetting UnboundedAccount(std::string id) {
    return {
        .id = std::move(id), .provider = "p", .requests_per_minute = 1e9, .max_concurrent = 100000};
  }

  // One model "m1" served by `accounts`.
  static QueueSettings OneModel(std::vector<AccountSetting> accounts = {UnboundedAccount("a1")}) {
    QueueSettings s;
    ModelSetting m{.id = "m1"};
    for (const auto& a : accounts) m.accounts.push_back(a.id);
    s.models.push_back(std::move(m));
    s.accounts = std::move(accounts);
    return s;
  }

  inline static std::unique_ptr<testing::RedisServer> server_;
  asio::io_context io_;
  std::shared_ptr<ManualClock> clock_;
  std::unique_ptr<JobStore> store_;
};

}  // namespace reelq::queue
