// Issue 11 event-driven dispatch against a real redis-server: a job submitted through another
// scheduler's store (so no in-process Wake) or a slot freed by a worker's completion wakes the
// dispatch loop at once through the Redis wake list, although its round timer is 10 s.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "redis_server.h"
#include "reelq/common/clock.h"
#include "reelq/common/redis.h"
#include "reelq/queue/job_store.h"
#include "reelq/scheduler/dispatcher.h"
#include "reelq/scheduler/settings.h"
#include "run_async.h"

namespace reelq::scheduler {
namespace {

using namespace std::chrono_literals;
using testing::RedisServer;
using testing::RunAsync;
using testing::RunFor;

class DispatchWakeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = std::make_unique<RedisServer>(); }
  static void TearDownTestSuite() { server_.reset(); }

  void SetUp() override {
    server_->Run({"FLUSHALL"});
    clock_ = std::make_shared<SystemClock>();
    scheduler_store_ = std::make_unique<queue::JobStore>(Connect(), "t", clock_);
    other_store_ = std::make_unique<queue::JobStore>(Connect(), "t", clock_);
    blocking_ = Connect();
    queue::QueueSettings s;
    s.models.push_back({.id = "m1", .accounts = {"a1"}});
    // One slot: a second job waits until the first one's slot is given back.
    s.accounts.push_back(
        {.id = "a1", .provider = "p", .requests_per_minute = 1e6, .max_concurrent = 1});
    auto synced = RunAsync(io_, scheduler_store_->SyncSettings(s));
    ASSERT_TRUE(synced) << synced.error().Describe();
    settings_.dispatch_interval_ms = 10000;
    dispatcher_ = std::make_unique<Dispatcher>(*scheduler_store_, settings_);
  }

  void TearDown() override {
    dispatcher_->Stop();
    // The loops end: dispatch at once, the wake listener when its blocking read times out.
    for (int i = 0; i < 100 && running_ > 0; ++i) RunFor(io_, 50ms);
    EXPECT_EQ(running_, 0);
  }

  redis::ConnectionPtr Connect() {
    auto connected = RunAsync(io_, redis::Connect(io_.get_executor(), server_->ClientOptions()));
    if (!connected) throw std::runtime_error(connected.error().Describe());
    return *connected;
  }

  void Start(awaitable<void> loop) {
    ++running_;
    asio::co_spawn(io_, std::move(loop), [this](std::exception_ptr e) {
      --running_;
      if (e) std::rethrow_exception(e);
    });
  }

  void StartScheduler(bool listen_for_wakes) {
    Start(dispatcher_->RunDispatch());
    if (listen_for_wakes) Start(dispatcher_->RunWakeListener(*blocking_));
    RunFor(io_, 200ms);  // the first round runs and finds nothing: the loop now waits 10 s
  }

  void SubmitElsewhere(const std::string& id) {
    std::vector<queue::NewJob> jobs{
        {.id = id, .tenant = "studio", .spec_bytes = "spec", .candidate_models = {"m1"}}};
    auto r = RunAsync(io_, other_store_->SubmitMany(jobs, 3600));
    ASSERT_TRUE(r) << r.error().Describe();
  }

  // Leases `id` as a worker would, polling; how long it took, or nullopt after `limit`.
  std::optional<std::chrono::milliseconds> TimeToLease(const std::string& id,
                                                       std::chrono::milliseconds limit,
                                                       queue::LeasedJob* out = nullptr) {
    const auto t0 = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() - t0 < limit) {
      auto leased = RunAsync(io_, other_store_->Lease("w1", 1, 30s));
      if (!leased) throw std::runtime_error(leased.error().Describe());
      if (!leased->empty()) {
        EXPECT_EQ(leased->front().id, id);
        if (out) *out = leased->front();
        return std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::steady_clock::now() - t0);
      }
      RunFor(io_, 1ms);
    }
    return std::nullopt;
  }

  static std::unique_ptr<RedisServer> server_;
  asio::io_context io_;
  ClockPtr clock_;
  Settings settings_;
  std::unique_ptr<queue::JobStore> scheduler_store_, other_store_;
  redis::ConnectionPtr blocking_;
  std::unique_ptr<Dispatcher> dispatcher_;
  int running_ = 0;
};

std::unique_ptr<RedisServer> DispatchWakeTest::server_;

TEST_F(DispatchWakeTest, JobSubmittedToAnIdleSystemIsLeasedAtOnce) {
  StartScheduler(true);
  SubmitElsewhere("j1");
  auto took = TimeToLease("j1", 2s);
  ASSERT_TRUE(took) << "not leased within 2 s";
  std::printf("submit -> leased: %lld ms\n", static_cast<long long>(took->count()));
  EXPECT_LE(took->count(), 100);
}

TEST_F(DispatchWakeTest, FreedSlotDispatchesTheWaitingJobAtOnce) {
  StartScheduler(true);
  SubmitElsewhere("first");
  queue::LeasedJob first;
  ASSERT_TRUE(TimeToLease("first", 2s, &first));
  SubmitElsewhere("second");
  // The one slot is taken: "second" waits however often it is woken.
  EXPECT_FALSE(TimeToLease("second", 300ms));
  auto done = RunAsync(
      io_, other_store_->Complete({.job_id = "first", .token = first.token, .output_key = "k"}));
  ASSERT_TRUE(done) << done.error().Describe();
  auto took = TimeToLease("second", 2s);
  ASSERT_TRUE(took) << "not leased within 2 s of the slot coming free";
  std::printf("slot freed -> next job leased: %lld ms\n", static_cast<long long>(took->count()));
  EXPECT_LE(took->count(), 100);
}

// The control: without the wake listener the same submission waits for the 10 s round.
TEST_F(DispatchWakeTest, WithoutTheWakeListenerTheJobWaitsForTheRound) {
  StartScheduler(false);
  SubmitElsewhere("j1");
  EXPECT_FALSE(TimeToLease("j1", 500ms));
}

}  // namespace
}  // namespace reelq::scheduler
