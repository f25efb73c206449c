// Issue 4 parts against a real redis-server, through JobStore: the fleet-wide polls token
// bucket (racing pollers never exceed the quota in any sliding minute), the first-choice
// preference margin in dispatch, and the per-model queue depth counters behind ListModels.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "store_fixture.h"

namespace reelq::queue {
namespace {

using namespace std::chrono_literals;
using testing::RunAsync;

class SchedulingTest : public StoreTest {
 protected:
  void Submit(const std::string& id, std::vector<std::string> models, bool prefer_first = false) {
    NewJob job{.id = id,
               .tenant = "t1",
               .spec_bytes = "spec",
               .candidate_models = std::move(models),
               .prefer_first = prefer_first};
    auto r = RunAsync(io_, store_->Submit(job, 3600));
    if (!r) throw std::runtime_error(r.error().Describe());
  }

  int Dispatch(double margin_s) {
    auto r = RunAsync(io_, store_->Dispatch(100, 16, 1, "fair", margin_s));
    if (!r) throw std::runtime_error(r.error().Describe());
    return r->dispatched;
  }

  // job id -> model, for every job dispatched so far.
  std::map<std::string, std::string> LeaseAll() {
    auto leased = RunAsync(io_, store_->Lease("w", 100, 60s));
    if (!leased) throw std::runtime_error(leased.error().Describe());
    std::map<std::string, std::string> out;
    for (const auto& j : *leased) out[j.id] = j.model;
    return out;
  }

