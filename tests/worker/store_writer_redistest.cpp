// The worker's StoreWriter against a real redis-server: writes that may wait share one script
// call, and a write that may not wait brings the whole call forward.
#include "../../worker/src/store_writer.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "worker_harness.h"

namespace reelq::worker {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

struct Fixture : WorkerHarness {
  std::vector<queue::LeasedJob> leased;

  Fixture() : WorkerHarness(/*max_concurrent=*/10) {
    for (int i = 0; i < 2; ++i) Submit("job-" + std::to_string(i));
    Dispatch(2);
    auto got = testing::RunAsync(io, store->Lease("w1", 2, 15s));
    if (!got || got->size() != 2) throw std::runtime_error("could not lease the 2 jobs");
    leased = std::move(*got);
  }

  int64_t FcallCalls() {
    const std::string stats = server.InfoField("cmdstat_fcall", "commandstats").value_or("");
    const auto at = stats.find("calls=");
    return at == std::string::npos ? 0 : std::stoll(stats.substr(at + 6));
  }

  // SetPhase(GENERATING, upstream "up-<job>") for leased[index] after `delay`, allowed to wait
  // `may_wait`; `done` gets the time it returned, `ok` whether it was accepted.
  void SpawnPhase(StoreWriter& writer, size_t index, std::chrono::milliseconds delay,
                  std::chrono::milliseconds may_wait, std::optional<Clock::time_point>& done,
                  bool& ok) {
    const queue::LeasedJob& job = leased.at(index);
    queue::PhaseChange change{job.id, job.token, queue::JobPhase::kGenerating, "up-" + job.id,
                              "upstream"};
    asio::co_spawn(
        io,
        [&writer, change, delay, may_wait, &done, &ok]() -> awaitable<void> {
          asio::steady_timer timer(co_await asio::this_coro::executor);
          timer.expires_after(delay);
          co_await timer.async_wait(use_nothrow_awaitable);
          auto r = co_await writer.SetPhase(change, may_wait);
          ok = r.has_value();
          done = Clock::now();
        },
        asio::detached);
  }
};

// Two writes of leased[0] and leased[1]: the first at once, allowed to wait `first_may_wait`,
// the second 50 ms later, allowed `second_may_wait`. When the first returned (after the start),
// and how many script calls the two took. Both must be accepted and stored.
struct TwoWrites {
  Clock::duration first_done;
  int64_t calls;
};

TwoWrites RunTwoWrites(std::chrono::milliseconds first_may_wait,
                       std::chrono::milliseconds second_may_wait) {
  Fixture f;
  StoreWriter writer(*f.store, 2ms, 0ms);
  const int64_t before = f.FcallCalls();
  std::optional<Clock::time_point> first, second;
  bool first_ok = false, second_ok = false;
  const auto start = Clock::now();
  f.SpawnPhase(writer, 0, 0ms, first_may_wait, first, first_ok);
  f.SpawnPhase(writer, 1, 50ms, second_may_wait, second, second_ok);
  EXPECT_TRUE(f.PumpUntil([&] { return first && second; }, 10s));
  EXPECT_TRUE(first_ok);
  EXPECT_TRUE(second_ok);
  const int64_t calls = f.FcallCalls() - before;  // before the reads below, FCALLs too
  for (int i : {0, 1}) EXPECT_EQ(f.Get(f.leased[i].id).upstream, "up-" + f.leased[i].id);
  return {first.value_or(start) - start, calls};
}

TEST(StoreWriterTest, WritesThatMayWaitShareOneCall) {
  const TwoWrites w = RunTwoWrites(300ms, 300ms);
  // Timers never fire early: the call went once the first write's allowance was up, not at
  // the 2 ms window.
  EXPECT_GE(w.first_done, 290ms);
  EXPECT_EQ(w.calls, 1) << "both writes in one script call";
}

TEST(StoreWriterTest, AWriteThatMayNotWaitBringsTheCallForward) {
  const TwoWrites w = RunTwoWrites(5s, 0ms);
  // Due at 5 s on its own; it went with the urgent write, at about 52 ms (bound loose for a
  // loaded machine, far below 5 s).
  EXPECT_LT(w.first_done, 2s);
  EXPECT_EQ(w.calls, 1) << "both writes in one script call";
}

}  // namespace
}  // namespace reelq::worker
