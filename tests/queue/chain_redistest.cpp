// Chained storyboards in the queue (issue 13; common_groups.lua's chain_queue_next /
// chain_stop_after, submit.lua, retry.lua) against a real redis-server: only the first shot is
// queued at submit; a shot's completion hands its last frame to the next shot and queues it; a
// failed shot fails the group naming it and cancels (and refunds) the shots after it; RetryJob
// resumes from the failed shot with the frame it had, and the join is queued once the last shot
// succeeds.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "reelq/queue/wallet_store.h"
#include "store_fixture.h"

namespace reelq::queue {
namespace {

using namespace std::chrono_literals;
using testing::RunAsync;

class ChainTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    QueueSettings s = OneModel();
    s.models[0].price_micros_per_second = 1000;
    Sync(s);
  }

  // A chain "g" of three shots "s0".."s2" (4 s at 1000 micro-dollars a second each), billed to
  // tenant "studio"'s wallet when `bill`; a `start_deadline_ms` on the first shot only, as
  // JobApi stores a chain's.
  void SubmitChain(bool bill = false, int64_t start_deadline_ms = 0) {
    std::vector<NewJob> jobs;
    jobs.push_back(NewJob{.id = "g",
                          .tenant = "studio",
                          .spec_bytes = "spec",
                          .candidate_models = {"m1"},
                          .kind = std::string(kKindStoryboard),
                          .children = {"s0", "s1", "s2"},
                          .chain = true});
    for (int k = 0; k < 3; ++k) {
      jobs.push_back(NewJob{.id = "s" + std::to_string(k),
                            .tenant = "studio",
                            .spec_bytes = "spec",
                            .candidate_models = {"m1"},
                            .start_deadline_ms = k == 0 ? start_deadline_ms : 0,
                            .parent = "g",
                            .child_index = k,
                            .bill = bill,
                            .billed_seconds = 4,
                            .resolution = "720p"});
    }
    auto r = RunAsync(io_, store_->SubmitMany(jobs, 3600));
    ASSERT_TRUE(r) << r.error().Describe();
  }

  int64_t Available() { return Wallet().balance_micros; }

  // RetryJob of chain "g" queues `shot`, and only it, starting from `frame` (the last frame of
  // the shot before it). The round's leases, for the test to go on with.
  std::map<std::string, LeasedJob> RetryResumesFrom(const std::string& shot,
                                                    const std::string& frame) {
    auto retried = RunAsync(io_, store_->Retry("g"));
    EXPECT_TRUE(retried) << retried.error().Describe();
    auto leased = Run();
    EXPECT_EQ(leased.size(), 1u);
    EXPECT_TRUE(leased.contains(shot)) << shot;
    if (leased.contains(shot)) {
      EXPECT_EQ(leased[shot].chain_frame, frame);
    }
    return leased;
  }

  void Succeed(const LeasedJob& job, const std::string& last_frame) {
    auto r = RunAsync(io_, store_->Complete({.job_id = job.id,
                                             .token = job.token,
                                             .output_key = "clip-" + job.id,
                                             .last_frame_key = last_frame}));
    ASSERT_TRUE(r) << r.error().Describe();
  }
};

