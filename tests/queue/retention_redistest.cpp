// Issue 11 retention against a real redis-server: finished jobs past queue.retention_hours leave
// Redis with every key and index entry that names them (history is inside the job hash), the
// batch record goes with its last job, younger and unfinished jobs stay, idempotency keys keep
// their own window, and GetJob then says the job expired.
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "reelq/queue/auth_store.h"
#include "store_fixture.h"

namespace reelq::queue {
namespace {

using namespace std::chrono_literals;
using testing::RunAsync;

class RetentionTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    Sync(OneModel());
  }

  void Submit(const std::vector<std::string>& ids, const std::string& batch,
              const std::string& idempotency_key = "") {
    std::vector<NewJob> jobs;
    for (const auto& id : ids) {
      jobs.push_back(NewJob{.id = id,
                            .tenant = "studio",
                            .batch = batch,
                            .idempotency_key = idempotency_key.empty() ? "" : idempotency_key + id,
                            .spec_bytes = "spec",
                            .candidate_models = {"m1"}});
    }
    auto r = RunAsync(io_, store_->SubmitMany(jobs, 30 * 24 * 3600));
    ASSERT_TRUE(r) << r.error().Describe();
  }

  void Succeed(const LeasedJob& job) {
    auto r =
        RunAsync(io_, store_->Complete({.job_id = job.id, .token = job.token, .output_key = "k"}));
    ASSERT_TRUE(r) << r.error().Describe();
  }

  // Storyboard "g" of shots s0 and s1 in batch "sb", past its retention: one sweep takes the
  // three jobs and the batch, and leaves no key naming any of them.
  void ExpectGroupGone() {
    EXPECT_EQ(Sweep(90min), 3);
    for (const std::string id : {"g", "s0", "s1"}) {
      EXPECT_TRUE(KeysMentioning(id).empty())
          << id << " " << ::testing::PrintToString(KeysMentioning(id));
    }
    EXPECT_FALSE(Exists("t:{q}:batch:sb"));
  }

  int Sweep(std::chrono::milliseconds retention, int chunk = 2) {
    int removed = 0;
    for (int call = 0; call < 100; ++call) {
      // Chunks of two by default: the sweep must carry on where a full chunk stopped.
      auto r = RunAsync(io_, store_->ExpireFinished(retention, chunk));
      if (!r) throw std::runtime_error(r.error().Describe());
      removed += r->jobs_removed;
      if (!r->more) return removed;
    }
    throw std::runtime_error("retention sweep never finished");
  }

  // Every job `filter` lists, page after page; `after_first_page` runs between the first two.
  std::vector<std::string> ListAll(ListFilter filter,
                                   const std::function<void()>& after_first_page) {
    std::vector<std::string> listed;
    for (int pages = 0;; ++pages) {
      if (pages >= 100) throw std::runtime_error("the listing never ended");
      auto page = RunAsync(io_, store_->List(filter));
      if (!page) throw std::runtime_error(page.error().Describe());
      for (const auto& j : page->jobs) listed.push_back(j.id);
      if (page->next_page_token.empty()) return listed;
      filter.page_token = page->next_page_token;
      if (pages == 0) after_first_page();
    }
  }

  // Every key that names `id`, or holds it as a member, anywhere in the keyspace.
  std::vector<std::string> KeysMentioning(const std::string& id) {
    std::vector<std::string> found;
    std::string cursor = "0";
    do {
      auto page = server_->Run({"SCAN", cursor, "COUNT", "1000"});
      cursor = page.elements.at(0).str;
      for (const auto& k : page.elements.at(1).elements) {
        const std::string key = k.str;
        if (key.find(id) != std::string::npos) {
          found.push_back(key);
          continue;
        }
        const std::string type = server_->Run({"TYPE", key}).str;
        bool holds = false;
        if (type == "zset") holds = !server_->Run({"ZSCORE", key, id}).IsNil();
        if (type == "set") holds = server_->Run({"SISMEMBER", key, id}).integer == 1;
        if (type == "list") holds = !server_->Run({"LPOS", key, id}).IsNil();
        if (type == "hash") {
          // As a field (an index by id) or as a value (a claim naming the job).
          holds = !server_->Run({"HGET", key, id}).IsNil();
          for (const auto& v : server_->Run({"HVALS", key}).elements) holds = holds || v.str == id;
        }
        if (type == "string") holds = server_->Run({"GET", key}).str == id;
        if (holds) found.push_back(key + " (member)");
      }
    } while (cursor != "0");
    return found;
  }

