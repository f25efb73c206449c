// The worker's self-fence against a real redis-server: a worker that cannot reach Redis for
// longer than its lease stops its jobs by its own clock and publishes nothing, even though the
// provider and the object store are still reachable (Worker::LeaseWatchdog, JobRunner's
// may_publish). Redis is made unreachable with SIGSTOP: commands hang until their timeout, as
// with packets dropped by a partition, and the timeout (3 s) is longer than the lease (1 s).
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>

#include "../redis_conn/run_async.h"
#include "process.h"
#include "redis_server.h"
#include "reelq/common/clock.h"
#include "reelq/common/redis.h"
#include "reelq/providers/fake_provider.h"
#include "reelq/queue/job_store.h"
#include "reelq/storage/fs_store.h"
#include "reelq/v1/jobs.pb.h"
#include "reelq/worker/worker.h"

namespace reelq::worker {
namespace {

using namespace std::chrono_literals;
using testing::RedisServer;
using testing::RunAsync;
using testing::RunFor;
using testing::TempDir;

using providers::FakeProvider;

awaitable<void> RunWorker(Worker* worker, bool* done) {
  co_await worker->Run();
  *done = true;
}

struct Fixture {
  RedisServer server;
  TempDir dir;
  asio::io_context io;
  std::shared_ptr<SystemClock> clock = std::make_shared<SystemClock>();
  std::unique_ptr<queue::JobStore> admin;  // the test's own view (submit, dispatch, get)
  std::unique_ptr<queue::JobStore> store;  // the worker's
  redis::ConnectionPtr blocking;
  storage::ObjectStorePtr objects;
  providers::Catalogue catalogue;
  std::shared_ptr<FakeProvider> provider = std::make_shared<FakeProvider>();
  RunnerDeps deps;
  std::unique_ptr<Worker> worker;
  bool worker_done = false;

  redis::ConnectionPtr Connect() {
    auto connected = RunAsync(io, redis::Connect(io.get_executor(), server.ClientOptions()));
    if (!connected) throw std::runtime_error(connected.error().Describe());
    return *connected;
  }

  Fixture() {
    admin = std::make_unique<queue::JobStore>(Connect(), "rq", clock);
    store = std::make_unique<queue::JobStore>(Connect(), "rq", clock);
    blocking = Connect();
    queue::QueueSettings settings;
    queue::ModelSetting model;
    model.id = "m";
    model.accounts = {"a"};
    settings.models.push_back(model);
    queue::AccountSetting account;
    account.id = "a";
    account.provider = "fake";
    account.requests_per_minute = 6000;
    account.max_concurrent = 10;
    settings.accounts.push_back(account);
    auto synced = RunAsync(io, admin->SyncSettings(settings));
    if (!synced) throw std::runtime_error(synced.error().Describe());

    auto fs = storage::MakeFsStore(dir.path() / "store");
    if (!fs) throw std::runtime_error(fs.error().Describe());
    objects = *fs;
    providers::ModelSpec spec;
    spec.id = "m";
    spec.provider = "fake";
    spec.upstream_model = "fake-1";
    spec.durations = {5};
    spec.max_clip_seconds = 5;
    catalogue.models.push_back(spec);

    deps.store = store.get();
    deps.objects = objects.get();
    deps.catalogue = &catalogue;
    deps.providers["a"] = provider;
    deps.clock = clock;
    deps.settings.worker_id = "w1";
    deps.settings.lease = 1000ms;
    deps.settings.heartbeat = 200ms;
    deps.settings.min_poll_interval = 20ms;
    deps.settings.drain_timeout = 0ms;
    deps.settings.transfer_attempts = 1;
    worker = std::make_unique<Worker>(deps, blocking);
    asio::co_spawn(io, RunWorker(worker.get(), &worker_done), asio::detached);
  }

  ~Fixture() {
    kill(server.pid(), SIGCONT);
    if (worker && !worker_done) {
      worker->Drain();
      for (int i = 0; i < 200 && !worker_done; ++i) RunFor(io, 50ms);
    }
  }

  void SubmitAndDispatch(const std::string& id) {
    v1::JobSpec spec;
    spec.set_prompt("prompt of " + id);
    spec.add_models("m");
    spec.set_duration_seconds(5);
    queue::NewJob job;
    job.id = id;
    job.tenant = "t";
    job.batch = "b";
    job.spec_bytes = spec.SerializeAsString();
    job.candidate_models = {"m"};
    job.max_attempts = 3;
    auto submitted = RunAsync(io, admin->Submit(job, 3600));
    ASSERT_TRUE(submitted) << submitted.error().Describe();
    auto dispatched = RunAsync(io, admin->Dispatch(10, 100, 1));
    ASSERT_TRUE(dispatched) << dispatched.error().Describe();
  }

  queue::JobRecord Get(const std::string& id) {
    auto record = RunAsync(io, admin->Get(id));
    if (!record) throw std::runtime_error(record.error().Describe());
    return *record;
  }

  // Pumps the io_context until `done` or `limit`; false on timeout.
  template <class Pred>
  bool PumpUntil(Pred done, std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      RunFor(io, 20ms);
    }
    return true;
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

  // Redis back: the worker does not come back to the job; its record is as it was (the reaper,
  // not run here, would hand it to another worker).
  ASSERT_EQ(kill(f.server.pid(), SIGCONT), 0);
  RunFor(f.io, 1500ms);
  const auto after = f.Get("cut-1");
  EXPECT_EQ(after.state, queue::JobState::kRunning);
  EXPECT_EQ(after.phase, queue::JobPhase::kTransferring);
  EXPECT_TRUE(after.output_key.empty());
  EXPECT_EQ(after.history.size(), before.history.size());
  EXPECT_EQ(after.token, before.token);
  EXPECT_FALSE(std::filesystem::exists(f.dir.path() / "store" / clip));
  EXPECT_EQ(f.provider->creates, 2);
}

}  // namespace
}  // namespace reelq::worker
