// Issue 11, the cuts in commands per job against a real redis-server: a worker's writes are
// fenced by its held table (wjobs:<worker>, common_held.lua) instead of a read of each job, a lease
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
  // A held entry of layout 1 (a JSON array of token seq models model batch tenant bill hold
  // secs res cost webhook parent mbatch slot account create_log worker create_intent) for job
  // "m1" of batch b1, held by w1 on account a1.
  static std::string LayoutOneEntry(const std::string& token) {
    return "[\"" + token +
           "\",\"3\",\"m1\",\"m1\",\"b1\",\"studio\",\"\",\"0\",\"\",\"\",\"0\",\"\",\"\",\"\","
           "\"a1\","
           "\"a1\",\"\",\"w1\",\"\"]";
  }

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

  // A field of the job's record as Redis holds it (nil: ""), not as GetJob shows it.
  std::string RecordField(const std::string& id, const std::string& field) {
    auto r = server_->Run({"HGET", "t:{q}:job:" + id, field});
    return r.IsNil() ? std::string() : r.str;
  }

  void Permit(const LeasedJob& j) {
    auto r =
        RunAsync(io_, store_->TakeCreatePermit(j.id, j.token, 0ms, clock_->NowMs(), j.attempt));
    ASSERT_TRUE(r) << r.error().Describe();
    ASSERT_EQ(r->count(), 0);
  }

  void Phase(const LeasedJob& j, JobPhase phase, const std::string& upstream,
             const std::string& detail) {
    auto r = RunAsync(io_, store_->SetPhase(j.id, j.token, phase, upstream, detail));
    ASSERT_TRUE(r) << r.error().Describe();
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

// complete.lua reads a model's price at the first job's resolution together with its latency, and
// any other resolution's price on its own: in one call, a job at a resolution the catalogue
// prices is settled at that price, one at another at the model's plain price, and the model's
// latency estimate takes both samples.
TEST_F(HeldTest, ACompletionIsSettledAtItsResolutionsPriceInACallOfMixedResolutions) {
  QueueSettings s = OneModel();
  s.models[0].price_micros_per_second = 1000;
  s.models[0].price_micros_by_resolution = {{"1080p", 3000}};
  Sync(s);
  std::vector<NewJob> jobs;
  for (const std::string res : {"1080p", "720p"}) {
    jobs.push_back(NewJob{.id = "r" + res,
                          .tenant = "studio",
                          .batch = "b1",
                          .spec_bytes = "spec",
                          .candidate_models = {"m1"},
                          .billed_seconds = 4,
                          .resolution = res});
  }
  ASSERT_TRUE(RunAsync(io_, store_->SubmitMany(jobs, 3600)));
  ASSERT_EQ(RunAsync(io_, store_->Dispatch(2, 16, 1))->dispatched, 2);
  const auto leased = Lease("w1", 2);
  ASSERT_EQ(leased.size(), 2u);
  std::vector<CompleteRequest> done;
  for (const auto& j : leased) {
    done.push_back({.job_id = j.id, .token = j.token, .output_key = "k", .generation_ms = 20000});
  }
  auto r = RunAsync(io_, store_->CompleteMany(done));
  ASSERT_TRUE(r) << r.error().Describe();
  for (const auto& one : *r) ASSERT_TRUE(one) << one.error().Describe();

  EXPECT_EQ(Get("r1080p").cost_micros, 4 * 3000);
  EXPECT_EQ(Get("r720p").cost_micros, 4 * 1000);
  auto batch = RunAsync(io_, store_->GetBatch("b1"));
  ASSERT_TRUE(batch) << batch.error().Describe();
  EXPECT_EQ(batch->spent_micros_by_model["m1"], 4 * 3000 + 4 * 1000);
  // The 60 s seed (SetUp's sync stored it; a later sync keeps a stored estimate), then two 20 s
  // samples at a weight of 0.2 each: 60 * 0.64 + 20 * 0.36.
  auto stats = RunAsync(io_, store_->GetStats());
  ASSERT_TRUE(stats) << stats.error().Describe();
  ASSERT_EQ(stats->models.size(), 1u);
  EXPECT_NEAR(stats->models[0].latency_estimate_seconds, 45.6, 1e-6);
  EXPECT_EQ(stats->models[0].succeeded, 2);
}

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

// Issue 11: while a worker holds a job its phase changes are written to its held entry only;
// readers still see them, and whatever takes the job from the worker carries them into the record.
TEST_F(HeldTest, GetJobShowsThePhaseAndUpstreamIdKeptOnlyInTheHeldEntry) {
  SubmitAndDispatch(1);
  auto leased = Lease("w1", 1);
  ASSERT_EQ(leased.size(), 1u);
  const LeasedJob& j = leased[0];
  Permit(j);
  clock_->Advance(5s);
  Phase(j, JobPhase::kGenerating, "task-7", "upstream task-7");
  const int64_t generating_at = clock_->NowMs();
  // The record is as the lease left it: the change is in the held entry only.
  EXPECT_EQ(RecordField(j.id, "phase"), "SUBMITTING");
  EXPECT_EQ(RecordField(j.id, "upstream"), "");
  EXPECT_EQ(RecordField(j.id, "seq"), "3");
  auto job = Get(j.id);
  EXPECT_EQ(job.state, JobState::kRunning);
  EXPECT_EQ(job.phase, JobPhase::kGenerating);
  EXPECT_EQ(job.upstream, "task-7");
  EXPECT_EQ(job.updated_ms, generating_at);
  ExpectHistory(
      job, {JobState::kPending, JobState::kDispatched, JobState::kRunning, JobState::kRunning});
  EXPECT_EQ(job.history[3].phase, JobPhase::kGenerating);
  EXPECT_EQ(job.history[3].detail, "upstream task-7");
  EXPECT_EQ(job.history[3].at_ms, generating_at);
  clock_->Advance(5s);
  Phase(j, JobPhase::kTransferring, "", "storing | a clip");
  // ListJobs reads the same way (GetMany).
  auto listed = RunAsync(io_, store_->GetMany({j.id}));
  ASSERT_TRUE(listed) << listed.error().Describe();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ(listed->front().phase, JobPhase::kTransferring);
  EXPECT_EQ(listed->front().upstream, "task-7");
  ASSERT_EQ(listed->front().history.size(), 5u);
  EXPECT_EQ(listed->front().history[4].detail, "storing | a clip");
  // Completion writes the lot into the record.
  ASSERT_TRUE(RunAsync(io_, store_->Complete({.job_id = j.id, .token = j.token})));
  EXPECT_EQ(RecordField(j.id, "upstream"), "task-7");
  job = Get(j.id);
  EXPECT_EQ(job.state, JobState::kSucceeded);
  EXPECT_EQ(job.upstream, "task-7");
  ExpectHistory(job, {JobState::kPending, JobState::kDispatched, JobState::kRunning,
                      JobState::kRunning, JobState::kRunning, JobState::kSucceeded});
  EXPECT_EQ(job.history[3].phase, JobPhase::kGenerating);
  EXPECT_EQ(job.history[4].phase, JobPhase::kTransferring);
  EXPECT_EQ(job.history[4].detail, "storing | a clip");
}

TEST_F(HeldTest, AReapedJobKeepsTheUpstreamIdItsWorkerRecordedSoNothingIsCreatedTwice) {
  ASSERT_TRUE(RunAsync(io_, store_->RegisterWorker("w1", 5s)));
  SubmitAndDispatch(2);
  auto leased = Lease("w1", 2);
  ASSERT_EQ(leased.size(), 2u);
  for (const auto& j : leased) Permit(j);
  Phase(leased[0], JobPhase::kGenerating, "task-a", "upstream task-a");
  // The other one's task ended: its slot is given back (held entry only).
  Phase(leased[1], JobPhase::kGenerating, "task-b", "upstream task-b");
  Phase(leased[1], JobPhase::kTransferring, "", "storing");
  auto in_flight = [&] { return server_->Run({"HGET", "t:{q}:acct:a1", "in_flight"}).str; };
  EXPECT_EQ(in_flight(), "1");
  // The worker dies: its lease lapses and the reaper hands both jobs on.
  clock_->Advance(20s);
  auto reaped = RunAsync(io_, store_->Reap(100));
  ASSERT_TRUE(reaped) << reaped.error().Describe();
  EXPECT_EQ(reaped->expired_leases, 2);
  EXPECT_EQ(in_flight(), "1");  // the slot given back at TRANSFERRING is not given back again
  auto next = Lease("w2", 2);
  ASSERT_EQ(next.size(), 2u);
  for (const auto& j : next) {
    const bool first = j.id == leased[0].id;
    // The next attempt resumes the upstream task instead of creating a second one, with no
    // create intent left to look for.
    EXPECT_EQ(j.upstream, first ? "task-a" : "task-b") << j.id;
    EXPECT_EQ(j.create_intent_ms, 0) << j.id;
    const auto job = Get(j.id);
    EXPECT_EQ(job.phase, JobPhase::kGenerating) << j.id;
    std::vector<JobState> states{JobState::kPending, JobState::kDispatched, JobState::kRunning,
                                 JobState::kRunning};
    if (!first) states.push_back(JobState::kRunning);
    states.push_back(JobState::kDispatched);
    states.push_back(JobState::kRunning);
    ExpectHistory(job, states);
    EXPECT_EQ(job.history[3].detail, first ? "upstream task-a" : "upstream task-b") << j.id;
    // The new worker records the same task again: it is this job's own claim.
    Phase(j, JobPhase::kGenerating, j.upstream, "resumed");
  }
  // The job whose task had ended holds no slot: its completion gives none back.
  auto complete = [&](const std::string& id) {
    for (const auto& j : next) {
      if (j.id != id) continue;
      auto done = RunAsync(io_, store_->Complete({.job_id = j.id, .token = j.token}));
      EXPECT_TRUE(done) << id;
    }
  };
  complete(leased[1].id);
  EXPECT_EQ(in_flight(), "1");
  complete(leased[0].id);
  EXPECT_EQ(in_flight(), "0");
}

TEST_F(HeldTest, AStaleTokensPhaseWriteChangesNothing) {
  SubmitAndDispatch(1);
  auto first = Lease("w1", 1);
  ASSERT_EQ(first.size(), 1u);
  Phase(first[0], JobPhase::kGenerating, "task-1", "upstream task-1");
  ASSERT_TRUE(RunAsync(io_, store_->HandBack(first[0].id, first[0].token, "draining")));
  auto second = Lease("w1", 1);
  ASSERT_EQ(second.size(), 1u);
  const std::string entry = server_->Run({"HGET", "t:{q}:wjobs:w1", second[0].id}).str;
  const auto before = Get(second[0].id);
  // The old token of the same worker (whose held table holds the job under the new one), and
  // a token never handed out.
  for (const std::string& token : {first[0].token, std::string("999999/w1")}) {
    auto stale = RunAsync(
        io_, store_->SetPhase(second[0].id, token, JobPhase::kTransferring, "task-stale", "stale"));
    ASSERT_FALSE(stale) << token;
    EXPECT_EQ(stale.error().category, ErrorCategory::kLeaseLost) << token;
  }
  EXPECT_EQ(server_->Run({"HGET", "t:{q}:wjobs:w1", second[0].id}).str, entry);
  const auto after = Get(second[0].id);
  EXPECT_EQ(after.upstream, "task-1");
  EXPECT_EQ(after.phase, before.phase);
  EXPECT_EQ(after.history.size(), before.history.size());
  // A cancel takes the job with what its worker recorded: the upstream task to cancel.
  Phase(second[0], JobPhase::kGenerating, "task-1", "resumed");
  auto cancelled = RunAsync(io_, store_->Cancel(second[0].id));
  ASSERT_TRUE(cancelled) << cancelled.error().Describe();
  EXPECT_EQ(cancelled->upstream, "task-1");
  const auto done = Get(second[0].id);
  EXPECT_EQ(done.state, JobState::kCancelled);
  ExpectHistory(
      done, {JobState::kPending, JobState::kDispatched, JobState::kRunning, JobState::kRunning,
             JobState::kDispatched, JobState::kRunning, JobState::kRunning, JobState::kCancelled});
  EXPECT_EQ(done.history[6].detail, "resumed");
}

// A held entry written by the layout before (one JSON array, '[' first) is still read, and its
// job's phase changes go to the record as they did then.
TEST_F(HeldTest, AHeldEntryOfTheLayoutBeforeIsReadAndItsPhaseChangesGoToTheRecord) {
  SubmitAndDispatch(1);
  auto leased = Lease("w1", 1);
  ASSERT_EQ(leased.size(), 1u);
  const LeasedJob& j = leased[0];
  const std::string old_entry = LayoutOneEntry(j.token);
  server_->Run({"HSET", "t:{q}:wjobs:w1", j.id, old_entry});
  Permit(j);
  Phase(j, JobPhase::kGenerating, "task-old", "upstream task-old");
  EXPECT_EQ(RecordField(j.id, "upstream"), "task-old");
  EXPECT_EQ(RecordField(j.id, "phase"), "GENERATING");
  const std::string entry = server_->Run({"HGET", "t:{q}:wjobs:w1", j.id}).str;
  ASSERT_FALSE(entry.empty());
  EXPECT_EQ(entry[0], '[');
  auto job = Get(j.id);
  EXPECT_EQ(job.phase, JobPhase::kGenerating);
  EXPECT_EQ(job.upstream, "task-old");
  ASSERT_TRUE(RunAsync(io_, store_->Complete({.job_id = j.id, .token = j.token})));
  job = Get(j.id);
  EXPECT_EQ(job.state, JobState::kSucceeded);
  EXPECT_EQ(job.upstream, "task-old");
  ExpectHistory(job, {JobState::kPending, JobState::kDispatched, JobState::kRunning,
                      JobState::kRunning, JobState::kSucceeded});
  auto stats = RunAsync(io_, store_->GetStats());
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->leased, 0);
}

