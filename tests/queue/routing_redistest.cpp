// reelq's one routing rule, where it is decided: queue/lua/dispatch.lua, driven through
// JobStore::Dispatch against a real redis-server. Among a job's candidate models dispatch picks
// the earliest expected finish (latency, plus the wait for a slot when none is free, at the
// slower of slot release and create rate), keeps a stated first choice unless another model
// beats it by more than the preference margin, and feeds completions into each model's
// latency estimate, clamped to the catalogue profile (queue/lua/complete.lua).
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "store_fixture.h"

namespace reelq::queue {
namespace {

using namespace std::chrono_literals;
using testing::RunAsync;

// One model served by one account of its own ("<id>-acct").
struct ModelDef {
  std::string id;
  double latency_s = 60;
  int slots = 10;
  double rpm = 6000;
  double latency_min_s = 0;
  double latency_max_s = 0;
};

QueueSettings Models(const std::vector<ModelDef>& defs) {
  QueueSettings s;
  for (const auto& d : defs) {
    s.models.push_back({.id = d.id,
                        .accounts = {d.id + "-acct"},
                        .latency_seed_seconds = d.latency_s,
                        .latency_min_seconds = d.latency_min_s,
                        .latency_max_seconds = d.latency_max_s});
    s.accounts.push_back({.id = d.id + "-acct",
                          .provider = d.id,
                          .requests_per_minute = d.rpm,
                          .max_concurrent = d.slots});
  }
  return s;
}

class RoutingTest : public StoreTest {
 protected:
  void Sync(const std::vector<ModelDef>& defs) { StoreTest::Sync(Models(defs)); }

  void Submit(const std::string& id, std::vector<std::string> models, bool prefer_first = false) {
    NewJob job{.id = id,
               .tenant = "t1",
               .spec_bytes = "spec",
               .candidate_models = std::move(models),
               .prefer_first = prefer_first};
    auto r = RunAsync(io_, store_->Submit(job, 3600));
    if (!r) throw std::runtime_error(r.error().Describe());
  }

  int Dispatch(double margin_s = 0) {
    auto r = RunAsync(io_, store_->Dispatch(100, 16, 1, "fair", margin_s));
    if (!r) throw std::runtime_error(r.error().Describe());
    return r->dispatched;
  }

  // Every job dispatched so far, leased: job id -> lease.
  std::map<std::string, LeasedJob> LeaseAll() {
    auto leased = RunAsync(io_, store_->Lease("w", 100, 600s));
    if (!leased) throw std::runtime_error(leased.error().Describe());
    std::map<std::string, LeasedJob> out;
    for (auto& j : *leased) out[j.id] = j;
    return out;
  }

  // job id -> model, for every job dispatched so far.
  std::map<std::string, std::string> Routed() {
    std::map<std::string, std::string> out;
    for (const auto& [id, lease] : LeaseAll()) out[id] = lease.model;
    return out;
  }

  std::string State(const std::string& id) {
    return server_->Run({"HGET", "t:{q}:job:" + id, "state"}).str;
  }

  // Runs one job on `model` to success with the given generation time.
  void CompleteOn(const std::string& id, const std::string& model, double generation_s) {
    Submit(id, {model});
    ASSERT_EQ(Dispatch(), 1);
    auto leases = LeaseAll();
    ASSERT_EQ(leases.count(id), 1u);
    CompleteRequest done{.job_id = id,
                         .token = leases[id].token,
                         .generation_ms = static_cast<int64_t>(generation_s * 1000)};
    auto r = RunAsync(io_, store_->Complete(done));
    ASSERT_TRUE(r) << r.error().Describe();
  }

