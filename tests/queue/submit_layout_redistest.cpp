// Issue 11: what submit.lua stores, and that a record of the layout before is read right.
// A call sends once what its jobs share (AppendNewJobs) and a new record leaves out `seq` and
// `score`, which its readers supply (read_job / read_record: seq 1; queue_score: the pending
// score from priority, start deadline and created); a record written before holds both, and
// its stored values are the ones used.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "reelq/queue/auth_store.h"
#include "reelq/queue/wallet_store.h"
#include "store_fixture.h"

namespace reelq::queue {
namespace {

using namespace std::chrono_literals;
using testing::RunAsync;

class SubmitLayoutTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    Sync(OneModel());
  }

  std::map<std::string, std::string> Record(const std::string& id) {
    std::map<std::string, std::string> out;
    const auto r = server_->Run({"HGETALL", "t:{q}:job:" + id});
    for (size_t i = 0; i + 1 < r.elements.size(); i += 2) {
      out[r.elements[i].str] = r.elements[i + 1].str;
    }
    return out;
  }

  double PendingScoreOf(const std::string& id, const std::string& tenant) {
    const auto r = server_->Run({"ZSCORE", "t:{q}:pending:" + tenant, id});
    return r.IsNil() ? -1 : std::stod(r.str);
  }

  static NewJob Job(std::string id) {
    return NewJob{.id = std::move(id),
                  .tenant = "studio",
                  .batch = "b1",
                  .spec_bytes = "spec of " + id,
                  .candidate_models = {"m1"},
                  .max_attempts = 3};
  }

  // A record as main's submit.lua wrote it before issue 11's second submit change (every
  // field named per job, `seq` and `score` stored), with the indexes and counters it kept.
  void WriteOldPendingJob(const std::string& id, const std::string& score) {
    const std::string created = std::to_string(clock_->NowMs());
    server_->Run(
        {"HSET",   "t:{q}:job:" + id, "state", "PENDING", "seq",    "1",  "created",      created,
         "tenant", "studio",          "score", score,     "models", "m1", "max_attempts", "4",
         "spec",   "old spec",        "secs",  "0",       "res",    "",   "batch",        "old"});
    server_->Run({"ZADD", "t:{q}:pending:studio", score, id});
    server_->Run({"ZADD", "t:{q}:active", "NX", "0", "studio"});
    server_->Run({"ZADD", "t:{q}:state:PENDING", created, id});
    server_->Run({"HINCRBY", "t:{q}:tlive:studio", "PENDING", "1"});
    server_->Run({"HINCRBY", "t:{q}:model:m1", "q_pending", "1"});
    server_->Run({"HINCRBY", "t:{q}:batch:old", "PENDING", "1"});
    server_->Run({"HINCRBY", "t:{q}:batch:old", "total", "1"});
  }
};

