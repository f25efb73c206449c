// The worker's self-fence against a real redis-server: a worker that cannot reach Redis for
// longer than its lease stops its jobs by its own clock and publishes nothing, even though the
// provider and the object store are still reachable (Worker::LeaseWatchdog, JobRunner's
// may_publish). Redis is made unreachable with SIGSTOP: commands hang until their timeout, as
// with packets dropped by a partition, and the timeout (3 s) is longer than the lease (1 s).
// Once Redis answers again, the job it stopped but Redis still holds under it is handed back and
// resumed (Worker::HeartbeatLoop, HeartbeatOutcome::holds_more).
#include <gtest/gtest.h>
#include <signal.h>

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
    deps.settings.lease = 1000ms;
    deps.settings.heartbeat = 200ms;
    deps.settings.transfer_attempts = 1;
    Start(provider);
  }

  // Redis answers again, so that the worker can drain.
  ~Fixture() { kill(server.pid(), SIGCONT); }

  void SubmitAndDispatch(const std::string& id) {
    ASSERT_NO_FATAL_FAILURE(Submit(id));
    Dispatch(10);
  }
};

TEST(WorkerSelfFenceTest, RedisUnreachableLongerThanLeaseStopsJobAndPublishesNothing) {
  if (!RedisServer::Available()) GTEST_SKIP() << "redis-server is not installed";
  Fixture f;

  // Control: with Redis reachable the same job publishes its clip and succeeds.
  f.SubmitAndDispatch("ok-1");
  ASSERT_TRUE(f.PumpUntil([&] { return f.Get("ok-1").state == queue::JobState::kSucceeded; }, 10s));
  const auto ok = f.Get("ok-1");
  EXPECT_TRUE(std::filesystem::exists(f.dir.path() / "store" / ok.output_key)) << ok.output_key;

  // A job in TRANSFERRING, its download held half-way.
  f.provider->hold_download = true;
  f.SubmitAndDispatch("cut-1");
  ASSERT_TRUE(f.PumpUntil([&] { return f.provider->downloads_started == 2; }, 10s));
  const auto before = f.Get("cut-1");
  ASSERT_EQ(before.state, queue::JobState::kRunning);
  ASSERT_EQ(before.phase, queue::JobPhase::kTransferring);
  ASSERT_EQ(before.worker, "w1");

  // Redis stops answering for 2.5 leases; the provider and the store still work. The download
  // then completes, long after the lease lapsed.
  ASSERT_EQ(kill(f.server.pid(), SIGSTOP), 0);
  RunFor(f.io, 2500ms);
  f.provider->hold_download = false;
  ASSERT_TRUE(f.PumpUntil([&] { return f.worker->in_flight() == 0; }, 15s))
      << "the job did not end while Redis was unreachable";
  // (The stopped job abandons its download rather than waiting for it: fault_cancel_windows_test.)
  EXPECT_EQ(f.worker->counters().stopped, 1u);
  EXPECT_EQ(f.worker->counters().succeeded, 1u);  // ok-1 only
  // Nothing published for the job: no clip, no sidecar (the keys are deterministic).
  const auto clip = JobRunner::ClipKey("t", "b", "cut-1");
  EXPECT_FALSE(std::filesystem::exists(f.dir.path() / "store" / clip));
  EXPECT_FALSE(std::filesystem::exists(f.dir.path() / "store" / JobRunner::SidecarKey(clip)));

  // Redis back. Nothing reaped the worker's lease meanwhile (no reaper runs here) and its
  // heartbeat renews it, so Redis still holds the stopped job under this worker, which no longer
  // runs it: the heartbeats say so, and the worker's next lease call hands the job back and
  // leases it again under a new token. It resumes the same upstream task (no second create)
  // and publishes once.
  ASSERT_EQ(kill(f.server.pid(), SIGCONT), 0);
  ASSERT_TRUE(
      f.PumpUntil([&] { return f.Get("cut-1").state == queue::JobState::kSucceeded; }, 15s));
  const auto after = f.Get("cut-1");
  EXPECT_NE(after.token, before.token);
  bool handed_back = false;
  for (const auto& t : after.history) {
    handed_back = handed_back || t.detail == "not run by its worker; handed back";
  }
  EXPECT_TRUE(handed_back);
  EXPECT_TRUE(std::filesystem::exists(f.dir.path() / "store" / clip));
  EXPECT_EQ(f.provider->creates, 2);
}

}  // namespace
}  // namespace reelq::worker
