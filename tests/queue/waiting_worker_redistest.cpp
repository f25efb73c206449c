// Issue 11: dispatch leasing straight to a worker waiting for work (queue/lua/common_lease.lua).
// One write of the record serves DISPATCHED and RUNNING, yet the history, the events, the batch
// and per-model counters and the fencing token are what the two steps (dispatch, then lease)
// gave; a worker never gets more than it asked for, a lapsed one nothing; a lost answer, a
// drain and the reaper hand back what was pushed to a worker that never started it; a blocking
// wait never takes a lease with it; an entry of another layout is refused.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "store_fixture.h"

namespace reelq::queue {
namespace {

using namespace std::chrono_literals;
using testing::RunAsync;

class WaitingWorkerTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    Sync(OneModel());
  }

  void SubmitAndDispatch(int n, const std::string& prefix, const std::string& batch = "b1") {
    std::vector<NewJob> jobs;
    for (int i = 0; i < n; ++i) {
      jobs.push_back(NewJob{.id = prefix + std::to_string(i),
                            .tenant = "studio",
                            .batch = batch,
                            .spec_bytes = std::string("spec\x1f with the separator\0", 26),
                            .candidate_models = {"m1"}});
    }
    ASSERT_TRUE(RunAsync(io_, store_->SubmitMany(jobs, 3600)));
    auto dispatched = RunAsync(io_, store_->Dispatch(n, 16, 1));
    ASSERT_TRUE(dispatched) << dispatched.error().Describe();
    ASSERT_EQ(dispatched->dispatched, n);
  }

  int64_t Register(const std::string& worker) {
    auto epoch = RunAsync(io_, store_->RegisterWorker(worker, 5s));
    if (!epoch) throw std::runtime_error(epoch.error().Describe());
    return *epoch;
  }

  std::vector<LeasedJob> Lease(const std::string& worker, int64_t epoch, int max,
                               const std::vector<std::string>* holding = nullptr, int room = 0,
                               bool* waiting = nullptr) {
    auto leased = RunAsync(io_, store_->Lease(worker, max, 5s, epoch, holding, room, waiting));
    if (!leased) throw std::runtime_error(leased.error().Describe());
    return *leased;
  }

  std::vector<JobState> States(const JobRecord& job) {
    std::vector<JobState> out;
    for (const auto& t : job.history) out.push_back(t.state);
    return out;
  }

  redis::Reply Redis(std::vector<std::string> args) {
    args[1] = "t:{q}:" + args[1];
    return server_->Run(args);
  }
};

// A lease call that returns only jobs dispatch pushed to the worker extends the worker's lease
// as one returning jobs from `ready` does: the worker takes any non-empty answer as its lease
// extended to the call's time plus the lease (worker.cpp), and its jobs inherit that belief.
TEST_F(WaitingWorkerTest, ALeaseCallReturningOnlyPushedJobsExtendsTheWorkersLease) {
  const int64_t epoch = Register("w1");
  auto lease_until = [&] { return std::stoll(Redis({"ZSCORE", "wlease", "w1"}).str); };
  const int64_t registered_until = lease_until();
  clock_->Advance(3s);
  ASSERT_TRUE(Lease("w1", epoch, 8).empty());  // nothing ready: w1 waits
  SubmitAndDispatch(1, "p");
  ASSERT_EQ(Get("p0").state, JobState::kRunning);  // pushed to w1
  clock_->Advance(1s);
  const int64_t asked = clock_->NowMs();
  const auto leased = Lease("w1", epoch, 8);
  ASSERT_EQ(leased.size(), 1u);
  EXPECT_EQ(leased[0].id, "p0");
  EXPECT_GE(lease_until(), asked + 5000)
      << "the worker believes its lease runs " << asked + 5000 - lease_until()
      << " ms longer than Redis holds it (registered until " << registered_until << ")";
}

