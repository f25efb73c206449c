// Compares in the queue (issue 13; common_groups.lua's compare_takes_ended, retry.lua) against a
// real redis-server: a take that fails for good or is cancelled does not fail the compare; once
// every take has ended the contact sheet is queued when one at least succeeded (its detail naming
// the takes that did not), and the compare fails naming every take only when none succeeded.
// RetryJob of a compare that succeeded with failed takes runs those again and queues the sheet
// anew once they end, but not once a take has been picked.
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

class CompareTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    Sync(OneModel());
  }

  // A compare "c" of `n` takes "t0".. on model m1, billed to tenant "studio"'s wallet when
  // `bill` (4 s each, at m1's price).
  void SubmitCompare(int n, bool bill = false) {
    std::vector<NewJob> jobs;
    NewJob group{.id = "c",
                 .tenant = "studio",
                 .spec_bytes = "spec",
                 .candidate_models = {"m1"},
                 .kind = std::string(kKindCompare)};
    for (int k = 0; k < n; ++k) group.children.push_back("t" + std::to_string(k));
    jobs.push_back(group);
    for (int k = 0; k < n; ++k) {
      jobs.push_back(NewJob{.id = "t" + std::to_string(k),
                            .tenant = "studio",
                            .spec_bytes = "spec",
                            .candidate_models = {"m1"},
                            .parent = "c",
                            .child_index = k,
                            .bill = bill,
                            .billed_seconds = 4});
    }
    auto r = RunAsync(io_, store_->SubmitMany(jobs, 3600));
    ASSERT_TRUE(r) << r.error().Describe();
  }

  void Succeed(const LeasedJob& job) {
    auto r = RunAsync(
        io_,
        store_->Complete({.job_id = job.id, .token = job.token, .output_key = "clip-" + job.id}));
    ASSERT_TRUE(r) << r.error().Describe();
  }

  void FailForGood(const LeasedJob& job, const std::string& message) {
    auto r = RunAsync(io_, store_->Fail({.job_id = job.id,
                                         .token = job.token,
                                         .category = ErrorCategory::kRetryable,
                                         .message = message,
                                         .retry = false}));
    ASSERT_TRUE(r) << r.error().Describe();
  }
};

TEST_F(CompareTest, AFailedOrCancelledTakeEndsAndTheSheetIsMadeOfTheOthers) {
  SubmitCompare(4);
  auto leased = Run();
  ASSERT_EQ(leased.size(), 4u);

  // One take fails for good, one is cancelled alone: the compare waits for the rest.
  FailForGood(leased["t1"], "sora is down");
  EXPECT_EQ(Get("c").state, JobState::kPending);
  auto cancelled = RunAsync(io_, store_->Cancel("t2"));
  ASSERT_TRUE(cancelled) << cancelled.error().Describe();
  EXPECT_EQ(Get("c").state, JobState::kPending);
  Succeed(leased["t0"]);
  EXPECT_EQ(Get("c").state, JobState::kPending);

  // The last take ends: the sheet is queued, naming the takes it goes without.
  Succeed(leased["t3"]);
  auto group = Get("c");
  ASSERT_EQ(group.state, JobState::kDispatched) << group.history.back().detail;
  EXPECT_EQ(group.history.back().detail,
            "2 of 4 takes succeeded (takes[1] (job t1, m1) failed: sora is down; takes[2] (job "
            "t2, m1) cancelled: cancelled); contact sheet queued");
  leased = Run();
  ASSERT_TRUE(leased.contains("c"));
  Succeed(leased["c"]);
  EXPECT_EQ(Get("c").state, JobState::kSucceeded);

  // RetryJob runs the two takes again; once they succeed, the sheet is queued anew.
  auto retried = RunAsync(io_, store_->Retry("c"));
  ASSERT_TRUE(retried) << retried.error().Describe();
  EXPECT_EQ(Get("c").state, JobState::kPending);
  EXPECT_EQ(Get("t0").state, JobState::kSucceeded);
  leased = Run();
  ASSERT_EQ(leased.size(), 2u);
  ASSERT_TRUE(leased.contains("t1") && leased.contains("t2"));
  Succeed(leased["t1"]);
  EXPECT_EQ(Get("c").state, JobState::kPending);
  Succeed(leased["t2"]);
  group = Get("c");
  EXPECT_EQ(group.state, JobState::kDispatched);
  EXPECT_EQ(group.history.back().detail, "all 4 takes succeeded; contact sheet queued");
}

