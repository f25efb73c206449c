// Issue 4 acceptance for the dispatch script: token buckets and concurrency caps hold with
// eight dispatchers racing, tenant shares follow the weights, a 429 storm cools an account and
// moves its work elsewhere, and basic submit/lease/complete/fail/cancel paths.
#include <gtest/gtest.h>

#include <algorithm>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "store_fixture.h"

namespace reelq::queue {
namespace {

using namespace std::chrono_literals;
using testing::RunAsync;

class QueueTest : public StoreTest {
 protected:
  std::string Submit(const std::string& id, const std::string& tenant,
                     std::vector<std::string> models = {"m1"}) {
    NewJob job{.id = id, .tenant = tenant, .spec_bytes = "spec", .candidate_models = models};
    auto r = RunAsync(io_, store_->Submit(job, 3600));
    if (!r) throw std::runtime_error(r.error().Describe());
    return r->job_id;
  }

  int Dispatch(int max = 100) {
    auto r = RunAsync(io_, store_->Dispatch(max, 16, 1));
    if (!r) throw std::runtime_error(r.error().Describe());
    return r->dispatched;
  }

  // `rounds` batches of eight Dispatch calls, one per connection, all in flight at once.
  int RaceDispatch(std::vector<std::unique_ptr<JobStore>>& stores, int max) {
    std::vector<std::future<Result<DispatchOutcome>>> futures;
    for (auto& s : stores) {
      futures.push_back(asio::co_spawn(io_, s->Dispatch(max, 16, 1), asio::use_future));
    }
    int total = 0;
    io_.restart();
    for (auto& f : futures) {
      while (f.wait_for(0s) != std::future_status::ready) io_.run_one_for(20ms);
      auto r = f.get();
      if (!r) throw std::runtime_error(r.error().Describe());
      total += r->dispatched;
    }
    return total;
  }

