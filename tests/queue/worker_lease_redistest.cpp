// Issue 11 against a real redis-server: one lease per worker (the reaper takes over every job of
// a worker whose lease lapsed, and fencing still refuses the old worker), cancellations pushed
// to the worker that holds the job, many-jobs-per-call scripts under racing callers, and the
// schema version check against a Redis written by the previous layout.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "store_fixture.h"

namespace reelq::queue {
namespace {

using namespace std::chrono_literals;
using testing::RunAsync;

class WorkerLeaseTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    Sync(OneModel());
  }

  static NewJob Job(std::string id, std::string key = "") {
    return NewJob{.id = std::move(id),
                  .tenant = "studio",
                  .batch = "b1",
                  .idempotency_key = std::move(key),
                  .spec_bytes = "spec",
                  .candidate_models = {"m1"}};
  }

  void SubmitAndDispatch(int n, const std::string& prefix) {
    std::vector<NewJob> jobs;
    for (int i = 0; i < n; ++i) jobs.push_back(Job(prefix + std::to_string(i)));
    auto submitted = RunAsync(io_, store_->SubmitMany(jobs, 3600));
    ASSERT_TRUE(submitted) << submitted.error().Describe();
    auto dispatched = RunAsync(io_, store_->Dispatch(n, 16, 1));
    ASSERT_TRUE(dispatched) << dispatched.error().Describe();
    ASSERT_EQ(dispatched->dispatched, n);
  }

  std::vector<LeasedJob> LeaseAll(const std::string& worker, int64_t epoch, int n) {
    auto leased = RunAsync(io_, store_->Lease(worker, n, 5s, epoch));
    if (!leased) throw std::runtime_error(leased.error().Describe());
    return *leased;
  }

  // Worker w1, registered with a 15 s lease, holding `n` new jobs <prefix>0, <prefix>1, ...
  struct Holding {
    int64_t epoch = 0;
    std::vector<LeasedJob> held;
  };
  Holding W1Holding(int n, const std::string& prefix) {
    auto epoch = RunAsync(io_, store_->RegisterWorker("w1", 15s));
    if (!epoch) throw std::runtime_error(epoch.error().Describe());
    SubmitAndDispatch(n, prefix);
    auto held = LeaseAll("w1", *epoch, n);
    if (held.size() != static_cast<size_t>(n)) {
      throw std::runtime_error("leased " + std::to_string(held.size()) + " of " +
                               std::to_string(n));
    }
    return {*epoch, std::move(held)};
  }
};

