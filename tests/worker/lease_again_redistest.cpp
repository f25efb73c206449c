// A job leased again by the same worker while its previous attempt is still inside a provider
// call (against a real redis-server). The worker loses its lease (here: another incarnation's
// epoch, as after a pause longer than the lease), stops every job and registers again;
// register.lua hands its jobs back and the next lease call gives the same job straight back to
// it under a new token. The old attempt cannot be interrupted mid-call: when that call returns,
// it ends, and it must take only its own bookkeeping with it. The new attempt stays the one the
// worker runs: its cancels reach it, its heartbeats cover it, drain waits for it.
#include <gtest/gtest.h>

#include <filesystem>

#include "reelq/providers/fake_provider.h"
#include "worker_harness.h"

namespace reelq::worker {
namespace {

using namespace std::chrono_literals;
using testing::RedisServer;
using testing::RunAsync;
using testing::RunFor;

using providers::FakeProvider;

struct Fixture : WorkerHarness {
  std::shared_ptr<FakeProvider> provider = std::make_shared<FakeProvider>();

  Fixture() : WorkerHarness(/*max_concurrent=*/10) {
    deps.settings.lease = 2000ms;
    deps.settings.heartbeat = 100ms;
    deps.settings.transfer_attempts = 1;
    provider->hold_polls = true;  // every poll waits until released
    Start(provider);
  }

  ~Fixture() { provider->hold_polls = false; }
};

TEST(WorkerLeaseAgainTest, AnOldAttemptEndingLeavesTheNewAttemptOfTheSameJobInCharge) {
  if (!RedisServer::Available()) GTEST_SKIP() << "redis-server is not installed";
  Fixture f;
  ASSERT_NO_FATAL_FAILURE(f.Submit("x"));
  f.Dispatch(10);

  // Attempt 1 created its task and is inside its first poll.
  ASSERT_TRUE(f.PumpUntil([&] { return f.provider->polls_waiting == 1; }, 10s));
  const auto first = f.Get("x");
  ASSERT_EQ(first.state, queue::JobState::kRunning);
  ASSERT_EQ(first.worker, "w1");
  ASSERT_EQ(f.provider->creates, 1);

  // The worker's lease is taken (another incarnation registered): its next heartbeat answers
  // LOST, it stops attempt 1 (still inside its poll) and registers again, which hands the job
  // back; its next lease call gives it the job again, and attempt 2 resumes the same task.
  f.server.Run({"HSET", "rq:{q}:wepoch", "w1", "999999"});
  ASSERT_TRUE(f.PumpUntil([&] { return f.provider->polls_waiting == 2; }, 10s))
      << "the job was not leased to the worker again";
  const auto second = f.Get("x");
  ASSERT_EQ(second.state, queue::JobState::kRunning);
  ASSERT_EQ(second.worker, "w1");
  ASSERT_NE(second.token, first.token);
  EXPECT_EQ(f.provider->creates, 1) << "attempt 2 must resume the task, not create another";

  // Attempt 1's poll returns: it sees it was stopped and ends.
  f.provider->polls_released = 1;
  ASSERT_TRUE(f.PumpUntil([&] { return f.provider->polls_waiting == 1; }, 5s));
  ASSERT_TRUE(f.PumpUntil([&] { return f.worker->counters().stopped == 1; }, 5s));
  EXPECT_EQ(f.worker->in_flight(), 1u) << "attempt 1 took attempt 2's entry with it";

  // A cancel reaches attempt 2 within a second (the listener, or the heartbeat): once its poll
  // returns it cancels the upstream task and publishes nothing.
  auto cancelled = RunAsync(f.io, f.admin->Cancel("x"));
  ASSERT_TRUE(cancelled) << cancelled.error().Describe();
  RunFor(f.io, 1000ms);
  f.provider->polls_released = 2;
  ASSERT_TRUE(f.PumpUntil([&] { return f.worker->counters().stopped == 2; }, 5s))
      << "attempt 2 did not stop on its cancel";
  EXPECT_EQ(f.provider->cancels, 1);
  EXPECT_EQ(f.worker->in_flight(), 0u);
  EXPECT_EQ(f.worker->counters().succeeded, 0u);
  EXPECT_EQ(f.Get("x").state, queue::JobState::kCancelled);
  const auto clip = JobRunner::ClipKey("t", "b", "x");
  EXPECT_FALSE(std::filesystem::exists(f.dir.path() / "store" / clip));
}

}  // namespace
}  // namespace reelq::worker