  std::string Field(const std::string& key, const std::string& field) {
    auto r = server_->Run({"HGET", "t:{q}:" + key, field});
    return r.str;
  }
};

TEST_F(QueueTest, ConcurrencyCapHoldsWithEightRacingDispatchers) {
  Sync(OneModel({{.id = "a1", .provider = "p", .requests_per_minute = 6000, .max_concurrent = 3}}));
  for (int i = 0; i < 40; ++i) Submit("j" + std::to_string(i), "t1");
  std::vector<std::unique_ptr<JobStore>> stores;
  for (int i = 0; i < 8; ++i) stores.push_back(NewStore());
  for (int round = 0; round < 10; ++round) {
    int got = RaceDispatch(stores, 10);
    // Never more than the cap in flight, whatever the interleaving.
    EXPECT_LE(std::stoi(Field("acct:a1", "in_flight")), 3);
    if (round == 0) {
      EXPECT_EQ(got, 3);
    }
    // Free one slot per round by completing a leased job.
    auto leased = RunAsync(io_, store_->Lease("w", 1, 60s));
    ASSERT_TRUE(leased) << leased.error().Describe();
    ASSERT_EQ(leased->size(), 1u);
    CompleteRequest done{.job_id = (*leased)[0].id, .token = (*leased)[0].token};
    auto c = RunAsync(io_, store_->Complete(done));
    ASSERT_TRUE(c) << c.error().Describe();
    clock_->Advance(1s);
  }
  EXPECT_EQ(RaceDispatch(stores, 10), 1);  // the slot the last completion freed, once
  EXPECT_EQ(std::stoi(Field("acct:a1", "in_flight")), 3);
}

TEST_F(QueueTest, TokenBucketHoldsWithEightRacingDispatchers) {
  // 120 rpm: a bucket of 2 tokens. Providers count creates in a sliding minute, so what must
  // hold is: no 60 s window ever sees more than 120 dispatches, and the rate is still used.
  Sync(OneModel(
      {{.id = "a1", .provider = "p", .requests_per_minute = 120, .max_concurrent = 1000}}));
  for (int i = 0; i < 500; ++i) Submit("j" + std::to_string(i), "t1");
  std::vector<std::unique_ptr<JobStore>> stores;
  for (int i = 0; i < 8; ++i) stores.push_back(NewStore());
  std::vector<std::pair<int, int>> dispatched_at;  // (ms since start, jobs dispatched then)
  const int first = RaceDispatch(stores, 50);
  EXPECT_EQ(first, 2);  // the burst, and no more
  dispatched_at.emplace_back(0, first);
  for (int ms = 250; ms <= 180'000; ms += 250) {
    clock_->Advance(250ms);
    if (int n = RaceDispatch(stores, 50); n > 0) dispatched_at.emplace_back(ms, n);
  }
  int total = 0;
  for (size_t i = 0; i < dispatched_at.size(); ++i) {
    total += dispatched_at[i].second;
    int window = 0;
    for (size_t j = i;
         j < dispatched_at.size() && dispatched_at[j].first < dispatched_at[i].first + 60'000;
         ++j) {
      window += dispatched_at[j].second;
    }
    EXPECT_LE(window, 120) << "the minute from " << dispatched_at[i].first << " ms";
  }
  EXPECT_GE(total, 3 * 120 - 4) << "three minutes at 120 rpm left quota unused";
}

TEST_F(QueueTest, TenantSharesFollowWeightsOverAThousandDispatches) {
  QueueSettings s = OneModel(
      {{.id = "a1", .provider = "p", .requests_per_minute = 1e9, .max_concurrent = 100000}});
  s.tenant_weights = {{"gold", 3}, {"silver", 1}, {"bronze", 1}};
  Sync(s);
  for (int i = 0; i < 1000; ++i) {
    Submit("g" + std::to_string(i), "gold");
    Submit("s" + std::to_string(i), "silver");
    Submit("b" + std::to_string(i), "bronze");
  }
  // One job per call, as when capacity frees one slot at a time.
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(Dispatch(1), 1);
  std::map<std::string, int> by_tenant;
  auto leased = RunAsync(io_, store_->Lease("w", 1000, 60s));
  ASSERT_TRUE(leased);
  ASSERT_EQ(leased->size(), 1000u);
  for (auto& j : *leased) by_tenant[j.tenant]++;
  EXPECT_NEAR(by_tenant["gold"], 600, 30);
  EXPECT_NEAR(by_tenant["silver"], 200, 10);
  EXPECT_NEAR(by_tenant["bronze"], 200, 10);
}

TEST_F(QueueTest, RateLimitStormCoolsAccountAndMovesWork) {
  Sync(OneModel({{.id = "a1", .provider = "p", .requests_per_minute = 600, .max_concurrent = 4},
                 {.id = "a2", .provider = "p", .requests_per_minute = 600, .max_concurrent = 4}}));
  for (int i = 0; i < 8; ++i) Submit("j" + std::to_string(i), "t1");
  clock_->Advance(10s);
  ASSERT_EQ(Dispatch(), 8);
  auto leased = RunAsync(io_, store_->Lease("w", 8, 60s));
  ASSERT_TRUE(leased);
  ASSERT_EQ(leased->size(), 8u);
  int on_a1 = 0;
  for (auto& j : *leased) {
    if (j.account != "a1") continue;
    ++on_a1;
    FailRequest f{.job_id = j.id,
                  .token = j.token,
                  .category = ErrorCategory::kRateLimited,
                  .message = "429",
                  .retry = true,
                  .retry_at_ms = clock_->NowMs(),
                  .count_attempt = false,
                  .cooldown_ms = 30000};
    auto r = RunAsync(io_, store_->Fail(f));
    ASSERT_TRUE(r) << r.error().Describe();
    EXPECT_EQ(*r, FailOutcome::kRetrying);
  }
  ASSERT_EQ(on_a1, 4);
  // Free a2's slots so the retries have somewhere to go.
  for (auto& j : *leased) {
    if (j.account != "a2") continue;
    auto c = RunAsync(io_, store_->Complete({.job_id = j.id, .token = j.token}));
    ASSERT_TRUE(c) << c.error().Describe();
  }
  clock_->Advance(1s);
  auto reaped = RunAsync(io_, store_->Reap(100));
  ASSERT_TRUE(reaped);
  EXPECT_EQ(reaped->requeued_retries, 4);
  EXPECT_EQ(Dispatch(), 4);
  auto again = RunAsync(io_, store_->Lease("w", 8, 60s));
  ASSERT_TRUE(again);
  ASSERT_EQ(again->size(), 4u);
  for (auto& j : *again) {
    EXPECT_EQ(j.account, "a2");
    EXPECT_EQ(j.attempt, 1);  // a 429 is not the job's fault
  }
  EXPECT_EQ(Field("acct:a1", "in_flight"), "0");
}

// A sick account (its provider answering creates with 5xx) trips its breaker: the creates that
// fail together with a blip cool it for a second, each create sent after a failure and failing
// again doubles that (2 s, 4 s ...), so the retries go to the healthy account instead of using up
// their attempts on the sick one; a failure after the streak lapsed starts again at 1 s.
TEST_F(QueueTest, CreatesRefusedWithServerErrorsTripTheAccountsBreaker) {
  Sync(OneModel({{.id = "a1", .provider = "p", .requests_per_minute = 1e9, .max_concurrent = 8},
                 {.id = "a2", .provider = "p", .requests_per_minute = 1e9, .max_concurrent = 8}}));
  for (int i = 0; i < 16; ++i) Submit("j" + std::to_string(i), "t1");
  clock_->Advance(10s);
  ASSERT_EQ(Dispatch(), 16);
  auto leased = RunAsync(io_, store_->Lease("w", 16, 3600s));
  ASSERT_TRUE(leased);
  ASSERT_EQ(leased->size(), 16u);
  std::vector<LeasedJob> on_a1;
  for (auto& j : *leased) {
    if (j.account == "a1") on_a1.push_back(j);
  }
  ASSERT_EQ(on_a1.size(), 8u);
  auto send = [&](const LeasedJob& j) {
    auto permit =
        RunAsync(io_, store_->TakeCreatePermit(j.id, j.token, 0ms, clock_->NowMs(), j.attempt));
    ASSERT_TRUE(permit) << permit.error().Describe();
    ASSERT_EQ(permit->count(), 0);
  };
  auto fail = [&](const LeasedJob& j) {
    FailRequest f{.job_id = j.id,
                  .token = j.token,
                  .category = ErrorCategory::kRetryable,
                  .message = "500 internal error",
                  .retry = true,
                  .retry_at_ms = clock_->NowMs(),
                  .account_fault = true};
    auto r = RunAsync(io_, store_->Fail(f));
    EXPECT_TRUE(r) << r.error().Describe();
    if (!r) return int64_t{-1};
    return static_cast<int64_t>(std::stoll(Field("acct:a1", "cooldown_until"))) - clock_->NowMs();
  };
  // Four creates on their way when the provider blips: one second.
  for (int i = 0; i < 4; ++i) send(on_a1[i]);
  clock_->Advance(10ms);
  std::vector<int64_t> cooled;
  for (int i = 0; i < 4; ++i) cooled.push_back(fail(on_a1[i]));
  EXPECT_EQ(cooled, (std::vector<int64_t>{1000, 1000, 1000, 1000}));
  EXPECT_EQ(Field("acct:a2", "cooldown_until"), "");
  EXPECT_EQ(Field("acct:a1", "rate_limited"), "") << "a 5xx is not a 429";
  // The retries go to the healthy account while a1 cools.
  clock_->Advance(500ms);
  ASSERT_TRUE(RunAsync(io_, store_->Reap(100)));
  for (auto& j : *leased) {
    if (j.account == "a2") {
      ASSERT_TRUE(RunAsync(io_, store_->Complete({.job_id = j.id, .token = j.token})));
    }
  }
  EXPECT_EQ(Dispatch(), 4);
  auto again = RunAsync(io_, store_->Lease("w", 8, 3600s));
  ASSERT_TRUE(again);
  ASSERT_EQ(again->size(), 4u);
  for (auto& j : *again) EXPECT_EQ(j.account, "a2") << "a retry went back to the sick account";
  // Creates sent after a failure that fail again lengthen the streak.
  cooled.clear();
  for (int i = 4; i < 7; ++i) {
    clock_->Advance(10s);
    send(on_a1[i]);
    clock_->Advance(10ms);
    cooled.push_back(fail(on_a1[i]));
  }
  EXPECT_EQ(cooled, (std::vector<int64_t>{2000, 4000, 8000}));
  // Past the streak's window a failure is a blip again.
  clock_->Advance(150s);
  send(on_a1[7]);
  clock_->Advance(10ms);
  EXPECT_EQ(fail(on_a1[7]), 1000);
}

// A model removed from the configuration (its model and account gone) is no longer dispatched
// to: a job that allows another model goes there, and one left with no model that has an account
// ends FAILED saying so, instead of going to an account no worker runs or waiting for good.
TEST_F(QueueTest, AModelRemovedFromTheConfigIsNotDispatchedTo) {
  auto both = OneModel();
  both.models.push_back({.id = "m2", .accounts = {"a2"}});
  both.accounts.push_back(UnboundedAccount("a2"));
  Sync(both);
  Submit("either", "t1", {"m1", "m2"});
  Submit("only-m1", "t1", {"m1"});
  QueueSettings without_m1;
  without_m1.models.push_back({.id = "m2", .accounts = {"a2"}});
  without_m1.accounts.push_back(UnboundedAccount("a2"));
  Sync(without_m1);
  EXPECT_EQ(Dispatch(), 1);
  auto either = RunAsync(io_, store_->Get("either"));
  ASSERT_TRUE(either);
  EXPECT_EQ(either->state, JobState::kDispatched);
  EXPECT_EQ(either->model, "m2");
  auto orphan = RunAsync(io_, store_->Get("only-m1"));
  ASSERT_TRUE(orphan);
  EXPECT_EQ(orphan->state, JobState::kFailed);
  EXPECT_EQ(orphan->error_category, ErrorCategory::kFailedPrecondition);
  EXPECT_EQ(orphan->error_code, "no_account");
  EXPECT_NE(orphan->error_message.find("m1"), std::string::npos) << orphan->error_message;
}

// A job handed back with a retry time (a worker without its account's key) waits in `delayed`
// with its slot and task kept, and only the reaper puts it back in `ready` once that time comes:
// the worker that gave it up does not lease it straight back.
TEST_F(QueueTest, AHandBackWithARetryTimeWaitsUntilThen) {
  Sync(OneModel());
  Submit("x", "t1");
  ASSERT_EQ(Dispatch(), 1);
  auto leased = RunAsync(io_, store_->Lease("w", 8, 60s));
  ASSERT_TRUE(leased);
  ASSERT_EQ(leased->size(), 1u);
  const auto& j = (*leased)[0];
  // A create was sent (its intent recorded) whose answer was lost: the task may exist.
  ASSERT_TRUE(RunAsync(io_, store_->TakeCreatePermit(j.id, j.token, 0ms, clock_->NowMs(), 1)));
  ASSERT_TRUE(
      RunAsync(io_, store_->HandBack(j.id, j.token, "no key here", clock_->NowMs() + 5000)));
  auto again = RunAsync(io_, store_->Lease("w", 8, 60s));
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->empty()) << "leased straight back";
  // A stale copy of its id on `ready` (cancelled while DISPATCHED, then retried) does not lease
  // it before its time either.
  server_->Run({"LPUSH", "t:{q}:ready", "x"});
  again = RunAsync(io_, store_->Lease("w", 8, 60s));
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->empty()) << "a stale copy leased it before its retry time";
  EXPECT_EQ(Field("acct:a1", "in_flight"), "1") << "its slot was let go";
  clock_->Advance(6s);
  ASSERT_TRUE(RunAsync(io_, store_->Reap(100)));
  again = RunAsync(io_, store_->Lease("w", 8, 60s));
  ASSERT_TRUE(again);
  ASSERT_EQ(again->size(), 1u);
  EXPECT_EQ((*again)[0].id, "x");
}

// A cancelled job whose task may still be generating upstream (Kling, Sora and Veo have no
// cancel) keeps its account slot until the task would have ended by the model's latency
// profile: the provider still counts it, and the next job would meet its concurrency limit. A
// job cancelled before any create gives its slot back at once.
TEST_F(QueueTest, ACancelledJobsSlotIsHeldWhileItsTaskMayStillGenerate) {
  Sync(OneModel({{.id = "a1", .provider = "p", .requests_per_minute = 1e9, .max_concurrent = 1}}));
  Submit("x1", "t1");
  Submit("x2", "t1");
  ASSERT_EQ(Dispatch(), 1);
  auto leased = RunAsync(io_, store_->Lease("w", 8, 600s));
  ASSERT_TRUE(leased);
  ASSERT_EQ(leased->size(), 1u);
  const auto& x1 = (*leased)[0];
  ASSERT_TRUE(RunAsync(
      io_, store_->SetPhase(x1.id, x1.token, JobPhase::kGenerating, "task-1", "upstream task-1")));
  ASSERT_TRUE(RunAsync(io_, store_->Cancel(x1.id)));
  EXPECT_EQ(Field("acct:a1", "in_flight"), "1");
  EXPECT_EQ(Dispatch(), 0) << "the slot of a task still generating went to another job";
  clock_->Advance(100s);
  ASSERT_TRUE(RunAsync(io_, store_->Reap(100)));
  EXPECT_EQ(Dispatch(), 0);
  clock_->Advance(25s);  // past twice the model's latency estimate (60 s)
  ASSERT_TRUE(RunAsync(io_, store_->Reap(100)));
  EXPECT_EQ(Field("acct:a1", "in_flight"), "0");
  ASSERT_EQ(Dispatch(), 1);
  auto next = RunAsync(io_, store_->Lease("w", 8, 600s));
  ASSERT_TRUE(next);
  ASSERT_EQ(next->size(), 1u);
  ASSERT_TRUE(RunAsync(io_, store_->Cancel((*next)[0].id)));  // nothing created yet
  EXPECT_EQ(Field("acct:a1", "in_flight"), "0");
}