TEST_F(WorkerLeaseTest, LapsedWorkerLeaseHandsBackEveryJobItHeldAndFencesItOut) {
  auto w1 = RunAsync(io_, store_->RegisterWorker("w1", 5s));
  auto w2 = RunAsync(io_, store_->RegisterWorker("w2", 5s));
  ASSERT_TRUE(w1 && w2);
  ASSERT_NE(*w1, *w2);
  SubmitAndDispatch(20, "a");
  auto dead = LeaseAll("w1", *w1, 15);
  auto alive = LeaseAll("w2", *w2, 5);
  ASSERT_EQ(dead.size(), 15u);
  ASSERT_EQ(alive.size(), 5u);

  // w2 heartbeats, w1 falls silent. Before the lease ends nothing is taken.
  for (int i = 0; i < 3; ++i) {
    clock_->Advance(2s);
    auto beat = RunAsync(io_, store_->Heartbeat("w2", *w2, 5s));
    ASSERT_TRUE(beat) << beat.error().Describe();
    EXPECT_FALSE(beat->lease_lost);
    auto reaped = RunAsync(io_, store_->Reap(100));
    ASSERT_TRUE(reaped);
    // At 2 and 4 s nothing; at 6 s w1's 5 s lease has lapsed.
    EXPECT_EQ(reaped->expired_leases, i < 2 ? 0 : 15) << "at " << (i + 1) * 2 << " s";
  }
  // Every one of w1's jobs is back in the queue; none of w2's.
  for (const auto& j : dead) {
    auto record = RunAsync(io_, store_->Get(j.id));
    ASSERT_TRUE(record);
    EXPECT_EQ(record->state, JobState::kDispatched) << j.id;
    // Fencing: the old worker's writes are refused.
    auto phase =
        RunAsync(io_, store_->SetPhase(j.id, j.token, JobPhase::kGenerating, "up-" + j.id, ""));
    ASSERT_FALSE(phase);
    EXPECT_EQ(phase.error().category, ErrorCategory::kLeaseLost);
  }
  for (const auto& j : alive) {
    auto record = RunAsync(io_, store_->Get(j.id));
    ASSERT_TRUE(record);
    EXPECT_EQ(record->state, JobState::kRunning);
    EXPECT_EQ(record->worker, "w2");
  }
  // w1 learns it at its next heartbeat, and cannot lease under the old epoch.
  auto beat = RunAsync(io_, store_->Heartbeat("w1", *w1, 5s));
  ASSERT_TRUE(beat);
  EXPECT_TRUE(beat->lease_lost);
  auto stale = RunAsync(io_, store_->Lease("w1", 10, 5s, *w1));
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.error().category, ErrorCategory::kLeaseLost);
  // w2 takes the handed-back jobs over; their tokens are new.
  auto taken = LeaseAll("w2", *w2, 100);
  EXPECT_EQ(taken.size(), 15u);
  for (const auto& j : taken) {
    for (const auto& old : dead) {
      if (old.id == j.id) {
        EXPECT_NE(old.token, j.token);
      }
    }
  }
}

TEST_F(WorkerLeaseTest, RegisteringAgainHandsBackWhatTheEarlierIncarnationHeld) {
  auto first = RunAsync(io_, store_->RegisterWorker("w1", 5s));
  ASSERT_TRUE(first);
  SubmitAndDispatch(3, "r");
  ASSERT_EQ(LeaseAll("w1", *first, 3).size(), 3u);
  // The process restarts under the same id before its lease lapses.
  auto second = RunAsync(io_, store_->RegisterWorker("w1", 5s));
  ASSERT_TRUE(second);
  EXPECT_GT(*second, *first);
  auto again = LeaseAll("w1", *second, 10);
  EXPECT_EQ(again.size(), 3u);
}

TEST_F(WorkerLeaseTest, CancelIsPushedToTheWorkerHoldingTheJob) {
  auto [epoch, held] = W1Holding(2, "c");
  // The worker's cancel listener blocks on its own connection.
  auto listener = NewConnection();
  auto waiting =
      asio::co_spawn(io_, store_->WaitForCancel(*listener, "w1", 5000ms), asio::use_future);
  io_.restart();
  for (int i = 0; i < 10; ++i) io_.run_one_for(10ms);  // the BLPOP is on its way
  const auto sent = std::chrono::steady_clock::now();
  auto cancelled = RunAsync(io_, store_->Cancel(held[0].id));
  ASSERT_TRUE(cancelled) << cancelled.error().Describe();
  EXPECT_EQ(cancelled->previous_state, JobState::kRunning);
  while (waiting.wait_for(0s) != std::future_status::ready) io_.run_one_for(5ms);
  const auto took = std::chrono::steady_clock::now() - sent;
  auto got = waiting.get();
  ASSERT_TRUE(got) << got.error().Describe();
  EXPECT_EQ(*got, std::vector<std::string>{held[0].id});
  EXPECT_LT(took, 1s);
  // Without a listener, the next heartbeat hands it over, with the first until the worker
  // acknowledges that one.
  ASSERT_TRUE(RunAsync(io_, store_->Cancel(held[1].id)));
  auto beat = RunAsync(io_, store_->Heartbeat("w1", epoch, 15s, {held[0].id}));
  ASSERT_TRUE(beat);
  EXPECT_EQ(beat->cancelled, std::vector<std::string>{held[1].id});
  // The cancelled job's token is refused from then on.
  auto phase =
      RunAsync(io_, store_->SetPhase(held[1].id, held[1].token, JobPhase::kTransferring, "", ""));
  ASSERT_FALSE(phase);
  EXPECT_EQ(phase.error().category, ErrorCategory::kCancelled);
}

