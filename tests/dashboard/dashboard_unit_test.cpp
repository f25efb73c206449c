// The dashboard's rules that need no server: Range headers, file:// URLs, cookies, and the
// last-hour figures Activity folds out of the event stream.
#include <gtest/gtest.h>

#include "reelq/scheduler/activity.h"
#include "reelq/scheduler/dashboard.h"

namespace reelq::scheduler {
namespace {

TEST(ParseRange, ServesWhatBrowsersAsk) {
  auto all = ParseRange("bytes=0-", 1000);
  ASSERT_TRUE(all && *all);
  EXPECT_EQ((**all).first, 0u);
  EXPECT_EQ((**all).last, 999u);
  auto middle = ParseRange("bytes=100-199", 1000);
  ASSERT_TRUE(middle && *middle);
  EXPECT_EQ((**middle).first, 100u);
  EXPECT_EQ((**middle).last, 199u);
  auto clipped = ParseRange("bytes=900-5000", 1000);
  ASSERT_TRUE(clipped && *clipped);
  EXPECT_EQ((**clipped).last, 999u);
  auto suffix = ParseRange("bytes=-100", 1000);
  ASSERT_TRUE(suffix && *suffix);
  EXPECT_EQ((**suffix).first, 900u);
  EXPECT_EQ((**suffix).last, 999u);
  auto big_suffix = ParseRange("bytes=-5000", 1000);
  ASSERT_TRUE(big_suffix && *big_suffix);
  EXPECT_EQ((**big_suffix).first, 0u);
}

TEST(ParseRange, IgnoresWhatItMayAndRefusesWhatItCannotServe) {
  EXPECT_FALSE(ParseRange("items=0-5", 1000).has_value());
  EXPECT_FALSE(ParseRange("bytes=0-5,10-20", 1000).has_value());
  for (const char* bad :
       {"bytes=1000-", "bytes=5-4", "bytes=x-", "bytes=-0", "bytes=5", "bytes=-"}) {
    auto r = ParseRange(bad, 1000);
    ASSERT_TRUE(r.has_value()) << bad;
    ASSERT_FALSE(*r) << bad;
    EXPECT_NE(r->error().message.find("Range"), std::string::npos) << r->error().message;
  }
}

TEST(FileUrlPath, DecodesOnlyLocalFileUrls) {
  EXPECT_EQ(FileUrlPath("file:///tmp/store/acme/b%201/j.mp4"), "/tmp/store/acme/b 1/j.mp4");
  EXPECT_EQ(FileUrlPath("https://bucket.example/j.mp4?X-Amz-Signature=1"), "");
  EXPECT_EQ(FileUrlPath("file://host/tmp/j.mp4"), "");
  EXPECT_EQ(FileUrlPath("file:///tmp/%zz.mp4"), "");
}

TEST(CookieValue, FindsTheNamedCookie) {
  EXPECT_EQ(CookieValue("a=1; reelq_token=tok-9; b=2", "reelq_token"), "tok-9");
  EXPECT_EQ(CookieValue("reelq_token=x", "reelq_token"), "x");
  EXPECT_EQ(CookieValue("xreelq_token=x; other=1", "reelq_token"), "");
  EXPECT_EQ(CookieValue("", "reelq_token"), "");
}

TEST(ActivityParsers, DetailsAndQuantiles) {
  EXPECT_EQ(ParseDispatchDetail("kling-3 via kling-a"),
            (std::pair<std::string, std::string>{"kling-3", "kling-a"}));
  EXPECT_EQ(ParseDispatchDetail("lease expired").first, "");
  EXPECT_EQ(ParseDispatchDetail("internal: the upload failed via the proxy (the finished task is "
                                "kept)")
                .first,
            "");
  EXPECT_EQ(ParseFailureCategory("policy_rejected: prompt blocked (1301)"), "policy_rejected");
  EXPECT_EQ(ParseFailureCategory("start deadline passed"), "deadline_exceeded");
  EXPECT_EQ(ParseFailureCategory("Something Odd"), "internal");
  // dispatch.lua's sentences, whose category it records apart (err_cat).
  EXPECT_EQ(ParseFailureCategory("batch budget: this attempt would take batch b1 past its budget "
                                 "of $1.00 ($0.20 left, $0.30 short at the cheapest allowed "
                                 "model); raise the budget and retry the job"),
            "failed_precondition");
  EXPECT_EQ(ParseFailureCategory("no model this job may use has an account configured any more "
                                 "(veo-3.1): add an account for one of them, or submit it again "
                                 "with other models"),
            "failed_precondition");
  auto failure = ParseFailureDetail("rate_limited: 429 from kling");
  ASSERT_TRUE(failure);
  EXPECT_EQ(failure->category, "rate_limited");
  EXPECT_EQ(failure->message, "429 from kling");
  EXPECT_FALSE(ParseFailureDetail("queued: starts from the last frame of shots[0]"));
  std::vector<int64_t> v;
  for (int i = 1; i <= 100; ++i) v.push_back(i);
  EXPECT_EQ(Quantile(v, 0.5), 50);
  EXPECT_EQ(Quantile(v, 0.95), 95);
  std::vector<int64_t> none;
  EXPECT_EQ(Quantile(none, 0.5), 0);
}

queue::Event Ev(std::string job, std::string_view state, int64_t at, std::string detail = "",
                std::string tenant = "", std::string batch = "") {
  queue::Event e;
  e.job_id = std::move(job);
  e.state = queue::JobStateFromString(state).value();
  e.at_ms = at;
  e.detail = std::move(detail);
  e.tenant = std::move(tenant);
  e.batch = std::move(batch);
  return e;
}

// A JobStore is only needed for Refresh; Apply and Snapshot never touch it.
struct ActivityFixture : ::testing::Test {
  std::shared_ptr<ManualClock> clock = std::make_shared<ManualClock>(10'000'000);
  queue::JobStore store{nullptr, "t", clock};
  Activity activity{store, clock};
};

TEST_F(ActivityFixture, WaitGenerationAndCompletionsPerModelAndTenant) {
  const int64_t t0 = clock->NowMs() - 120'000;
  // acme: two jobs on kling (wait 1 s and 3 s; generation 10 s and 20 s); globex: one on veo.
  for (int i = 0; i < 2; ++i) {
    const std::string id = "a" + std::to_string(i);
    activity.Apply(Ev(id, "PENDING", t0, "submitted", "acme", "b1"));
    activity.Apply(Ev(id, "DISPATCHED", t0 + 1000 + 2000 * i, "kling-3 via kling-a", "acme", "b1"));
    activity.Apply(Ev(id, "RUNNING", t0 + 5000, "w1", "acme", "b1"));
    activity.Apply(Ev(id, "RUNNING", t0 + 6000, "upstream known", "", "b1"));  // a phase change
    activity.Apply(Ev(id, "SUCCEEDED", t0 + 15000 + 10000 * i, "clip stored", "", "b1"));
  }
  activity.Apply(Ev("g0", "PENDING", t0, "submitted", "globex"));
  activity.Apply(Ev("g0", "DISPATCHED", t0 + 500, "veo-3.1 via veo-a", "globex"));
  activity.Apply(Ev("g1", "PENDING", t0, "submitted", "globex"));

  auto all = activity.Snapshot("");
  ASSERT_EQ(all.models.size(), 2u);
  const auto& kling = all.models[0];
  EXPECT_EQ(kling.model, "kling-3");
  EXPECT_EQ(kling.succeeded, 2);
  EXPECT_EQ(kling.succeeded_last_minute, 0);  // 95 and 105 seconds ago
  EXPECT_EQ(kling.wait_samples, 2);
  EXPECT_DOUBLE_EQ(kling.wait_p50_s, 1.0);
  EXPECT_DOUBLE_EQ(kling.wait_p95_s, 3.0);
  EXPECT_DOUBLE_EQ(kling.generation_p50_s, 10.0);
  EXPECT_DOUBLE_EQ(kling.generation_p95_s, 20.0);
  ASSERT_EQ(kling.completions_per_minute.size(), 60u);
  // Both finished 1.5-1.75 minutes ago: the second-to-last full minute.
  EXPECT_EQ(kling.completions_per_minute[58], 2);
  EXPECT_EQ(all.models[1].model, "veo-3.1");
  EXPECT_EQ(all.models[1].dispatched, 1);
  EXPECT_EQ(all.queued, 1);
  EXPECT_EQ(all.dispatched, 1);

  auto acme = activity.Snapshot("acme");
  ASSERT_EQ(acme.models.size(), 1u);
  EXPECT_EQ(acme.queued, 0);
  ASSERT_EQ(acme.batches.size(), 1u);
  EXPECT_EQ(acme.batches[0].tenant, "acme");
  EXPECT_EQ(activity.BatchTenant("b1"), "acme");
  auto globex = activity.Snapshot("globex");
  EXPECT_TRUE(globex.batches.empty());
  EXPECT_EQ(globex.queued, 1);
  ASSERT_EQ(globex.tenants.size(), 1u);
  EXPECT_EQ(globex.tenants[0].dispatched_recently, 1);
  ASSERT_EQ(all.accounts.size(), 0u);  // dispatched two minutes ago: not in the last minute
}

TEST_F(ActivityFixture, FailuresByCategoryAndRetriedJobsWaitAgain) {
  const int64_t t0 = clock->NowMs() - 30'000;
  activity.Apply(Ev("j", "PENDING", t0, "submitted", "acme", "b"));
  activity.Apply(Ev("j", "DISPATCHED", t0 + 100, "sora-2 via sora-a", "acme", "b"));
  activity.Apply(Ev("j", "RUNNING", t0 + 200, "w", "acme", "b"));
  activity.Apply(Ev("j", "FAILED", t0 + 300, "policy_rejected: blocked", "acme", "b"));
  activity.Apply(Ev("j", "PENDING", t0 + 1000, "retried by request", "acme", "b"));
  activity.Apply(Ev("j", "DISPATCHED", t0 + 1400, "sora-2 via sora-b", "acme", "b"));
  auto s = activity.Snapshot("");
  ASSERT_EQ(s.batches.size(), 1u);
  EXPECT_EQ(s.batches[0].failures_by_category.at("policy_rejected"), 1);
  // A retry that dispatch fails for the batch's budget counts as failed_precondition (what
  // dispatch.lua records as its category), not internal.
  activity.Apply(Ev("k", "PENDING", t0, "submitted", "acme", "b"));
  activity.Apply(Ev("k", "FAILED", t0 + 100,
                    "batch budget: this attempt would take batch b past its budget of $1.00 "
                    "($0.00 left, $0.40 short at the cheapest allowed model); raise the budget "
                    "and retry the job",
                    "acme", "b"));
  s = activity.Snapshot("");
  EXPECT_EQ(s.batches[0].failures_by_category.count("internal"), 0u);
  EXPECT_EQ(s.batches[0].failures_by_category.at("failed_precondition"), 1);
  ASSERT_EQ(s.models.size(), 1u);
  EXPECT_EQ(s.models[0].failed, 1);
  EXPECT_EQ(s.models[0].wait_samples, 2);
  EXPECT_DOUBLE_EQ(s.models[0].wait_p95_s, 0.4);
  activity.Apply(Ev("j", "RUNNING", t0 + 1500, "w", "acme", "b"));
  activity.Apply(Ev("j", "SUCCEEDED", t0 + 2500, "clip stored", "", "b"));
  s = activity.Snapshot("");
  EXPECT_EQ(s.models[0].succeeded_last_minute, 1);
  EXPECT_DOUBLE_EQ(s.models[0].generation_p50_s, 1.0);  // the retry's own lease to success
  ASSERT_EQ(s.accounts.size(), 2u);                     // both dispatches within the last minute
  EXPECT_EQ(s.accounts[0].account, "sora-a");
  EXPECT_EQ(s.accounts[1].dispatched_last_minute, 1);
}

}  // namespace
}  // namespace reelq::scheduler