// A tenant's limits hold for RetryJob as they do at submit: a tenant at max_queued cannot put a
// failed job back in the queue past it (and so neither can RetryBatch, which stops there).
TEST_F(QueueTest, RetryIsHeldToTheTenantsLimits) {
  Sync(OneModel());
  server_->Run({"HSET", "t:{q}:auth:tenant:t1", "max_queued", "2"});
  Submit("x1", "t1");
  ASSERT_EQ(Dispatch(), 1);
  auto leased = RunAsync(io_, store_->Lease("w", 8, 600s));
  ASSERT_TRUE(leased);
  ASSERT_EQ(leased->size(), 1u);
  FailRequest f{.job_id = "x1",
                .token = (*leased)[0].token,
                .category = ErrorCategory::kPolicyRejected,
                .message = "no"};
  ASSERT_TRUE(RunAsync(io_, store_->Fail(f)));
  Submit("y1", "t1");
  Submit("y2", "t1");
  auto refused = RunAsync(io_, store_->Retry("x1"));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().category, ErrorCategory::kRateLimited);
  EXPECT_NE(refused.error().message.find("limit max_queued: tenant 't1' may have at most 2"),
            std::string::npos)
      << refused.error().message;
  auto still = RunAsync(io_, store_->Get("x1"));
  ASSERT_TRUE(still);
  EXPECT_EQ(still->state, JobState::kFailed);
  // Once the queued two are running, there is room again.
  ASSERT_EQ(Dispatch(), 2);
  ASSERT_TRUE(RunAsync(io_, store_->Lease("w", 8, 600s)));
  auto retried = RunAsync(io_, store_->Retry("x1"));
  EXPECT_TRUE(retried) << retried.error().Describe();
}

// A job cancelled, retried and cancelled again while its first task's slot is still held holds
// two slots (two tasks may be generating), and the reaper gives both back.
TEST_F(QueueTest, TwoHoldsOfOneJobAreBothGivenBack) {
  Sync(OneModel({{.id = "a1", .provider = "p", .requests_per_minute = 1e9, .max_concurrent = 2}}));
  Submit("x1", "t1");
  for (const char* task : {"task-1", "task-2"}) {
    ASSERT_EQ(Dispatch(), 1);
    auto leased = RunAsync(io_, store_->Lease("w", 8, 3600s));
    ASSERT_TRUE(leased);
    ASSERT_EQ(leased->size(), 1u);
    const auto& x1 = (*leased)[0];
    ASSERT_TRUE(RunAsync(io_, store_->SetPhase(x1.id, x1.token, JobPhase::kGenerating, task,
                                               std::string("upstream ") + task)));
    ASSERT_TRUE(RunAsync(io_, store_->Cancel(x1.id)));
    if (std::string(task) == "task-1") {
      ASSERT_TRUE(RunAsync(io_, store_->Retry(x1.id)));
    }
  }
  EXPECT_EQ(Field("acct:a1", "in_flight"), "2");
  clock_->Advance(130s);
  ASSERT_TRUE(RunAsync(io_, store_->Reap(100)));
  EXPECT_EQ(Field("acct:a1", "in_flight"), "0") << "a held slot was never given back";
}

// A job given up while its task may still generate (its finish deadline passed; a Kling, Sora or
// Veo task cannot be cancelled) holds its slot as a cancelled one does, here on an account whose
// id holds a '|' (the hold's member is "<slot>|<job>|<seq>": the reaper gives the slot back to
// that account, not to "a").
TEST_F(QueueTest, AFailedJobsSlotIsHeldWhileItsTaskMayStillGenerate) {
  Sync(OneModel({{.id = "a|1", .provider = "p", .requests_per_minute = 1e9, .max_concurrent = 1}}));
  Submit("x1", "t1");
  Submit("x2", "t1");
  ASSERT_EQ(Dispatch(), 1);
  auto leased = RunAsync(io_, store_->Lease("w", 8, 3600s));
  ASSERT_TRUE(leased);
  ASSERT_EQ(leased->size(), 1u);
  const auto& x1 = (*leased)[0];
  ASSERT_TRUE(RunAsync(
      io_, store_->SetPhase(x1.id, x1.token, JobPhase::kGenerating, "task-1", "upstream task-1")));
  FailRequest late{.job_id = x1.id,
                   .token = x1.token,
                   .category = ErrorCategory::kDeadlineExceeded,
                   .message = "the finish deadline passed while generating"};
  ASSERT_TRUE(RunAsync(io_, store_->Fail(late)));
  EXPECT_EQ(Field("acct:a|1", "in_flight"), "1");
  EXPECT_EQ(Dispatch(), 0) << "the slot of a task still generating went to another job";
  clock_->Advance(125s);
  ASSERT_TRUE(RunAsync(io_, store_->Reap(100)));
  EXPECT_EQ(Field("acct:a|1", "in_flight"), "0");
  EXPECT_EQ(server_->Run({"EXISTS", "t:{q}:acct:a"}).integer, 0);
  EXPECT_EQ(Dispatch(), 1);
}

// A model's `failed` counts the jobs that end FAILED, those whose retryable failure found no
// attempt left too (the usual end of a sick provider's jobs), and not a failure retried.
TEST_F(QueueTest, AModelsFailedCountIncludesJobsThatRanOutOfAttempts) {
  Sync(OneModel());
  for (int max_attempts : {5, 1}) {
    const std::string id = "x" + std::to_string(max_attempts);
    NewJob job{.id = id,
               .tenant = "t1",
               .spec_bytes = "spec",
               .candidate_models = {"m1"},
               .max_attempts = max_attempts};
    ASSERT_TRUE(RunAsync(io_, store_->Submit(job, 3600)));
    ASSERT_EQ(Dispatch(), 1);
    auto leased = RunAsync(io_, store_->Lease("w", 8, 3600s));
    ASSERT_TRUE(leased);
    ASSERT_EQ(leased->size(), 1u);
    FailRequest f{.job_id = id,
                  .token = (*leased)[0].token,
                  .category = ErrorCategory::kRetryable,
                  .message = "503",
                  .retry = true,
                  .retry_at_ms = clock_->NowMs() + 60'000};
    auto r = RunAsync(io_, store_->Fail(f));
    ASSERT_TRUE(r);
    if (max_attempts == 5) {
      EXPECT_EQ(*r, FailOutcome::kRetrying);
      EXPECT_EQ(Field("model:m1", "failed"), "") << "a retried failure is not a failed job";
    } else {
      EXPECT_EQ(*r, FailOutcome::kFailed);
      EXPECT_EQ(Field("model:m1", "failed"), "1");
    }
  }
}

TEST_F(QueueTest, StatsCountPendingIncludingRetries) {
  Sync(OneModel({{.id = "a1", .provider = "p", .requests_per_minute = 600, .max_concurrent = 1}}));
  for (int i = 0; i < 5; ++i) Submit("p" + std::to_string(i), "t" + std::to_string(i % 2));
  ASSERT_EQ(Dispatch(), 1);
  auto stats = RunAsync(io_, store_->GetStats());
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->Pending(), 4);
  auto leased = RunAsync(io_, store_->Lease("w", 1, 60s));
  ASSERT_TRUE(leased);
  ASSERT_EQ(leased->size(), 1u);
  FailRequest f{.job_id = (*leased)[0].id,
                .token = (*leased)[0].token,
                .category = ErrorCategory::kRetryable,
                .message = "503",
                .retry = true,
                .retry_at_ms = clock_->NowMs() + 60000};
  ASSERT_TRUE(RunAsync(io_, store_->Fail(f)));
  stats = RunAsync(io_, store_->GetStats());
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->delayed, 1);
  EXPECT_EQ(stats->Pending(), 5);  // the retry still counts as waiting
}