TEST_F(WaitingWorkerTest, ADispatchLeasesStraightToAWaitingWorkerWithBothStepsRecorded) {
  const int64_t epoch = Register("w1");
  ASSERT_TRUE(Lease("w1", epoch, 8).empty());  // nothing ready: w1 waits for 8
  SubmitAndDispatch(10, "d");

  // Eight went straight to w1, two to `ready`; every counter as if each took both steps.
  std::set<std::string> running;
  for (int i = 0; i < 10; ++i) {
    const auto job = Get("d" + std::to_string(i));
    if (job.state == JobState::kRunning) {
      running.insert(job.id);
      EXPECT_EQ(job.worker, "w1");
      EXPECT_EQ(States(job), (std::vector<JobState>{JobState::kPending, JobState::kDispatched,
                                                    JobState::kRunning}))
          << job.id;
      EXPECT_EQ(job.history[2].seq, 3);
      EXPECT_EQ(job.history[2].phase, JobPhase::kSubmitting);
      EXPECT_EQ(job.history[2].detail, "w1");
      EXPECT_EQ(job.model, "m1");
      EXPECT_EQ(job.account, "a1");
    } else {
      EXPECT_EQ(job.state, JobState::kDispatched) << job.id;
    }
  }
  ASSERT_EQ(running.size(), 8u);
  auto batch = RunAsync(io_, store_->GetBatch("b1"));
  ASSERT_TRUE(batch);
  EXPECT_EQ(batch->Count(JobState::kRunning), 8);
  EXPECT_EQ(batch->Count(JobState::kDispatched), 2);
  EXPECT_EQ(batch->Count(JobState::kPending), 0);
  auto stats = RunAsync(io_, store_->GetStats());
  ASSERT_TRUE(stats);
  ASSERT_EQ(stats->models.size(), 1u);
  EXPECT_EQ(stats->models[0].in_flight, 8);
  EXPECT_EQ(stats->models[0].dispatched, 2);
  EXPECT_EQ(stats->models[0].queue_depth, 0);
  EXPECT_EQ(stats->ready, 2);
  EXPECT_EQ(stats->leased, 8);
  // A watcher sees each step of each job, in order.
  auto events = RunAsync(io_, store_->ReadEventRange("-", 1000));
  ASSERT_TRUE(events);
  std::map<std::string, std::vector<JobState>> seen;
  for (const auto& ev : *events) seen[ev.job_id].push_back(ev.state);
  for (const auto& id : running) {
    EXPECT_EQ(seen[id], (std::vector<JobState>{JobState::kPending, JobState::kDispatched,
                                               JobState::kRunning}))
        << id;
  }

  // The worker's wait is woken by the push (a token on `wnudge`), and its next lease call
  // returns all eight and leases nothing more: it asked for 8.
  auto blocking = NewConnection();
  const auto asked = std::chrono::steady_clock::now();
  ASSERT_TRUE(RunAsync(io_, store_->WaitForWork(*blocking, 5000ms, "w1")));
  EXPECT_LT(std::chrono::steady_clock::now() - asked, 4000ms);  // woken, not timed out
  auto rest = Lease("w1", epoch, 8);
  ASSERT_EQ(rest.size(), 8u);
  EXPECT_EQ(Redis({"EXISTS", "wnudge:w1"}).integer, 0);
  std::set<std::string> tokens;
  for (const auto& j : rest) {
    EXPECT_TRUE(running.count(j.id)) << j.id;
    EXPECT_EQ(j.token.substr(j.token.find('/')), "/w1");
    EXPECT_EQ(j.token, Get(j.id).token);
    EXPECT_EQ(j.spec_bytes, std::string("spec\x1f with the separator\0", 26));
    EXPECT_EQ(j.model, "m1");
    EXPECT_EQ(j.tenant, "studio");
    EXPECT_EQ(j.batch, "b1");
    EXPECT_EQ(j.attempt, 1);
    tokens.insert(j.token);
  }
  EXPECT_EQ(tokens.size(), 8u);
  // The held table fences: the lease's token writes, another is refused.
  ASSERT_TRUE(RunAsync(
      io_, store_->SetPhase(rest[0].id, rest[0].token, JobPhase::kGenerating, "task-1", "")));
  auto stale = RunAsync(io_, store_->SetPhase(rest[1].id, "999/w1", JobPhase::kGenerating, "", ""));
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.error().category, ErrorCategory::kLeaseLost);
  // The two on `ready` go to the next worker that asks.
  const int64_t w2 = Register("w2");
  EXPECT_EQ(Lease("w2", w2, 8).size(), 2u);
}