// A cancel notice stays on the worker's list until a heartbeat acknowledges it: a heartbeat
// whose answer is lost, or a listener's blocking pop whose client gave up while Redis still
// holds it (a command timeout during a failover; it takes the next element pushed, its answer
// dropped), loses no cancellation. Before, both popped the id itself, and the job ran on until
// its next write was refused.
TEST_F(WorkerLeaseTest, ACancelNoticeStaysUntilTheWorkerAcknowledgesIt) {
  auto [epoch, held] = W1Holding(2, "k");
  auto stale = NewConnection();
  ASSERT_FALSE(RunAsync(io_, stale->Command({"BLPOP", "t:{q}:wcnudge:w1", "30"}, 100ms)));
  ASSERT_NE(server_->Run({"CLIENT", "LIST"}).str.find("cmd=blpop"), std::string::npos);
  ASSERT_TRUE(RunAsync(io_, store_->Cancel(held[0].id)));
  // The stale pop took the token; the notice is still there for the heartbeat, every time
  // until acknowledged.
  for (int i = 0; i < 2; ++i) {
    auto beat = RunAsync(io_, store_->Heartbeat("w1", epoch, 15s));
    ASSERT_TRUE(beat);
    EXPECT_EQ(beat->cancelled, std::vector<std::string>{held[0].id}) << i;
  }
  // A listener sees it too (it reads the list once woken).
  ASSERT_TRUE(RunAsync(io_, store_->Cancel(held[1].id)));
  auto listener = NewConnection();
  auto seen = RunAsync(io_, store_->WaitForCancel(*listener, "w1", 1000ms));
  ASSERT_TRUE(seen) << seen.error().Describe();
  EXPECT_EQ(*seen, (std::vector<std::string>{held[0].id, held[1].id}));
  auto beat = RunAsync(io_, store_->Heartbeat("w1", epoch, 15s, {held[0].id, held[1].id}));
  ASSERT_TRUE(beat);
  EXPECT_TRUE(beat->cancelled.empty());
  EXPECT_EQ(server_->Run({"EXISTS", "t:{q}:wcancel:w1"}).integer, 0);
}

// A worker says in each heartbeat how many jobs it runs. Redis holding more under it (a lease
// answer lost, or a failover to a replica that missed the worker's later writes, so jobs it
// finished are RUNNING again) is answered "more": the worker's next lease call names what it
// runs and the rest goes back to the queue. Leases dispatch pushed and the worker has not
// fetched yet are not counted.
TEST_F(WorkerLeaseTest, AHeartbeatSaysWhenRedisHoldsMoreJobsThanTheWorkerRuns) {
  auto [epoch, held] = W1Holding(3, "m");
  auto beat = [&](int64_t running) {
    auto b = RunAsync(io_, store_->Heartbeat("w1", epoch, 15s, {}, running));
    if (!b) throw std::runtime_error(b.error().Describe());
    return b->holds_more;
  };
  EXPECT_FALSE(beat(3));
  EXPECT_FALSE(beat(-1));  // not compared
  EXPECT_TRUE(beat(2));    // the worker runs two: Redis went back in time for the third
  const std::vector<std::string> running{held[0].id, held[1].id};
  auto back = RunAsync(io_, store_->Lease("w1", 0, 15s, epoch, &running));
  ASSERT_TRUE(back) << back.error().Describe();
  EXPECT_EQ(Get(held[2].id).state, JobState::kDispatched);
  EXPECT_FALSE(beat(2));
  // Waiting for more, it is pushed two; until its next lease call fetches them it runs two.
  auto waits = RunAsync(io_, store_->Lease("w1", 4, 15s, epoch));
  ASSERT_TRUE(waits);
  ASSERT_EQ(waits->size(), 1u);  // the one handed back, from `ready`
  SubmitAndDispatch(2, "p");
  EXPECT_EQ(server_->Run({"LLEN", "t:{q}:wgot:w1"}).integer, 2);
  EXPECT_FALSE(beat(3));
}