// A job held in layout 1 and handed back (a drain; reap, register and a lost lease answer take
// it the same way) keeps the upstream id its record holds: the next lease resumes that task
// instead of paying for a second create.
TEST_F(HeldTest, AJobHeldInTheLayoutBeforeKeepsItsUpstreamIdWhenHandedBack) {
  SubmitAndDispatch(1);
  auto leased = Lease("w1", 1);
  ASSERT_EQ(leased.size(), 1u);
  const LeasedJob& j = leased[0];
  const std::string old_entry = LayoutOneEntry(j.token);
  server_->Run({"HSET", "t:{q}:wjobs:w1", j.id, old_entry});
  Permit(j);
  Phase(j, JobPhase::kGenerating, "task-old", "upstream task-old");
  ASSERT_EQ(RecordField(j.id, "upstream"), "task-old");
  ASSERT_TRUE(RunAsync(io_, store_->HandBack(j.id, j.token, "worker draining")));
  EXPECT_EQ(RecordField(j.id, "upstream"), "task-old");
  auto again = Lease("w2", 1);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].id, j.id);
  EXPECT_EQ(again[0].upstream, "task-old");
  EXPECT_EQ(Get(j.id).phase, JobPhase::kGenerating);
}

// A held entry of layout 2 (main before layout 3: "<seq> <slot> <create_log> <create_intent>
// <hot JSON> <cold JSON> <tail JSON>", \x1f between), here written mid-life with one phase change
// already in it, is read whole: the next write keeps it in the held entry (now layout 3, \x1e
// first), GetJob shows both changes and completion writes them all into the record.
TEST_F(HeldTest, AHeldEntryOfLayoutTwoIsReadWholeAndRewrittenInLayoutThree) {
  SubmitAndDispatch(1);
  auto leased = Lease("w1", 1);
  ASSERT_EQ(leased.size(), 1u);
  const LeasedJob& j = leased[0];
  const std::string layout2 =
      "4\x1f"
      "a1\x1f\x1f\x1f[\"" +
      j.token +
      "\",\"a1\",\"b1\",\"studio\",\"\"]\x1f"
      "[\"m1\",\"m1\",\"\",\"0\",\"0\",\"\",\"0\",\"\",\"\"]\x1f"
      "[\"task-2\",\"RUNNING|GENERATING|1700000000000|upstream task-2\"]";
  server_->Run({"HSET", "t:{q}:wjobs:w1", j.id, layout2});
  auto job = Get(j.id);
  EXPECT_EQ(job.phase, JobPhase::kGenerating);
  EXPECT_EQ(job.upstream, "task-2");
  Phase(j, JobPhase::kTransferring, "", "storing");
  const std::string entry = server_->Run({"HGET", "t:{q}:wjobs:w1", j.id}).str;
  ASSERT_FALSE(entry.empty());
  EXPECT_EQ(entry[0], '\x1e') << entry;
  EXPECT_EQ(RecordField(j.id, "phase"), "SUBMITTING");  // held entry only
  job = Get(j.id);
  EXPECT_EQ(job.phase, JobPhase::kTransferring);
  EXPECT_EQ(job.upstream, "task-2");
  ASSERT_TRUE(RunAsync(io_, store_->Complete({.job_id = j.id, .token = j.token})));
  EXPECT_EQ(RecordField(j.id, "upstream"), "task-2");
  job = Get(j.id);
  EXPECT_EQ(job.state, JobState::kSucceeded);
  ExpectHistory(job, {JobState::kPending, JobState::kDispatched, JobState::kRunning,
                      JobState::kRunning, JobState::kRunning, JobState::kSucceeded});
  EXPECT_EQ(job.history[3].detail, "upstream task-2");
  EXPECT_EQ(job.history[4].phase, JobPhase::kTransferring);
  // The slot was given back once, by the transfer.
  EXPECT_EQ(server_->Run({"HGET", "t:{q}:acct:a1", "in_flight"}).str, "0");
}