TEST_F(ChainTest, ShotsRunInOrderAFailureStopsTheChainAndRetryResumesFromIt) {
  SubmitChain();
  EXPECT_TRUE(Get("g").chain);
  // Only the first shot is queued; the others wait, reserved for.
  auto leased = Run();
  ASSERT_EQ(leased.size(), 1u);
  ASSERT_TRUE(leased.contains("s0"));
  EXPECT_EQ(Get("s2").state, JobState::kPending);
  EXPECT_EQ(Get("s2").reserved_micros, 4000);
  EXPECT_EQ(Get("s2").history.back().detail, "submitted; waits for shots[1]");

  // Shot 0 succeeds: shot 1 gets its last frame and is queued.
  Succeed(leased["s0"], "inputs/studio/f0.png");
  EXPECT_EQ(Get("s0").last_frame_key, "inputs/studio/f0.png");
  EXPECT_EQ(Get("s1").chain_frame, "inputs/studio/f0.png");
  EXPECT_EQ(Get("s1").history.back().detail, "queued: starts from the last frame of shots[0]");
  leased = Run();
  ASSERT_EQ(leased.size(), 1u);
  ASSERT_TRUE(leased.contains("s1"));
  EXPECT_EQ(leased["s1"].chain_frame, "inputs/studio/f0.png");

  // Shot 1 fails for good: the chain stops there, and shot 2 is cancelled and refunded.
  auto failed = RunAsync(io_, store_->Fail({.job_id = "s1",
                                            .token = leased["s1"].token,
                                            .category = ErrorCategory::kRetryable,
                                            .message = "upstream broke",
                                            .retry = false}));
  ASSERT_TRUE(failed) << failed.error().Describe();
  auto group = Get("g");
  EXPECT_EQ(group.state, JobState::kFailed);
  EXPECT_EQ(group.error_message.rfind("shots[1] (job s1) failed: upstream broke", 0), 0u)
      << group.error_message;
  auto third = Get("s2");
  EXPECT_EQ(third.state, JobState::kCancelled);
  EXPECT_EQ(third.reserved_micros, 0);
  EXPECT_EQ(third.cost_micros, 0);
  EXPECT_EQ(third.history.back().detail, "not run: the chain stopped at shots[1]");
  EXPECT_TRUE(Run().empty());

  // A shot alone is not run again: it would start without its frame, and the ended group would
  // never take it (nor go on past it). The refusal names the group to retry.
  for (const std::string shot : {"s1", "s2"}) {
    auto alone = RunAsync(io_, store_->Retry(shot));
    ASSERT_FALSE(alone) << shot;
    EXPECT_EQ(alone.error().category, ErrorCategory::kFailedPrecondition);
    EXPECT_NE(alone.error().message.find("retry g"), std::string::npos) << alone.error().message;
  }
  EXPECT_EQ(Get("s2").state, JobState::kCancelled);
  EXPECT_TRUE(Run().empty());

  // RetryJob: shot 1 again, from the same frame; shot 2 waits for it; shot 0 stays made.
  auto retried = RunAsync(io_, store_->Retry("g"));
  ASSERT_TRUE(retried) << retried.error().Describe();
  EXPECT_EQ(Get("g").state, JobState::kPending);
  EXPECT_EQ(Get("s0").state, JobState::kSucceeded);
  EXPECT_EQ(Get("s2").state, JobState::kPending);
  leased = Run();
  ASSERT_EQ(leased.size(), 1u);
  ASSERT_TRUE(leased.contains("s1"));
  EXPECT_EQ(leased["s1"].chain_frame, "inputs/studio/f0.png");
  Succeed(leased["s1"], "inputs/studio/f1.png");
  leased = Run();
  ASSERT_EQ(leased.size(), 1u);
  ASSERT_TRUE(leased.contains("s2"));
  EXPECT_EQ(leased["s2"].chain_frame, "inputs/studio/f1.png");
  Succeed(leased["s2"], "");
  // Every shot made: the join is queued and leased like the group's own job.
  leased = Run();
  ASSERT_EQ(leased.size(), 1u);
  ASSERT_TRUE(leased.contains("g"));
  EXPECT_EQ(leased["g"].kind, kKindStoryboard);
}

// A group's start deadline says when the group starts. A retry, mostly made after it passed,
// runs its children again without it: they used to keep it, and dispatch failed them at once
// ("start deadline passed"), so a group with a start deadline could never be run again.
TEST_F(ChainTest, ARetriedGroupRunsAgainAfterItsStartDeadlinePassed) {
  SubmitChain(/*bill=*/false, clock_->NowMs() + 1000);
  auto leased = Run();
  ASSERT_TRUE(leased.contains("s0"));
  ASSERT_NO_FATAL_FAILURE(FailForGood(leased["s0"]));
  ASSERT_EQ(Get("g").state, JobState::kFailed);
  clock_->Advance(5s);
  ASSERT_TRUE(RunAsync(io_, store_->Retry("g")));
  leased = Run();
  ASSERT_TRUE(leased.contains("s0")) << Get("s0").history.back().detail;
  EXPECT_EQ(Get("s0").start_deadline_ms, 0);

  // A storyboard (not chained), each shot with the deadline: the failed shot runs again.
  std::vector<NewJob> board = Storyboard("b", 2);
  for (auto& job : board) job.start_deadline_ms = clock_->NowMs() + 1000;
  ASSERT_TRUE(RunAsync(io_, store_->SubmitMany(board, 3600)));
  leased = Run();
  ASSERT_TRUE(leased.contains("b-s0") && leased.contains("b-s1"));
  ASSERT_NO_FATAL_FAILURE(FailForGood(leased["b-s0"]));
  Succeed(leased["b-s1"], "");
  clock_->Advance(5s);
  ASSERT_TRUE(RunAsync(io_, store_->Retry("b")));
  leased = Run();
  ASSERT_TRUE(leased.contains("b-s0")) << Get("b-s0").history.back().detail;
}