TEST_F(WorkerLeaseTest, RacingSubmitChunksAndLeasesKeepKeysCountersAndTokensWhole) {
  // Four schedulers submit overlapping chunks (the same idempotency keys) at once.
  std::vector<std::unique_ptr<JobStore>> stores;
  for (int i = 0; i < 4; ++i) stores.push_back(NewStore());
  std::vector<std::future<Result<std::vector<SubmitOutcome>>>> futures;
  for (int s = 0; s < 4; ++s) {
    std::vector<NewJob> chunk;
    for (int i = 0; i < 100; ++i) {
      chunk.push_back(Job("s" + std::to_string(s) + "-" + std::to_string(i),
                          "key-" + std::to_string((i + 25 * s) % 150)));
    }
    futures.push_back(
        asio::co_spawn(io_, stores[s]->SubmitMany(std::move(chunk), 3600), asio::use_future));
  }
  std::map<std::string, std::set<std::string>> ids_by_key;
  std::set<std::string> new_ids;
  io_.restart();
  for (int s = 0; s < 4; ++s) {
    while (futures[s].wait_for(0s) != std::future_status::ready) io_.run_one_for(10ms);
    auto r = futures[s].get();
    ASSERT_TRUE(r) << r.error().Describe();
    ASSERT_EQ(r->size(), 100u);
    for (int i = 0; i < 100; ++i) {
      ids_by_key["key-" + std::to_string((i + 25 * s) % 150)].insert((*r)[i].job_id);
      if (!(*r)[i].duplicate) new_ids.insert((*r)[i].job_id);
    }
  }
  ASSERT_EQ(ids_by_key.size(), 150u);
  for (const auto& [key, ids] : ids_by_key) EXPECT_EQ(ids.size(), 1u) << key;
  EXPECT_EQ(new_ids.size(), 150u);
  auto batch = RunAsync(io_, store_->GetBatch("b1"));
  ASSERT_TRUE(batch);
  EXPECT_EQ(batch->total, 150);
  EXPECT_EQ(batch->Count(JobState::kPending), 150);

  // Dispatch all, then four workers lease at once: no job twice, every token distinct.
  auto dispatched = RunAsync(io_, store_->Dispatch(1000, 16, 1));
  ASSERT_TRUE(dispatched);
  ASSERT_EQ(dispatched->dispatched, 150);
  std::vector<std::future<Result<std::vector<LeasedJob>>>> leases;
  for (int w = 0; w < 4; ++w) {
    leases.push_back(
        asio::co_spawn(io_, stores[w]->Lease("w" + std::to_string(w), 64, 15s), asio::use_future));
  }
  std::set<std::string> leased_ids, tokens;
  size_t total = 0;
  io_.restart();
  for (auto& f : leases) {
    while (f.wait_for(0s) != std::future_status::ready) io_.run_one_for(10ms);
    auto r = f.get();
    ASSERT_TRUE(r) << r.error().Describe();
    for (const auto& j : *r) {
      leased_ids.insert(j.id);
      tokens.insert(j.token);
      ++total;
    }
  }
  EXPECT_EQ(total, 150u);
  EXPECT_EQ(leased_ids.size(), total);
  EXPECT_EQ(tokens.size(), total);
  batch = RunAsync(io_, store_->GetBatch("b1"));
  ASSERT_TRUE(batch);
  EXPECT_EQ(batch->Count(JobState::kRunning), 150);
  EXPECT_EQ(batch->Count(JobState::kPending), 0);
  EXPECT_EQ(batch->Count(JobState::kDispatched), 0);
}

