// worker.max_starting against a real redis-server: a worker leases no more jobs while that many
// of its jobs are still in their create step, so a burst of work does not put thousands of
// create calls (each with its HTTP exchange and buffers) in flight at once; jobs past their
// create step do not count, so the worker still fills up to max_in_flight.
#include <gtest/gtest.h>

#include <algorithm>
#include <span>

#include "reelq/providers/provider.h"
#include "worker_harness.h"

namespace reelq::worker {
namespace {

using namespace std::chrono_literals;
using testing::RedisServer;
using testing::RunAsync;
using testing::RunFor;

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

struct Fixture : WorkerHarness {
  std::shared_ptr<GatedProvider> provider = std::make_shared<GatedProvider>();

  explicit Fixture(int max_starting) : WorkerHarness(/*max_concurrent=*/50) {
    deps.settings.max_in_flight = 20;
    deps.settings.max_starting = max_starting;
    Start(provider);
  }

  // Jobs "job-0".."job-<n-1>".
  void SubmitAndDispatch(int n) {
    for (int i = 0; i < n; ++i) ASSERT_NO_FATAL_FAILURE(Submit("job-" + std::to_string(i)));
    Dispatch(n);
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