  bool Exists(const std::string& key) { return server_->Run({"EXISTS", key}).integer == 1; }
};

TEST_F(RetentionTest, FinishedJobsPastRetentionVanishWithEveryKeyYoungerAndUnfinishedStay) {
  // At T0: batch "old" ends whole (two succeed, one is cancelled); in batch "mixed" one job
  // fails for good and one keeps running; one job waits unfinished.
  Submit({"old1", "old2", "old3"}, "old", "key-");
  Submit({"mix-failed", "mix-running"}, "mixed");
  auto leased = Run();
  ASSERT_EQ(leased.size(), 5u);
  Succeed(leased["old1"]);
  Succeed(leased["old2"]);
  ASSERT_TRUE(RunAsync(io_, store_->Cancel("old3")));
  auto failed = RunAsync(io_, store_->Fail({.job_id = "mix-failed",
                                            .token = leased["mix-failed"].token,
                                            .category = ErrorCategory::kInvalidRequest,
                                            .message = "refused by the provider"}));
  ASSERT_TRUE(failed) << failed.error().Describe();
  ASSERT_EQ(*failed, FailOutcome::kFailed);
  Submit({"waiting"}, "");

  // Two hours later a young batch finishes.
  clock_->Advance(2h);
  Submit({"young1"}, "young");
  auto young = Run();
  ASSERT_EQ(young.size(), 2u);  // young1 and "waiting"
  Succeed(young["young1"]);

  // Nothing is due under a three-hour retention yet.
  EXPECT_EQ(Sweep(3h), 0);
  // Under 90 minutes the four jobs that ended at T0 go, in chunks of two.
  EXPECT_EQ(Sweep(90min), 4);

  for (const std::string id : {"old1", "old2", "old3", "mix-failed"}) {
    auto mentions = KeysMentioning(id);
    // The idempotency keys keep their own window (30 days here).
    std::erase_if(mentions,
                  [](const std::string& k) { return k.find(":idem:") != std::string::npos; });
    EXPECT_TRUE(mentions.empty()) << id << " still in " << ::testing::PrintToString(mentions);
    auto got = RunAsync(io_, store_->Get(id));
    ASSERT_FALSE(got) << id;
    EXPECT_EQ(got.error().category, ErrorCategory::kNotFound);
    EXPECT_NE(got.error().message.find("retention"), std::string::npos) << got.error().message;
  }
  EXPECT_TRUE(Exists("t:{q}:idem:studio:key-old1"));
  // The batch whose last job went is gone; the one with a running job keeps its record.
  EXPECT_FALSE(Exists("t:{q}:batch:old"));
  EXPECT_FALSE(Exists("t:{q}:batch:old:jobs"));
  auto old_batch = RunAsync(io_, store_->GetBatch("old"));
  EXPECT_FALSE(old_batch);
  auto mixed = RunAsync(io_, store_->GetBatch("mixed"));
  ASSERT_TRUE(mixed) << mixed.error().Describe();
  for (const std::string id : {"mix-running", "waiting", "young1"}) {
    auto got = RunAsync(io_, store_->Get(id));
    ASSERT_TRUE(got) << id << ": " << got.error().Describe();
    EXPECT_FALSE(got->history.empty()) << id;
  }
  // The running job finishes now; it stays until its own retention has passed.
  Succeed(leased["mix-running"]);
  clock_->Advance(80min);
  EXPECT_EQ(Sweep(90min), 0);
  clock_->Advance(11min);
  EXPECT_EQ(Sweep(90min), 2);  // young1 (ended 91 min ago) and mix-running
  EXPECT_FALSE(Exists("t:{q}:batch:young"));
  EXPECT_FALSE(Exists("t:{q}:batch:mixed"));
  EXPECT_TRUE(KeysMentioning("young1").empty());
  EXPECT_TRUE(KeysMentioning("mix-running").empty());
  // The unfinished job is untouched by any retention.
  EXPECT_TRUE(RunAsync(io_, store_->Get("waiting")));
  EXPECT_EQ(Sweep(0ms), 0);
}