TEST_F(SubmitLayoutTest, ACallSendsWhatItsJobsShareOnceAndEveryRecordHoldsItWhole) {
  std::vector<NewJob> jobs{Job("s0"), Job("s1"), Job("s2"), Job("s3")};
  jobs[1].priority = 7;
  jobs[2].start_deadline_ms = clock_->NowMs() + 60'000;
  jobs[3].tenant = "other";
  jobs[3].billed_seconds = 5;
  jobs[3].resolution = "1080p";
  jobs[3].max_attempts = kDefaultMaxAttempts;
  auto r = RunAsync(io_, store_->SubmitMany(jobs, 3600));
  ASSERT_TRUE(r) << r.error().Describe();
  ASSERT_EQ(r->size(), jobs.size());
  for (const auto& job : jobs) {
    const auto stored = Record(job.id);
    EXPECT_EQ(stored.at("state"), "PENDING") << job.id;
    EXPECT_EQ(stored.at("created"), std::to_string(clock_->NowMs())) << job.id;
    EXPECT_EQ(stored.at("tenant"), job.tenant) << job.id;
    EXPECT_EQ(stored.at("batch"), "b1") << job.id;
    EXPECT_EQ(stored.at("models"), "m1") << job.id;
    if (job.max_attempts != kDefaultMaxAttempts) {
      EXPECT_EQ(stored.at("max_attempts"), "3") << job.id;
    }
    EXPECT_EQ(stored.at("spec"), job.spec_bytes) << job.id;
    // Supplied by the readers, not stored.
    EXPECT_FALSE(stored.contains("seq")) << job.id;
    EXPECT_FALSE(stored.contains("score")) << job.id;
    EXPECT_EQ(PendingScoreOf(job.id, job.tenant),
              JobStore::PendingScore(job.priority, job.start_deadline_ms, clock_->NowMs()))
        << job.id;
  }
  EXPECT_EQ(Record("s1").at("priority"), "7");
  EXPECT_EQ(Record("s2").at("start_deadline"), std::to_string(jobs[2].start_deadline_ms));
  EXPECT_EQ(Record("s3").at("secs"), "5");
  EXPECT_EQ(Record("s3").at("res"), "1080p");
  EXPECT_FALSE(Record("s3").contains("max_attempts"));  // the default, supplied by readers
  auto s3 = RunAsync(io_, store_->Get("s3"));
  ASSERT_TRUE(s3) << s3.error().Describe();
  EXPECT_EQ(s3->max_attempts, kDefaultMaxAttempts);
  EXPECT_FALSE(Record("s0").contains("secs"));
  EXPECT_FALSE(Record("s0").contains("res"));
  auto got = RunAsync(io_, store_->Get("s1"));
  ASSERT_TRUE(got) << got.error().Describe();
  EXPECT_EQ(got->state, JobState::kPending);
  EXPECT_EQ(got->attempt, 1);
  EXPECT_EQ(got->max_attempts, 3);
  EXPECT_EQ(got->priority, 7);
  EXPECT_EQ(got->tenant, "studio");
  EXPECT_EQ(got->batch, "b1");
  ASSERT_EQ(got->history.size(), 1u);
  EXPECT_EQ(got->history[0].detail, "submitted");
}

// A new record's first transition is its second (seq 2), and a job put back in its queue (a
// retry by request, a backoff that ran out) goes back at the score it was submitted with.
TEST_F(SubmitLayoutTest, ANewRecordNumbersItsTransitionsFromOneAndKeepsItsQueueScore) {
  NewJob job = Job("n0");
  job.priority = -3;
  job.start_deadline_ms = clock_->NowMs() + 90'000;
  ASSERT_TRUE(RunAsync(io_, store_->Submit(job, 3600)));
  ASSERT_TRUE(RunAsync(io_, store_->Submit(Job("n1"), 3600)));
  const double n0_score = PendingScoreOf("n0", "studio");
  const double n1_score = PendingScoreOf("n1", "studio");
  ASSERT_GT(n0_score, 0);
  ASSERT_GT(n1_score, 0);
  auto cancelled = RunAsync(io_, store_->Cancel("n0"));
  ASSERT_TRUE(cancelled) << cancelled.error().Describe();
  EXPECT_EQ(Record("n0").at("seq"), "2");
  ASSERT_TRUE(Record("n0").contains("h:2"));
  clock_->Advance(5s);
  auto retried = RunAsync(io_, store_->Retry("n0"));
  ASSERT_TRUE(retried) << retried.error().Describe();
  EXPECT_EQ(Record("n0").at("seq"), "3");
  EXPECT_EQ(PendingScoreOf("n0", "studio"), n0_score);

  // n0 goes first (its start deadline); the backoff of n1's failed attempt runs out.
  auto d = RunAsync(io_, store_->Dispatch(10, 16, 1));
  ASSERT_TRUE(d) << d.error().Describe();
  ASSERT_EQ(d->dispatched, 2);
  auto leased = RunAsync(io_, store_->Lease("w1", 10, 60s));
  ASSERT_TRUE(leased) << leased.error().Describe();
  ASSERT_EQ(leased->size(), 2u);
  const LeasedJob& n1 = (*leased)[0].id == "n1" ? (*leased)[0] : (*leased)[1];
  ASSERT_EQ(n1.id, "n1");
  EXPECT_EQ(n1.max_attempts, 3);
  FailRequest f{.job_id = n1.id,
                .token = n1.token,
                .category = ErrorCategory::kRetryable,
                .message = "503",
                .retry = true,
                .retry_at_ms = clock_->NowMs() + 1000};
  auto failed = RunAsync(io_, store_->Fail(f));
  ASSERT_TRUE(failed) << failed.error().Describe();
  ASSERT_EQ(*failed, FailOutcome::kRetrying);
  EXPECT_EQ(PendingScoreOf("n1", "studio"), -1);  // waiting out its backoff
  clock_->Advance(2s);
  ASSERT_TRUE(RunAsync(io_, store_->Reap(100)));
  EXPECT_EQ(PendingScoreOf("n1", "studio"), n1_score);
  auto got = RunAsync(io_, store_->Get("n1"));
  ASSERT_TRUE(got);
  // submitted, dispatched, leased, failed (retrying): seqs 1..4, in order.
  ASSERT_GE(got->history.size(), 4u);
  for (size_t k = 0; k < got->history.size(); ++k) EXPECT_EQ(got->history[k].seq, int(k) + 1);
}