TEST_F(QueueTest, RateLimitLowersTheRateUntilTheAccountRecovers) {
  // 600 rpm: about 10 creates a second when healthy (the bucket refills at 591 a minute so that
  // no sliding minute sees more than 600, and dispatching once a second loses what overflows
  // the one-second bucket: 94 to 100 in ten seconds).
  Sync(OneModel(
      {{.id = "a1", .provider = "p", .requests_per_minute = 600, .max_concurrent = 100000}}));
  for (int i = 0; i < 3000; ++i) Submit("j" + std::to_string(i), "t1");
  auto per_ten_seconds = [&] {
    int n = 0;
    for (int s = 0; s < 10; ++s) {
      clock_->Advance(1s);
      n += Dispatch(1000);
    }
    return n;
  };
  const int healthy = per_ten_seconds();
  EXPECT_GE(healthy, 94);
  EXPECT_LE(healthy, 100);
  auto leased = RunAsync(io_, store_->Lease("w", 1, 60s));
  ASSERT_TRUE(leased);
  ASSERT_EQ(leased->size(), 1u);
  FailRequest f{.job_id = (*leased)[0].id,
                .token = (*leased)[0].token,
                .category = ErrorCategory::kRateLimited,
                .message = "429",
                .retry = true,
                .retry_at_ms = clock_->NowMs(),
                .count_attempt = false,
                .cooldown_ms = 1000};
  ASSERT_TRUE(RunAsync(io_, store_->Fail(f)));
  // Half the rate right after the 429 (plus the slow climb back: 10 rpm per minute).
  const int lowered = per_ten_seconds();
  EXPECT_GE(lowered, 40);
  EXPECT_LE(lowered, 55);
  // Ten minutes later the configured rate is back.
  clock_->Advance(600s);
  Dispatch(1000);  // spends the refilled bucket
  const int recovered = per_ten_seconds();
  EXPECT_GE(recovered, 94);
  EXPECT_LE(recovered, 100);
}

TEST_F(QueueTest, LongJobGoesOnlyToAModelThatCanMakeIt) {
  // Admission (tests/admission) narrows a 15 s `auto` job to the models that can make 15 s;
  // dispatch must keep to that list even when a faster model outside it is idle.
  QueueSettings s;
  s.models = {{.id = "short-fast", .accounts = {"a1"}, .latency_seed_seconds = 10},
              {.id = "long-slow", .accounts = {"a2"}, .latency_seed_seconds = 100}};
  s.accounts = {{.id = "a1", .provider = "p", .requests_per_minute = 600, .max_concurrent = 4},
                {.id = "a2", .provider = "q", .requests_per_minute = 600, .max_concurrent = 4}};
  Sync(s);
  Submit("long", "t1", {"long-slow"});
  Submit("either", "t1", {"long-slow", "short-fast"});
  ASSERT_EQ(Dispatch(), 2);
  auto leased = RunAsync(io_, store_->Lease("w", 2, 60s));
  ASSERT_TRUE(leased);
  ASSERT_EQ(leased->size(), 2u);
  for (auto& j : *leased) {
    const std::string want = j.id == "long" ? "long-slow" : "short-fast";  // earliest finish
    EXPECT_EQ(j.model, want) << j.id;
  }
}

TEST_F(QueueTest, KilledDispatcherMidBatchDispatchesEveryJobOnce) {
  Sync(OneModel(
      {{.id = "a1", .provider = "p", .requests_per_minute = 1e9, .max_concurrent = 1000}}));
  for (int i = 0; i < 200; ++i) Submit("j" + std::to_string(i), "t" + std::to_string(i % 3));
  // Scheduler A starts a round and its connection dies with the reply in flight; B carries on.
  auto a_conn = NewConnection();
  JobStore a(a_conn, "t", clock_);
  auto b = NewStore();
  auto fut = asio::co_spawn(io_, a.Dispatch(50, 16, 1), asio::use_future);
  io_.restart();
  io_.run_one_for(1ms);  // the script is on its way (or not): Redis runs it whole or not at all
  a_conn->Close();
  while (fut.wait_for(0s) != std::future_status::ready) io_.run_one_for(20ms);
  (void)fut.get();
  int rounds = 0;
  while (rounds++ < 100) {
    auto r = RunAsync(io_, b->Dispatch(7, 16, 1));
    ASSERT_TRUE(r);
    if (r->dispatched == 0) break;
  }
  auto leased = RunAsync(io_, store_->Lease("w", 1000, 60s));
  ASSERT_TRUE(leased);
  std::map<std::string, int> seen;
  for (auto& j : *leased) seen[j.id]++;
  EXPECT_EQ(seen.size(), 200u);
  for (auto& [id, n] : seen) EXPECT_EQ(n, 1) << id;
  EXPECT_EQ(server_->Run({"LLEN", "t:{q}:ready"}).integer, 0);
}

TEST_F(QueueTest, SubmitIsIdempotentAndCancelRemovesPendingWork) {
  Sync(OneModel({{.id = "a1", .provider = "p", .requests_per_minute = 600, .max_concurrent = 4}}));
  NewJob job{.id = "x1",
             .tenant = "t1",
             .idempotency_key = "k",
             .spec_bytes = "s",
             .candidate_models = {"m1"}};
  auto first = RunAsync(io_, store_->Submit(job, 3600));
  ASSERT_TRUE(first);
  job.id = "x2";
  auto second = RunAsync(io_, store_->Submit(job, 3600));
  ASSERT_TRUE(second);
  EXPECT_TRUE(second->duplicate);
  EXPECT_EQ(second->job_id, "x1");
  auto cancelled = RunAsync(io_, store_->Cancel("x1"));
  ASSERT_TRUE(cancelled) << cancelled.error().Describe();
  EXPECT_EQ(cancelled->previous_state, JobState::kPending);
  EXPECT_EQ(Dispatch(), 0);
  auto rec = RunAsync(io_, store_->Get("x1"));
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->state, JobState::kCancelled);
}