TEST_F(RetentionTest, ABatchsOwnerClaimAndAnIdleTenantLeaveWithTheLastJob) {
  // The batch id's owner, as auth_claim_batch.lua records it when the tenant first submits.
  server_->Run({"SET", "t:{q}:auth:batch:b1", "studio"});
  Submit({"j1", "j2"}, "b1");
  for (auto& [id, job] : Run()) Succeed(job);
  ASSERT_EQ(server_->Run({"SISMEMBER", "t:{q}:tenants", "studio"}).integer, 1);
  clock_->Advance(2h);
  Submit({"j3"}, "");  // younger: the tenant keeps a job
  EXPECT_EQ(Sweep(1h), 2);
  EXPECT_FALSE(Exists("t:{q}:batch:b1"));
  // The claim lapses ten minutes later (Redis's own clock), not at once: a submit may be on its
  // way (ASubmitRacingTheRemovalOfItsBatchKeepsTheBatchsOwner).
  EXPECT_EQ(server_->Run({"GET", "t:{q}:auth:batch:b1"}).str, "studio");
  const int64_t ttl = server_->Run({"PTTL", "t:{q}:auth:batch:b1"}).integer;
  EXPECT_GT(ttl, 590'000);
  EXPECT_LE(ttl, 600'000);
  EXPECT_EQ(server_->Run({"SISMEMBER", "t:{q}:tenants", "studio"}).integer, 1);

  for (auto& [id, job] : Run()) Succeed(job);
  clock_->Advance(2h);
  EXPECT_EQ(Sweep(1h), 1);
  EXPECT_EQ(server_->Run({"SISMEMBER", "t:{q}:tenants", "studio"}).integer, 0);
  EXPECT_FALSE(Exists("t:{q}:tenant:studio:calls"));
  // Its next submit brings it back, and the unfiltered listing finds the job.
  Submit({"j4"}, "");
  EXPECT_EQ(server_->Run({"SISMEMBER", "t:{q}:tenants", "studio"}).integer, 1);
  auto page = RunAsync(io_, store_->List(ListFilter{.page_size = 10}));
  ASSERT_TRUE(page) << page.error().Describe();
  ASSERT_EQ(page->jobs.size(), 1u);
  EXPECT_EQ(page->jobs[0].id, "j4");
}

// A batch id nobody owns whose batch already holds jobs (stored while authentication was off,
// when nothing is claimed) is not claimed: the claimant's batch watch and batch actions would
// reach jobs that are not its own. A fresh id is claimed, an owner re-using its id keeps it, and
// once the batch has left Redis the id is free again.
TEST_F(RetentionTest, AnUnownedBatchThatHoldsJobsIsNotClaimed) {
  AuthStore auth(NewConnection(), "t");
  Submit({"j1"}, "open-batch");
  auto refused = RunAsync(io_, auth.ClaimBatch("open-batch", "other", 3'600'000));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().category, ErrorCategory::kInvalidRequest);
  EXPECT_NE(refused.error().message.find("'open-batch' already holds jobs"), std::string::npos)
      << refused.error().message;
  EXPECT_NE(refused.error().message.find("choose another batch id"), std::string::npos)
      << refused.error().message;
  EXPECT_FALSE(Exists("t:{q}:auth:batch:open-batch"));

  auto fresh = RunAsync(io_, auth.ClaimBatch("fresh", "other", 3'600'000));
  ASSERT_TRUE(fresh) << fresh.error().Describe();
  EXPECT_EQ(*fresh, "other");
  auto own = RunAsync(io_, auth.ClaimBatch("own", "studio", 3'600'000));
  ASSERT_TRUE(own) << own.error().Describe();
  Submit({"j2"}, "own");
  auto again = RunAsync(io_, auth.ClaimBatch("own", "studio", 3'600'000));
  ASSERT_TRUE(again) << again.error().Describe();
  EXPECT_EQ(*again, "studio");

  for (auto& [id, job] : Run()) Succeed(job);
  clock_->Advance(2h);
  EXPECT_EQ(Sweep(1h), 2);
  auto freed = RunAsync(io_, auth.ClaimBatch("open-batch", "other", 3'600'000));
  ASSERT_TRUE(freed) << freed.error().Describe();
  EXPECT_EQ(*freed, "other");
}

// A submit to a batch whose last job the sweep removes between the submit's claim check and its
// jobs being stored: the new jobs keep their owner, whose claim lasts again (not deleted with
// the old batch, which would leave them in a batch another tenant could claim).
TEST_F(RetentionTest, ASubmitRacingTheRemovalOfItsBatchKeepsTheBatchsOwner) {
  server_->Run({"SET", "t:{q}:auth:batch:b1", "studio"});
  Submit({"j1"}, "b1");
  for (auto& [id, job] : Run()) Succeed(job);
  clock_->Advance(2h);
  // The scheduler has confirmed the claim (the key names the tenant) and is storing the
  // submission's input images when the sweep runs.
  EXPECT_EQ(Sweep(1h), 1);
  EXPECT_FALSE(Exists("t:{q}:batch:b1"));
  Submit({"j2"}, "b1");
  EXPECT_EQ(server_->Run({"GET", "t:{q}:auth:batch:b1"}).str, "studio");
  EXPECT_EQ(server_->Run({"PTTL", "t:{q}:auth:batch:b1"}).integer, -1) << "the claim still expires";
}

TEST_F(RetentionTest, TheClaimOnAnUpstreamTaskLeavesWithItsJob) {
  // Each job records its upstream task (phase.lua claims it in owner:<account>:<bucket>, a hash
  // that lives two to four days); one ends old, one young. Under a one-hour retention the old
  // job's claim must go with it, not outlive it by days (bench/scale --retention saw one claim
  // per job pile up).
  Submit({"old", "young"}, "b");
  auto leased = Run();
  ASSERT_EQ(leased.size(), 2u);
  for (const auto& [id, job] : leased) {
    auto r =
        RunAsync(io_, store_->SetPhase(id, job.token, JobPhase::kGenerating, "task-" + id, ""));
    ASSERT_TRUE(r) << r.error().Describe();
  }
  // The bucket the claims went to (the clock may cross into the next one below).
  const std::string bucket =
      "t:{q}:owner:a1:" + std::to_string(clock_->NowMs() / (48LL * 3600 * 1000));
  ASSERT_EQ(server_->Run({"HGET", bucket, "task-old"}).str, "old");
  Succeed(leased["old"]);
  clock_->Advance(2h);
  Succeed(leased["young"]);
  EXPECT_EQ(Sweep(1h), 1);
  EXPECT_TRUE(server_->Run({"HGET", bucket, "task-old"}).IsNil());
  EXPECT_TRUE(KeysMentioning("old").empty()) << ::testing::PrintToString(KeysMentioning("old"));
  // The young job keeps its claim while it is kept.
  EXPECT_EQ(server_->Run({"HGET", bucket, "task-young"}).str, "young");
  // A claim that names another job (the same task stored by another job) is not ours to drop.
  server_->Run({"HSET", bucket, "task-young", "someone-else"});
  clock_->Advance(2h);
  EXPECT_EQ(Sweep(1h), 1);
  EXPECT_EQ(server_->Run({"HGET", bucket, "task-young"}).str, "someone-else");
}

TEST_F(RetentionTest, RetriedJobLeavesTheFinishedIndexAndIsKept) {
  Submit({"j1"}, "b");
  auto leased = Run();
  ASSERT_TRUE(RunAsync(io_, store_->Cancel("j1")));
  // Retried (PENDING again) before retention: the sweep must not take it.
  ASSERT_TRUE(RunAsync(io_, store_->Retry("j1")));
  clock_->Advance(5h);
  EXPECT_EQ(Sweep(1h), 0);
  auto got = RunAsync(io_, store_->Get("j1"));
  ASSERT_TRUE(got) << got.error().Describe();
  EXPECT_EQ(got->state, JobState::kPending);
}

// A batch's jobs are a list in submit order (submit.lua; no sorted-set entry per job). Paging a
// batch with a cursor while retention removes its finished jobs from the head and from behind
// a job that still runs, and while the batch grows: every job that stays is listed exactly
// once, a removed job is named nowhere, and the batch record goes with its last job.
// "j00".."j29": no id is part of another (KeysMentioning matches substrings).
std::string Padded(int i) { return (i < 10 ? "j0" : "j") + std::to_string(i); }

TEST_F(RetentionTest, BatchListingPagesWhileRetentionTrimsItAndTheRecordGoesLast) {
  std::vector<std::string> first;
  for (int i = 0; i < 30; ++i) first.push_back(Padded(i));
  Submit(first, "long");
  auto leased = Run();
  ASSERT_EQ(leased.size(), 30u);
  // All but j00 (the head) and j15 finish now.
  for (auto& [id, job] : leased) {
    if (id != "j00" && id != "j15") Succeed(job);
  }
  clock_->Advance(2h);
  EXPECT_TRUE(Exists("t:{q}:batch:long:ids"));
  EXPECT_FALSE(Exists("t:{q}:batch:long:jobs"));

  ListFilter filter{.batch = "long", .page_size = 4};
  std::vector<std::string> listed;
  int pages = 0;
  for (;; ++pages) {
    ASSERT_LT(pages, 100);
    auto page = RunAsync(io_, store_->List(filter));
    ASSERT_TRUE(page) << page.error().Describe();
    for (const auto& j : page->jobs) listed.push_back(j.id);
    if (page->next_page_token.empty()) break;
    filter.page_token = page->next_page_token;
    if (pages == 0) {
      // Between the first two pages: the finished jobs go, and the batch grows.
      EXPECT_EQ(Sweep(1h), 28);
      Submit({"late1", "late2"}, "long");
    }
  }
  // The first page came before the sweep (j00..j03); after it only j15 and the new jobs stay.
  std::vector<std::string> expected = {"j00", "j01", "j02", "j03", "j15", "late1", "late2"};
  EXPECT_EQ(listed, expected);
  for (int i = 1; i < 30; ++i) {
    if (i == 15) continue;
    const std::string id = Padded(i);
    EXPECT_TRUE(KeysMentioning(id).empty()) << id;
  }
  auto counts = RunAsync(io_, store_->GetBatch("long"));
  ASSERT_TRUE(counts) << counts.error().Describe();

  // The rest finishes: the list and the record go with the last job.
  auto rest = Run();  // late1, late2
  ASSERT_EQ(rest.size(), 2u);
  for (auto& [id, job] : rest) Succeed(job);
  Succeed(leased["j00"]);
  Succeed(leased["j15"]);
  clock_->Advance(2h);
  EXPECT_EQ(Sweep(1h), 4);
  EXPECT_FALSE(Exists("t:{q}:batch:long"));
  EXPECT_FALSE(Exists("t:{q}:batch:long:ids"));
  EXPECT_FALSE(RunAsync(io_, store_->GetBatch("long")));
}

// Retention trimming the head of a batch's list between two pages: the cursor is an absolute
// position, so the next page starts right after the last job listed, not shifted.
TEST_F(RetentionTest, BatchCursorSurvivesTheHeadBeingTrimmed) {
  std::vector<std::string> ids;
  for (int i = 0; i < 12; ++i) ids.push_back(Padded(i));
  Submit(ids, "trim");
  auto leased = Run();
  ListFilter filter{.batch = "trim", .page_size = 3};
  auto page = RunAsync(io_, store_->List(filter));
  ASSERT_TRUE(page) << page.error().Describe();
  std::vector<std::string> listed;
  for (const auto& j : page->jobs) listed.push_back(j.id);
  for (int i = 0; i < 8; ++i) Succeed(leased[Padded(i)]);
  clock_->Advance(2h);
  EXPECT_EQ(Sweep(1h), 8);
  EXPECT_EQ(server_->Run({"LLEN", "t:{q}:batch:trim:ids"}).integer, 4);
  for (filter.page_token = page->next_page_token; !filter.page_token.empty();
       filter.page_token = page->next_page_token) {
    page = RunAsync(io_, store_->List(filter));
    ASSERT_TRUE(page) << page.error().Describe();
    for (const auto& j : page->jobs) listed.push_back(j.id);
  }
  std::vector<std::string> expected = {"j00", "j01", "j02", "j08", "j09", "j10", "j11"};
  EXPECT_EQ(listed, expected);
}

// A batch the previous layout began (its sorted set exists) keeps its sorted set: new jobs go
// there too, listing and retention read it as before.
TEST_F(RetentionTest, BatchOfThePreviousLayoutKeepsItsSortedSet) {
  server_->Run({"ZADD", "t:{q}:batch:v2:jobs", "1", "placeholder"});
  Submit({"v2a", "v2b"}, "v2");
  server_->Run({"ZREM", "t:{q}:batch:v2:jobs", "placeholder"});
  EXPECT_EQ(server_->Run({"ZCARD", "t:{q}:batch:v2:jobs"}).integer, 2);
  EXPECT_FALSE(Exists("t:{q}:batch:v2:ids"));
  auto page = RunAsync(io_, store_->List(ListFilter{.batch = "v2", .page_size = 10}));
  ASSERT_TRUE(page) << page.error().Describe();
  ASSERT_EQ(page->jobs.size(), 2u);
  auto leased = Run();
  for (auto& [id, job] : leased) Succeed(job);
  clock_->Advance(2h);
  EXPECT_EQ(Sweep(1h), 2);
  EXPECT_FALSE(Exists("t:{q}:batch:v2"));
  EXPECT_FALSE(Exists("t:{q}:batch:v2:jobs"));
}

// A tenant's jobs are one entry per submit call (submit.lua): listing by tenant pages through
// the calls by (time, call, position) while retention removes jobs (their ids stay in the
// call, skipped) and new jobs arrive; each call counts its jobs still in Redis, two calls of
// the same millisecond each get their own removals, and a call leaves with its last job.
TEST_F(RetentionTest, TenantListingPagesWhileRetentionRemovesJobsAndCallsLeaveWithTheirLast) {
  std::vector<std::string> a, b;
  for (int i = 0; i < 10; ++i) a.push_back("a" + std::to_string(i));
  for (int i = 0; i < 5; ++i) b.push_back("b" + std::to_string(i));
  Submit(a, "");
  Submit(b, "");  // the same millisecond as a's call
  clock_->Advance(1ms);
  Submit({"c0", "c1"}, "");
  const std::string calls = "t:{q}:tenant:studio:calls", callids = "t:{q}:tenant:studio:callids";
  ASSERT_EQ(server_->Run({"ZCARD", calls}).integer, 3);
  const auto names = server_->Run({"ZRANGE", calls, "0", "-1"}).elements;
  const std::string call_a = names.at(0).str, call_b = names.at(1).str;
  ASSERT_EQ(server_->Run({"HGET", callids, call_a}).str, "a0,a1,a2,a3,a4,a5,a6,a7,a8,a9");

  auto leased = Run();
  ASSERT_EQ(leased.size(), 17u);
  for (auto& [id, job] : leased) {
    if (id != "a5" && id != "b2" && id[0] != 'c') Succeed(job);
  }
  clock_->Advance(2h);
  const auto listed = ListAll({.tenant = "studio", .page_size = 4}, [&] {
    // Between the first two pages: 13 jobs go, from both calls of that millisecond.
    EXPECT_EQ(Sweep(1h), 13);
    Submit({"late"}, "");
  });
  std::vector<std::string> expected = {"a0", "a1", "a2", "a3", "a5", "b2", "c0", "c1", "late"};
  EXPECT_EQ(listed, expected);
  EXPECT_EQ(server_->Run({"HGET", callids, "#" + call_a}).str, "1");
  EXPECT_EQ(server_->Run({"HGET", callids, "#" + call_b}).str, "1");
  EXPECT_EQ(server_->Run({"ZCARD", calls}).integer, 4);

  // The last job of each of the two calls goes: so do the calls, and nothing names a or b.
  Succeed(leased["a5"]);
  Succeed(leased["b2"]);
  clock_->Advance(2h);
  EXPECT_EQ(Sweep(1h), 2);
  EXPECT_EQ(server_->Run({"ZCARD", calls}).integer, 2);
  EXPECT_EQ(server_->Run({"HLEN", callids}).integer, 4);  // c's and late's ids and counts
  for (const auto& id : {"a0", "a5", "b0", "b2"}) EXPECT_TRUE(KeysMentioning(id).empty()) << id;
  for (const auto& values : server_->Run({"HVALS", callids}).elements) {
    for (const auto& id : {"a0", "a5", "b0", "b2"}) {
      EXPECT_EQ(values.str.find(id), std::string::npos) << values.str;
    }
  }
  std::vector<std::string> rest;
  for (ListFilter f{.tenant = "studio", .page_size = 2};;) {
    auto page = RunAsync(io_, store_->List(f));
    ASSERT_TRUE(page) << page.error().Describe();
    for (const auto& j : page->jobs) rest.push_back(j.id);
    if (page->next_page_token.empty()) break;
    f.page_token = page->next_page_token;
  }
  EXPECT_EQ(rest, (std::vector<std::string>{"c0", "c1", "late"}));
}

// A storyboard's shots stay while the storyboard is here (its join reads them, and so does a
// RetryJob of it) and leave with it.
TEST_F(RetentionTest, AGroupsChildrenStayWhileTheGroupIsHereAndLeaveWithIt) {
  ASSERT_TRUE(RunAsync(io_, store_->SubmitMany(Storyboard("g", 2, "sb", {"s0", "s1"}), 3600)));
  auto leased = Run();
  ASSERT_EQ(leased.size(), 2u);
  Succeed(leased["s0"]);

  // Two hours on, the second shot still runs: the first, past a 90-minute retention, stays
  // while its group is here (the join will read it).
  clock_->Advance(2h);
  EXPECT_EQ(Sweep(90min), 0);
  EXPECT_TRUE(RunAsync(io_, store_->Get("s0")));

  // The second shot ends, the join runs and the group succeeds; 91 minutes later the group goes
  // with both its shots.
  Succeed(leased["s1"]);
  auto step = Run();
  ASSERT_TRUE(step.contains("g"));
  Succeed(step["g"]);
  clock_->Advance(91min);
  ExpectGroupGone();
}

// A storyboard failed by one shot while another still runs stays, with its batch record, until
// that shot ends: the running shot's money and progress count against the group's batch, whose
// record would otherwise be removed and come back as a stray hash when the shot ends.
TEST_F(RetentionTest, AGroupThatEndedWhileAChildRunsStaysUntilTheChildEnds) {
  ASSERT_TRUE(RunAsync(io_, store_->SubmitMany(Storyboard("g", 2, "sb", {"s0", "s1"}), 3600)));
  auto leased = Run();
  ASSERT_EQ(leased.size(), 2u);
  ASSERT_NO_FATAL_FAILURE(FailForGood(leased["s0"]));
  ASSERT_EQ(RunAsync(io_, store_->Get("g"))->state, JobState::kFailed);

  clock_->Advance(2h);
  EXPECT_EQ(Sweep(90min), 0);
  EXPECT_TRUE(RunAsync(io_, store_->Get("g")));
  EXPECT_TRUE(RunAsync(io_, store_->Get("s0")));
  EXPECT_TRUE(Exists("t:{q}:batch:sb"));

  // The shot ends; a retention later all three go, and no batch hash is left behind.
  Succeed(leased["s1"]);
  clock_->Advance(91min);
  ExpectGroupGone();
}

// The group comes due again (a retention after it was kept) soon after its last child ended:
// that child has had only minutes of its retention, so the group and its children stay until
// it has had all of it.
TEST_F(RetentionTest, AChildThatEndedWithinTheRetentionKeepsItsGroupThatCameDue) {
  ASSERT_TRUE(RunAsync(io_, store_->SubmitMany(Storyboard("g", 2, "sb", {"s0", "s1"}), 3600)));
  auto leased = Run();
  ASSERT_EQ(leased.size(), 2u);
  ASSERT_NO_FATAL_FAILURE(FailForGood(leased["s0"]));
  clock_->Advance(2h);
  EXPECT_EQ(Sweep(90min), 0);  // s1 runs: the group stays, due again 90 min from now

  clock_->Advance(80min);
  Succeed(leased["s1"]);
  clock_->Advance(11min);
  EXPECT_EQ(Sweep(90min), 0) << "s1 went 11 minutes after it ended";
  EXPECT_TRUE(RunAsync(io_, store_->Get("s1")));
  EXPECT_TRUE(RunAsync(io_, store_->Get("g")));

  clock_->Advance(90min);
  ExpectGroupGone();
}

// A shot that comes due before its group (it ended first) is kept while the group is here; the
// group comes due a retention after it ended and takes the shot along: the shot is judged by
// when it ended, not by where an earlier sweep left it in the state index (which had the two
// keep each other forever).
TEST_F(RetentionTest, AGroupThatEndedAfterItsShotCameDueLeavesWithIt) {
  ASSERT_TRUE(RunAsync(io_, store_->SubmitMany(Storyboard("g", 2, "sb", {"s0", "s1"}), 3600)));
  auto leased = Run();
  ASSERT_EQ(leased.size(), 2u);
  Succeed(leased["s0"]);
  clock_->Advance(10min);
  Succeed(leased["s1"]);
  auto step = Run();
  ASSERT_TRUE(step.contains("g"));
  Succeed(step["g"]);

  // s0 ended 95 minutes ago, the group 85: s0 stays while the group is here.
  clock_->Advance(85min);
  EXPECT_EQ(Sweep(90min), 0);
  EXPECT_TRUE(RunAsync(io_, store_->Get("s0")));
  // The group's retention passes: it goes with both shots.
  clock_->Advance(6min);
  ExpectGroupGone();
}

// Many groups coming due together take all their children along: the sweep bounds how many
// jobs one call removes (Redis's Lua unpacks at most ~8,000 values a command) and carries on
// in the next call, instead of failing on the same head every time.
TEST_F(RetentionTest, ManyLargeGroupsComingDueTogetherAllLeave) {
  constexpr int kGroups = 150, kShots = 64;
  for (int g = 0; g < kGroups; ++g) {
    auto r = RunAsync(io_, store_->SubmitMany(Storyboard("g" + std::to_string(g), kShots), 3600));
    ASSERT_TRUE(r) << r.error().Describe();
  }
  // Every shot succeeds, then a minute later every join: the groups come due together, after
  // all their shots, each taking its 64 along.
  std::vector<LeasedJob> joins;
  for (int round = 0; round < 100; ++round) {
    auto leased = Run();
    if (leased.empty()) break;
    std::vector<LeasedJob> shots;
    for (auto& [id, job] : leased) {
      (id.find("-s") != std::string::npos ? shots : joins).push_back(job);
    }
    ASSERT_NO_FATAL_FAILURE(CompleteGathered(shots, 200));
  }
  ASSERT_EQ(joins.size(), static_cast<size_t>(kGroups));
  clock_->Advance(1min);
  ASSERT_NO_FATAL_FAILURE(CompleteGathered(joins, 200));
  ASSERT_EQ(server_->Run({"ZCARD", "t:{q}:state:SUCCEEDED"}).integer, kGroups * (kShots + 1));
  clock_->Advance(2h);
  // The scheduler's chunk (retention_sweep.cpp).
  EXPECT_EQ(Sweep(1h, 500), kGroups * (kShots + 1));
  EXPECT_EQ(server_->Run({"ZCARD", "t:{q}:state:SUCCEEDED"}).integer, 0);
  EXPECT_EQ(server_->Run({"ZCARD", "t:{q}:jobs"}).integer, 0);
}

// A shot kept for its group keeps its place in its state's index: a listing by state paged
// while the sweep keeps the shot lists each job once, in the order they entered the state; the
// note the sweep keeps on the shot (`retain_hold`) leaves Redis with it.
TEST_F(RetentionTest, AStateListingPagedWhileTheSweepKeepsAShotListsEachJobOnce) {
  ASSERT_TRUE(RunAsync(io_, store_->SubmitMany(Storyboard("g", 2, "sb", {"s0", "s1"}), 3600)));
  Submit({"x"}, "");
  auto leased = Run();
  ASSERT_EQ(leased.size(), 3u);
  Succeed(leased["s0"]);
  clock_->Advance(10min);
  Succeed(leased["x"]);
  clock_->Advance(85min);  // s0 ended 95 minutes ago (due under 90), x 85 (not due)

  const auto listed = ListAll({.state = JobState::kSucceeded, .page_size = 1}, [&] {
    EXPECT_EQ(Sweep(90min), 0);  // s0 stays: its group runs
  });
  EXPECT_EQ(listed, (std::vector<std::string>{"s0", "x"}));
  EXPECT_TRUE(RunAsync(io_, store_->Get("s0")));

  // x comes due and goes; the kept shot is passed over, not in the way.
  clock_->Advance(6min);
  EXPECT_EQ(Sweep(90min, 1), 1);
  EXPECT_TRUE(RunAsync(io_, store_->Get("s0")));
  // The group ends and, a retention later, leaves with its shots and everything naming them.
  Succeed(leased["s1"]);
  auto step = Run();
  ASSERT_TRUE(step.contains("g"));
  Succeed(step["g"]);
  clock_->Advance(91min);
  ExpectGroupGone();
  EXPECT_FALSE(Exists("t:{q}:retain_hold"));
}

// Retention runs while Redis is out of memory (maxmemory, noeviction): it is what frees memory
// there, so a Redis that refused it as it refuses writes could never free any on its own.
TEST_F(RetentionTest, RetentionRunsWhileRedisIsOutOfMemory) {
  Submit({"j1", "j2"}, "b");
  for (auto& [id, job] : Run()) Succeed(job);
  clock_->Advance(2h);
  server_->Run({"CONFIG", "SET", "maxmemory", "1"});
  int removed = -1;
  std::string error;
  try {
    removed = Sweep(1h);
  } catch (const std::exception& e) {
    error = e.what();
  }
  server_->Run({"CONFIG", "SET", "maxmemory", "0"});
  EXPECT_EQ(removed, 2) << error;
  for (const std::string id : {"j1", "j2"}) {
    EXPECT_TRUE(KeysMentioning(id).empty()) << id;
  }
  EXPECT_FALSE(Exists("t:{q}:batch:b"));
}

}  // namespace
}  // namespace reelq::queue