// A lease call whose answer is lost (Redis ran it, the reply died with the connection) leaves
// jobs held under a live worker that no one runs, and the worker's heartbeats keep them from the
// reaper. The worker's next lease names what it does hold; the rest goes back and is leased
// again with new tokens, and the lost tokens are fenced out.
TEST_F(WorkerLeaseTest, JobsOfALostLeaseAnswerAreHandedBackByTheNextLease) {
  auto epoch = RunAsync(io_, store_->RegisterWorker("w1", 5s));
  ASSERT_TRUE(epoch);
  SubmitAndDispatch(3, "lost");
  auto kept = LeaseAll("w1", *epoch, 1);  // the answer the worker got
  ASSERT_EQ(kept.size(), 1u);
  auto lost = LeaseAll("w1", *epoch, 2);  // the answer it never got
  ASSERT_EQ(lost.size(), 2u);

  std::vector<std::string> holding{kept[0].id};
  auto again = RunAsync(io_, store_->Lease("w1", 10, 5s, *epoch, &holding));
  ASSERT_TRUE(again) << again.error().Describe();
  ASSERT_EQ(again->size(), 2u);
  std::set<std::string> ids{(*again)[0].id, (*again)[1].id};
  EXPECT_EQ(ids, (std::set<std::string>{lost[0].id, lost[1].id}));
  for (const auto& j : *again) {
    auto record = RunAsync(io_, store_->Get(j.id));
    ASSERT_TRUE(record);
    EXPECT_EQ(record->state, JobState::kRunning);
    bool handed_back = false;
    for (const auto& t : record->history) {
      handed_back = handed_back || t.detail == "not run by its worker; handed back";
    }
    EXPECT_TRUE(handed_back) << j.id;
  }
  // The lost answer's tokens no longer write; the job the worker kept was left alone.
  std::vector<CompleteRequest> done{
      {.job_id = lost[0].id, .token = lost[0].token, .output_key = "o"},
      {.job_id = kept[0].id, .token = kept[0].token, .output_key = "o"}};
  auto r = RunAsync(io_, store_->CompleteMany(done));
  ASSERT_TRUE(r) << r.error().Describe();
  ASSERT_EQ(r->size(), 2u);
  ASSERT_FALSE((*r)[0]);
  EXPECT_EQ((*r)[0].error().category, ErrorCategory::kLeaseLost);
  EXPECT_TRUE((*r)[1]);
}

TEST_F(WorkerLeaseTest, CompleteManyRefusesOnlyTheStaleOnes) {
  SubmitAndDispatch(3, "k");
  auto held = LeaseAll("w1", 0, 3);
  ASSERT_EQ(held.size(), 3u);
  std::vector<CompleteRequest> done;
  for (const auto& j : held) done.push_back({.job_id = j.id, .token = j.token, .output_key = "o"});
  done[1].token = "stale";
  auto r = RunAsync(io_, store_->CompleteMany(done));
  ASSERT_TRUE(r) << r.error().Describe();
  ASSERT_EQ(r->size(), 3u);
  EXPECT_TRUE((*r)[0]);
  ASSERT_FALSE((*r)[1]);
  EXPECT_EQ((*r)[1].error().category, ErrorCategory::kLeaseLost);
  EXPECT_TRUE((*r)[2]);
  auto batch = RunAsync(io_, store_->GetBatch("b1"));
  ASSERT_TRUE(batch);
  EXPECT_EQ(batch->Count(JobState::kSucceeded), 2);
  EXPECT_EQ(batch->Count(JobState::kRunning), 1);
  // One history per job, whole: submitted, dispatched, leased, stored.
  auto record = RunAsync(io_, store_->Get(held[0].id));
  ASSERT_TRUE(record);
  ASSERT_EQ(record->history.size(), 4u);
  EXPECT_EQ(record->history[0].state, JobState::kPending);
  EXPECT_EQ(record->history[3].state, JobState::kSucceeded);
  EXPECT_EQ(record->history[3].seq, 4);
}

