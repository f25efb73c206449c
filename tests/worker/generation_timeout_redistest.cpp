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
    // A takeover (the test bumping the worker's epoch) is seen by the next heartbeat.
    deps.settings.lease = 2000ms;
    deps.settings.heartbeat = 100ms;
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

// The timeout is checked against the poll's answer: a task that finished while the worker waited
// for its next poll (here the provider asked for 600 ms between polls, past the 300 ms timeout)
// made a clip the provider bills, and the clip is fetched, not cancelled and thrown away.
TEST(WorkerGenerationTimeoutTest, ATaskSeenFinishedAfterItsTimeoutPassedIsFetchedNotCancelled) {
  if (!RedisServer::Available()) GTEST_SKIP() << "redis-server is not installed";
  Fixture f(/*timeout_seconds=*/0.3);
  f.provider->running_polls = 1;
  f.provider->running_poll_after = 600ms;
  ASSERT_NO_FATAL_FAILURE(f.Submit("x"));
  f.Dispatch(10);
  ASSERT_TRUE(f.RunToEnd("x"));
  const auto job = f.Get("x");
  EXPECT_EQ(job.state, queue::JobState::kSucceeded) << job.error_message;
  EXPECT_EQ(f.provider->cancels, 0);
  EXPECT_EQ(f.provider->creates, 1);
  EXPECT_EQ(f.provider->polls, 2);
}

// When the upstream id was stored, from the job's history.
int64_t UpstreamStoredAt(const queue::JobRecord& job, const std::string& upstream) {
  for (const auto& entry : job.history) {
    if (entry.detail == "upstream " + upstream) return entry.at_ms;
  }
  return 0;
}

// A worker that lost its lease hands its jobs back and the next lease resumes the same task:
// the task's timeout still counts from its create, or a task stuck upstream would get a new
// generation_timeout with every takeover.
TEST(WorkerGenerationTimeoutTest, ATaskTakenOverIsTimedFromItsCreateNotFromTheTakeover) {
  if (!RedisServer::Available()) GTEST_SKIP() << "redis-server is not installed";
  Fixture f(/*timeout_seconds=*/4);
  f.provider->running_polls = 1000000;  // never ends
  ASSERT_NO_FATAL_FAILURE(f.Submit("x"));
  f.Dispatch(10);
  int64_t created_ms = 0;
  ASSERT_TRUE(f.PumpUntil(
      [&] {
        created_ms = UpstreamStoredAt(f.Get("x"), "task-1");
        return created_ms > 0;
      },
      10s));

  // 1.5 of its 4 s pass, then the worker loses its lease (another incarnation registered): it
  // stops the job and registers again (about a second later), which hands the job back, and the
  // next lease resumes task-1.
  ASSERT_TRUE(f.PumpUntil([&] { return f.clock->NowMs() >= created_ms + 1500; }, 10s));
  f.server.Run({"HSET", "rq:{q}:wepoch", "w1", "999999"});
  ASSERT_TRUE(f.RunToEnd("x"));

  const auto job = f.Get("x");
  EXPECT_EQ(job.state, queue::JobState::kFailed);
  EXPECT_EQ(job.error_code, queue::kGenerationTimeout) << job.error_message;
  EXPECT_EQ(f.provider->creates, 1);
  int64_t handed_back_ms = 0;
  for (const auto& entry : job.history) {
    if (entry.at_ms > created_ms && entry.state == queue::JobState::kDispatched) {
      handed_back_ms = entry.at_ms;
    }
  }
  ASSERT_GT(handed_back_ms, 0) << "the job was not handed back: no takeover happened";
  ASSERT_LT(handed_back_ms - created_ms, 4000) << "the takeover came after the timeout";
  // Timed from the create: it fails about 4 s after it. Timed from the takeover (1.5 s in or
  // later), it would fail 5.5 s or more after its create.
  EXPECT_LT(job.updated_ms - created_ms, 5300)
      << "failed " << job.updated_ms - created_ms << " ms after its create, "
      << job.updated_ms - handed_back_ms << " ms after the takeover";
}

}  // namespace
}  // namespace reelq::worker
