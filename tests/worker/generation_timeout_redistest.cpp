// An upstream task that never ends (stuck in the provider's queue, or answering in a shape the
// adapter cannot read as finished) against a real redis-server: past its model's
// generation_timeout the worker cancels it upstream and fails the job as deadline_exceeded,
// without a second create, and the account's slot goes to the next job.
#include <gtest/gtest.h>

#include "reelq/providers/fake_provider.h"
#include "worker_harness.h"

namespace reelq::worker {
namespace {

using namespace std::chrono_literals;
using testing::RedisServer;
using testing::RunAsync;

using providers::FakeProvider;

struct Fixture : WorkerHarness {
  std::shared_ptr<FakeProvider> provider = std::make_shared<FakeProvider>();

  // One slot on account "a", so a job that kept it would hold every later one back.
  explicit Fixture(double timeout_seconds) : WorkerHarness(/*max_concurrent=*/1) {
    catalogue.models[0].generation_timeout_seconds = timeout_seconds;
    deps.settings.retry_backoff_initial = 20ms;
    deps.settings.retry_backoff_max = 20ms;
    Start(provider);
  }
};

TEST(WorkerGenerationTimeoutTest, AStuckTaskIsCancelledAndItsJobFailsWithoutASecondCreate) {
  if (!RedisServer::Available()) GTEST_SKIP() << "redis-server is not installed";
  Fixture f(/*timeout_seconds=*/0.3);
  f.Fund(10'000'000);
  f.bill = true;
  f.provider->running_polls = 1000000;  // never ends
  ASSERT_NO_FATAL_FAILURE(f.Submit("stuck"));
  f.Dispatch(10);
  ASSERT_TRUE(f.RunToEnd("stuck"));

  const auto job = f.Get("stuck");
  EXPECT_EQ(job.state, queue::JobState::kFailed);
  EXPECT_EQ(job.error_category, ErrorCategory::kDeadlineExceeded);
  EXPECT_EQ(job.error_code, queue::kGenerationTimeout);
  EXPECT_NE(job.error_message.find("upstream task task-1 on account a did not end within"),
            std::string::npos)
      << job.error_message;
  EXPECT_EQ(f.provider->creates, 1) << "a stuck task was paid for again";
  EXPECT_EQ(f.provider->cancels, 1);
  EXPECT_GT(f.provider->polls, 1);
  // Cancelled after its create, as a CancelJob would be: charged, since the provider may bill.
  EXPECT_EQ(f.Wallet().spent_micros, 5 * Fixture::kPricePerSecond);
  EXPECT_EQ(f.Wallet().reserved_micros, 0);

  // The slot it held is free: the next job on the same one-slot account runs to its clip.
  f.provider->running_polls = 0;
  ASSERT_NO_FATAL_FAILURE(f.Submit("next"));
  ASSERT_TRUE(f.RunToEnd("next"));
  EXPECT_EQ(f.Get("next").state, queue::JobState::kSucceeded);
}

TEST(WorkerGenerationTimeoutTest, ATaskThatEndsWithinTheTimeoutSucceeds) {
  if (!RedisServer::Available()) GTEST_SKIP() << "redis-server is not installed";
  Fixture f(/*timeout_seconds=*/10);
  f.provider->running_polls = 5;  // about 100 ms of polls at 20 ms
  ASSERT_NO_FATAL_FAILURE(f.Submit("x"));
  f.Dispatch(10);
  ASSERT_TRUE(f.RunToEnd("x"));
  EXPECT_EQ(f.Get("x").state, queue::JobState::kSucceeded);
  EXPECT_EQ(f.provider->cancels, 0);
  EXPECT_EQ(f.provider->polls, 6);
}

}  // namespace
}  // namespace reelq::worker
