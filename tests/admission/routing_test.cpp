#include "reelq/scheduler/routing.h"

#include <cmath>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "test_catalogue.h"

namespace reelq::scheduler {
namespace {

// --- ExpectedFinishSeconds -----------------------------------------------------------------

TEST(ExpectedFinishTest, FreeSlotMeansJustTheLatency) {
  EXPECT_DOUBLE_EQ(ExpectedFinishSeconds(
                       {.free_slots = 2, .total_slots = 5, .waiting = 1, .latency_seconds = 120}),
                   120);
}

TEST(ExpectedFinishTest, QueueAheadAddsWaitPerSlotRelease) {
  // 5 slots all busy, 9 jobs waiting: this job needs the 10th slot release; slots release at
  // 5 per 120 s, so it waits 10 * 120 / 5 = 240 s and finishes after 360 s.
  EXPECT_DOUBLE_EQ(ExpectedFinishSeconds(
                       {.free_slots = 0, .total_slots = 5, .waiting = 9, .latency_seconds = 120}),
                   360);
  // One free slot but two jobs ahead of this one: it needs two releases.
  EXPECT_DOUBLE_EQ(ExpectedFinishSeconds(
                       {.free_slots = 1, .total_slots = 4, .waiting = 2, .latency_seconds = 100}),
                   150);
}

TEST(ExpectedFinishTest, GrowsWithTheQueue) {
  double last = 0;
  for (int waiting = 0; waiting < 50; ++waiting) {
    double f = ExpectedFinishSeconds(
        {.free_slots = 3, .total_slots = 3, .waiting = waiting, .latency_seconds = 45});
    EXPECT_GE(f, last);
    last = f;
  }
}

TEST(ExpectedFinishTest, NoCapacityIsInfinite) {
  EXPECT_TRUE(std::isinf(ExpectedFinishSeconds({.total_slots = 0, .latency_seconds = 10})));
}

// --- ChooseModel ---------------------------------------------------------------------------

TEST(ChooseModelTest, FasterModelWithCapacityWins) {
  std::vector<ModelLoad> loads = {
      {.free_slots = 5, .total_slots = 5, .waiting = 0, .latency_seconds = 120},  // kling
      {.free_slots = 3, .total_slots = 3, .waiting = 0, .latency_seconds = 45},   // seedance
  };
  EXPECT_EQ(ChooseModel(loads), 1u);
}

TEST(ChooseModelTest, BusyFirstChoiceLosesOnlyWhenItsWaitExceedsTheDifference) {
  // First choice 60 s, second 100 s: the difference is 40 s.
  auto first_with_wait = [](int waiting) {
    // 2 slots, none free: wait = (waiting + 1) * 60 / 2.
    return ModelLoad{.free_slots = 0, .total_slots = 2, .waiting = waiting, .latency_seconds = 60};
  };
  const ModelLoad second{.free_slots = 1, .total_slots = 1, .waiting = 0, .latency_seconds = 100};

  // waiting 0: wait 30 s < 40 s -> the first choice keeps the job.
  EXPECT_EQ(ChooseModel(std::vector<ModelLoad>{first_with_wait(0), second}), 0u);
  // waiting 1: wait 60 s > 40 s -> the free second choice finishes first.
  EXPECT_EQ(ChooseModel(std::vector<ModelLoad>{first_with_wait(1), second}), 1u);
}

TEST(ChooseModelTest, TiesGoToTheEarlierCandidate) {
  const ModelLoad a{.free_slots = 1, .total_slots = 1, .waiting = 0, .latency_seconds = 90};
  const ModelLoad b{.free_slots = 0, .total_slots = 3, .waiting = 2, .latency_seconds = 30};
  // b: wait 3 * 30 / 3 = 30, finish 60; make a finish at 60 too.
  const ModelLoad a60{.free_slots = 1, .total_slots = 1, .waiting = 0, .latency_seconds = 60};
  EXPECT_EQ(ChooseModel(std::vector<ModelLoad>{a60, b}), 0u);
  EXPECT_EQ(ChooseModel(std::vector<ModelLoad>{b, a60}), 0u);
  EXPECT_EQ(ChooseModel(std::vector<ModelLoad>{a, b}), 1u);
}

TEST(ChooseModelTest, NothingFreeStillPicksTheBestExpectedFinish) {
  std::vector<ModelLoad> loads = {
      {.free_slots = 0, .total_slots = 2, .waiting = 20, .latency_seconds = 120},  // 1380 s
      {.free_slots = 0, .total_slots = 4, .waiting = 3, .latency_seconds = 180},   // 360 s
      {.free_slots = 0, .total_slots = 1, .waiting = 5, .latency_seconds = 45},    // 315 s
  };
  EXPECT_EQ(ChooseModel(loads), 2u);
}

TEST(ChooseModelTest, NoCandidatesOrNoCapacityAnywhereGivesNothing) {
  EXPECT_EQ(ChooseModel(std::vector<ModelLoad>{}), std::nullopt);
  EXPECT_EQ(ChooseModel(std::vector<ModelLoad>{{.total_slots = 0, .latency_seconds = 10},
                                               {.total_slots = 0, .latency_seconds = 5}}),
            std::nullopt);
  // A model without capacity never wins, however fast it claims to be.
  EXPECT_EQ(ChooseModel(std::vector<ModelLoad>{
                {.total_slots = 0, .latency_seconds = 1},
                {.free_slots = 0, .total_slots = 1, .waiting = 99, .latency_seconds = 300}}),
            1u);
}

TEST(ChooseModelTest, PreferenceMarginKeepsTheFirstChoiceUnlessItIsMuchLater) {
  // Photorealism: sora-2 first (180 s), seedance-2.0 faster (45 s).
  const ModelLoad sora{.free_slots = 1, .total_slots = 1, .waiting = 0, .latency_seconds = 180};
  const ModelLoad seedance{.free_slots = 4, .total_slots = 4, .waiting = 0, .latency_seconds = 45};
  EXPECT_EQ(ChooseModel(std::vector<ModelLoad>{sora, seedance}), 1u);       // pure speed
  EXPECT_EQ(ChooseModel(std::vector<ModelLoad>{sora, seedance}, 300), 0u);  // margin 300 s
  // With a long queue on sora-2 (wait 10 * 180 = 1800 s) the margin is not enough.
  ModelLoad busy = sora;
  busy.free_slots = 0;
  busy.waiting = 9;
  EXPECT_EQ(ChooseModel(std::vector<ModelLoad>{busy, seedance}, 300), 1u);
}

TEST(ChooseModelTest, ByIdLooksUpLiveLoadsAndSkipsUnknownIds) {
  std::map<std::string, ModelLoad, std::less<>> live = {
      {"kling-3.0", {.free_slots = 0, .total_slots = 5, .waiting = 40, .latency_seconds = 120}},
      {"seedance-2.0", {.free_slots = 2, .total_slots = 2, .waiting = 0, .latency_seconds = 45}},
  };
  EXPECT_EQ(ChooseModel({"kling-3.0", "seedance-2.0"}, live), 1u);
  EXPECT_EQ(ChooseModel({"veo-3.1", "kling-3.0"}, live), 1u);
  EXPECT_EQ(ChooseModel({"veo-3.1"}, live), std::nullopt);
}

// --- LatencyEstimator ----------------------------------------------------------------------

TEST(LatencyEstimatorTest, SeededFromTheCatalogueMedian) {
  LatencyEstimator est(reelq::testing::ShippedCatalogue());
  EXPECT_EQ(est.Estimate("kling-3.0"), 120);
  EXPECT_EQ(est.Estimate("seedance-2.0"), 45);
  EXPECT_EQ(est.Estimate("nope"), std::nullopt);
  EXPECT_EQ(est.Snapshot().size(), 4u);
}

TEST(LatencyEstimatorTest, MovesTowardsObservedLatency) {
  LatencyEstimator est(reelq::testing::ShippedCatalogue(), 0.5);
  EXPECT_DOUBLE_EQ(*est.Observe("kling-3.0", 200), 160);  // 0.5 * 120 + 0.5 * 200
  EXPECT_DOUBLE_EQ(*est.Observe("kling-3.0", 200), 180);
  // A provider that has become slower: the estimate converges on the new speed.
  for (int i = 0; i < 30; ++i) est.Observe("kling-3.0", 250);
  EXPECT_NEAR(*est.Estimate("kling-3.0"), 250, 0.01);
  EXPECT_EQ(est.Estimate("sora-2"), 180);  // other models untouched
}

TEST(LatencyEstimatorTest, ClampsOutliersToTheProfile) {
  // seedance-2.0 profile: min 20, max 90 -> samples are clamped to [10, 180].
  LatencyEstimator est(reelq::testing::ShippedCatalogue(), 1.0);
  EXPECT_DOUBLE_EQ(*est.Observe("seedance-2.0", 3600), 180);    // a task stuck for an hour
  EXPECT_DOUBLE_EQ(*est.Observe("seedance-2.0", 0.01), 10);     // a cache hit
  LatencyEstimator smooth(reelq::testing::ShippedCatalogue());  // weight 0.2
  smooth.Observe("seedance-2.0", 1e9);
  EXPECT_DOUBLE_EQ(*smooth.Estimate("seedance-2.0"), 0.8 * 45 + 0.2 * 180);
}

TEST(LatencyEstimatorTest, IgnoresGarbageSamples) {
  LatencyEstimator est(reelq::testing::ShippedCatalogue());
  EXPECT_EQ(est.Observe("kling-3.0", -1), std::nullopt);
  EXPECT_EQ(est.Observe("kling-3.0", std::nan("")), std::nullopt);
  EXPECT_EQ(est.Observe("kling-3.0", INFINITY), std::nullopt);
  EXPECT_EQ(est.Observe("unknown", 10), std::nullopt);
  EXPECT_EQ(est.Estimate("kling-3.0"), 120);
}

TEST(LatencyEstimatorTest, WeightOutOfRangeIsClamped) {
  EXPECT_EQ(LatencyEstimator(reelq::testing::ShippedCatalogue(), 7).weight(), 1.0);
  EXPECT_GT(LatencyEstimator(reelq::testing::ShippedCatalogue(), -1).weight(), 0);
  EXPECT_EQ(LatencyEstimator(reelq::testing::ShippedCatalogue(), NAN).weight(),
            LatencyEstimator::kDefaultWeight);
}

TEST(LatencyEstimatorTest, ConcurrentObservationsStayInsideTheSampleRange) {
  LatencyEstimator est(reelq::testing::ShippedCatalogue());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&est, t] {
      for (int i = 0; i < 5000; ++i) est.Observe("veo-3.1", t % 2 ? 60 : 90);
    });
  }
  for (auto& th : threads) th.join();
  double e = *est.Estimate("veo-3.1");
  EXPECT_GE(e, 60);
  EXPECT_LE(e, 90);
}

}  // namespace
}  // namespace reelq::scheduler