  // model -> {q_pending, q_dispatched, q_running} as GetStats (ListModels' source) reads them.
  std::map<std::string, std::vector<int>> Depths() {
    auto stats = RunAsync(io_, store_->GetStats());
    if (!stats) throw std::runtime_error(stats.error().Describe());
    std::map<std::string, std::vector<int>> out;
    for (const auto& m : stats->models) {
      out[m.id] = {static_cast<int>(m.queue_depth), static_cast<int>(m.dispatched),
                   static_cast<int>(m.in_flight)};
    }
    return out;
  }
};

// --- Polls token bucket ---------------------------------------------------------------------

// Eight pollers (one connection each, as eight workers) poll as fast as the bucket lets them:
// each asks for a turn, waits the returned time on the injected clock, "polls", and asks again
// at once. Requests that fall due together are sent concurrently, so Redis sees them race.
// What must hold is the provider's rule: no sliding 60 s window holds more than the quota of
// released polls; and the quota is used, not wasted.
class PollBucketTest : public SchedulingTest, public ::testing::WithParamInterface<int> {};

TEST_P(PollBucketTest, RacingPollersNeverExceedTheQuotaInAnySlidingMinute) {
  const int ppm = GetParam();
  std::vector<std::unique_ptr<JobStore>> pollers;
  for (int i = 0; i < 8; ++i) pollers.push_back(NewStore());
  const int64_t start = clock_->NowMs();
  std::vector<int64_t> next_ask(pollers.size(), start);  // when each poller asks for a turn
  std::vector<int64_t> released;                         // when each poll went out
  constexpr int64_t kStepMs = 50;
  constexpr int64_t kRunMs = 180'000;
  for (int64_t now = start; now < start + kRunMs; now += kStepMs) {
    clock_->Set(now);
    std::vector<std::pair<size_t, std::future<Result<std::chrono::milliseconds>>>> asks;
    for (size_t i = 0; i < pollers.size(); ++i) {
      if (next_ask[i] > now) continue;
      asks.emplace_back(
          i, asio::co_spawn(io_, pollers[i]->TakePollToken("acct", ppm), asio::use_future));
    }
    io_.restart();
    for (auto& [i, f] : asks) {
      while (f.wait_for(0s) != std::future_status::ready) io_.run_one_for(20ms);
      auto wait = f.get();
      ASSERT_TRUE(wait) << wait.error().Describe();
      ASSERT_GE(wait->count(), 0);
      const int64_t at = now + wait->count();
      released.push_back(at);
      next_ask[i] = at;  // polls at its turn, then asks for the next one
    }
  }
  std::sort(released.begin(), released.end());
  // Only polls released inside the run count: later turns are reserved but not yet sent.
  released.erase(std::upper_bound(released.begin(), released.end(), start + kRunMs - 1),
                 released.end());
  size_t j = 0;
  for (size_t i = 0; i < released.size(); ++i) {
    while (j < released.size() && released[j] < released[i] + 60'000) ++j;
    ASSERT_LE(static_cast<int>(j - i), ppm) << "the minute from " << released[i] - start << " ms";
  }
  // Three minutes: at least the steady rate (ppm - burst + 1 a minute) for two of them.
  const int burst = std::max(1, ppm / 60);
  EXPECT_GE(static_cast<int>(released.size()), 3 * (ppm - burst + 1) - 2 * burst - 8)
      << "the quota was left unused";
}

INSTANTIATE_TEST_SUITE_P(Quotas, PollBucketTest, ::testing::Values(30, 120, 600));

TEST_F(SchedulingTest, PollTokensAreReservedNotRefusedAndCostNothingWithoutAQuota) {
  // 60 a minute: a bucket of one, one turn a second. Three asks at once are all granted, as
  // turns one second apart: a poller waits, it never fails.
  for (int64_t expected : {0, 1000, 2000}) {
    auto wait = RunAsync(io_, store_->TakePollToken("acct", 60));
    ASSERT_TRUE(wait) << wait.error().Describe();
    EXPECT_EQ(wait->count(), expected);
  }
  clock_->Advance(10s);  // idle time refills the bucket (no credit beyond it)
  auto wait = RunAsync(io_, store_->TakePollToken("acct", 60));
  ASSERT_TRUE(wait);
  EXPECT_EQ(wait->count(), 0);
  wait = RunAsync(io_, store_->TakePollToken("acct", 60));
  ASSERT_TRUE(wait);
  EXPECT_EQ(wait->count(), 1000);
  // No quota: no Redis call and no state.
  auto free_poll = RunAsync(io_, store_->TakePollToken("other", 0));
  ASSERT_TRUE(free_poll);
  EXPECT_EQ(free_poll->count(), 0);
  EXPECT_EQ(server_->Run({"EXISTS", "t:{q}:acct:other"}).integer, 0);
}

// --- First-choice preference margin ---------------------------------------------------------

QueueSettings ThreeModels() {
  QueueSettings s;
  // "first" takes 100 s; "slightly" is 20 s faster, "much" 80 s faster. Plenty of slots.
  s.models = {{.id = "first", .accounts = {"a1"}, .latency_seed_seconds = 100},
              {.id = "slightly", .accounts = {"a2"}, .latency_seed_seconds = 80},
              {.id = "much", .accounts = {"a3"}, .latency_seed_seconds = 20}};
  for (const char* a : {"a1", "a2", "a3"}) {
    s.accounts.push_back(
        {.id = a, .provider = a, .requests_per_minute = 6000, .max_concurrent = 10});
  }
  return s;
}

TEST_F(SchedulingTest, PreferredFirstChoiceKeepsJobsUnlessAnotherIsFasterByMoreThanTheMargin) {
  Sync(ThreeModels());
  Submit("pref-vs-slightly", {"first", "slightly"}, /*prefer_first=*/true);
  Submit("pref-vs-much", {"first", "much"}, true);
  Submit("nopref-vs-slightly", {"first", "slightly"}, false);
  Submit("nopref-vs-much", {"first", "much"}, false);
  ASSERT_EQ(Dispatch(/*margin_s=*/60), 4);
  auto models = LeaseAll();
  EXPECT_EQ(models["pref-vs-slightly"], "first");       // 20 s faster is within the 60 s margin
  EXPECT_EQ(models["pref-vs-much"], "much");            // 80 s faster is beyond it
  EXPECT_EQ(models["nopref-vs-slightly"], "slightly");  // no stated preference: earliest finish
  EXPECT_EQ(models["nopref-vs-much"], "much");
}

TEST_F(SchedulingTest, WithoutAMarginThePreferenceOnlyBreaksTies) {
  Sync(ThreeModels());
  Submit("pref-vs-slightly", {"first", "slightly"}, true);
  ASSERT_EQ(Dispatch(0), 1);
  EXPECT_EQ(LeaseAll()["pref-vs-slightly"], "slightly");
}

TEST_F(SchedulingTest, MarginCountsTheQueueOnTheFirstChoice) {
  // "first" has one slot: with one job already on it, the next preferred job's expected finish
  // there is its latency plus the wait for the slot (100 s + 100 s), which "slightly" (80 s)
  // beats by 120 s, more than the 60 s margin.
  QueueSettings s = ThreeModels();
  s.accounts[0].max_concurrent = 1;
  Sync(s);
  Submit("j1", {"first", "slightly"}, true);
  Submit("j2", {"first", "slightly"}, true);
  ASSERT_EQ(Dispatch(60), 2);
  auto models = LeaseAll();
  EXPECT_EQ(models["j1"], "first");
  EXPECT_EQ(models["j2"], "slightly");
  // With a margin of 150 s it waits for its first choice instead.
  Submit("j3", {"first", "slightly"}, true);
  EXPECT_EQ(Dispatch(150), 0);
}

// --- Per-model queue depth ------------------------------------------------------------------

TEST_F(SchedulingTest, QueueDepthCountersFollowEveryStateChange) {
  QueueSettings s;
  s.models = {{.id = "m1", .accounts = {"a1"}, .latency_seed_seconds = 60},
              {.id = "m2", .accounts = {"a2"}, .latency_seed_seconds = 60}};
  s.accounts = {{.id = "a1", .provider = "p", .requests_per_minute = 6000, .max_concurrent = 1},
                {.id = "a2", .provider = "q", .requests_per_minute = 6000, .max_concurrent = 1}};
  Sync(s);
  using Depth = std::vector<int>;  // pending, dispatched, running
  for (const char* id : {"j1", "j2", "j3"}) Submit(id, {"m1"});
  Submit("j4", {"m1", "m2"});  // counts as pending under both models
  EXPECT_EQ(Depths()["m1"], (Depth{4, 0, 0}));
  EXPECT_EQ(Depths()["m2"], (Depth{1, 0, 0}));

  ASSERT_EQ(Dispatch(0), 2);  // j1 -> m1; j4 -> m2 (m1's one slot is taken)
  EXPECT_EQ(Depths()["m1"], (Depth{2, 1, 0}));
  EXPECT_EQ(Depths()["m2"], (Depth{0, 1, 0}));

  // Exactly the two: a worker whose lease call leaves it room waits for more, and dispatch
  // would lease to it straight (common_lease.lua) the job meant for "w2" below.
  auto leased = RunAsync(io_, store_->Lease("w", 2, 60s));
  ASSERT_TRUE(leased);
  ASSERT_EQ(leased->size(), 2u);
  EXPECT_EQ(Depths()["m1"], (Depth{2, 0, 1}));
  EXPECT_EQ(Depths()["m2"], (Depth{0, 0, 1}));

  // m1's job fails with a retry (back to pending under m1), m2's job is handed back (dispatched
  // again), then cancelled.
  for (const auto& j : *leased) {
    if (j.model == "m1") {
      FailRequest f{.job_id = j.id,
                    .token = j.token,
                    .category = ErrorCategory::kRetryable,
                    .message = "503",
                    .retry = true,
                    .retry_at_ms = clock_->NowMs() + 60'000};
      ASSERT_TRUE(RunAsync(io_, store_->Fail(f)));
    } else {
      ASSERT_TRUE(RunAsync(io_, store_->HandBack(j.id, j.token, "drain")));
    }
  }
  EXPECT_EQ(Depths()["m1"], (Depth{3, 0, 0}));
  EXPECT_EQ(Depths()["m2"], (Depth{0, 1, 0}));
  ASSERT_TRUE(RunAsync(io_, store_->Cancel("j4")));
  ASSERT_TRUE(RunAsync(io_, store_->Cancel("j2")));
  EXPECT_EQ(Depths()["m1"], (Depth{2, 0, 0}));
  EXPECT_EQ(Depths()["m2"], (Depth{0, 0, 0}));

  // A lease that expires goes back to dispatched; a success leaves every counter. (Another
  // worker: leases are per worker, and "w" holds a 60 s one.)
  clock_->Advance(1s);
  ASSERT_EQ(Dispatch(0), 1);
  auto again = RunAsync(io_, store_->Lease("w2", 10, 1s));
  ASSERT_TRUE(again);
  ASSERT_EQ(again->size(), 1u);
  EXPECT_EQ(Depths()["m1"], (Depth{1, 0, 1}));
  clock_->Advance(2s);
  ASSERT_TRUE(RunAsync(io_, store_->Reap(10)));
  EXPECT_EQ(Depths()["m1"], (Depth{1, 1, 0}));
  auto third = RunAsync(io_, store_->Lease("w", 10, 60s));
  ASSERT_TRUE(third);
  ASSERT_EQ(third->size(), 1u);
  CompleteRequest done{.job_id = (*third)[0].id, .token = (*third)[0].token};
  ASSERT_TRUE(RunAsync(io_, store_->Complete(done)));
  EXPECT_EQ(Depths()["m1"], (Depth{1, 0, 0}));
  // The failed-with-retry job is still pending (waiting out its backoff); retried-by-request
  // jobs come back as pending too.
  ASSERT_TRUE(RunAsync(io_, store_->Retry("j2")));
  EXPECT_EQ(Depths()["m1"], (Depth{2, 0, 0}));
}

}  // namespace
}  // namespace reelq::queue
