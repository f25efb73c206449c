// Issue 11, the cuts in commands per job against a real redis-server: a worker's writes are
// fenced by its held table (wjobs:<worker>, common.lua) instead of a read of each job, a lease
// hands over the job as dispatch left its record, the create intent lives in
// the held table until the job leaves the worker, and upstream-task claims are written once per
// account per call. Each test checks that the guarantee the old per-job read gave still holds.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "store_fixture.h"

namespace reelq::queue {
namespace {

using namespace std::chrono_literals;
using testing::RunAsync;

class HeldTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    Sync(OneModel());
  }

  void SubmitAndDispatch(int n) {
    std::vector<NewJob> jobs;
    for (int i = 0; i < n; ++i) {
      jobs.push_back(NewJob{.id = "j" + std::to_string(i),
                            .tenant = "studio",
                            .batch = "b1",
                            .spec_bytes = "spec-" + std::to_string(i),
                            .candidate_models = {"m1"}});
    }
    auto submitted = RunAsync(io_, store_->SubmitMany(jobs, 3600));
    ASSERT_TRUE(submitted) << submitted.error().Describe();
    auto dispatched = RunAsync(io_, store_->Dispatch(n, 16, 1));
    ASSERT_TRUE(dispatched) << dispatched.error().Describe();
    ASSERT_EQ(dispatched->dispatched, n);
  }

  std::vector<LeasedJob> Lease(const std::string& worker, int n) {
    auto leased = RunAsync(io_, store_->Lease(worker, n, 15s));
    if (!leased) throw std::runtime_error(leased.error().Describe());
    return *leased;
  }

  JobRecord Get(const std::string& id) {
    auto r = RunAsync(io_, store_->Get(id));
    if (!r) throw std::runtime_error(r.error().Describe());
    return *r;
  }

  // Every transition is in the history, numbered 1..n without a gap, in the given states.
  static void ExpectHistory(const JobRecord& job, const std::vector<JobState>& states) {
    ASSERT_EQ(job.history.size(), states.size()) << job.id;
    for (size_t i = 0; i < states.size(); ++i) {
      EXPECT_EQ(job.history[i].seq, static_cast<int>(i) + 1) << job.id;
      EXPECT_EQ(job.history[i].state, states[i]) << job.id << " seq " << i + 1;
    }
  }
};

TEST_F(HeldTest, AJobCancelledWhileDispatchedIsNotLeasedFromWhatDispatchLeft) {
  SubmitAndDispatch(3);
  ASSERT_TRUE(RunAsync(io_, store_->Cancel("j1")));
  auto leased = Lease("w1", 10);
  ASSERT_EQ(leased.size(), 2u);
  for (const auto& j : leased) {
    EXPECT_NE(j.id, "j1");
    // What the lease hands over is the job's own spec and the account dispatch chose.
    EXPECT_EQ(j.spec_bytes, "spec-" + j.id.substr(1));
    EXPECT_EQ(j.model, "m1");
    EXPECT_EQ(j.account, "a1");
    EXPECT_EQ(j.attempt, 1);
    ExpectHistory(Get(j.id), {JobState::kPending, JobState::kDispatched, JobState::kRunning});
  }
  ExpectHistory(Get("j1"), {JobState::kPending, JobState::kDispatched, JobState::kCancelled});
}

