#include <cmath>
#include <stdexcept>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "reelq/common/metrics.h"

namespace reelq::metrics {
namespace {

TEST(MetricsFormatTest, Values) {
  EXPECT_EQ(FormatValue(0), "0");
  EXPECT_EQ(FormatValue(3), "3");
  EXPECT_EQ(FormatValue(-2.5), "-2.5");
  EXPECT_EQ(FormatValue(0.1), "0.1");
  EXPECT_EQ(FormatValue(1e21), "1e+21");
  EXPECT_EQ(FormatValue(INFINITY), "+Inf");
  EXPECT_EQ(FormatValue(-INFINITY), "-Inf");
  EXPECT_EQ(FormatValue(NAN), "NaN");
}

TEST(MetricsFormatTest, Escaping) {
  EXPECT_EQ(EscapeLabelValue(R"(a\b"c)"
                             "\n"
                             "d"),
            R"(a\\b\"c\nd)");
  EXPECT_EQ(EscapeHelp(R"(a\b"c)"
                       "\n"
                       "d"),
            R"(a\\b"c\nd)");
}

TEST(MetricsFormatTest, Names) {
  EXPECT_TRUE(IsValidMetricName("reelq_jobs_total"));
  EXPECT_TRUE(IsValidMetricName("ns:sub_metric"));
  EXPECT_FALSE(IsValidMetricName("1abc"));
  EXPECT_FALSE(IsValidMetricName("a-b"));
  EXPECT_FALSE(IsValidMetricName(""));
  EXPECT_TRUE(IsValidLabelName("model"));
  EXPECT_FALSE(IsValidLabelName("__reserved"));
  EXPECT_FALSE(IsValidLabelName("a:b"));
  EXPECT_FALSE(IsValidLabelName("9"));
}

TEST(MetricsRegistryTest, RendersTheTextFormat) {
  Registry r;
  auto& jobs = r.AddCounter("reelq_jobs_total", "Jobs by model and state.", {"model", "state"});
  jobs.WithLabels({"sora-2", "succeeded"}).Inc(3);
  jobs.WithLabels({"kling-3.0", "failed"}).Inc();
  jobs.WithLabels({"odd \"model\"\\x\ny", "succeeded"}).Inc(0.5);
  r.AddGauge("reelq_ready", "1 when ready;\nsecond \\ line.").Get().Set(1);
  auto& latency =
      r.AddHistogram("reelq_latency_seconds", "Generation latency.", {1, 2.5, 10}, {"model"});
  auto& veo = latency.WithLabels({"veo-3.1"});
  for (double v : {0.5, 1.0, 2.0, 3.0, 100.0}) veo.Observe(v);
  r.AddCounter("reelq_empty_total", "Labelled, no children yet.", {"model"});

  const std::string expected =
      "# HELP reelq_empty_total Labelled, no children yet.\n"
      "# TYPE reelq_empty_total counter\n"
      "# HELP reelq_jobs_total Jobs by model and state.\n"
      "# TYPE reelq_jobs_total counter\n"
      "reelq_jobs_total{model=\"kling-3.0\",state=\"failed\"} 1\n"
      "reelq_jobs_total{model=\"odd \\\"model\\\"\\\\x\\ny\",state=\"succeeded\"} 0.5\n"
      "reelq_jobs_total{model=\"sora-2\",state=\"succeeded\"} 3\n"
      "# HELP reelq_latency_seconds Generation latency.\n"
      "# TYPE reelq_latency_seconds histogram\n"
      "reelq_latency_seconds_bucket{model=\"veo-3.1\",le=\"1\"} 2\n"
      "reelq_latency_seconds_bucket{model=\"veo-3.1\",le=\"2.5\"} 3\n"
      "reelq_latency_seconds_bucket{model=\"veo-3.1\",le=\"10\"} 4\n"
      "reelq_latency_seconds_bucket{model=\"veo-3.1\",le=\"+Inf\"} 5\n"
      "reelq_latency_seconds_sum{model=\"veo-3.1\"} 106.5\n"
      "reelq_latency_seconds_count{model=\"veo-3.1\"} 5\n"
      "# HELP reelq_ready 1 when ready;\\nsecond \\\\ line.\n"
      "# TYPE reelq_ready gauge\n"
      "reelq_ready 1\n";
  EXPECT_EQ(r.Render(), expected);
}

TEST(MetricsRegistryTest, UnlabelledHistogramAndZeroValues) {
  Registry r;
  r.AddHistogram("h", "h.", {0.5});
  r.AddCounter("c_total", "c.");
  EXPECT_EQ(r.Render(),
            "# HELP c_total c.\n# TYPE c_total counter\nc_total 0\n"
            "# HELP h h.\n# TYPE h histogram\n"
            "h_bucket{le=\"0.5\"} 0\nh_bucket{le=\"+Inf\"} 0\nh_sum 0\nh_count 0\n");
}