// Free text in a held entry (the upstream id, a history entry's detail) is kept as it is unless
// it holds the separator or begins with a quote, and then as a JSON string: either way it reads
// back exactly.
TEST_F(HeldTest, FreeTextWithTheSeparatorOrAQuoteReadsBackExactly) {
  SubmitAndDispatch(1);
  auto leased = Lease("w1", 1);
  ASSERT_EQ(leased.size(), 1u);
  const LeasedJob& j = leased[0];
  const std::string upstream =
      "\"task\x1f"
      "7";
  Phase(j, JobPhase::kGenerating, upstream, "detail \x1f with a separator");
  Phase(j, JobPhase::kTransferring, "", "\"quoted\"");
  auto job = Get(j.id);
  EXPECT_EQ(job.upstream, upstream);
  ASSERT_EQ(job.history.size(), 5u);
  EXPECT_EQ(job.history[3].detail, "detail \x1f with a separator");
  EXPECT_EQ(job.history[4].detail, "\"quoted\"");
  ASSERT_TRUE(RunAsync(io_, store_->Complete({.job_id = j.id, .token = j.token})));
  EXPECT_EQ(RecordField(j.id, "upstream"), upstream);
  job = Get(j.id);
  ASSERT_EQ(job.history.size(), 6u);
  EXPECT_EQ(job.history[3].detail, "detail \x1f with a separator");
  EXPECT_EQ(job.history[4].detail, "\"quoted\"");
}