// A start deadline says by when a job is to start, once: a job that started, failed in passing
// and waits out its backoff past it runs again. Dispatch used to fail it as "the job had not
// started by its start deadline" (and a storyboard's shot, carrying its group's deadline, failed
// the storyboard), after its first attempt had been paid for.
TEST_F(ChainTest, AJobThatStartedIsNotFailedForItsStartDeadlineWhenItRetries) {
  auto fail_in_passing = [&](const LeasedJob& job) {
    auto r = RunAsync(io_, store_->Fail({.job_id = job.id,
                                         .token = job.token,
                                         .category = ErrorCategory::kRetryable,
                                         .message = "upstream 503",
                                         .retry = true,
                                         .retry_at_ms = clock_->NowMs()}));
    ASSERT_TRUE(r) << r.error().Describe();
    ASSERT_EQ(*r, FailOutcome::kRetrying);
  };
  auto submitted = RunAsync(io_, store_->Submit(NewJob{.id = "p",
                                                       .tenant = "studio",
                                                       .spec_bytes = "spec",
                                                       .candidate_models = {"m1"},
                                                       .start_deadline_ms = clock_->NowMs() + 1000},
                                                3600));
  ASSERT_TRUE(submitted) << submitted.error().Describe();
  auto leased = Run();
  ASSERT_TRUE(leased.contains("p"));
  ASSERT_NO_FATAL_FAILURE(fail_in_passing(leased["p"]));
  clock_->Advance(5s);
  ASSERT_TRUE(RunAsync(io_, store_->Reap(100)));
  leased = Run();
  ASSERT_TRUE(leased.contains("p")) << Get("p").history.back().detail;
  EXPECT_EQ(Get("p").state, JobState::kRunning);
  // A job that never started still fails for it.
  ASSERT_TRUE(RunAsync(io_, store_->Submit(NewJob{.id = "late",
                                                  .tenant = "studio",
                                                  .spec_bytes = "spec",
                                                  .candidate_models = {"m1"},
                                                  .start_deadline_ms = clock_->NowMs() + 1000},
                                           3600)));
  clock_->Advance(5s);
  EXPECT_FALSE(Run().contains("late"));
  EXPECT_EQ(Get("late").state, JobState::kFailed);
  EXPECT_EQ(Get("late").error_message, "the job had not started by its start deadline");

  // A storyboard's shot, with its group's start deadline: the storyboard carries on.
  std::vector<NewJob> board = Storyboard("b", 2);
  for (auto& job : board) job.start_deadline_ms = clock_->NowMs() + 1000;
  ASSERT_TRUE(RunAsync(io_, store_->SubmitMany(board, 3600)));
  leased = Run();
  ASSERT_TRUE(leased.contains("b-s0") && leased.contains("b-s1"));
  ASSERT_NO_FATAL_FAILURE(fail_in_passing(leased["b-s0"]));
  clock_->Advance(5s);
  ASSERT_TRUE(RunAsync(io_, store_->Reap(100)));
  leased = Run();
  ASSERT_TRUE(leased.contains("b-s0")) << Get("b-s0").history.back().detail;
  EXPECT_EQ(Get("b").state, JobState::kPending);
}