// max_attempts left out (the default): the lease hands the worker 5 and fail.lua retries.
TEST_F(SubmitLayoutTest, AJobWithTheDefaultAttemptsIsLeasedAndRetriedWithThem) {
  NewJob job = Job("d0");
  job.max_attempts = kDefaultMaxAttempts;
  ASSERT_TRUE(RunAsync(io_, store_->Submit(job, 3600)));
  ASSERT_FALSE(Record("d0").contains("max_attempts"));
  for (int attempt = 1; attempt <= kDefaultMaxAttempts; ++attempt) {
    clock_->Advance(2s);
    ASSERT_TRUE(RunAsync(io_, store_->Reap(100)));
    ASSERT_TRUE(RunAsync(io_, store_->Dispatch(10, 16, 1)));
    auto leased = RunAsync(io_, store_->Lease("w1", 10, 60s));
    ASSERT_TRUE(leased) << leased.error().Describe();
    ASSERT_EQ(leased->size(), 1u) << "attempt " << attempt;
    EXPECT_EQ((*leased)[0].max_attempts, kDefaultMaxAttempts);
    EXPECT_EQ((*leased)[0].attempt, attempt);
    FailRequest f{.job_id = "d0",
                  .token = (*leased)[0].token,
                  .category = ErrorCategory::kRetryable,
                  .message = "503",
                  .retry = true,
                  .retry_at_ms = clock_->NowMs() + 1000};
    auto failed = RunAsync(io_, store_->Fail(f));
    ASSERT_TRUE(failed) << failed.error().Describe();
    EXPECT_EQ(*failed,
              attempt < kDefaultMaxAttempts ? FailOutcome::kRetrying : FailOutcome::kFailed)
        << "attempt " << attempt;
  }
}

// The jobs submit.lua keeps outside the dispatch queues (a group's parent, a chain's shots
// that wait) carry `seq` and a state:PENDING entry, which leaves with them; ListJobs PENDING
// lists each job once as the chain moves on.
TEST_F(SubmitLayoutTest, AChainsParentAndWaitingShotsAreListedPendingUntilTheyMove) {
  std::vector<NewJob> jobs;
  jobs.push_back(NewJob{.id = "g",
                        .tenant = "studio",
                        .spec_bytes = "spec",
                        .candidate_models = {"m1"},
                        .kind = std::string(kKindStoryboard),
                        .children = {"c0", "c1"},
                        .chain = true});
  for (int k = 0; k < 2; ++k) {
    jobs.push_back(NewJob{.id = "c" + std::to_string(k),
                          .tenant = "studio",
                          .spec_bytes = "spec",
                          .candidate_models = {"m1"},
                          .parent = "g",
                          .child_index = k});
  }
  ASSERT_TRUE(RunAsync(io_, store_->SubmitMany(jobs, 3600)));
  EXPECT_EQ(Record("g").at("seq"), "1");
  EXPECT_EQ(Record("c1").at("seq"), "1");
  EXPECT_FALSE(Record("c0").contains("seq"));  // queued
  auto pending = [&] {
    std::multiset<std::string> ids;
    ListFilter filter{.state = JobState::kPending, .page_size = 1};
    for (int pages = 0; pages < 100; ++pages) {
      auto page = RunAsync(io_, store_->List(filter));
      if (!page) throw std::runtime_error(page.error().Describe());
      for (const auto& j : page->jobs) ids.insert(j.id);
      if (page->next_page_token.empty()) break;
      filter.page_token = page->next_page_token;
    }
    return ids;
  };
  EXPECT_EQ(pending(), (std::multiset<std::string>{"c0", "c1", "g"}));
  for (const std::string id : {"c0", "c1"}) {
    ASSERT_TRUE(RunAsync(io_, store_->Dispatch(10, 16, 1)));
    auto leased = RunAsync(io_, store_->Lease("w1", 10, 60s));
    ASSERT_TRUE(leased) << leased.error().Describe();
    ASSERT_EQ(leased->size(), 1u);
    ASSERT_EQ((*leased)[0].id, id);
    auto done = RunAsync(io_, store_->Complete({.job_id = id,
                                                .token = (*leased)[0].token,
                                                .output_key = "clip-" + id,
                                                .last_frame_key = "frame-" + id}));
    ASSERT_TRUE(done) << done.error().Describe();
    if (id == "c0") {
      EXPECT_EQ(pending(), (std::multiset<std::string>{"c1", "g"}));
    }
  }
  // Both shots succeeded: the parent's join is queued (DISPATCHED), so nothing is PENDING.
  auto g = RunAsync(io_, store_->Get("g"));
  ASSERT_TRUE(g);
  EXPECT_EQ(g->state, JobState::kDispatched);
  EXPECT_TRUE(pending().empty());
}

