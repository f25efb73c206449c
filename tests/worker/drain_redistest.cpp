// A drain reaching an attempt inside a step that ends on a stop (here: the wait before looking
// for a create whose answer was lost) hands the job back at once, against a real redis-server:
// it must not sit RUNNING under a worker that has left until the reaper finds its lease lapsed.
#include <gtest/gtest.h>

#include "reelq/providers/fake_provider.h"
#include "worker_harness.h"

namespace reelq::worker {
namespace {

using namespace std::chrono_literals;
using testing::RedisServer;

using providers::FakeProvider;

TEST(WorkerDrainTest, ADrainDuringTheLostCreateWaitHandsTheJobBackAtOnce) {
  if (!RedisServer::Available()) GTEST_SKIP() << "redis-server is not installed";
  WorkerHarness h(/*max_concurrent=*/10);
  auto provider = std::make_shared<FakeProvider>();
  provider->can_find_lost_create = true;
  h.deps.settings.lost_create_settle = 30s;  // the attempt waits this long before looking
  h.deps.settings.lease = 60s;               // no reaper would take the job back in time
  ASSERT_NO_FATAL_FAILURE(h.Submit("x"));
  h.Dispatch(10);
  // A create of attempt 1 was sent and its answer never stored (a worker died after sending).
  h.server.Run({"HSET", "rq:{q}:job:x", "create_intent", std::to_string(h.clock->NowMs()) + ":1"});
  h.Start(provider);
  ASSERT_TRUE(h.PumpUntil([&] { return h.Get("x").state == queue::JobState::kRunning; }, 10s));
  testing::RunFor(h.io, 300ms);  // into the settle wait
  ASSERT_EQ(h.Get("x").state, queue::JobState::kRunning);

  h.worker->Drain();
  ASSERT_TRUE(h.PumpUntil([&] { return h.worker_done; }, 5s)) << "the worker did not drain";
  const auto job = h.Get("x");
  EXPECT_EQ(job.state, queue::JobState::kDispatched) << "the job was not handed back";
  EXPECT_TRUE(job.worker.empty());
  EXPECT_EQ(provider->creates, 0);
}

}  // namespace
}  // namespace reelq::worker