// Layout 3 keeps ids and numbers as plain text between \x1f separators: a job whose id holds a
// \x1f is held in layout 1 instead (its phase changes go to its record), never misread.
TEST_F(HeldTest, AJobWhoseIdHoldsTheSeparatorIsHeldInTheJsonLayout) {
  const std::string id = "odd\x1fid";
  std::vector<NewJob> jobs{
      NewJob{.id = id, .tenant = "studio", .spec_bytes = "spec", .candidate_models = {"m1"}}};
  ASSERT_TRUE(RunAsync(io_, store_->SubmitMany(jobs, 3600)));
  auto dispatched = RunAsync(io_, store_->Dispatch(1, 16, 1));
  ASSERT_TRUE(dispatched && dispatched->dispatched == 1);
  auto leased = Lease("w1", 1);
  ASSERT_EQ(leased.size(), 1u);
  const std::string entry = server_->Run({"HGET", "t:{q}:wjobs:w1", id}).str;
  ASSERT_FALSE(entry.empty());
  EXPECT_EQ(entry[0], '[') << entry;
  Permit(leased[0]);
  Phase(leased[0], JobPhase::kGenerating, "task-odd", "");
  EXPECT_EQ(RecordField(id, "upstream"), "task-odd");
  ASSERT_TRUE(RunAsync(io_, store_->Complete({.job_id = id, .token = leased[0].token})));
  auto job = Get(id);
  EXPECT_EQ(job.state, JobState::kSucceeded);
  EXPECT_EQ(job.upstream, "task-odd");
}