TEST_F(WorkerLeaseTest, PermitsGatheredInOneCallStillHoldTheCreateRate) {
  QueueSettings s;
  s.models.push_back({.id = "m1", .accounts = {"slow"}});
  s.accounts.push_back(
      {.id = "slow", .provider = "p", .requests_per_minute = 3, .max_concurrent = 100});
  ASSERT_TRUE(RunAsync(io_, store_->SyncSettings(s)));
  // The dispatch bucket lets one through every 20 s.
  std::vector<NewJob> jobs;
  for (int i = 0; i < 5; ++i) jobs.push_back(Job("p" + std::to_string(i)));
  ASSERT_TRUE(RunAsync(io_, store_->SubmitMany(jobs, 3600)));
  std::vector<LeasedJob> held;
  for (int round = 0; round < 10 && held.size() < 5; ++round) {
    ASSERT_TRUE(RunAsync(io_, store_->Dispatch(10, 16, 1)));
    for (auto& j : LeaseAll("w1", 0, 10)) held.push_back(std::move(j));
    clock_->Advance(20s);
  }
  ASSERT_EQ(held.size(), 5u);
  std::vector<PermitRequest> permits;
  for (const auto& j : held) permits.push_back({j.id, j.token, clock_->NowMs(), j.attempt});
  permits.push_back({held[0].id, "stale", clock_->NowMs(), 1});
  auto r = RunAsync(io_, store_->TakeCreatePermitMany(0ms, permits));
  ASSERT_TRUE(r) << r.error().Describe();
  ASSERT_EQ(r->size(), 6u);
  int granted = 0;
  for (size_t i = 0; i < 5; ++i) {
    ASSERT_TRUE((*r)[i]) << (*r)[i].error().Describe();
    if ((*r)[i]->count() == 0) {
      ++granted;
    } else {
      EXPECT_GT((*r)[i]->count(), 59'000);  // the window is full of this call's own creates
    }
  }
  EXPECT_EQ(granted, 3);
  ASSERT_FALSE((*r)[5]);
  EXPECT_EQ((*r)[5].error().category, ErrorCategory::kLeaseLost);
}

TEST_F(WorkerLeaseTest, RedisWrittenByTheVersionOneLayoutIsRefusedWithWhatToDo) {
  server_->Run({"HSET", "t:{q}:meta", "schema", "1"});
  server_->Run({"HSET", "t:{q}:job:old", "state", "RUNNING", "seq", "3"});
  auto checked = RunAsync(io_, store_->CheckSchema());
  ASSERT_FALSE(checked);
  EXPECT_EQ(checked.error().category, ErrorCategory::kFailedPrecondition);
  EXPECT_NE(checked.error().message.find("schema version 1"), std::string::npos)
      << checked.error().message;
  EXPECT_NE(checked.error().message.find("speaks 4"), std::string::npos);
  EXPECT_NE(checked.error().message.find("redis.prefix"), std::string::npos);
  QueueSettings s;
  auto synced = RunAsync(io_, store_->SyncSettings(s));
  ASSERT_FALSE(synced);
  EXPECT_EQ(synced.error().message, checked.error().message);
  // Nothing was written over the old layout.
  EXPECT_EQ(server_->Run({"HGET", "t:{q}:meta", "schema"}).str, "1");
}

// Layout 2 (the release before the held tables) kept a worker's held jobs in a set; this build
// reads `wjobs:<worker>` as a hash, so it must refuse that Redis rather than fail on WRONGTYPE.
TEST_F(WorkerLeaseTest, RedisWrittenByTheVersionTwoLayoutIsRefusedWithWhatToDo) {
  server_->Run({"HSET", "t:{q}:meta", "schema", "2"});
  server_->Run({"SADD", "t:{q}:wjobs:w1", "old"});
  auto checked = RunAsync(io_, store_->CheckSchema());
  ASSERT_FALSE(checked);
  EXPECT_EQ(checked.error().category, ErrorCategory::kFailedPrecondition);
  EXPECT_NE(checked.error().message.find("schema version 2"), std::string::npos)
      << checked.error().message;
  EXPECT_NE(checked.error().message.find("held jobs in a set"), std::string::npos);
  auto leased = RunAsync(io_, store_->SyncSettings(QueueSettings{}));
  ASSERT_FALSE(leased);
  EXPECT_EQ(server_->Run({"TYPE", "t:{q}:wjobs:w1"}).str, "set");
}

// Version 3 (the release before held entries kept a held job's phases) is read as it is; a
// scheduler of this build marks it 4, which a build speaking 3 refuses at start. A version
// above this build's was written by a newer build: refused.
TEST_F(WorkerLeaseTest, RedisOfVersionThreeIsReadAndMarkedFourAndANewerOneIsRefused) {
  server_->Run({"HSET", "t:{q}:meta", "schema", "3"});
  EXPECT_TRUE(RunAsync(io_, store_->CheckSchema()));
  auto synced = RunAsync(io_, store_->SyncSettings(QueueSettings{}));
  ASSERT_TRUE(synced) << synced.error().Describe();
  EXPECT_EQ(server_->Run({"HGET", "t:{q}:meta", "schema"}).str, "4");
  EXPECT_TRUE(RunAsync(io_, store_->CheckSchema()));

  server_->Run({"HSET", "t:{q}:meta", "schema", "5"});
  auto checked = RunAsync(io_, store_->CheckSchema());
  ASSERT_FALSE(checked);
  EXPECT_EQ(checked.error().category, ErrorCategory::kFailedPrecondition);
  EXPECT_NE(checked.error().message.find("schema version 5"), std::string::npos)
      << checked.error().message;
  EXPECT_NE(checked.error().message.find("newer build"), std::string::npos);
  auto refused = RunAsync(io_, store_->SyncSettings(QueueSettings{}));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().message, checked.error().message);
  EXPECT_EQ(server_->Run({"HGET", "t:{q}:meta", "schema"}).str, "5");
}