  double LatencyEstimate(const std::string& model) {
    auto stats = RunAsync(io_, store_->GetStats());
    if (!stats) throw std::runtime_error(stats.error().Describe());
    for (const auto& m : stats->models) {
      if (m.id == model) return m.latency_estimate_seconds;
    }
    ADD_FAILURE() << "no live stats for " << model;
    return -1;
  }
};

// --- Earliest expected finish ------------------------------------------------------------------

TEST_F(RoutingTest, WithFreeSlotsTheFasterModelWinsWhateverTheOrder) {
  Sync({{.id = "slow", .latency_s = 120}, {.id = "fast", .latency_s = 45}});
  Submit("a", {"slow", "fast"});
  Submit("b", {"fast", "slow"});
  ASSERT_EQ(Dispatch(), 2);
  auto routed = Routed();
  EXPECT_EQ(routed["a"], "fast");
  EXPECT_EQ(routed["b"], "fast");
}

TEST_F(RoutingTest, ABusyFasterModelKeepsJobsWhileWaitingForItStillFinishesFirst) {
  // "fast": 30 s, one slot, so its queue drains one job per 30 s; "slow": 100 s, free.
  // j1 takes the slot. j2 would finish on "fast" after 30 s wait + 30 s = 60 s, j3 after
  // 60 + 30 = 90 s: both earlier than 100 s on "slow", so both wait. j4 would need 120 s:
  // "slow" finishes first and takes it.
  Sync({{.id = "fast", .latency_s = 30, .slots = 1}, {.id = "slow", .latency_s = 100}});
  for (const char* id : {"j1", "j2", "j3", "j4"}) Submit(id, {"fast", "slow"});
  ASSERT_EQ(Dispatch(), 2);
  auto routed = Routed();
  EXPECT_EQ(routed["j1"], "fast");
  EXPECT_EQ(routed["j4"], "slow");
  EXPECT_EQ(State("j2"), "PENDING");
  EXPECT_EQ(State("j3"), "PENDING");
  // Every later round sees the same queue and makes the same choice: nothing moves until
  // "fast" gives its slot back.
  EXPECT_EQ(Dispatch(), 0);
  clock_->Advance(1s);
  EXPECT_EQ(Dispatch(), 0);
}

TEST_F(RoutingTest, ARateBoundModelDrainsAtItsCreateRateNotItsSlots) {
  // "fast" has 100 slots but one create a minute: after j1 spends the token, the next job
  // waits for the next create, 60 s away: 60 + 30 = 90 s < 100 s, so j2 waits; j3 would wait
  // two creates (150 s) and goes to "slow".
  Sync({{.id = "fast", .latency_s = 30, .slots = 100, .rpm = 1}, {.id = "slow", .latency_s = 100}});
  for (const char* id : {"j1", "j2", "j3"}) Submit(id, {"fast", "slow"});
  ASSERT_EQ(Dispatch(), 2);
  auto routed = Routed();
  EXPECT_EQ(routed["j1"], "fast");
  EXPECT_EQ(routed["j3"], "slow");
  EXPECT_EQ(State("j2"), "PENDING");
}

TEST_F(RoutingTest, EqualExpectedFinishGoesToTheEarlierCandidate) {
  Sync({{.id = "a", .latency_s = 60}, {.id = "b", .latency_s = 60}});
  Submit("ab", {"a", "b"});
  Submit("ba", {"b", "a"});
  ASSERT_EQ(Dispatch(), 2);
  auto routed = Routed();
  EXPECT_EQ(routed["ab"], "a");
  EXPECT_EQ(routed["ba"], "b");
}

TEST_F(RoutingTest, AModelWithoutCapacityOrUnknownToTheQueueNeverWins) {
  // "instant" claims 1 s but has no slots; "ghost" was never published (not in the catalogue
  // any more). A job that allows only those waits.
  Sync({{.id = "instant", .latency_s = 1, .slots = 0}, {.id = "slow", .latency_s = 300}});
  Submit("either", {"instant", "ghost", "slow"});
  Submit("only-unusable", {"instant", "ghost"});
  ASSERT_EQ(Dispatch(), 1);
  EXPECT_EQ(Routed()["either"], "slow");
  EXPECT_EQ(State("only-unusable"), "PENDING");
}

TEST_F(RoutingTest, JobsKeepToTheirCandidatesEvenWhenAFasterModelIsIdle) {
  // Admission narrows a job to the models that can make its length (a 3 s clip: only
  // kling-3.0 in the shipped catalogue; tests/sched shows that path end to end); dispatch never
  // routes outside that list.
  Sync(
      {{.id = "kling-3.0", .latency_s = 120, .slots = 1}, {.id = "seedance-2.0", .latency_s = 45}});
  Submit("three-seconds-1", {"kling-3.0"});
  Submit("three-seconds-2", {"kling-3.0"});
  Submit("ten-seconds", {"kling-3.0", "seedance-2.0"});
  ASSERT_EQ(Dispatch(), 2);
  auto routed = Routed();
  EXPECT_EQ(routed["three-seconds-1"], "kling-3.0");
  EXPECT_EQ(routed["ten-seconds"], "seedance-2.0");
  EXPECT_EQ(State("three-seconds-2"), "PENDING");  // waits for kling's one slot
}

// --- Preference margin -------------------------------------------------------------------------

TEST_F(RoutingTest, PreferenceMarginKeepsTheFirstChoiceOnlyWithinTheMargin) {
  // Photorealism: sora-2 (180 s, one slot) is the stated first choice, seedance-2.0 (45 s) the
  // faster alternative. Without a preference, speed wins.
  Sync({{.id = "sora-2", .latency_s = 180, .slots = 1}, {.id = "seedance-2.0", .latency_s = 45}});
  Submit("no-preference", {"sora-2", "seedance-2.0"}, false);
  ASSERT_EQ(Dispatch(300), 1);
  EXPECT_EQ(Routed()["no-preference"], "seedance-2.0");
  // Preferred, margin 300 s: seedance is 135 s earlier, within the margin: sora-2 keeps it.
  Submit("within", {"sora-2", "seedance-2.0"}, true);
  ASSERT_EQ(Dispatch(300), 1);
  EXPECT_EQ(Routed()["within"], "sora-2");
  // sora-2's slot is now taken: the next preferred job would finish there after 180 s wait +
  // 180 s = 360 s, 315 s later than seedance: beyond the margin, so it moves.
  Submit("beyond", {"sora-2", "seedance-2.0"}, true);
  ASSERT_EQ(Dispatch(300), 1);
  EXPECT_EQ(Routed()["beyond"], "seedance-2.0");
  // With a margin of 400 s the same job waits for its first choice instead.
  Submit("patient", {"sora-2", "seedance-2.0"}, true);
  EXPECT_EQ(Dispatch(400), 0);
  EXPECT_EQ(State("patient"), "PENDING");
}

// --- Latency estimate ----------------------------------------------------------------------------

TEST_F(RoutingTest, CompletionsMoveTheEstimateAndWithItTheRoute) {
  Sync({{.id = "m", .latency_s = 60}, {.id = "other", .latency_s = 100}});
  CompleteOn("c1", "m", 160);
  EXPECT_NEAR(LatencyEstimate("m"), 0.8 * 60 + 0.2 * 160, 1e-9);  // 80
  // The provider has become slow: after a few more, "other" finishes first.
  for (int i = 2; i <= 4; ++i) CompleteOn("c" + std::to_string(i), "m", 160);
  EXPECT_GT(LatencyEstimate("m"), 100);
  Submit("next", {"m", "other"});
  ASSERT_EQ(Dispatch(), 1);
  EXPECT_EQ(Routed()["next"], "other");
}

TEST_F(RoutingTest, EachSampleIsClampedToTheProfileBeforeItEntersTheEstimate) {
  // Profile min 20 s, max 90 s: samples count within [10 s, 180 s].
  Sync({{.id = "m", .latency_s = 45, .latency_min_s = 20, .latency_max_s = 90},
        {.id = "other", .latency_s = 100}});
  CompleteOn("stuck", "m", 3600);  // a task stuck for an hour counts as 180 s
  EXPECT_NEAR(LatencyEstimate("m"), 0.8 * 45 + 0.2 * 180, 1e-9);  // 72, not 756
  // So one stuck task does not send the next job to the slower model.
  Submit("next", {"m", "other"});
  ASSERT_EQ(Dispatch(), 1);
  EXPECT_EQ(Routed()["next"], "m");
  CompleteOn("cached", "m", 0.01);  // a cache hit counts as 10 s
  EXPECT_NEAR(LatencyEstimate("m"), 0.8 * 72 + 0.2 * 10, 1e-9);
}

TEST_F(RoutingTest, WithoutAProfileSamplesCountAsObserved) {
  Sync({{.id = "m", .latency_s = 45}});
  CompleteOn("long", "m", 3600);
  EXPECT_NEAR(LatencyEstimate("m"), 0.8 * 45 + 0.2 * 3600, 1e-9);
}

}  // namespace
}  // namespace reelq::queue