TEST_F(WaitingWorkerTest, AWaitingWorkerGetsNoMoreThanItAskedForAndALapsedOneNothing) {
  const int64_t w1 = Register("w1");
  const int64_t w2 = Register("w2");
  ASSERT_TRUE(Lease("w1", w1, 3).empty());
  ASSERT_TRUE(Lease("w2", w2, 2).empty());
  SubmitAndDispatch(10, "n");
  EXPECT_EQ(Redis({"LLEN", "wgot:w1"}).integer, 3);
  EXPECT_EQ(Redis({"LLEN", "wgot:w2"}).integer, 2);
  EXPECT_EQ(Redis({"LLEN", "ready"}).integer, 5);
  EXPECT_EQ(Redis({"HLEN", "wwait"}).integer, 0);  // both full
  EXPECT_EQ(Lease("w1", w1, 3).size(), 3u);
  EXPECT_EQ(Lease("w2", w2, 2).size(), 2u);

  // w3 waits, then its lease lapses (no heartbeat): dispatch passes it by.
  const int64_t w3 = Register("w3");
  EXPECT_EQ(Lease("w3", w3, 20).size(), 5u);  // what was on `ready`; it waits for 15 more
  EXPECT_EQ(Redis({"HGET", "wwait", "w3"}).str, "15:" + std::to_string(clock_->NowMs()));
  SubmitAndDispatch(2, "pushed");  // w3 still live: pushed to it
  EXPECT_EQ(Redis({"LLEN", "wgot:w3"}).integer, 2);
  clock_->Advance(6s);
  SubmitAndDispatch(3, "late");
  EXPECT_EQ(Redis({"LLEN", "ready"}).integer, 3);
  EXPECT_EQ(Redis({"LLEN", "wgot:w3"}).integer, 2);
  EXPECT_EQ(Redis({"HEXISTS", "wwait", "w3"}).integer, 0);
  // The reaper hands back everything w3 held, what was pushed to it included.
  auto reaped = RunAsync(io_, store_->Reap(100));
  ASSERT_TRUE(reaped);
  EXPECT_GE(reaped->expired_leases, 7);
  EXPECT_EQ(Redis({"EXISTS", "wgot:w3"}).integer, 0);
  for (const auto& id : {"pushed0", "pushed1"}) {
    const auto job = Get(id);
    EXPECT_EQ(job.state, JobState::kDispatched) << id;
    EXPECT_EQ(job.history.back().detail, "lease expired") << id;
  }
}

// A worker leases at most `max` from `ready` a call but waits for all its room: dispatch may
// lease it that many straight, and its next call returns them all.
TEST_F(WaitingWorkerTest, AWorkerWaitsForItsRoomNotOneCallsWorth) {
  const int64_t epoch = Register("w1");
  ASSERT_TRUE(Lease("w1", epoch, 2, nullptr, 5).empty());
  EXPECT_EQ(Redis({"HGET", "wwait", "w1"}).str, "5:" + std::to_string(clock_->NowMs()));
  SubmitAndDispatch(7, "r");
  EXPECT_EQ(Redis({"LLEN", "wgot:w1"}).integer, 5);
  EXPECT_EQ(Redis({"LLEN", "ready"}).integer, 2);
  // Its next call returns all five pushed (more than `max`: they were within its room) and
  // leases nothing from `ready`.
  EXPECT_EQ(Lease("w1", epoch, 2, nullptr, 3).size(), 5u);
  EXPECT_EQ(Redis({"HEXISTS", "wwait", "w1"}).integer, 0);
  // Room 4 with max 2: two from `ready`, and it waits for the other two.
  EXPECT_EQ(Lease("w1", epoch, 2, nullptr, 4).size(), 2u);
  EXPECT_EQ(Redis({"HEXISTS", "wwait", "w1"}).integer, 0);  // `ready` may hold more
  EXPECT_TRUE(Lease("w1", epoch, 2, nullptr, 2).empty());
  EXPECT_EQ(Redis({"HGET", "wwait", "w1"}).str, "2:" + std::to_string(clock_->NowMs()));
}