// Four callers submit 250 jobs each in one call at once (submit.lua, many per call), two
// tenants and two batches, the first 50 of each caller under idempotency keys every caller
// uses: each key is taken once, every new job is counted once per tenant, batch and state and
// has exactly one "submitted" event (the per-call `s` field expanded by ReadEventRange), and
// the fields a new record leaves out read back as their defaults.
TEST_F(QueueTest, RacingManyPerCallSubmitsKeepKeysCountersAndEvents) {
  Sync(OneModel({{.id = "a1", .provider = "p", .requests_per_minute = 600, .max_concurrent = 4}}));
  clock_->Set(1'800'000'000'000);
  constexpr int kCallers = 4, kPerCall = 250, kShared = 50;
  std::vector<std::unique_ptr<JobStore>> stores;
  std::vector<std::future<Result<std::vector<SubmitOutcome>>>> futures;
  for (int c = 0; c < kCallers; ++c) stores.push_back(NewStore());
  for (int c = 0; c < kCallers; ++c) {
    std::vector<NewJob> jobs;
    for (int i = 0; i < kPerCall; ++i) {
      NewJob job{.id = "c" + std::to_string(c) + "-" + std::to_string(i),
                 .tenant = i % 2 ? "ta" : "tb",
                 .batch = i % 3 ? "b1" : "b2",
                 .spec_bytes = "spec",
                 .candidate_models = {"m1"}};
      if (i < kShared) job.idempotency_key = "shared-" + std::to_string(i);
      jobs.push_back(std::move(job));
    }
    futures.push_back(asio::co_spawn(io_, stores[c]->SubmitMany(jobs, 3600), asio::use_future));
  }
  io_.restart();
  std::map<std::string, std::string> holder;  // idempotency key -> job id
  std::map<std::string, int> new_per_tenant, new_per_batch;
  int fresh = 0;
  for (int c = 0; c < kCallers; ++c) {
    while (futures[c].wait_for(0s) != std::future_status::ready) io_.run_one_for(20ms);
    auto r = futures[c].get();
    ASSERT_TRUE(r) << r.error().Describe();
    ASSERT_EQ(r->size(), static_cast<size_t>(kPerCall));
    for (int i = 0; i < kPerCall; ++i) {
      const auto& o = (*r)[i];
      ASSERT_FALSE(o.refused);
      if (i < kShared) {
        auto [it, first] = holder.emplace("shared-" + std::to_string(i), o.job_id);
        if (!first) {
          EXPECT_EQ(it->second, o.job_id) << "key shared-" << i;
        }
      }
      if (!o.duplicate) {
        ++fresh;
        ++new_per_tenant[i % 2 ? "ta" : "tb"];
        ++new_per_batch[i % 3 ? "b1" : "b2"];
      }
    }
  }
  EXPECT_EQ(fresh, kCallers * kPerCall - (kCallers - 1) * kShared);
  // A plain job is in its tenant's dispatch queue, not in state:PENDING (list.lua lists both).
  EXPECT_EQ(server_->Run({"EXISTS", "t:{q}:state:PENDING"}).integer, 0);
  EXPECT_EQ(server_->Run({"EXISTS", "t:{q}:jobs"}).integer, 0);  // list.lua merges tenants'
  EXPECT_EQ(server_->Run({"SCARD", "t:{q}:tenants"}).integer, 2);
  for (const auto& [tenant, n] : new_per_tenant) {
    EXPECT_EQ(Field("tlive:" + tenant, "PENDING"), std::to_string(n)) << tenant;
    EXPECT_EQ(server_->Run({"ZCARD", "t:{q}:pending:" + tenant}).integer, n) << tenant;
    // The tenant's index: one entry per call, counting its new jobs.
    EXPECT_EQ(server_->Run({"ZCARD", "t:{q}:tenant:" + tenant + ":calls"}).integer, kCallers)
        << tenant;
    int listed = 0;
    for (const auto& call :
         server_->Run({"ZRANGE", "t:{q}:tenant:" + tenant + ":calls", "0", "-1"}).elements) {
      listed += std::stoi(
          server_->Run({"HGET", "t:{q}:tenant:" + tenant + ":callids", "#" + call.str}).str);
    }
    EXPECT_EQ(listed, n) << tenant;
  }
  for (const auto& [batch, n] : new_per_batch) {
    auto counts = RunAsync(io_, store_->GetBatch(batch));
    ASSERT_TRUE(counts) << counts.error().Describe();
    EXPECT_EQ(counts->total, n) << batch;
    EXPECT_EQ(counts->Count(JobState::kPending), n) << batch;
  }
  EXPECT_EQ(Field("model:m1", "q_pending"), std::to_string(fresh));

  auto events = RunAsync(io_, store_->ReadEventRange("-", 100000));
  ASSERT_TRUE(events) << events.error().Describe();
  std::map<std::string, int> seen;
  for (const auto& ev : *events) {
    EXPECT_EQ(ev.seq, 1);
    EXPECT_EQ(ev.state, JobState::kPending);
    EXPECT_EQ(ev.at_ms, 1'800'000'000'000);
    EXPECT_EQ(ev.detail, "submitted");
    const int i = std::stoi(ev.job_id.substr(ev.job_id.find('-') + 1));
    EXPECT_EQ(ev.tenant, i % 2 ? "ta" : "tb") << ev.job_id;
    EXPECT_EQ(ev.batch, i % 3 ? "b1" : "b2") << ev.job_id;
    ++seen[ev.job_id];
  }
  EXPECT_EQ(seen.size(), static_cast<size_t>(fresh));
  for (const auto& [id, n] : seen) EXPECT_EQ(n, 1) << id;

  auto rec = RunAsync(io_, store_->Get(holder.at("shared-7")));
  ASSERT_TRUE(rec) << rec.error().Describe();
  EXPECT_EQ(rec->state, JobState::kPending);
  EXPECT_EQ(rec->attempt, 1);
  EXPECT_EQ(rec->created_ms, 1'800'000'000'000);
  EXPECT_EQ(rec->updated_ms, rec->created_ms);
  ASSERT_EQ(rec->history.size(), 1u);
  EXPECT_EQ(rec->history[0].seq, 1);
  EXPECT_EQ(rec->history[0].state, JobState::kPending);
  EXPECT_EQ(rec->history[0].at_ms, rec->created_ms);
  EXPECT_EQ(rec->history[0].detail, "submitted");
  // A job's first transition after submit is its seq 2; the synthesized entry stays first.
  ASSERT_EQ(Dispatch(), 4);
  auto dispatched = server_->Run({"ZRANGE", "t:{q}:state:DISPATCHED", "0", "0"});
  ASSERT_EQ(dispatched.elements.size(), 1u);
  auto moved = RunAsync(io_, store_->Get(dispatched.elements[0].str));
  ASSERT_TRUE(moved) << moved.error().Describe();
  ASSERT_EQ(moved->history.size(), 2u);
  EXPECT_EQ(moved->history[0].detail, "submitted");
  EXPECT_EQ(moved->history[1].seq, 2);
  EXPECT_EQ(moved->history[1].state, JobState::kDispatched);
}

TEST_F(QueueTest, FailWithoutRetryEndsFailedAndFreesTheSlot) {
  Sync(OneModel({{.id = "a1", .provider = "p", .requests_per_minute = 600, .max_concurrent = 1}}));
  Submit("f1", "t1");
  Submit("f2", "t1");
  ASSERT_EQ(Dispatch(), 1);
  auto leased = RunAsync(io_, store_->Lease("w", 1, 60s));
  ASSERT_TRUE(leased);
  ASSERT_EQ(leased->size(), 1u);
  FailRequest f{.job_id = (*leased)[0].id,
                .token = (*leased)[0].token,
                .category = ErrorCategory::kInvalidRequest,
                .message = "bad"};
  auto stale = f;
  stale.token = "999";
  EXPECT_FALSE(RunAsync(io_, store_->Fail(stale)));  // fencing
  auto r = RunAsync(io_, store_->Fail(f));
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, FailOutcome::kFailed);
  clock_->Advance(1s);
  EXPECT_EQ(Dispatch(), 1);
}

TEST_F(QueueTest, SlotIsGivenBackWhenTheUpstreamTaskEndsNotWhenTheClipIsStored) {
  Sync(OneModel({{.id = "a1", .provider = "p", .requests_per_minute = 600, .max_concurrent = 2}}));
  for (int i = 0; i < 3; ++i) Submit("s" + std::to_string(i), "t1");
  clock_->Advance(10s);
  ASSERT_EQ(Dispatch(), 2);
  auto leased = RunAsync(io_, store_->Lease("w", 2, 60s));
  ASSERT_TRUE(leased);
  ASSERT_EQ(leased->size(), 2u);
  const auto& first = (*leased)[0];
  const auto& second = (*leased)[1];
  auto generating =
      RunAsync(io_, store_->SetPhase(first.id, first.token, JobPhase::kGenerating, "u1", ""));
  ASSERT_TRUE(generating) << generating.error().Describe();
  EXPECT_EQ(Field("acct:a1", "in_flight"), "2");
  auto transferring = RunAsync(
      io_, store_->SetPhase(first.id, first.token, JobPhase::kTransferring, "", "storing"));
  ASSERT_TRUE(transferring) << transferring.error().Describe();
  EXPECT_EQ(Field("acct:a1", "in_flight"), "1");
  EXPECT_EQ(Dispatch(), 1);  // the third job takes the slot while the first one stores its clip
  EXPECT_EQ(Field("acct:a1", "in_flight"), "2");
  // Completing (or failing) the transferring job must not give its slot back a second time.
  auto done = RunAsync(io_, store_->Complete({.job_id = first.id, .token = first.token}));
  ASSERT_TRUE(done) << done.error().Describe();
  EXPECT_EQ(Field("acct:a1", "in_flight"), "2");
  auto failed = RunAsync(io_, store_->Fail({.job_id = second.id,
                                            .token = second.token,
                                            .category = ErrorCategory::kInvalidRequest,
                                            .message = "bad"}));
  ASSERT_TRUE(failed) << failed.error().Describe();
  EXPECT_EQ(Field("acct:a1", "in_flight"), "1");
}

TEST_F(QueueTest, CreateGateKeepsEverySlidingWindowWithinTheRate) {
  Sync(OneModel({{.id = "a1", .provider = "p", .requests_per_minute = 3, .max_concurrent = 10}}));
  for (int i = 0; i < 5; ++i) Submit("c" + std::to_string(i), "t1");
  // Dispatch is shaped by the bucket; let it hand out all five over a few minutes.
  std::vector<LeasedJob> jobs;
  for (int round = 0; round < 20 && jobs.size() < 5; ++round) {
    Dispatch();
    auto leased = RunAsync(io_, store_->Lease("w", 5, 600s));
    ASSERT_TRUE(leased);
    for (auto& j : *leased) jobs.push_back(j);
    clock_->Advance(30s);
  }
  ASSERT_EQ(jobs.size(), 5u);
  const auto guard = 500ms;
  auto take = [&](const LeasedJob& j) {
    auto r =
        RunAsync(io_, store_->TakeCreatePermit(j.id, j.token, guard, clock_->NowMs(), j.attempt));
    if (!r) throw std::runtime_error(r.error().Describe());
    return *r;
  };
  // Three creates are let go at t0, t0 + 6 s and t0 + 7 s; the first one's answer comes back
  // at t0 + 5 s, so the provider may have counted it as late as that. The fourth must wait
  // until the first answer leaves the 60.5 s window, and then exactly one more may go.
  const int64_t t0 = clock_->NowMs();
  EXPECT_EQ(take(jobs[0]).count(), 0);
  clock_->Advance(5s);
  auto answered =
      RunAsync(io_, store_->SetPhase(jobs[0].id, jobs[0].token, JobPhase::kGenerating, "u0", ""));
  ASSERT_TRUE(answered) << answered.error().Describe();
  clock_->Advance(1s);
  EXPECT_EQ(take(jobs[1]).count(), 0);
  clock_->Advance(1s);
  EXPECT_EQ(take(jobs[2]).count(), 0);
  auto wait = take(jobs[3]);
  EXPECT_EQ(clock_->NowMs() + wait.count(), t0 + 5'000 + 60'500 + 1);
  clock_->Advance(wait);
  EXPECT_EQ(take(jobs[3]).count(), 0);
  EXPECT_GT(take(jobs[4]).count(), 0);
  // A stale token is refused: a worker that lost the job cannot create for it.
  EXPECT_FALSE(
      RunAsync(io_, store_->TakeCreatePermit(jobs[4].id, "stale", guard, clock_->NowMs(), 1)));
}