// A record the layout before wrote holds `seq` and `score`: they are read, not replaced by the
// defaults (a stored score that differs from what queue_score would compute stays).
TEST_F(SubmitLayoutTest, ARecordOfTheLayoutBeforeIsReadWithItsStoredSeqAndScore) {
  WriteOldPendingJob("old0", "123456789");
  auto got = RunAsync(io_, store_->Get("old0"));
  ASSERT_TRUE(got) << got.error().Describe();
  EXPECT_EQ(got->state, JobState::kPending);
  EXPECT_EQ(got->attempt, 1);
  EXPECT_EQ(got->max_attempts, 4);
  EXPECT_EQ(got->spec_bytes, "old spec");
  ASSERT_EQ(got->history.size(), 1u);
  EXPECT_EQ(got->history[0].detail, "submitted");

  auto cancelled = RunAsync(io_, store_->Cancel("old0"));
  ASSERT_TRUE(cancelled) << cancelled.error().Describe();
  EXPECT_EQ(Record("old0").at("seq"), "2");
  ASSERT_TRUE(RunAsync(io_, store_->Retry("old0")));
  EXPECT_EQ(Record("old0").at("seq"), "3");
  EXPECT_EQ(PendingScoreOf("old0", "studio"), 123456789);

  // One retried before (seq 4), cancelled: retry numbers on from its stored seq.
  server_->Run({"HSET",         "t:{q}:job:old1",
                "state",        "CANCELLED",
                "seq",          "4",
                "created",      std::to_string(clock_->NowMs()),
                "tenant",       "studio",
                "score",        "987654321",
                "models",       "m1",
                "max_attempts", "4",
                "spec",         "old spec",
                "batch",        "old"});
  server_->Run({"ZADD", "t:{q}:state:CANCELLED", std::to_string(clock_->NowMs()), "old1"});
  ASSERT_TRUE(RunAsync(io_, store_->Retry("old1")));
  EXPECT_EQ(Record("old1").at("seq"), "5");
  EXPECT_TRUE(Record("old1").contains("h:5"));
  EXPECT_EQ(PendingScoreOf("old1", "studio"), 987654321);

  // Both are leased with what their records hold.
  auto d = RunAsync(io_, store_->Dispatch(10, 16, 1));
  ASSERT_TRUE(d) << d.error().Describe();
  EXPECT_EQ(d->dispatched, 2);
  auto leased = RunAsync(io_, store_->Lease("w1", 10, 60s));
  ASSERT_TRUE(leased) << leased.error().Describe();
  ASSERT_EQ(leased->size(), 2u);
  for (const auto& j : *leased) {
    EXPECT_EQ(j.max_attempts, 4) << j.id;
    EXPECT_EQ(j.spec_bytes, "old spec") << j.id;
  }
  EXPECT_EQ(Record("old1").at("seq"), "7");  // dispatched 6, leased 7
}