TEST(MetricsRegistryTest, CounterOnlyGoesUpGaugeGoesBothWays) {
  Registry r;
  auto& c = r.AddCounter("c_total", "c.").Get();
  c.Inc(2);
  c.Inc(-5);
  c.Inc(NAN);
  c.Inc(INFINITY);
  EXPECT_EQ(c.Value(), 2);
  auto& g = r.AddGauge("g", "g.").Get();
  g.Inc(5);
  g.Dec(7);
  EXPECT_EQ(g.Value(), -2);
  g.Set(0.25);
  EXPECT_EQ(g.Value(), 0.25);
}

TEST(MetricsRegistryTest, ObservationOnABoundLandsInThatBucket) {
  Registry r;
  auto& h = r.AddHistogram("h", "h.", {1, 2}).Get();
  h.Observe(1);
  h.Observe(2);
  h.Observe(NAN);  // ignored
  auto snap = h.Snap();
  EXPECT_EQ(snap.cumulative, (std::vector<uint64_t>{1, 2, 2}));
  EXPECT_EQ(snap.count, 2u);
  EXPECT_EQ(snap.sum, 3);
}

TEST(MetricsRegistryTest, RepeatedRegistrationReturnsTheSameFamily) {
  Registry r;
  auto& a = r.AddCounter("x_total", "x.", {"model"});
  auto& b = r.AddCounter("x_total", "x.", {"model"});
  EXPECT_EQ(&a, &b);
  auto& h1 = r.AddHistogram("h", "h.", {1, 2});
  EXPECT_EQ(&h1, &r.AddHistogram("h", "h.", {1, 2}));
  EXPECT_THROW(r.AddHistogram("h", "h.", {1, 3}), std::invalid_argument);
  EXPECT_THROW(r.AddGauge("x_total", "x.", {"model"}), std::invalid_argument);
  EXPECT_THROW(r.AddCounter("x_total", "x.", {"account"}), std::invalid_argument);
}

TEST(MetricsRegistryTest, RegistrationMistakesThrow) {
  Registry r;
  EXPECT_THROW(r.AddCounter("bad-name", "x."), std::invalid_argument);
  EXPECT_THROW(r.AddCounter("ok_total", "x.", {"bad-label"}), std::invalid_argument);
  EXPECT_THROW(r.AddCounter("ok_total", "x.", {"a", "a"}), std::invalid_argument);
  EXPECT_THROW(r.AddHistogram("h", "x.", {1}, {"le"}), std::invalid_argument);
  EXPECT_THROW(r.AddHistogram("h", "x.", {2, 1}), std::invalid_argument);
  EXPECT_THROW(r.AddHistogram("h", "x.", {1, INFINITY}), std::invalid_argument);
  auto& f = r.AddCounter("two_total", "x.", {"a", "b"});
  EXPECT_THROW(f.WithLabels({"only-one"}), std::invalid_argument);
}

TEST(MetricsRegistryTest, BucketHelpers) {
  EXPECT_EQ(ExponentialBuckets(1, 2, 4), (std::vector<double>{1, 2, 4, 8}));
  EXPECT_EQ(LinearBuckets(10, 5, 3), (std::vector<double>{10, 15, 20}));
  EXPECT_THROW(ExponentialBuckets(0, 2, 3), std::invalid_argument);
}

TEST(MetricsRegistryTest, CollectHooksRunBeforeRendering) {
  Registry r;
  auto& g = r.AddGauge("depth", "d.").Get();
  int calls = 0;
  r.AddCollectHook([&] { g.Set(++calls * 10); });
  EXPECT_NE(r.Render().find("depth 10\n"), std::string::npos);
  EXPECT_NE(r.Render().find("depth 20\n"), std::string::npos);
}

TEST(MetricsRegistryTest, ConcurrentUpdatesAreNotLost) {
  Registry r;
  auto& counters = r.AddCounter("c_total", "c.", {"worker"});
  auto& gauge = r.AddGauge("g", "g.").Get();
  auto& hist = r.AddHistogram("h", "h.", {0.5, 1.5}).Get();
  constexpr int kThreads = 4;
  constexpr int kPerThread = 50'000;
  std::vector<std::thread> threads;
  std::atomic<bool> done{false};
  // A scraper renders while the writers run: the format must stay whole.
  std::thread scraper([&] {
    while (!done.load()) {
      std::string text = r.Render();
      ASSERT_NE(text.find("# TYPE h histogram"), std::string::npos);
    }
  });
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        // Half the lookups go to a shared child, half to a per-thread one.
        counters.WithLabels({i % 2 ? "shared" : "w" + std::to_string(t)}).Inc();
        gauge.Inc();
        hist.Observe(i % 2);
      }
    });
  }
  for (auto& th : threads) th.join();
  done = true;
  scraper.join();
  EXPECT_EQ(counters.WithLabels({"shared"}).Value(), kThreads * kPerThread / 2);
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(counters.WithLabels({"w" + std::to_string(t)}).Value(), kPerThread / 2);
  }
  EXPECT_EQ(gauge.Value(), kThreads * kPerThread);
  auto snap = hist.Snap();
  EXPECT_EQ(snap.count, static_cast<uint64_t>(kThreads * kPerThread));
  EXPECT_EQ(snap.cumulative[0], static_cast<uint64_t>(kThreads * kPerThread / 2));
  EXPECT_EQ(snap.sum, kThreads * kPerThread / 2);
}

}  // namespace
}  // namespace reelq::metrics