// A held entry that is none of the layouts is refused with a message naming it, not misread.
TEST_F(HeldTest, AMalformedHeldEntryIsRefusedWithAClearMessage) {
  SubmitAndDispatch(1);
  auto leased = Lease("w1", 1);
  ASSERT_EQ(leased.size(), 1u);
  server_->Run({"HSET", "t:{q}:wjobs:w1", leased[0].id,
                "\x1e"
                "cut short"});
  auto r = RunAsync(
      io_, store_->SetPhase(leased[0].id, leased[0].token, JobPhase::kGenerating, "task-x", ""));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().Describe().find("held entry of job j0 (worker w1) is malformed"),
            std::string::npos)
      << r.error().Describe();
}

// Completion writes a job's five outputs as one field (`out`); a record of an earlier build, one
// field each, reads the same, and an `out` that is not five parts is refused, naming it.
TEST_F(HeldTest, TheOutputsReadFromOneFieldOrFromTheFieldsOfTheLayoutBefore) {
  SubmitAndDispatch(1);
  auto leased = Lease("w1", 1);
  ASSERT_EQ(leased.size(), 1u);
  ASSERT_TRUE(RunAsync(io_, store_->Complete({.job_id = "j0",
                                              .token = leased[0].token,
                                              .output_key = "clips/j0.mp4",
                                              .sidecar_key = "clips/j0.json",
                                              .sha256 = "ab12",
                                              .output_url = "https://cdn.example/j0.mp4",
                                              .clip_seconds = 5.5})));
  EXPECT_EQ(RecordField("j0", "out"),
            "clips/j0.mp4\x1f"
            "clips/j0.json\x1f"
            "ab12\x1f"
            "5.5\x1fhttps://cdn.example/j0.mp4");
  EXPECT_EQ(RecordField("j0", "output_key"), "");
  auto expect_outputs = [&] {
    auto job = Get("j0");
    EXPECT_EQ(job.output_key, "clips/j0.mp4");
    EXPECT_EQ(job.sidecar_key, "clips/j0.json");
    EXPECT_EQ(job.sha256, "ab12");
    EXPECT_EQ(job.output_url, "https://cdn.example/j0.mp4");
    EXPECT_DOUBLE_EQ(job.clip_seconds, 5.5);
  };
  expect_outputs();
  server_->Run({"HDEL", "t:{q}:job:j0", "out"});
  server_->Run({"HSET", "t:{q}:job:j0", "output_key", "clips/j0.mp4", "sidecar_key",
                "clips/j0.json", "sha256", "ab12", "clip_seconds", "5.5", "output_url",
                "https://cdn.example/j0.mp4"});
  expect_outputs();
  server_->Run({"HSET", "t:{q}:job:j0", "out",
                "a\x1f"
                "b"});
  auto bad = RunAsync(io_, store_->Get("j0"));
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().Describe().find("field 'out'"), std::string::npos)
      << bad.error().Describe();
}