// The scripts are functions of one library (queue/CMakeLists.txt). Redis refuses a function
// without flags while it is out of memory; the reading ones are flagged no-writes, so GetJob,
// ListJobs and GetStats still answer then, as they did when scripts were sent with EVALSHA,
// and a submit is refused whole.
TEST_F(SubmitLayoutTest, ReadsAnswerWhileRedisIsOutOfMemoryAndWritesAreRefused) {
  auto r = RunAsync(io_, store_->SubmitMany({Job("m0"), Job("m2")}, 3600));
  ASSERT_TRUE(r) << r.error().Describe();
  server_->Run({"CONFIG", "SET", "maxmemory", "1"});
  auto got = RunAsync(io_, store_->Get("m0"));
  // Paged: no list key could be stored, and the second page still opens the first's token.
  auto listed = RunAsync(io_, store_->List({.state = JobState::kPending, .page_size = 1}));
  Result<ListPage> second = std::unexpected(Error{});
  if (listed) {
    second = RunAsync(io_, store_->List({.state = JobState::kPending,
                                         .page_token = listed->next_page_token,
                                         .page_size = 1}));
  }
  auto stats = RunAsync(io_, store_->GetStats());
  auto refused = RunAsync(io_, store_->SubmitMany({Job("m1")}, 3600));
  // The batch claim an authenticated submit makes first, and an admin's top-up, are refused the
  // same way: retryable, not INTERNAL (a batch item would read as refused for good).
  AuthStore auth(NewConnection(), "t");
  auto claim = RunAsync(io_, auth.ClaimBatch("oom-batch", "studio"));
  WalletStore wallets(NewConnection(), "t");
  auto topped = RunAsync(io_, wallets.TopUp("studio", 1'000'000, clock_->NowMs()));
  server_->Run({"CONFIG", "SET", "maxmemory", "0"});
  ASSERT_FALSE(claim);
  ASSERT_FALSE(topped);
  for (const auto* r : {&claim.error(), &topped.error()}) {
    EXPECT_EQ(r->category, ErrorCategory::kRateLimited) << r->message;
    EXPECT_NE(r->message.find("maxmemory"), std::string::npos) << r->message;
  }
  ASSERT_TRUE(got) << got.error().Describe();
  EXPECT_EQ(got->state, JobState::kPending);
  ASSERT_TRUE(listed) << listed.error().Describe();
  ASSERT_EQ(listed->jobs.size(), 1u);
  EXPECT_EQ(listed->jobs[0].id, "m0");
  ASSERT_TRUE(second) << second.error().Describe();
  ASSERT_EQ(second->jobs.size(), 1u);
  EXPECT_EQ(second->jobs[0].id, "m2");
  // Once Redis takes writes, the key this store sealed under becomes the deployment's: a token
  // it gave out opens on another store.
  auto third = RunAsync(io_, store_->List({.state = JobState::kPending, .page_size = 1}));
  ASSERT_TRUE(third) << third.error().Describe();
  auto other = NewStore();
  auto opened = RunAsync(io_, other->List({.state = JobState::kPending,
                                           .page_token = third->next_page_token,
                                           .page_size = 1}));
  ASSERT_TRUE(opened) << opened.error().Describe();
  ASSERT_TRUE(stats) << stats.error().Describe();
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("OOM"), std::string::npos) << refused.error().message;
  // Worth retrying (RESOURCE_EXHAUSTED at the API), not an internal error.
  EXPECT_EQ(refused.error().category, ErrorCategory::kRateLimited) << refused.error().message;
  EXPECT_NE(refused.error().message.find("maxmemory"), std::string::npos);
  EXPECT_EQ(server_->Run({"EXISTS", "t:{q}:job:m1"}).integer, 0);
}