// A group's money is reserved up front, at a retry too: a chain run again holds each shot it
// runs again, or the retry is refused naming the wallet; it never stops part-way waiting for
// money (it used to reserve nothing, and a shot the wallet could not pay for waited for good).
TEST_F(ChainTest, RetryingAChainReservesEveryShotItRunsAgainOrIsRefused) {
  ASSERT_NO_FATAL_FAILURE(TopUp(12'000));
  ASSERT_NO_FATAL_FAILURE(SubmitChain(/*bill=*/true));
  EXPECT_EQ(Available(), 0);
  auto leased = Run();
  ASSERT_TRUE(leased.contains("s0"));
  ASSERT_NO_FATAL_FAILURE(FailForGood(leased["s0"]));  // refused: nothing billed, all refunded
  ASSERT_EQ(Get("g").state, JobState::kFailed);
  ASSERT_EQ(Available(), 12'000);
  // Meanwhile another job of the tenant's holds a third of it.
  auto other = RunAsync(io_, store_->Submit(NewJob{.id = "other",
                                                   .tenant = "studio",
                                                   .spec_bytes = "spec",
                                                   .candidate_models = {"m1"},
                                                   .bill = true,
                                                   .billed_seconds = 4},
                                            3600));
  ASSERT_TRUE(other && !other->refused);
  ASSERT_EQ(Available(), 8'000);

  auto refused = RunAsync(io_, store_->Retry("g"));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().category, ErrorCategory::kRateLimited);
  EXPECT_NE(refused.error().message.find("wallet: running the group again needs $0.012000"),
            std::string::npos)
      << refused.error().message;
  EXPECT_EQ(Get("g").state, JobState::kFailed);
  EXPECT_EQ(Available(), 8'000);

  ASSERT_NO_FATAL_FAILURE(TopUp(4'000));
  ASSERT_TRUE(RunAsync(io_, store_->Retry("g")));
  for (const std::string shot : {"s0", "s1", "s2"}) {
    EXPECT_EQ(Get(shot).reserved_micros, 4'000) << shot;
  }
  EXPECT_EQ(Available(), 0);
}

// A shot whose task finished but whose clip the store refused through every attempt ended
// FAILED, charged for that task (fail.lua). Retrying its chain fetches the same task's clip again,
// as RetryJob does for a plain job: it used to clear the shot's upstream id and reserve again, so
// the shot was made, and charged, a second time.
TEST_F(ChainTest, RetryingAChainFetchesTheClipOfAShotWhoseTaskFinishedNotMadeAgain) {
  // Enough for the shot to be made again too, so that the wallet does not decide it.
  ASSERT_NO_FATAL_FAILURE(TopUp(16'000));
  ASSERT_NO_FATAL_FAILURE(SubmitChain(/*bill=*/true));
  auto leased = Run();
  ASSERT_TRUE(leased.contains("s0"));
  ASSERT_NO_FATAL_FAILURE(FailAfterGenerationForGood(leased["s0"]));
  auto shot = Get("s0");
  ASSERT_EQ(shot.state, JobState::kFailed);
  ASSERT_GT(shot.generated_ms, 0);
  ASSERT_EQ(shot.cost_micros, 4'000);
  ASSERT_EQ(Get("g").state, JobState::kFailed);
  ASSERT_EQ(Wallet().spent_micros, 4'000);
  ASSERT_EQ(Available(), 12'000);  // the shots after it were refunded

  auto retried = RunAsync(io_, store_->Retry("g"));
  ASSERT_TRUE(retried) << retried.error().Describe();
  shot = Get("s0");
  EXPECT_EQ(shot.state, JobState::kDispatched);
  EXPECT_EQ(shot.upstream, "up-s0");
  EXPECT_EQ(shot.account, "a1");
  EXPECT_EQ(shot.reserved_micros, 0);
  EXPECT_TRUE(shot.history.back().detail.ends_with(
      "fetching the clip of its finished upstream task up-s0 again (not made again)"))
      << shot.history.back().detail;
  // The shots after it wait for it, reserved for again; nothing more for shot 0.
  EXPECT_EQ(Get("s1").state, JobState::kPending);
  EXPECT_EQ(Get("s1").reserved_micros, 4'000);
  EXPECT_EQ(Wallet().spent_micros, 4'000);
  EXPECT_EQ(Available(), 4'000);

  leased = Run();
  ASSERT_EQ(leased.size(), 1u);
  ASSERT_TRUE(leased.contains("s0"));
  EXPECT_EQ(leased["s0"].upstream, "up-s0");
  Succeed(leased["s0"], "inputs/studio/f0.png");
  EXPECT_EQ(Get("s0").cost_micros, 4'000);
  EXPECT_EQ(Wallet().spent_micros, 4'000);
  EXPECT_EQ(Get("s1").chain_frame, "inputs/studio/f0.png");
  leased = Run();
  ASSERT_TRUE(leased.contains("s1"));
}

// The same for a storyboard's shot: its group's retry fetches it again, reserving nothing.
TEST_F(ChainTest, RetryingAStoryboardFetchesTheClipOfAShotWhoseTaskFinishedNotMadeAgain) {
  ASSERT_NO_FATAL_FAILURE(TopUp(12'000));
  std::vector<NewJob> board = Storyboard("b", 2);
  for (auto& job : board) job.bill = job.id != "b";
  ASSERT_TRUE(RunAsync(io_, store_->SubmitMany(board, 3600)));
  auto leased = Run();
  ASSERT_TRUE(leased.contains("b-s0") && leased.contains("b-s1"));
  ASSERT_NO_FATAL_FAILURE(FailAfterGenerationForGood(leased["b-s0"]));
  Succeed(leased["b-s1"], "");
  ASSERT_EQ(Get("b").state, JobState::kFailed);
  ASSERT_EQ(Wallet().spent_micros, 8'000);
  ASSERT_EQ(Available(), 4'000);

  auto shot = RetryFetchesAgain("b", "b-s0");
  EXPECT_EQ(Available(), 4'000);
  Succeed(shot, "");
  EXPECT_EQ(Wallet().spent_micros, 8'000);
  EXPECT_EQ(Get("b").state, JobState::kDispatched);  // the join is queued
}

TEST_F(ChainTest, CancellingAChainCancelsItsWaitingShotsAndRetryResumesWhereItStopped) {
  SubmitChain();
  auto leased = Run();
  Succeed(leased["s0"], "inputs/studio/f0.png");
  auto cancelled = RunAsync(io_, store_->Cancel("g"));
  ASSERT_TRUE(cancelled) << cancelled.error().Describe();
  EXPECT_EQ(Get("s1").state, JobState::kCancelled);
  EXPECT_EQ(Get("s2").state, JobState::kCancelled);
  EXPECT_EQ(Get("s2").reserved_micros, 0);
  EXPECT_TRUE(Run().empty());
  RetryResumesFrom("s1", "inputs/studio/f0.png");
}

// A waiting shot cancelled on its own stops the chain while the shot before it still runs; that
// one's success then hands its frame to nobody. RetryJob resumes from the cancelled shot with
// that frame, so the chain still starts each shot where the one before it ends.
TEST_F(ChainTest, AShotCancelledWhileItWaitedResumesFromTheFrameOfTheShotBeforeIt) {
  SubmitChain();
  auto leased = Run();
  Succeed(leased["s0"], "inputs/studio/f0.png");
  leased = Run();
  ASSERT_TRUE(leased.contains("s1"));
  ASSERT_TRUE(RunAsync(io_, store_->Cancel("s2")));
  EXPECT_EQ(Get("g").state, JobState::kFailed);
  Succeed(leased["s1"], "inputs/studio/f1.png");
  RetryResumesFrom("s2", "inputs/studio/f1.png");
}

// A shot cancelled two ahead of the one running stops the chain; the shot in between, which was
// waiting, is cancelled and refunded with it. It used to be left PENDING outside every queue with
// its money reserved, and a RetryJob of the chain took it for the shot on its way and waited for
// good. RetryJob now resumes from it, with the frame of the shot before it.
TEST_F(ChainTest, CancellingAShotTwoAheadCancelsTheWaitingShotInBetween) {
  SubmitChain();
  auto leased = Run();
  ASSERT_TRUE(leased.contains("s0"));
  ASSERT_TRUE(RunAsync(io_, store_->Cancel("s2")));
  EXPECT_EQ(Get("g").state, JobState::kFailed);
  auto between = Get("s1");
  EXPECT_EQ(between.state, JobState::kCancelled);
  EXPECT_EQ(between.reserved_micros, 0);
  EXPECT_EQ(between.history.back().detail, "not run: the chain stopped at shots[2]");
  EXPECT_EQ(Get("s0").state, JobState::kRunning);  // the shot on its way runs on

  Succeed(leased["s0"], "inputs/studio/f0.png");
  EXPECT_TRUE(Run().empty());
  leased = RetryResumesFrom("s1", "inputs/studio/f0.png");
  ASSERT_TRUE(leased.contains("s1"));
  Succeed(leased["s1"], "inputs/studio/f1.png");
  leased = Run();
  ASSERT_TRUE(leased.contains("s2"));
  EXPECT_EQ(leased["s2"].chain_frame, "inputs/studio/f1.png");
  Succeed(leased["s2"], "");
  leased = Run();
  ASSERT_TRUE(leased.contains("g"));  // the join is queued
}

// A child that ends after its group's record is gone (retention removed the FAILED group while
// a sibling was still retrying) leaves no record behind: counting its success must not make one
// of a single field that no index holds and nothing ever removes.
TEST_F(ChainTest, AChildEndingAfterItsGroupWasRemovedLeavesNoRecordBehind) {
  ASSERT_TRUE(RunAsync(io_, store_->SubmitMany(Storyboard("g", 2, "", {"s0", "s1"}), 3600)));
  auto leased = Run();
  ASSERT_EQ(leased.count("s0"), 1u);
  ASSERT_EQ(leased.count("s1"), 1u);
  ASSERT_NO_FATAL_FAILURE(FailForGood(leased["s0"]));
  ASSERT_EQ(Get("g").state, JobState::kFailed);
  server_->Run({"DEL", "t:{q}:job:g"});
  Succeed(leased["s1"], "");
  EXPECT_EQ(Get("s1").state, JobState::kSucceeded);
  EXPECT_EQ(server_->Run({"EXISTS", "t:{q}:job:g"}).integer, 0);
}

// A storyboard failed by one shot while another still runs: cancelling the group stops that
// shot (its worker is told), so nothing more is spent on it; the group stays FAILED. With
// nothing left running, a cancel is refused as for any ended job.
TEST_F(ChainTest, CancellingAFailedGroupStopsTheChildrenStillRunning) {
  ASSERT_TRUE(RunAsync(io_, store_->SubmitMany(Storyboard("g", 2, "", {"s0", "s1"}), 3600)));
  auto leased = Run();
  ASSERT_EQ(leased.count("s1"), 1u);
  ASSERT_NO_FATAL_FAILURE(FailForGood(leased["s0"]));
  ASSERT_EQ(Get("g").state, JobState::kFailed);
  ASSERT_EQ(Get("s1").state, JobState::kRunning);

  auto cancelled = RunAsync(io_, store_->Cancel("g"));
  ASSERT_TRUE(cancelled) << cancelled.error().Describe();
  EXPECT_EQ(cancelled->previous_state, JobState::kFailed);
  EXPECT_EQ(Get("g").state, JobState::kFailed);
  EXPECT_EQ(Get("s1").state, JobState::kCancelled);
  EXPECT_EQ(server_->Run({"LRANGE", "t:{q}:wcancel:w1", "0", "-1"}).elements.size(), 1u);

  auto again = RunAsync(io_, store_->Cancel("g"));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().category, ErrorCategory::kFailedPrecondition);
}

// A group's own step that fails in passing (Redis or the store unreachable) runs again from
// `ready` after its backoff (fail.lua keep_task, reap.lua): its children are done and paid for,
// so it neither waits in a dispatch queue nor ends the group.
TEST_F(ChainTest, AGroupStepThatFailsInPassingRunsAgainFromReady) {
  ASSERT_TRUE(RunAsync(io_, store_->SubmitMany(Storyboard("g", 2, "", {"s0", "s1"}), 3600)));
  auto leased = Run();
  Succeed(leased["s0"], "");
  Succeed(leased["s1"], "");
  leased = Run();
  ASSERT_EQ(leased.count("g"), 1u);
  auto failed = RunAsync(io_, store_->Fail({.job_id = "g",
                                            .token = leased["g"].token,
                                            .category = ErrorCategory::kRetryable,
                                            .message = "redis: no answer",
                                            .retry = true,
                                            .keep_task = true}));
  ASSERT_TRUE(failed) << failed.error().Describe();
  EXPECT_EQ(*failed, FailOutcome::kRetrying);
  auto g = Get("g");
  EXPECT_EQ(g.state, JobState::kDispatched);
  EXPECT_EQ(g.attempt, 2);
  EXPECT_TRUE(g.history.back().detail.ends_with("(the step runs again)"))
      << g.history.back().detail;
  ASSERT_TRUE(RunAsync(io_, store_->Reap(100)));
  leased = Run();
  ASSERT_EQ(leased.count("g"), 1u) << "the step was not leased again";
  ASSERT_TRUE(RunAsync(io_, store_->Complete({.job_id = "g", .token = leased["g"].token})));
  EXPECT_EQ(Get("g").state, JobState::kSucceeded);
}

}  // namespace
}  // namespace reelq::queue