// The call says whether it entered the worker in `wwait`, so that a worker given jobs by it waits
// for the next push at once instead of calling again only to be entered. It says so exactly when
// the entry is there, and the worker's entry holds the room it has left.
TEST_F(WaitingWorkerTest, ALeaseCallSaysWhetherItEnteredTheWorkerAmongThoseWaiting) {
  const int64_t epoch = Register("w1");
  bool waiting = false;
  ASSERT_TRUE(Lease("w1", epoch, 4, nullptr, 4, &waiting).empty());
  EXPECT_TRUE(waiting);  // nothing anywhere: it waits for 4
  SubmitAndDispatch(3, "p");
  EXPECT_EQ(Redis({"LLEN", "wgot:w1"}).integer, 3);

  // The three pushed come back, `ready` is empty: it is entered for the one slot it has left.
  waiting = false;
  EXPECT_EQ(Lease("w1", epoch, 4, nullptr, 4, &waiting).size(), 3u);
  EXPECT_TRUE(waiting);
  EXPECT_EQ(Redis({"HGET", "wwait", "w1"}).str, "1:" + std::to_string(clock_->NowMs()));

  // Full after what it got: not entered (it must ask again when a slot frees).
  SubmitAndDispatch(1, "q");  // pushed: it waited for one
  waiting = true;
  EXPECT_EQ(Lease("w1", epoch, 1, nullptr, 1, &waiting).size(), 1u);
  EXPECT_FALSE(waiting);
  EXPECT_EQ(Redis({"HEXISTS", "wwait", "w1"}).integer, 0);

  // `ready` may hold more than the call took: not entered; the call that empties it is.
  SubmitAndDispatch(5, "r");  // no worker waits: all five on `ready`
  ASSERT_EQ(Redis({"LLEN", "ready"}).integer, 5);
  waiting = true;
  EXPECT_EQ(Lease("w1", epoch, 3, nullptr, 8, &waiting).size(), 3u);
  EXPECT_FALSE(waiting);
  EXPECT_EQ(Redis({"HEXISTS", "wwait", "w1"}).integer, 0);
  waiting = false;
  EXPECT_EQ(Lease("w1", epoch, 3, nullptr, 5, &waiting).size(), 2u);
  EXPECT_TRUE(waiting);
  EXPECT_EQ(Redis({"HGET", "wwait", "w1"}).str, "3:" + std::to_string(clock_->NowMs()));

  // Draining (max 0, room 0): taken out, not entered.
  waiting = true;
  EXPECT_TRUE(Lease("w1", epoch, 0, nullptr, 0, &waiting).empty());
  EXPECT_FALSE(waiting);
  EXPECT_EQ(Redis({"HEXISTS", "wwait", "w1"}).integer, 0);
}

// A worker that stopped asking (hung, its lease still live) is passed by after two seconds.
TEST_F(WaitingWorkerTest, AWorkerThatStoppedAskingIsPassedBy) {
  const int64_t epoch = Register("w1");
  ASSERT_TRUE(Lease("w1", epoch, 4).empty());
  clock_->Advance(1500ms);
  ASSERT_TRUE(RunAsync(io_, store_->Heartbeat("w1", epoch, 5s)));
  SubmitAndDispatch(1, "fresh");
  EXPECT_EQ(Get("fresh0").state, JobState::kRunning);
  EXPECT_EQ(Redis({"HGET", "wwait", "w1"}).str, "3:" + std::to_string(clock_->NowMs() - 1500));
  clock_->Advance(1000ms);
  ASSERT_TRUE(RunAsync(io_, store_->Heartbeat("w1", epoch, 5s)));
  SubmitAndDispatch(1, "stale");
  EXPECT_EQ(Get("stale0").state, JobState::kDispatched);
  EXPECT_EQ(Redis({"HEXISTS", "wwait", "w1"}).integer, 0);
  EXPECT_EQ(Redis({"LLEN", "ready"}).integer, 1);
}

TEST_F(WaitingWorkerTest, WhatWasPushedToAWorkerThatLostTheAnswerOrDrainsGoesBack) {
  const int64_t epoch = Register("w1");
  ASSERT_TRUE(Lease("w1", epoch, 4).empty());
  SubmitAndDispatch(2, "lost");
  std::vector<std::string> old_tokens{Get("lost0").token, Get("lost1").token};
  // The wait's answer died on the way (the worker cannot tell whether it popped anything): its
  // next lease names the jobs it runs (none); the pushed ones go back and are leased again.
  const std::vector<std::string> none;
  auto again = Lease("w1", epoch, 4, &none);
  ASSERT_EQ(again.size(), 2u);
  for (const auto& j : again) {
    EXPECT_NE(j.token, old_tokens[0]);
    EXPECT_NE(j.token, old_tokens[1]);
    EXPECT_EQ(States(Get(j.id)),
              (std::vector<JobState>{JobState::kPending, JobState::kDispatched, JobState::kRunning,
                                     JobState::kDispatched, JobState::kRunning}));
  }
  EXPECT_EQ(Redis({"EXISTS", "wgot:w1"}).integer, 0);
  auto stale =
      RunAsync(io_, store_->SetPhase("lost0", old_tokens[0], JobPhase::kGenerating, "", ""));
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.error().category, ErrorCategory::kLeaseLost);

  // Draining: a lease call for nothing takes the worker out of `wwait` and hands back what was
  // pushed to it since; the jobs it runs stay.
  ASSERT_TRUE(Lease("w1", epoch, 4).empty());
  SubmitAndDispatch(2, "drain");
  EXPECT_EQ(Redis({"LLEN", "wgot:w1"}).integer, 2);
  const std::vector<std::string> running{again[0].id, again[1].id};
  ASSERT_TRUE(Lease("w1", epoch, 0, &running).empty());
  EXPECT_EQ(Redis({"HEXISTS", "wwait", "w1"}).integer, 0);
  EXPECT_EQ(Get("drain0").state, JobState::kDispatched);
  EXPECT_EQ(Get("drain1").state, JobState::kDispatched);
  EXPECT_EQ(Get(again[0].id).state, JobState::kRunning);
  SubmitAndDispatch(1, "after");
  const int64_t w2 = Register("w2");
  EXPECT_EQ(Lease("w2", w2, 10).size(), 3u);
}