// A master short of min-replicas-to-write (just promoted, no replica synced yet) refuses every
// write for now: a submit, and a worker's complete, fail retryable (UNAVAILABLE at the API, the
// worker's retry), not as internal errors; nothing was written, and once a replica is back (here:
// the setting lowered) the same calls go through.
TEST_F(SubmitLayoutTest, AMasterWithoutItsReplicasRefusesWritesForNowNotForGood) {
  ASSERT_TRUE(RunAsync(io_, store_->SubmitMany({Job("a")}, 3600)));
  ASSERT_TRUE(RunAsync(io_, store_->Dispatch(10, 16, 1)));
  auto leased = RunAsync(io_, store_->Lease("w", 1, 60s));
  ASSERT_TRUE(leased) << leased.error().Describe();
  ASSERT_EQ(leased->size(), 1u);
  server_->Run({"CONFIG", "SET", "min-replicas-to-write", "1"});
  auto submitted = RunAsync(io_, store_->SubmitMany({Job("b")}, 3600));
  const LeasedJob& job = (*leased)[0];
  auto completed = RunAsync(io_, store_->Complete({.job_id = job.id, .token = job.token}));
  server_->Run({"CONFIG", "SET", "min-replicas-to-write", "0"});
  ASSERT_FALSE(submitted);
  EXPECT_EQ(submitted.error().category, ErrorCategory::kRetryable) << submitted.error().message;
  EXPECT_NE(submitted.error().message.find("NOREPLICAS"), std::string::npos);
  EXPECT_EQ(server_->Run({"EXISTS", "t:{q}:job:b"}).integer, 0);
  ASSERT_FALSE(completed);
  EXPECT_EQ(completed.error().category, ErrorCategory::kRetryable) << completed.error().message;
  EXPECT_EQ(Get("a").state, JobState::kRunning);

  ASSERT_TRUE(RunAsync(io_, store_->SubmitMany({Job("b")}, 3600)));
  auto again = RunAsync(io_, store_->Complete({.job_id = job.id, .token = job.token}));
  ASSERT_TRUE(again) << again.error().Describe();
  EXPECT_EQ(Get("a").state, JobState::kSucceeded);
}

// A metered job (bill) of a tenant that has no wallet yet reserves nothing, so its record must
// not say it is billed: once a top-up makes the wallet, a refund (or a settle) of that job would
// move money that was never taken.
TEST_F(SubmitLayoutTest, AJobSubmittedBeforeTheFirstTopUpIsNotBilledAfterIt) {
  QueueSettings s = OneModel();
  s.models[0].price_micros_per_second = 1000;
  Sync(s);
  server_->Run({"SADD", "t:{q}:auth:tenants", "studio"});
  auto submitted = RunAsync(io_, store_->SubmitMany({NewJob{.id = "early",
                                                            .tenant = "studio",
                                                            .spec_bytes = "spec",
                                                            .candidate_models = {"m1"},
                                                            .bill = true,
                                                            .billed_seconds = 4}},
                                                    3600));
  ASSERT_TRUE(submitted) << submitted.error().Describe();
  EXPECT_EQ(Record("early")["bill"], "0");

  WalletStore wallets(NewConnection(), "t");
  ASSERT_TRUE(RunAsync(io_, wallets.TopUp("studio", 1'000'000, 1)));
  ASSERT_TRUE(RunAsync(io_, store_->Cancel("early")));
  auto wallet = RunAsync(io_, wallets.Get("studio", 2, 0));
  ASSERT_TRUE(wallet) << wallet.error().Describe();
  EXPECT_EQ(wallet->balance_micros, 1'000'000);
  EXPECT_EQ(wallet->reserved_micros, 0);
  EXPECT_EQ(wallet->spent_micros, 0);
}

// A call of thousands of jobs (a SubmitBatch chunk of 200 storyboards of many shots) is stored
// whole, in several script calls that keep each storyboard with its shots: one script call
// would stop half-way at Redis's Lua unpack limit and leave records in no queue.
TEST_F(SubmitLayoutTest, ThousandsOfShotsInOneCallAreAllQueued) {
  std::vector<NewJob> jobs;
  constexpr int kGroups = 100, kShots = 44;  // 4,400 shots: 8,800 values in one pending queue
  for (int g = 0; g < kGroups; ++g) {
    auto group = Storyboard("g" + std::to_string(g), kShots);
    jobs.insert(jobs.end(), group.begin(), group.end());
  }
  auto submitted = RunAsync(io_, store_->SubmitMany(jobs, 3600));
  ASSERT_TRUE(submitted) << submitted.error().Describe();
  ASSERT_EQ(submitted->size(), jobs.size());
  for (const auto& o : *submitted) EXPECT_FALSE(o.refused) << o.refused->Describe();
  EXPECT_EQ(server_->Run({"ZCARD", "t:{q}:pending:studio"}).integer, kGroups * kShots);
  EXPECT_EQ(server_->Run({"ZCARD", "t:{q}:state:PENDING"}).integer, kGroups);  // the parents
  EXPECT_EQ(Record("g99")["state"], "PENDING");
  EXPECT_EQ(Record("g99-s43")["parent"], "g99");
}

}  // namespace
}  // namespace reelq::queue