TEST_F(CompareTest, EveryTakeFailedFailsTheCompareNamingEach) {
  SubmitCompare(2);
  auto leased = Run();
  ASSERT_EQ(leased.size(), 2u);
  FailForGood(leased["t0"], "kling refused");
  EXPECT_EQ(Get("c").state, JobState::kPending);
  FailForGood(leased["t1"], "sora is down");
  auto group = Get("c");
  ASSERT_EQ(group.state, JobState::kFailed);
  EXPECT_EQ(group.error_message,
            "every take failed: takes[0] (job t0, m1) failed: kling refused; takes[1] (job t1, m1) "
            "failed: sora is down");
  EXPECT_TRUE(Run().empty());
}

TEST_F(CompareTest, ASucceededCompareIsNotRetriedOnceATakeIsPicked) {
  SubmitCompare(2);
  auto leased = Run();
  FailForGood(leased["t1"], "sora is down");
  Succeed(leased["t0"]);
  leased = Run();
  ASSERT_TRUE(leased.contains("c"));
  Succeed(leased["c"]);
  auto picked = RunAsync(io_, store_->SetPicked("c", "t0"));
  ASSERT_TRUE(picked) << picked.error().Describe();
  auto retried = RunAsync(io_, store_->Retry("c"));
  ASSERT_FALSE(retried);
  EXPECT_EQ(retried.error().category, ErrorCategory::kFailedPrecondition);
  EXPECT_NE(retried.error().message.find("take t0 was picked"), std::string::npos)
      << retried.error().message;
  EXPECT_EQ(Get("c").state, JobState::kSucceeded);
  EXPECT_EQ(Get("t1").state, JobState::kFailed);
}

// A take whose task finished but whose clip the store refused through every attempt ended FAILED,
// charged for that task (fail.lua), and the compare's sheet was made of the others. RetryJob of
// the compare fetches that task's clip again, as it does for a plain job, with nothing reserved
// or charged again; it used to clear the take's upstream id and reserve, and make it again.
TEST_F(CompareTest, ARetriedTakeWhoseTaskFinishedIsFetchedAgainNotMadeAgain) {
  QueueSettings s = OneModel();
  s.models[0].price_micros_per_second = 1000;
  Sync(s);
  ASSERT_NO_FATAL_FAILURE(TopUp(12'000));  // enough for the take to be made again too
  ASSERT_NO_FATAL_FAILURE(SubmitCompare(2, /*bill=*/true));
  auto leased = Run();
  ASSERT_EQ(leased.size(), 2u);
  ASSERT_NO_FATAL_FAILURE(FailAfterGenerationForGood(leased["t1"]));
  Succeed(leased["t0"]);
  leased = Run();
  ASSERT_TRUE(leased.contains("c"));
  Succeed(leased["c"]);
  ASSERT_EQ(Get("c").state, JobState::kSucceeded);
  ASSERT_EQ(Get("t1").state, JobState::kFailed);
  ASSERT_EQ(Wallet().spent_micros, 8'000);
  ASSERT_EQ(Wallet().balance_micros, 4'000);

  auto take = RetryFetchesAgain("c", "t1");
  EXPECT_EQ(Wallet().balance_micros, 4'000);
  Succeed(take);
  EXPECT_EQ(Get("t1").cost_micros, 4'000);
  EXPECT_EQ(Wallet().spent_micros, 8'000);
  EXPECT_EQ(Get("c").state, JobState::kDispatched);  // the sheet is made anew
}

}  // namespace
}  // namespace reelq::queue