// A corrupt queued record (here without its `models`) fails naming the field and leaves its
// queue; the round goes on and dispatches the other tenant's job. It stopped every round, for
// every tenant, before, with the jobs dispatched ahead of it written DISPATCHED but never put
// on `ready`.
TEST_F(QueueTest, ACorruptQueuedRecordFailsNamingItsFieldAndTheRoundGoesOn) {
  Sync(OneModel());
  Submit("j1", "t1");
  Submit("j2", "t2");
  server_->Run({"HDEL", "t:{q}:job:j2", "models"});
  auto round = RunAsync(io_, store_->Dispatch(16, 64, 1));
  ASSERT_TRUE(round) << round.error().Describe();
  EXPECT_EQ(round->dispatched, 1);
  EXPECT_EQ(Get("j1").state, JobState::kDispatched);
  auto ready = server_->Run({"LRANGE", "t:{q}:ready", "0", "-1"});
  ASSERT_EQ(ready.elements.size(), 1u);
  EXPECT_EQ(ready.elements[0].str, "j1");
  const JobRecord corrupt = Get("j2");
  EXPECT_EQ(corrupt.state, JobState::kFailed);
  EXPECT_NE(corrupt.error_message.find("corrupt record: no `models`"), std::string::npos)
      << corrupt.error_message;
  EXPECT_EQ(server_->Run({"ZCARD", "t:{q}:pending:t2"}).integer, 0);
  // A record without its `tenant` the same, and the tenant's counters are kept right.
  Submit("j3", "t2");
  server_->Run({"HDEL", "t:{q}:job:j3", "tenant"});
  round = RunAsync(io_, store_->Dispatch(16, 64, 1));
  ASSERT_TRUE(round) << round.error().Describe();
  EXPECT_EQ(Get("j3").state, JobState::kFailed);
  EXPECT_NE(Get("j3").error_message.find("corrupt record: no `tenant`"), std::string::npos);
  EXPECT_EQ(Field("tlive:t2", "PENDING"), "0");
}

// The reaper the same: a retry waiting out its backoff whose record lost its `tenant` (no queue
// to go back to) fails naming it; the rest of the reap is written (here a held slot given back:
// before, the reap stopped there, the slot's hold already removed and never given back).
TEST_F(QueueTest, ACorruptDelayedRetryFailsAndTheReapStillGivesBackHeldSlots) {
  Sync(OneModel({{.id = "a1", .provider = "p", .requests_per_minute = 1e9, .max_concurrent = 2}}));
  Submit("x1", "t1");
  Submit("x2", "t1");
  ASSERT_EQ(Dispatch(), 2);
  auto leased = RunAsync(io_, store_->Lease("w", 8, 3600s));
  ASSERT_TRUE(leased);
  ASSERT_EQ(leased->size(), 2u);
  for (const auto& j : *leased) {
    if (j.id == "x1") {  // cancelled while generating: its slot is held
      ASSERT_TRUE(RunAsync(io_, store_->SetPhase(j.id, j.token, JobPhase::kGenerating, "task-1",
                                                 "upstream task-1")));
      ASSERT_TRUE(RunAsync(io_, store_->Cancel(j.id)));
    } else {  // a retry after a backoff
      auto failed = RunAsync(io_, store_->Fail({.job_id = j.id,
                                                .token = j.token,
                                                .category = ErrorCategory::kRetryable,
                                                .message = "blip",
                                                .retry = true,
                                                .retry_at_ms = clock_->NowMs() + 5000}));
      ASSERT_TRUE(failed) << failed.error().Describe();
    }
  }
  ASSERT_EQ(server_->Run({"ZCARD", "t:{q}:delayed"}).integer, 1);
  ASSERT_EQ(server_->Run({"ZCARD", "t:{q}:slothold"}).integer, 1);
  EXPECT_EQ(Field("acct:a1", "in_flight"), "1");
  server_->Run({"HDEL", "t:{q}:job:x2", "tenant"});
  clock_->Advance(130s);
  auto reaped = RunAsync(io_, store_->Reap(100));
  ASSERT_TRUE(reaped) << reaped.error().Describe();
  EXPECT_EQ(Field("acct:a1", "in_flight"), "0") << "the held slot was never given back";
  EXPECT_EQ(server_->Run({"ZCARD", "t:{q}:delayed"}).integer, 0);
  const JobRecord corrupt = Get("x2");
  EXPECT_EQ(corrupt.state, JobState::kFailed);
  EXPECT_NE(corrupt.error_message.find("corrupt record: no `tenant`"), std::string::npos)
      << corrupt.error_message;
}