// Dispatch used to hand lease a JSON copy of each job in `rdata`; lease now reads the record.
// An entry an earlier dispatch left is not what the lease hands over, and goes with the lease.
TEST_F(WorkerLeaseTest, ALeaseReadsTheRecordAndDropsTheHandOffAnEarlierDispatchLeft) {
  auto w1 = RunAsync(io_, store_->RegisterWorker("w1", 5s));
  ASSERT_TRUE(w1);
  SubmitAndDispatch(2, "r");
  server_->Run({"HSET", "t:{q}:rdata", "r0", "[\"stale\"]", "r1", "[\"stale\"]"});
  auto leased = LeaseAll("w1", *w1, 2);
  ASSERT_EQ(leased.size(), 2u);
  for (const auto& j : leased) {
    EXPECT_EQ(j.spec_bytes, "spec") << j.id;
    EXPECT_EQ(j.account, "a1") << j.id;
    EXPECT_EQ(j.attempt, 1) << j.id;
  }
  EXPECT_EQ(server_->Run({"EXISTS", "t:{q}:rdata"}).integer, 0);
}

// A job cancelled while DISPATCHED keeps its entry on `ready`, and RetryJob puts it there again
// once dispatched anew: one lease call popping both used to lease it twice (two tokens, the
// tenant's counters moved twice). It is leased once; a copy a later call pops finds it RUNNING
// and is dropped.
TEST_F(WorkerLeaseTest, AJobOnReadyTwiceAfterACancelAndARetryIsLeasedOnce) {
  auto w1 = RunAsync(io_, store_->RegisterWorker("w1", 15s));
  ASSERT_TRUE(w1);
  SubmitAndDispatch(1, "c");
  ASSERT_TRUE(RunAsync(io_, store_->Cancel("c0")));
  ASSERT_TRUE(RunAsync(io_, store_->Retry("c0")));
  auto dispatched = RunAsync(io_, store_->Dispatch(10, 16, 1));
  ASSERT_TRUE(dispatched && dispatched->dispatched == 1);
  ASSERT_EQ(server_->Run({"LRANGE", "t:{q}:ready", "0", "-1"}).elements.size(), 2u);
  auto leased = LeaseAll("w1", *w1, 10);
  ASSERT_EQ(leased.size(), 1u);
  EXPECT_EQ(leased[0].id, "c0");
  EXPECT_EQ(Get("c0").state, JobState::kRunning);
  EXPECT_TRUE(LeaseAll("w1", *w1, 10).empty());
  ASSERT_TRUE(RunAsync(io_, store_->Complete({.job_id = "c0", .token = leased[0].token})));
  EXPECT_EQ(Get("c0").state, JobState::kSucceeded);
}