// A worker's held table is a hash table from the lease that makes it (a listpack would be
// scanned on every lookup); the field that makes it one is no job: stats do not count it, a
// lease call after a lost answer leaves it, and a restart of the worker hands back exactly its
// jobs. A table left a listpack (by an earlier build, which padded at the first write) is padded
// by the next lease into it.
TEST_F(HeldTest, AHeldTableIsAHashTableAndItsPadIsNoJob) {
  ASSERT_TRUE(RunAsync(io_, store_->RegisterWorker("w1", 5s)));
  SubmitAndDispatch(3);
  auto leased = Lease("w1", 1);
  ASSERT_EQ(leased.size(), 1u);
  EXPECT_EQ(server_->Run({"OBJECT", "ENCODING", "t:{q}:wjobs:w1"}).str, "hashtable");
  // An earlier build's table: its entries, no pad.
  const std::string entry = server_->Run({"HGET", "t:{q}:wjobs:w1", leased[0].id}).str;
  server_->Run({"DEL", "t:{q}:wjobs:w1"});
  server_->Run({"HSET", "t:{q}:wjobs:w1", leased[0].id, entry});
  ASSERT_EQ(server_->Run({"OBJECT", "ENCODING", "t:{q}:wjobs:w1"}).str, "listpack");
  Permit(leased[0]);
  auto more = Lease("w1", 2);
  ASSERT_EQ(more.size(), 2u);
  leased.insert(leased.end(), more.begin(), more.end());
  EXPECT_EQ(server_->Run({"OBJECT", "ENCODING", "t:{q}:wjobs:w1"}).str, "hashtable");
  auto stats = RunAsync(io_, store_->GetStats());
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->leased, 3);
  ASSERT_TRUE(RunAsync(io_, store_->Complete({.job_id = leased[0].id, .token = leased[0].token})));
  stats = RunAsync(io_, store_->GetStats());
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->leased, 2);
  // A lease call after a lost answer hands back what the worker does not hold: the pad stays.
  const std::vector<std::string> holding{leased[1].id, leased[2].id};
  ASSERT_TRUE(RunAsync(io_, store_->Lease("w1", 1, 5s, 0, &holding)));
  EXPECT_EQ(server_->Run({"HLEN", "t:{q}:wjobs:w1"}).integer, 3);  // two jobs and the pad
  // The worker starts over: its two jobs go back to the queue, nothing else is read as one.
  ASSERT_TRUE(RunAsync(io_, store_->RegisterWorker("w1", 5s)));
  EXPECT_EQ(Get(leased[1].id).state, JobState::kDispatched);
  EXPECT_EQ(Get(leased[2].id).state, JobState::kDispatched);
  EXPECT_EQ(server_->Run({"EXISTS", "t:{q}:wjobs:w1"}).integer, 0);
}