// A job dispatched to an account just before the account was cooled (another job's create was
// answered 429) does not send its create into the cooldown, where the provider would refuse it
// and the job would spend an attempt: its permit waits out the cooldown, then is granted.
TEST_F(QueueTest, CreateGateWaitsOutTheAccountsCooldown) {
  Sync(
      OneModel({{.id = "a1", .provider = "p", .requests_per_minute = 6000, .max_concurrent = 10}}));
  Submit("c0", "t1");
  Submit("c1", "t1");
  ASSERT_EQ(Dispatch(), 2);
  auto leased = RunAsync(io_, store_->Lease("w", 2, 600s));
  ASSERT_TRUE(leased) << leased.error().Describe();
  ASSERT_EQ(leased->size(), 2u);
  const LeasedJob& cooled = (*leased)[0];
  const LeasedJob& waiting = (*leased)[1];
  auto take = [&](const LeasedJob& j) {
    auto r =
        RunAsync(io_, store_->TakeCreatePermit(j.id, j.token, 0ms, clock_->NowMs(), j.attempt));
    if (!r) throw std::runtime_error(r.error().Describe());
    return *r;
  };
  ASSERT_EQ(take(cooled).count(), 0);
  auto failed = RunAsync(io_, store_->Fail({.job_id = cooled.id,
                                            .token = cooled.token,
                                            .category = ErrorCategory::kRateLimited,
                                            .message = "429",
                                            .retry = true,
                                            .retry_at_ms = clock_->NowMs() + 30'000,
                                            .count_attempt = false,
                                            .cooldown_ms = 30'000,
                                            .create_answered = true}));
  ASSERT_TRUE(failed) << failed.error().Describe();
  const int64_t until = std::stoll(Field("acct:a1", "cooldown_until"));
  ASSERT_EQ(until, clock_->NowMs() + 30'000);
  // The rate has room for thousands more; only the cooldown holds the create back.
  EXPECT_EQ(take(waiting).count(), 30'000);
  clock_->Advance(12s);
  EXPECT_EQ(take(waiting).count(), until - clock_->NowMs());
  EXPECT_EQ(take(waiting).count(), 18'000);
  clock_->Advance(18s);
  EXPECT_EQ(take(waiting).count(), 0);
}

// A provider that reports its own charge for a task settles a billed job at no more than the
// job's hold (the tenant's quote), and its own figure stays on the job for an operator; a charge
// below the hold settles at the charge and refunds the rest.
TEST_F(QueueTest, AProviderChargeSettlesABilledJobAtNoMoreThanItsHold) {
  auto settings = OneModel();
  settings.models[0].price_micros_per_second = 100'000;
  Sync(settings);
  ASSERT_NO_FATAL_FAILURE(TopUp(10'000'000));
  for (const std::string id : {"over", "under"}) {
    NewJob job{.id = id,
               .tenant = "studio",
               .spec_bytes = "spec",
               .candidate_models = {"m1"},
               .bill = true,
               .billed_seconds = 5};
    auto r = RunAsync(io_, store_->Submit(job, 3600));
    ASSERT_TRUE(r) << r.error().Describe();
  }
  ASSERT_EQ(Dispatch(), 2);
  auto leased = RunAsync(io_, store_->Lease("w", 2, 600s));
  ASSERT_TRUE(leased) << leased.error().Describe();
  ASSERT_EQ(leased->size(), 2u);
  std::map<std::string, LeasedJob> jobs;
  for (const auto& j : *leased) jobs[j.id] = j;
  ASSERT_EQ(Get("over").reserved_micros, 500'000);  // 5 s at $0.10
  ASSERT_EQ(Wallet().balance_micros, 9'000'000);
  ASSERT_EQ(Wallet().reserved_micros, 1'000'000);

  auto over = RunAsync(io_, store_->Complete({.job_id = "over",
                                              .token = jobs["over"].token,
                                              .clip_seconds = 5,
                                              .charge_micros = 800'000}));
  ASSERT_TRUE(over) << over.error().Describe();
  const JobRecord settled = Get("over");
  EXPECT_EQ(settled.state, JobState::kSucceeded);
  EXPECT_EQ(settled.cost_micros, 500'000);
  EXPECT_EQ(settled.reserved_micros, 0);
  EXPECT_EQ(settled.provider_charge_micros, 800'000);
  ASSERT_FALSE(settled.history.empty());
  EXPECT_NE(settled.history.back().detail.find("$0.800000"), std::string::npos)
      << settled.history.back().detail;
  WalletView w = Wallet();
  EXPECT_EQ(w.balance_micros, 9'000'000);  // the hold spent, nothing more taken
  EXPECT_EQ(w.reserved_micros, 500'000);
  EXPECT_EQ(w.spent_micros, 500'000);

  auto under = RunAsync(io_, store_->Complete({.job_id = "under",
                                               .token = jobs["under"].token,
                                               .clip_seconds = 5,
                                               .charge_micros = 300'000}));
  ASSERT_TRUE(under) << under.error().Describe();
  EXPECT_EQ(Get("under").cost_micros, 300'000);
  EXPECT_EQ(Get("under").provider_charge_micros, 300'000);
  w = Wallet();
  EXPECT_EQ(w.balance_micros, 9'200'000);  // 200'000 of the hold refunded
  EXPECT_EQ(w.reserved_micros, 0);
  EXPECT_EQ(w.spent_micros, 800'000);
  EXPECT_EQ(w.balance_micros + w.reserved_micros + w.spent_micros, w.topped_up_micros);
}

// A round that finds no free slot anywhere stops at the first job it has to hold, instead of
// reading `depth` job records of the tenant's queue for nothing (every freed slot runs a round).
TEST_F(QueueTest, ARoundWithNoFreeSlotAnywhereStopsAtTheFirstHeldJob) {
  Sync(OneModel({{.id = "a1", .provider = "p", .requests_per_minute = 1e9, .max_concurrent = 1}}));
  for (int i = 0; i < 100; ++i) Submit("j" + std::to_string(i), "t1");
  auto first = RunAsync(io_, store_->Dispatch(16, 64, 1));
  ASSERT_TRUE(first) << first.error().Describe();
  EXPECT_EQ(first->dispatched, 1);
  server_->ResetStats();
  auto second = RunAsync(io_, store_->Dispatch(16, 64, 1));
  ASSERT_TRUE(second) << second.error().Describe();
  EXPECT_EQ(second->dispatched, 0);
  // One job record read (the head, held), not 64; the account, the model and the tenant's
  // wallet once each.
  const std::string hmget = server_->InfoField("cmdstat_hmget", "commandstats").value_or("");
  ASSERT_EQ(hmget.rfind("calls=", 0), 0u) << hmget;
  EXPECT_LE(std::stoi(hmget.substr(6)), 4) << hmget;
  EXPECT_EQ(server_->Run({"ZCARD", "t:{q}:pending:t1"}).integer, 99);
}

// The same when the catalogue has another model with free slots that no queued job asks for (its
// `q_pending` is 0): bench/scale's deployment (the noop model full, the simulator's models idle)
// read 64 held job records in every round of a deep queue before.
QueueSettings BusyModelAndAnIdleOne() {
  QueueSettings s;
  s.accounts = {{.id = "a1", .provider = "p", .requests_per_minute = 1e9, .max_concurrent = 1},
                {.id = "a2", .provider = "p", .requests_per_minute = 1e9, .max_concurrent = 1000}};
  s.models = {ModelSetting{.id = "m1", .accounts = {"a1"}},
              ModelSetting{.id = "m2", .accounts = {"a2"}}};
  return s;
}

TEST_F(QueueTest, ARoundStopsAtTheFirstHeldJobWhenOnlyModelsNoJobAsksForAreFree) {
  Sync(BusyModelAndAnIdleOne());
  for (int i = 0; i < 100; ++i) Submit("j" + std::to_string(i), "t1");
  ASSERT_EQ(Dispatch(16), 1);
  server_->ResetStats();
  ASSERT_EQ(Dispatch(16), 0);
  // The held head's record, a1, m1 and m2 (whose q_pending says no job waits for it), the
  // wallet: not 16 job records (the scan depth).
  const std::string hmget = server_->InfoField("cmdstat_hmget", "commandstats").value_or("");
  ASSERT_EQ(hmget.rfind("calls=", 0), 0u) << hmget;
  EXPECT_LE(std::stoi(hmget.substr(6)), 6) << hmget;
}

// What the scan is for: a job behind held ones whose model has a free slot still goes in the
// same round, when its model is in the catalogue alongside full ones.
TEST_F(QueueTest, AJobBehindHeldOnesGoesWhenItsModelHasAFreeSlot) {
  Sync(BusyModelAndAnIdleOne());
  for (int i = 0; i < 5; ++i) Submit("j" + std::to_string(i), "t1");
  const std::string other = Submit("other", "t1", {"m2"});
  for (int i = 5; i < 10; ++i) Submit("j" + std::to_string(i), "t1");
  ASSERT_EQ(Dispatch(16), 2);  // j0 on a1, and `other` on a2 past the held j1..j4
  auto rec = RunAsync(io_, store_->Get(other));
  ASSERT_TRUE(rec) << rec.error().Describe();
  EXPECT_EQ(rec->state, JobState::kDispatched);
  EXPECT_EQ(Dispatch(16), 0);
}

// The queue head is read in pages (8 ids, then 32, 128, ...): a free slot's job deep in the scan
// window is still found, and one past the window is not, however the pages fall.
TEST_F(QueueTest, AJobDeepBehindHeldOnesIsFoundWithinTheScanDepthNotPastIt) {
  Sync(BusyModelAndAnIdleOne());
  // Ids that sort in submit order: jobs submitted in one millisecond tie on their score and
  // queue by id.
  auto id = [](char group, int i) {
    return std::string(1, group) + (i < 10 ? "0" : "") + std::to_string(i);
  };
  for (int i = 0; i < 45; ++i) Submit(id('a', i), "t1");
  const std::string within = Submit("b-within", "t1", {"m2"});  // 46th: the third page
  for (int i = 0; i < 25; ++i) Submit(id('c', i), "t1");
  const std::string past = Submit("d-past", "t1", {"m2"});  // 72nd: past a depth of 64
  auto round = RunAsync(io_, store_->Dispatch(16, 64, 1));
  ASSERT_TRUE(round) << round.error().Describe();
  EXPECT_EQ(round->dispatched, 2);  // a00 on a1 and `within` on a2
  auto rec = RunAsync(io_, store_->Get(within));
  ASSERT_TRUE(rec) << rec.error().Describe();
  EXPECT_EQ(rec->state, JobState::kDispatched);
  rec = RunAsync(io_, store_->Get(past));
  ASSERT_TRUE(rec) << rec.error().Describe();
  EXPECT_EQ(rec->state, JobState::kPending);
  EXPECT_EQ(server_->Run({"ZCARD", "t:{q}:pending:t1"}).integer, 70);
  // The tenant's queue is not empty, so it stays active; a deeper scan finds `past`.
  EXPECT_EQ(server_->Run({"ZSCORE", "t:{q}:active", "t1"}).IsNil(), false);
  round = RunAsync(io_, store_->Dispatch(16, 128, 1));
  ASSERT_TRUE(round) << round.error().Describe();
  EXPECT_EQ(round->dispatched, 1);
  rec = RunAsync(io_, store_->Get(past));
  ASSERT_TRUE(rec) << rec.error().Describe();
  EXPECT_EQ(rec->state, JobState::kDispatched);
}

// A model whose every account cools down (a breaker, a 429 storm) holds its jobs without them
// counting against the scan depth: 70 jobs pinned to m1, its only account cooling, do not hide
// the tenant's m2 job behind them. Reading past such jobs is bounded (16 x the depth).
TEST_F(QueueTest, JobsForACoolingModelDoNotHideTheTenantsOtherJobs) {
  Sync(BusyModelAndAnIdleOne());
  auto id = [](int i) { return std::string("a") + (i < 10 ? "0" : "") + std::to_string(i); };
  for (int i = 0; i < 70; ++i) Submit(id(i), "t1");
  const std::string other = Submit("b-other", "t1", {"m2"});  // 71st
  server_->Run(
      {"HSET", "t:{q}:acct:a1", "cooldown_until", std::to_string(clock_->NowMs() + 60'000)});
  // A depth of 4 reads at most 64 jobs past the cooling ones: `other` is not reached.
  auto round = RunAsync(io_, store_->Dispatch(16, 4, 1));
  ASSERT_TRUE(round) << round.error().Describe();
  EXPECT_EQ(round->dispatched, 0);
  EXPECT_EQ(Get(other).state, JobState::kPending);
  round = RunAsync(io_, store_->Dispatch(16, 64, 1));
  ASSERT_TRUE(round) << round.error().Describe();
  EXPECT_EQ(round->dispatched, 1);
  EXPECT_EQ(Get(other).state, JobState::kDispatched);
  EXPECT_EQ(Get(id(0)).state, JobState::kPending);
  EXPECT_EQ(server_->Run({"ZCARD", "t:{q}:pending:t1"}).integer, 70);
}

// Reading past a cooling model's jobs is bounded for the whole round, not for each tenant: with
// four tenants each queueing 1,100 jobs pinned to a cooling m1, one round reads about 16 x the
// depth job records in all (plus each tenant's depth), not 16 x the depth of each tenant.
TEST_F(QueueTest, ReadingPastACoolingModelsJobsIsBoundedForTheWholeRound) {
  Sync(BusyModelAndAnIdleOne());
  for (int t = 0; t < 4; ++t) {
    std::vector<NewJob> jobs;
    for (int i = 0; i < 1100; ++i) {
      jobs.push_back(NewJob{.id = "t" + std::to_string(t) + "-" + std::to_string(10000 + i),
                            .tenant = "t" + std::to_string(t),
                            .spec_bytes = "spec",
                            .candidate_models = {"m1"}});
    }
    auto r = RunAsync(io_, store_->SubmitMany(std::move(jobs), 3600));
    ASSERT_TRUE(r) << r.error().Describe();
  }
  const std::string other = Submit("u-other", "u", {"m2"});
  server_->Run(
      {"HSET", "t:{q}:acct:a1", "cooldown_until", std::to_string(clock_->NowMs() + 60'000)});
  server_->ResetStats();
  auto round = RunAsync(io_, store_->Dispatch(16, 64, 1));
  ASSERT_TRUE(round) << round.error().Describe();
  EXPECT_EQ(round->dispatched, 1);
  EXPECT_EQ(Get(other).state, JobState::kDispatched);
  const std::string hgetall = server_->InfoField("cmdstat_hgetall", "commandstats").value_or("");
  ASSERT_EQ(hgetall.rfind("calls=", 0), 0u) << hgetall;
  // 16 x 64 passed in the round, and up to 64 more a tenant counted against its depth.
  EXPECT_LE(std::stoi(hgetall.substr(6)), 16 * 64 + 5 * 64 + 16) << hgetall;
}

// A tenant whose queue was empty starts 64 jobs (at weight 1) before the global virtual clock
// (common.lua ACTIVATION_CREDIT): a small batch arriving behind a big one goes first for that
// many dispatches, then the two share equally; the big tenant is never held back for longer.
TEST_F(QueueTest, ANewlyActiveTenantGoesFirstForItsCreditThenSharesEqually) {
  Sync(OneModel());
  for (int i = 0; i < 300; ++i) Submit("big" + std::to_string(i), "big");
  // The big tenant had its own credit when it arrived: past it, the global clock is its own.
  for (int i = 0; i < 100; ++i) ASSERT_EQ(Dispatch(1), 1);
  for (int i = 0; i < 150; ++i) Submit("small" + std::to_string(i), "small");
  std::vector<std::string> order;
  for (int i = 0; i < 128; ++i) {
    ASSERT_EQ(Dispatch(1), 1);
    auto leased = RunAsync(io_, store_->Lease("w", 10, 60s));
    ASSERT_TRUE(leased) << leased.error().Describe();
    for (const auto& j : *leased) order.push_back(j.tenant);
  }
  // The 100 big jobs dispatched before the small tenant arrived come first in the lease order.
  ASSERT_EQ(order.size(), 228u);
  std::vector<std::string> after(order.begin() + 100, order.end());
  EXPECT_EQ(std::count(after.begin(), after.begin() + 64, "small"), 64);
  const auto small = std::count(after.begin(), after.end(), "small");
  EXPECT_NEAR(small, 96, 2) << "then equal shares";
}

// A tenant that stayed active while its jobs could not go (all pinned to a model whose one slot
// was busy) keeps no lag from that time: when it submits work that can go, it gets the credit a
// newly active tenant gets, and then shares, instead of every dispatch until its clock catches
// up with the one that kept dispatching.
TEST_F(QueueTest, ATenantBlockedForLongGetsOnlyTheActivationCreditWhenItsJobsCanGo) {
  auto settings = OneModel();
  settings.models.push_back({.id = "m2", .accounts = {"a2"}});
  auto busy = UnboundedAccount("a2");
  busy.max_concurrent = 1;
  settings.accounts.push_back(busy);
  Sync(settings);
  Submit("a-pin", "A", {"m2"});
  ASSERT_EQ(Dispatch(1), 1);
  Submit("a-wait", "A", {"m2"});  // A stays active, its only job waiting for m2's slot
  for (int i = 0; i < 300; ++i) Submit("b" + std::to_string(i), "B");
  for (int i = 0; i < 200; ++i) ASSERT_EQ(Dispatch(1), 1);
  ASSERT_TRUE(RunAsync(io_, store_->Lease("w", 1000, 60s)));
  for (int i = 0; i < 100; ++i) Submit("a" + std::to_string(i), "A");
  std::vector<std::string> order;
  for (int i = 0; i < 100; ++i) {
    ASSERT_EQ(Dispatch(1), 1);
    auto leased = RunAsync(io_, store_->Lease("w", 100, 60s));
    ASSERT_TRUE(leased) << leased.error().Describe();
    for (const auto& j : *leased) order.push_back(j.tenant);
  }
  ASSERT_EQ(order.size(), 100u);
  const auto first_b = std::find(order.begin(), order.end(), "B") - order.begin();
  EXPECT_LE(first_b, 66) << "A's lag from its blocked time took every dispatch";
  EXPECT_GE(std::count(order.begin(), order.end(), "B"), 10);
}

// tenants.activation_credit (synced into Redis) sets the head start of a newly active tenant:
// 100 jobs of `big` (30 dispatched), then 40 of `small`; returns the tenants of the next 40
// dispatches in order.
class ActivationCreditTest : public QueueTest {
 protected:
  std::vector<std::string> OrderAfterSmallArrives(int credit) {
    auto settings = OneModel();
    settings.activation_credit = credit;
    Sync(settings);
    for (int i = 0; i < 100; ++i) Submit("big" + std::to_string(i), "big");
    for (int i = 0; i < 30; ++i) EXPECT_EQ(Dispatch(1), 1);
    for (int i = 0; i < 40; ++i) Submit("small" + std::to_string(i), "small");
    std::vector<std::string> order;
    for (int i = 0; i < 70; ++i) {
      EXPECT_EQ(Dispatch(1), 1);
      auto leased = RunAsync(io_, store_->Lease("w", 100, 60s));
      EXPECT_TRUE(leased) << leased.error().Describe();
      if (leased) {
        for (const auto& j : *leased) order.push_back(j.tenant);
      }
    }
    // The first 30 are big's, dispatched before small arrived.
    EXPECT_EQ(order.size(), 100u);
    return {order.begin() + 30, order.begin() + 70};
  }
};

TEST_F(ActivationCreditTest, WithNoCreditANewTenantSharesEquallyFromItsFirstJob) {
  const auto after = OrderAfterSmallArrives(0);
  EXPECT_NEAR(std::count(after.begin(), after.begin() + 10, "small"), 5, 1);
  EXPECT_NEAR(std::count(after.begin(), after.end(), "small"), 20, 1);
}

TEST_F(ActivationCreditTest, WithACreditOfTenItsFirstTenGoFirstThenShares) {
  const auto after = OrderAfterSmallArrives(10);
  EXPECT_EQ(std::count(after.begin(), after.begin() + 10, "small"), 10);
  EXPECT_NEAR(std::count(after.begin(), after.end(), "small"), 25, 1);
}

}  // namespace
}  // namespace reelq::queue