// The same for a group's step (the join), queued again by RetryJob of a group cancelled while
// it waited on `ready`; and a stale copy popped while the step waits out the backoff of a retry
// (fail.lua keep_task, in `delayed`) does not lease it before that ends.
TEST_F(WorkerLeaseTest, AGroupStepOnReadyTwiceIsLeasedOnceAndNotBeforeItsBackoff) {
  auto w1 = RunAsync(io_, store_->RegisterWorker("w1", 15s));
  ASSERT_TRUE(w1);
  ASSERT_TRUE(RunAsync(io_, store_->SubmitMany(Storyboard("g", 2), 3600)));
  auto dispatched = RunAsync(io_, store_->Dispatch(10, 16, 1));
  ASSERT_TRUE(dispatched && dispatched->dispatched == 2);
  for (const auto& shot : LeaseAll("w1", *w1, 10)) {
    ASSERT_TRUE(RunAsync(io_, store_->Complete({.job_id = shot.id, .token = shot.token})));
  }
  ASSERT_EQ(Get("g").state, JobState::kDispatched);  // its join waits on `ready`
  ASSERT_TRUE(RunAsync(io_, store_->Cancel("g")));
  ASSERT_TRUE(RunAsync(io_, store_->Retry("g")));
  ASSERT_EQ(server_->Run({"LRANGE", "t:{q}:ready", "0", "-1"}).elements.size(), 2u);
  auto leased = LeaseAll("w1", *w1, 10);
  ASSERT_EQ(leased.size(), 1u);
  EXPECT_EQ(leased[0].id, "g");

  // Again on `ready` twice (cancelled running, retried, cancelled waiting, retried); this time
  // a call takes one copy, and the step fails in passing.
  for (int round = 0; round < 2; ++round) {
    ASSERT_TRUE(RunAsync(io_, store_->Cancel("g")));
    ASSERT_TRUE(RunAsync(io_, store_->Retry("g")));
  }
  ASSERT_EQ(server_->Run({"LRANGE", "t:{q}:ready", "0", "-1"}).elements.size(), 2u);
  leased = LeaseAll("w1", *w1, 1);
  ASSERT_EQ(leased.size(), 1u);
  auto failed = RunAsync(io_, store_->Fail({.job_id = "g",
                                            .token = leased[0].token,
                                            .category = ErrorCategory::kRetryable,
                                            .message = "store: no answer",
                                            .retry = true,
                                            .retry_at_ms = clock_->NowMs() + 2'000,
                                            .keep_task = true}));
  ASSERT_TRUE(failed && *failed == FailOutcome::kRetrying);
  ASSERT_EQ(Get("g").state, JobState::kDispatched);
  EXPECT_TRUE(LeaseAll("w1", *w1, 10).empty()) << "leased before its backoff ended";
  EXPECT_EQ(Get("g").state, JobState::kDispatched);
  clock_->Advance(3s);  // within the worker's lease (5 s)
  ASSERT_TRUE(RunAsync(io_, store_->Reap(100)));
  leased = LeaseAll("w1", *w1, 10);
  ASSERT_EQ(leased.size(), 1u);
  EXPECT_EQ(leased[0].id, "g");
}

}  // namespace
}  // namespace reelq::queue