TEST_F(HeldTest, BatchedWritesKeepTheWholeHistoryAndRefuseWhatTheWorkerNoLongerHolds) {
  SubmitAndDispatch(3);
  auto leased = Lease("w1", 3);
  ASSERT_EQ(leased.size(), 3u);
  std::vector<PermitRequest> permits;
  for (const auto& j : leased) permits.push_back({j.id, j.token, clock_->NowMs(), j.attempt});
  auto permitted = RunAsync(io_, store_->TakeCreatePermitMany(0ms, permits));
  ASSERT_TRUE(permitted) << permitted.error().Describe();
  for (const auto& one : *permitted) ASSERT_TRUE(one && one->count() == 0);
  // The second job is cancelled between two of its worker's writes.
  ASSERT_TRUE(RunAsync(io_, store_->Cancel(leased[1].id)));
  std::vector<PhaseChange> changes;
  for (const auto& j : leased) {
    changes.push_back({j.id, j.token, JobPhase::kGenerating, "up-" + j.id, "upstream"});
  }
  // A token that was never handed out, naming the same worker, changes nothing.
  changes.push_back({leased[2].id, "999999/w1", JobPhase::kTransferring, "", "forged"});
  auto phased = RunAsync(io_, store_->SetPhaseMany(changes));
  ASSERT_TRUE(phased) << phased.error().Describe();
  ASSERT_EQ(phased->size(), 4u);
  EXPECT_TRUE((*phased)[0]);
  ASSERT_FALSE((*phased)[1]);
  EXPECT_EQ((*phased)[1].error().category, ErrorCategory::kCancelled);
  EXPECT_TRUE((*phased)[2]);
  ASSERT_FALSE((*phased)[3]);
  EXPECT_EQ((*phased)[3].error().category, ErrorCategory::kLeaseLost);
  // Transfer and completion of one job in the same call each keep their history entry.
  std::vector<PhaseChange> transfer{
      {leased[0].id, leased[0].token, JobPhase::kTransferring, "", "storing"},
      {leased[2].id, leased[2].token, JobPhase::kTransferring, "", "storing"}};
  ASSERT_TRUE(RunAsync(io_, store_->SetPhaseMany(transfer)));
  std::vector<CompleteRequest> done{{.job_id = leased[0].id, .token = leased[0].token},
                                    {.job_id = leased[2].id, .token = leased[2].token},
                                    {.job_id = leased[0].id, .token = leased[0].token}};
  auto completed = RunAsync(io_, store_->CompleteMany(done));
  ASSERT_TRUE(completed) << completed.error().Describe();
  EXPECT_TRUE((*completed)[0]);
  EXPECT_TRUE((*completed)[1]);
  ASSERT_FALSE((*completed)[2]);  // the same job again in the same call: already ended
  for (size_t i : {0u, 2u}) {
    const auto job = Get(leased[i].id);
    EXPECT_EQ(job.state, JobState::kSucceeded);
    ExpectHistory(job, {JobState::kPending, JobState::kDispatched, JobState::kRunning,
                        JobState::kRunning, JobState::kRunning, JobState::kSucceeded});
    EXPECT_EQ(job.history[3].phase, JobPhase::kGenerating);
    EXPECT_EQ(job.history[4].phase, JobPhase::kTransferring);
  }
  // Once ended, the worker's writes are refused as they were with a read of each job.
  auto late = RunAsync(
      io_, store_->SetPhase(leased[0].id, leased[0].token, JobPhase::kTransferring, "", ""));
  ASSERT_FALSE(late);
  EXPECT_EQ(late.error().category, ErrorCategory::kLeaseLost) << late.error().Describe();
  auto stats = RunAsync(io_, store_->GetStats());
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->leased, 0);
}

TEST_F(HeldTest, TheCreateIntentGoesWithTheJobWhenItLeavesItsWorker) {
  SubmitAndDispatch(1);
  auto first = Lease("w1", 1);
  ASSERT_EQ(first.size(), 1u);
  ASSERT_TRUE(RunAsync(io_, store_->TakeCreatePermit(first[0].id, first[0].token, 0ms, 777, 1)));
  ASSERT_TRUE(RunAsync(io_, store_->HandBack(first[0].id, first[0].token, "draining")));
  // The same worker leases it again: its old token is refused, its new one works.
  auto second = Lease("w1", 1);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].create_intent_ms, 777);  // the next lease knows to look first
  EXPECT_NE(second[0].token, first[0].token);
  auto stale =
      RunAsync(io_, store_->SetPhase(first[0].id, first[0].token, JobPhase::kGenerating, "", ""));
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.error().category, ErrorCategory::kLeaseLost);
  // A cancel takes the job out of its worker's held table: its token is refused from then on.
  ASSERT_TRUE(RunAsync(io_, store_->TakeCreatePermit(second[0].id, second[0].token, 0ms, 888, 1)));
  ASSERT_TRUE(RunAsync(io_, store_->Cancel(second[0].id)));
  EXPECT_EQ(Get(second[0].id).state, JobState::kCancelled);
  auto after = RunAsync(
      io_, store_->TakeCreatePermit(second[0].id, second[0].token, 0ms, clock_->NowMs(), 1));
  ASSERT_FALSE(after);
  EXPECT_EQ(after.error().category, ErrorCategory::kCancelled);
  auto stats = RunAsync(io_, store_->GetStats());
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->leased, 0);
}

TEST_F(HeldTest, OneUpstreamTaskHasOneOwnerWithinACallAndAcrossTheClaimBuckets) {
  SubmitAndDispatch(3);
  auto leased = Lease("w1", 3);
  ASSERT_EQ(leased.size(), 3u);
  std::vector<PhaseChange> both{
      {leased[0].id, leased[0].token, JobPhase::kGenerating, "task-1", ""},
      {leased[1].id, leased[1].token, JobPhase::kGenerating, "task-1", ""}};
  auto r = RunAsync(io_, store_->SetPhaseMany(both));
  ASSERT_TRUE(r) << r.error().Describe();
  EXPECT_TRUE((*r)[0]);
  ASSERT_FALSE((*r)[1]);
  EXPECT_EQ((*r)[1].error().category, ErrorCategory::kFailedPrecondition);
  EXPECT_NE((*r)[1].error().message.find(leased[0].id), std::string::npos);
  // A day and a half later the claim is in the previous two-day bucket, and still holds.
  clock_->Advance(36h);
  auto later = RunAsync(
      io_, store_->SetPhase(leased[2].id, leased[2].token, JobPhase::kGenerating, "task-1", ""));
  ASSERT_FALSE(later);
  EXPECT_EQ(later.error().category, ErrorCategory::kFailedPrecondition);
  // Its owner may store it again.
  EXPECT_TRUE(RunAsync(
      io_, store_->SetPhase(leased[0].id, leased[0].token, JobPhase::kGenerating, "task-1", "")));
}

}  // namespace
}  // namespace reelq::queue