// A blocking pop whose client gave up (its command timed out: a failover, a slow network)
// stays blocked inside Redis and takes the next element pushed, its answer dropped. It pops a
// token, not the lease: the job pushed after it still reaches the worker's next lease call.
// (With the lease itself on the blocking list, seen in fault_sentinel_failover_test, the job
// stayed RUNNING under a live worker that never ran it.)
TEST_F(WaitingWorkerTest, AWaitThatOutlivesItsClientTakesNoJobWithIt) {
  const int64_t epoch = Register("w1");
  ASSERT_TRUE(Lease("w1", epoch, 4).empty());
  auto blocking = NewConnection();
  auto gave_up = RunAsync(io_, blocking->Command({"BLPOP", "t:{q}:wnudge:w1", "t:{q}:wake", "30"},
                                                 std::chrono::milliseconds(100)));
  ASSERT_FALSE(gave_up);  // the client timed out; Redis still holds the pop
  ASSERT_NE(server_->Run({"CLIENT", "LIST"}).str.find("cmd=blpop"), std::string::npos);
  SubmitAndDispatch(2, "p");
  EXPECT_EQ(Redis({"LLEN", "wgot:w1"}).integer, 2);  // the stale pop took only the token
  EXPECT_EQ(Redis({"EXISTS", "wnudge:w1"}).integer, 0);
  auto leased = Lease("w1", epoch, 4);
  ASSERT_EQ(leased.size(), 2u);
  for (const auto& j : leased) EXPECT_EQ(j.token, Get(j.id).token) << j.id;
}

TEST_F(WaitingWorkerTest, AnEntryOfAnotherLayoutIsRefusedNotMisread) {
  const int64_t epoch = Register("w1");
  Redis({"RPUSH", "wgot:w1",
         "id\x1fj1\x1ftoken\x1f"
         "5/w1\x1fspec\x1fs"});
  auto leased = RunAsync(io_, store_->Lease("w1", 4, 5s, epoch));
  ASSERT_FALSE(leased);
  EXPECT_NE(leased.error().message.find("not in the layout this worker reads"), std::string::npos)
      << leased.error().Describe();
  // A value that holds the separator shifts the names: refused too.
  Redis({"RPUSH", "wgot:w1",
         "L1\x1fid\x1fj\x1f"
         "1\x1ftoken\x1f"
         "5/w1\x1fmodel\x1fm1\x1f"
         "account\x1f"
         "a1"});
  leased = RunAsync(io_, store_->Lease("w1", 4, 5s, epoch));
  ASSERT_FALSE(leased);
  EXPECT_NE(leased.error().message.find("expected field token"), std::string::npos)
      << leased.error().Describe();
}

// A batch id is the client's and an upstream task id the provider's: one that holds the entry's
// separator is carried in the JSON form ("J1") and read back exactly, pushed or leased.
TEST_F(WaitingWorkerTest, AValueHoldingTheSeparatorTravelsInTheJsonFormExactly) {
  const std::string batch = "b\x1f\"odd\"";
  const std::string spec("spec\x1f with the separator\0", 26);
  const int64_t epoch = Register("w1");
  ASSERT_TRUE(Lease("w1", epoch, 1).empty());  // w1 waits for one: it gets j0 pushed
  SubmitAndDispatch(2, "j", batch);
  ASSERT_EQ(Redis({"LINDEX", "wgot:w1", "0"}).str.substr(0, 2), "J1");
  auto leased = Lease("w1", epoch, 2);  // j0 from the push, j1 from `ready`
  ASSERT_EQ(leased.size(), 2u);
  for (const auto& job : leased) {
    EXPECT_EQ(job.batch, batch) << job.id;
    EXPECT_EQ(job.spec_bytes, spec) << job.id;
    EXPECT_EQ(job.tenant, "studio");
    EXPECT_EQ(job.model, "m1");
    EXPECT_EQ(job.max_attempts, kDefaultMaxAttempts);
  }
}

}  // namespace
}  // namespace reelq::queue