// A job whose webhook reports every change: a phase change kept only in the held entry still
// records its delivery, with the model (read from the part of the entry decoded only then).
TEST_F(HeldTest, APhaseChangeKeptInTheHeldEntryStillRecordsItsWebhookDelivery) {
  std::vector<NewJob> jobs{NewJob{.id = "hook",
                                  .tenant = "studio",
                                  .spec_bytes = "spec",
                                  .candidate_models = {"m1"},
                                  .webhook = "a|https://hooks.example/x"}};
  ASSERT_TRUE(RunAsync(io_, store_->SubmitMany(jobs, 3600)));
  auto dispatched = RunAsync(io_, store_->Dispatch(1, 16, 1));
  ASSERT_TRUE(dispatched && dispatched->dispatched == 1);
  auto leased = Lease("w1", 1);
  ASSERT_EQ(leased.size(), 1u);
  Phase(leased[0], JobPhase::kGenerating, "task-h", "upstream task-h");
  EXPECT_EQ(RecordField("hook", "phase"), "SUBMITTING");  // held entry only
  const auto body = server_->Run({"HGET", "t:{q}:wh:msg_hook_4", "body"});
  ASSERT_FALSE(body.IsNil());
  EXPECT_NE(body.str.find("\"phase\":\"GENERATING\""), std::string::npos) << body.str;
  EXPECT_NE(body.str.find("\"model\":\"m1\""), std::string::npos) << body.str;
  EXPECT_NE(body.str.find("\"seq\":4"), std::string::npos) << body.str;
}

}  // namespace
}  // namespace reelq::queue
