// worker.max_starting against a real redis-server: a worker leases no more jobs while that many
// of its jobs are still in their create step, so a burst of work does not put thousands of
// create calls (each with its HTTP exchange and buffers) in flight at once; jobs past their
// create step do not count, so the worker still fills up to max_in_flight.
#include <gtest/gtest.h>

#include <algorithm>
#include <span>

#include "../redis_conn/run_async.h"
#include "process.h"
#include "redis_server.h"
#include "reelq/common/clock.h"
#include "reelq/common/redis.h"
#include "reelq/providers/provider.h"
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

// Creates wait while `hold_create`; tasks run until `finish`. Counts creates in progress.
class GatedProvider final : public providers::Provider {
 public:
  bool hold_create = true;
  bool finish = false;
  int creates_started = 0, creates_in_progress = 0, most_creates_at_once = 0;

  std::string_view name() const override { return "fake"; }

  awaitable<Result<std::string>> Create(providers::GenerationRequest) override {
    const int n = ++creates_started;
    most_creates_at_once = std::max(most_creates_at_once, ++creates_in_progress);
    asio::steady_timer timer(co_await asio::this_coro::executor);
    while (hold_create) {
      timer.expires_after(10ms);
      co_await timer.async_wait(use_nothrow_awaitable);
    }
    --creates_in_progress;
    co_return "task-" + std::to_string(n);
  }

  bool CanFindLostCreate() const override { return false; }
  awaitable<Result<std::vector<std::string>>> FindLostCreate(providers::GenerationRequest,
                                                             int64_t) override {
    co_return std::vector<std::string>{};
  }

  awaitable<Result<providers::TaskStatus>> Poll(std::string) override {
    providers::TaskStatus status;
    status.state = finish ? providers::TaskState::kSucceeded : providers::TaskState::kRunning;
    status.clip_seconds = 5;
    co_return status;
  }

  awaitable<Result<void>> Download(std::string task_id, providers::TaskStatus,
                                   ByteSink& sink) override {
    const std::string clip = "clip of " + task_id;
    co_return co_await sink.Write(std::as_bytes(std::span(clip.data(), clip.size())));
  }

  awaitable<Result<void>> Cancel(std::string) override { co_return Result<void>{}; }
};

awaitable<void> RunWorker(Worker* worker, bool* done) {
  co_await worker->Run();
  *done = true;
}

struct Fixture {
  RedisServer server;
  TempDir dir;
  asio::io_context io;
  std::shared_ptr<SystemClock> clock = std::make_shared<SystemClock>();
  std::unique_ptr<queue::JobStore> admin;
  std::unique_ptr<queue::JobStore> store;
  redis::ConnectionPtr blocking;
  storage::ObjectStorePtr objects;
  providers::Catalogue catalogue;
  std::shared_ptr<GatedProvider> provider = std::make_shared<GatedProvider>();
  RunnerDeps deps;
  std::unique_ptr<Worker> worker;
  bool worker_done = false;

  redis::ConnectionPtr Connect() {
    auto connected = RunAsync(io, redis::Connect(io.get_executor(), server.ClientOptions()));
    if (!connected) throw std::runtime_error(connected.error().Describe());
    return *connected;
  }

  explicit Fixture(int max_starting) {
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
    account.max_concurrent = 50;
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
    deps.settings.min_poll_interval = 20ms;
    deps.settings.drain_timeout = 0ms;
    deps.settings.max_in_flight = 20;
    deps.settings.max_starting = max_starting;
    worker = std::make_unique<Worker>(deps, blocking);
    asio::co_spawn(io, RunWorker(worker.get(), &worker_done), asio::detached);
  }

  ~Fixture() {
    if (worker && !worker_done) {
      worker->Drain();
      for (int i = 0; i < 200 && !worker_done; ++i) RunFor(io, 50ms);
    }
  }

  void SubmitAndDispatch(int n) {
    for (int i = 0; i < n; ++i) {
      const std::string id = "job-" + std::to_string(i);
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
    }
    auto dispatched = RunAsync(io, admin->Dispatch(n, 100, 1));
    ASSERT_TRUE(dispatched) << dispatched.error().Describe();
  }

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

TEST(WorkerStartingBoundTest, LeasesNoMoreWhileMaxStartingJobsAreInTheirCreateStep) {
  if (!RedisServer::Available()) GTEST_SKIP() << "redis-server is not installed";
  Fixture f(/*max_starting=*/3);
  f.SubmitAndDispatch(10);

  // Creates held: the worker takes three jobs, and no more however long it waits.
  ASSERT_TRUE(f.PumpUntil([&] { return f.provider->creates_started == 3; }, 10s));
  RunFor(f.io, 1500ms);
  EXPECT_EQ(f.provider->creates_started, 3);
  EXPECT_EQ(f.worker->in_flight(), 3u);
  EXPECT_EQ(f.worker->counters().leased, 3u);

  // Creates answered: jobs past their create step no longer count, so all ten are held at once
  // while their tasks run, never more than three of them creating.
  f.provider->hold_create = false;
  // (The tenth job is in flight a moment before its create starts: wait for both.)
  ASSERT_TRUE(f.PumpUntil(
      [&] { return f.worker->in_flight() == 10 && f.provider->creates_started == 10; }, 15s))
      << "in flight: " << f.worker->in_flight()
      << ", creates started: " << f.provider->creates_started;
  EXPECT_LE(f.provider->most_creates_at_once, 3);

  f.provider->finish = true;
  ASSERT_TRUE(f.PumpUntil([&] { return f.worker->counters().succeeded == 10; }, 15s))
      << "succeeded: " << f.worker->counters().succeeded;
  EXPECT_EQ(f.worker->in_flight(), 0u);
}

}  // namespace
}  // namespace reelq::worker
