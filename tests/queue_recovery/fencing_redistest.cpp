// Lease recovery against a real redis-server: heartbeats keep a lease, a reaped lease's token
// is refused everywhere (fencing), and a repeated idempotency key returns the same job.
#include <gtest/gtest.h>

#include <thread>

#include "../redis_conn/run_async.h"
#include "redis_server.h"
#include "reelq/common/clock.h"
#include "reelq/common/redis.h"
#include "reelq/queue/job_store.h"

namespace reelq::queue {
namespace {

using namespace std::chrono_literals;
using testing::RedisServer;
using testing::RunAsync;

struct Fixture {
  RedisServer server;
  asio::io_context io;
  std::shared_ptr<ManualClock> clock = std::make_shared<ManualClock>();
  std::unique_ptr<JobStore> store;

  Fixture() {
    auto connected = RunAsync(io, redis::Connect(io.get_executor(), server.ClientOptions()));
    if (!connected) throw std::runtime_error(connected.error().Describe());
    store = std::make_unique<JobStore>(std::move(*connected), "rq", clock);
    QueueSettings settings;
    ModelSetting model;
    model.id = "m";
    model.accounts = {"a"};
    settings.models.push_back(model);
    AccountSetting account;
    account.id = "a";
    account.provider = "sim";
    account.requests_per_minute = 6000;
    account.max_concurrent = 10;
    settings.accounts.push_back(account);
    auto synced = RunAsync(io, store->SyncSettings(settings));
    if (!synced) throw std::runtime_error(synced.error().Describe());
  }

  NewJob Job(std::string id, std::string key = "") {
    NewJob job;
    job.id = std::move(id);
    job.tenant = "t";
    job.batch = "b";
    job.idempotency_key = std::move(key);
    job.spec_bytes = "spec";
    job.candidate_models = {"m"};
    job.max_attempts = 3;
    return job;
  }

  LeasedJob SubmitAndLease(const std::string& id, const std::string& worker) {
    auto submitted = RunAsync(io, store->Submit(Job(id), 3600));
    EXPECT_TRUE(submitted) << submitted.error().Describe();
    auto dispatched = RunAsync(io, store->Dispatch(10, 100, 1));
    EXPECT_TRUE(dispatched) << dispatched.error().Describe();
    auto leased = RunAsync(io, store->Lease(worker, 1, 5s));
    EXPECT_TRUE(leased) << leased.error().Describe();
    if (!leased || leased->empty()) throw std::runtime_error("nothing leased");
    return leased->front();
  }
};

TEST(QueueRecoveryTest, CreateIntentSurvivesTheLeaseAndUpstreamTasksHaveOneOwner) {
  Fixture f;
  LeasedJob first = f.SubmitAndLease("job-i", "w1");
  EXPECT_EQ(first.create_intent_ms, 0);
  // The worker records the create it is about to send, then dies before storing the answer.
  ASSERT_TRUE(RunAsync(f.io, f.store->TakeCreatePermit(first.id, first.token, 0ms, 1234567, 1)));
  // A stale token cannot record one.
  auto stale = RunAsync(f.io, f.store->TakeCreatePermit(first.id, "nope", 0ms, 1, 1));
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.error().category, ErrorCategory::kLeaseLost);
  f.clock->Advance(6s);
  ASSERT_TRUE(RunAsync(f.io, f.store->Reap(100)));
  auto again = RunAsync(f.io, f.store->Lease("w2", 1, 5s));
  ASSERT_TRUE(again && again->size() == 1u);
  const LeasedJob second = again->front();
  EXPECT_EQ(second.create_intent_ms, 1234567);  // the next worker knows to look first
  EXPECT_EQ(second.attempt, 1);

  // Storing the upstream id clears the intent and claims the task for this job.
  ASSERT_TRUE(RunAsync(f.io, f.store->SetPhase(second.id, second.token, JobPhase::kGenerating,
                                               "task-9", "upstream task-9")));
  // Another job (same account) cannot store the same upstream task.
  LeasedJob other = f.SubmitAndLease("job-j", "w1");
  auto owned =
      RunAsync(f.io, f.store->SetPhase(other.id, other.token, JobPhase::kGenerating, "task-9", ""));
  ASSERT_FALSE(owned);
  EXPECT_EQ(owned.error().category, ErrorCategory::kFailedPrecondition);
  EXPECT_NE(owned.error().message.find("job-i"), std::string::npos) << owned.error().message;
  // Storing it again for its owner is fine (a retried write after a Redis restart).
  EXPECT_TRUE(RunAsync(
      f.io, f.store->SetPhase(second.id, second.token, JobPhase::kGenerating, "task-9", "")));
  f.clock->Advance(6s);
  ASSERT_TRUE(RunAsync(f.io, f.store->Reap(100)));
  auto third = RunAsync(f.io, f.store->Lease("w3", 2, 5s));
  ASSERT_TRUE(third);
  bool saw = false;
  for (const auto& j : *third) {
    if (j.id != "job-i") continue;
    saw = true;
    EXPECT_EQ(j.upstream, "task-9");
    EXPECT_EQ(j.create_intent_ms, 0);
    // A failed attempt clears an intent too.
    ASSERT_TRUE(RunAsync(f.io, f.store->TakeCreatePermit(j.id, j.token, 0ms, 42, j.attempt)));
    FailRequest fail;
    fail.job_id = j.id;
    fail.token = j.token;
    fail.category = ErrorCategory::kRetryable;
    fail.message = "x";
    fail.retry = true;
    fail.count_attempt = true;
    ASSERT_TRUE(RunAsync(f.io, f.store->Fail(fail)));
    auto record = RunAsync(f.io, f.store->Get(j.id));
    ASSERT_TRUE(record);
    EXPECT_EQ(record->attempt, 2);
  }
  EXPECT_TRUE(saw);
}

TEST(QueueRecoveryTest, HeartbeatKeepsLeaseAndReapedTokenIsFenced) {
  Fixture f;
  LeasedJob first = f.SubmitAndLease("job-1", "w1");
  ASSERT_FALSE(first.token.empty());

  // Heartbeats every 3 s keep the 5 s lease alive across 12 s: the reaper takes nothing.
  for (int i = 0; i < 4; ++i) {
    f.clock->Advance(3s);
    auto beat = RunAsync(f.io, f.store->Heartbeat("w1", 0, 5s));
    ASSERT_TRUE(beat) << beat.error().Describe();
    EXPECT_FALSE(beat->lease_lost);
    EXPECT_TRUE(beat->cancelled.empty());
    auto reaped = RunAsync(f.io, f.store->Reap(100));
    ASSERT_TRUE(reaped) << reaped.error().Describe();
  }
  auto held = RunAsync(f.io, f.store->Get(first.id));
  ASSERT_TRUE(held);
  EXPECT_EQ(held->worker, "w1");

  // No heartbeat past the lease: reaped, dispatched again, leased by w2 with a new token.
  f.clock->Advance(6s);
  ASSERT_TRUE(RunAsync(f.io, f.store->Reap(100)));
  ASSERT_TRUE(RunAsync(f.io, f.store->Dispatch(10, 100, 1)));
  auto second = RunAsync(f.io, f.store->Lease("w2", 1, 5s));
  ASSERT_TRUE(second) << second.error().Describe();
  ASSERT_EQ(second->size(), 1u);
  EXPECT_EQ(second->front().id, first.id);
  EXPECT_NE(second->front().token, first.token);

  // The stale token is refused by phase, complete and fail; its heartbeat reports the loss.
  auto phase =
      RunAsync(f.io, f.store->SetPhase(first.id, first.token, JobPhase::kGenerating, "up-1", ""));
  ASSERT_FALSE(phase);
  EXPECT_EQ(phase.error().category, ErrorCategory::kLeaseLost);
  CompleteRequest complete;
  complete.job_id = first.id;
  complete.token = first.token;
  complete.output_key = "stale.mp4";
  auto completed = RunAsync(f.io, f.store->Complete(complete));
  ASSERT_FALSE(completed);
  EXPECT_EQ(completed.error().category, ErrorCategory::kLeaseLost);
  FailRequest fail;
  fail.job_id = first.id;
  fail.token = first.token;
  fail.category = ErrorCategory::kPolicyRejected;
  fail.message = "stale";
  auto failed = RunAsync(f.io, f.store->Fail(fail));
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().category, ErrorCategory::kLeaseLost);
  auto beat = RunAsync(f.io, f.store->Heartbeat("w1", 0, 5s));
  ASSERT_TRUE(beat);
  EXPECT_TRUE(beat->lease_lost);

  // The job is untouched by w1 and w2 can finish it.
  auto record = RunAsync(f.io, f.store->Get(first.id));
  ASSERT_TRUE(record);
  EXPECT_EQ(record->worker, "w2");
  EXPECT_TRUE(record->output_key.empty());
  complete.token = second->front().token;
  complete.output_key = "good.mp4";
  auto done = RunAsync(f.io, f.store->Complete(complete));
  ASSERT_TRUE(done) << done.error().Describe();
  record = RunAsync(f.io, f.store->Get(first.id));
  ASSERT_TRUE(record);
  EXPECT_EQ(record->state, JobState::kSucceeded);
  EXPECT_EQ(record->output_key, "good.mp4");
}

TEST(QueueRecoveryTest, SameIdempotencyKeySameTenantIsSameJob) {
  Fixture f;
  auto a = RunAsync(f.io, f.store->Submit(f.Job("job-a", "key-1"), 3600));
  ASSERT_TRUE(a) << a.error().Describe();
  EXPECT_FALSE(a->duplicate);
  auto b = RunAsync(f.io, f.store->Submit(f.Job("job-b", "key-1"), 3600));
  ASSERT_TRUE(b) << b.error().Describe();
  EXPECT_TRUE(b->duplicate);
  EXPECT_EQ(b->job_id, "job-a");
}

// The key is kept for the retention window (submit.lua's idem_ttl_s), counted from the first
// submission: a repeat inside it is the same job and does not extend it; after it the same key
// makes a new job. Real time: the window is Redis's own key expiry (1 s, the smallest).
TEST(QueueRecoveryTest, IdempotencyKeyHeldForTheRetentionWindowThenANewJob) {
  Fixture f;
  const std::string ikey = "rq:{q}:idem:t:key-ttl";
  const auto start = std::chrono::steady_clock::now();
  auto a = RunAsync(f.io, f.store->Submit(f.Job("job-a", "key-ttl"), 1));
  ASSERT_TRUE(a) << a.error().Describe();
  EXPECT_FALSE(a->duplicate);
  const auto pttl = f.server.Run({"PTTL", ikey});
  EXPECT_GT(pttl.integer, 0);
  EXPECT_LE(pttl.integer, 1000);

  // Inside the window: the same job, and the repeat does not restart the window.
  std::this_thread::sleep_for(400ms);
  auto b = RunAsync(f.io, f.store->Submit(f.Job("job-b", "key-ttl"), 1));
  ASSERT_TRUE(b) << b.error().Describe();
  if (std::chrono::steady_clock::now() - start < 900ms) {
    EXPECT_TRUE(b->duplicate);
    EXPECT_EQ(b->job_id, "job-a");
  }
  EXPECT_LE(f.server.Run({"PTTL", ikey}).integer, 600) << "a repeat extended the window";
  // The same key from another tenant is another job.
  auto other = f.Job("job-other", "key-ttl");
  other.tenant = "t2";
  auto o = RunAsync(f.io, f.store->Submit(other, 1));
  ASSERT_TRUE(o) << o.error().Describe();
  EXPECT_FALSE(o->duplicate);

  // After the window (bounded wait for Redis to expire the key): a new job.
  for (int i = 0; i < 100 && f.server.Run({"EXISTS", ikey}).integer == 1; ++i) {
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_EQ(f.server.Run({"EXISTS", ikey}).integer, 0) << "the key outlived its window";
  auto c = RunAsync(f.io, f.store->Submit(f.Job("job-c", "key-ttl"), 1));
  ASSERT_TRUE(c) << c.error().Describe();
  EXPECT_FALSE(c->duplicate);
  EXPECT_EQ(c->job_id, "job-c");
  // ... which now holds the key, and the first job is still there, untouched.
  auto d = RunAsync(f.io, f.store->Submit(f.Job("job-d", "key-ttl"), 1));
  ASSERT_TRUE(d) << d.error().Describe();
  EXPECT_TRUE(d->duplicate);
  EXPECT_EQ(d->job_id, "job-c");
  auto first = RunAsync(f.io, f.store->Get("job-a"));
  ASSERT_TRUE(first) << first.error().Describe();
  EXPECT_EQ(first->state, JobState::kPending);
}

TEST(QueueRecoveryTest, RetryableRetriedUpToMaxPolicyFailsAtOnceRetryRerun) {
  Fixture f;
  // max_attempts 3: two retryable failures go back to wait, the third ends FAILED; every
  // attempt's error is kept.
  LeasedJob job = f.SubmitAndLease("job-r", "w1");
  for (int attempt = 1; attempt <= 3; ++attempt) {
    FailRequest fail;
    fail.job_id = job.id;
    fail.token = job.token;
    fail.category = ErrorCategory::kRetryable;
    fail.message = "boom " + std::to_string(attempt);
    fail.retry = true;
    fail.retry_at_ms = f.clock->NowMs() + 2000;
    auto outcome = RunAsync(f.io, f.store->Fail(fail));
    ASSERT_TRUE(outcome) << outcome.error().Describe();
    if (attempt < 3) {
      EXPECT_EQ(*outcome, FailOutcome::kRetrying);
      // Not before retry_at: the reaper (which promotes due retries) leaves it waiting.
      ASSERT_TRUE(RunAsync(f.io, f.store->Reap(100)));
      ASSERT_TRUE(RunAsync(f.io, f.store->Dispatch(10, 100, 1)));
      auto early = RunAsync(f.io, f.store->Lease("w1", 1, 5s));
      ASSERT_TRUE(early);
      EXPECT_TRUE(early->empty());
      f.clock->Advance(3s);
      ASSERT_TRUE(RunAsync(f.io, f.store->Reap(100)));
      ASSERT_TRUE(RunAsync(f.io, f.store->Dispatch(10, 100, 1)));
      auto leased = RunAsync(f.io, f.store->Lease("w1", 1, 5s));
      ASSERT_TRUE(leased);
      ASSERT_EQ(leased->size(), 1u) << "attempt " << attempt << " was not offered again";
      job = leased->front();
      EXPECT_EQ(job.attempt, attempt + 1);
    } else {
      EXPECT_EQ(*outcome, FailOutcome::kFailed);
    }
  }
  auto record = RunAsync(f.io, f.store->Get(job.id));
  ASSERT_TRUE(record);
  EXPECT_EQ(record->state, JobState::kFailed);
  ASSERT_EQ(record->errors.size(), 3u);
  EXPECT_EQ(record->errors[2].message, "boom 3");

  // A policy rejection with retry=false fails at once and keeps the provider's reason.
  LeasedJob policy = f.SubmitAndLease("job-p", "w1");
  FailRequest reject;
  reject.job_id = policy.id;
  reject.token = policy.token;
  reject.category = ErrorCategory::kPolicyRejected;
  reject.message = "prompt blocked by moderation";
  reject.code = "moderation_blocked";
  auto rejected = RunAsync(f.io, f.store->Fail(reject));
  ASSERT_TRUE(rejected) << rejected.error().Describe();
  EXPECT_EQ(*rejected, FailOutcome::kFailed);
  auto p = RunAsync(f.io, f.store->Get(policy.id));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->state, JobState::kFailed);
  EXPECT_EQ(p->error_message, "prompt blocked by moderation");
  EXPECT_EQ(p->error_code, "moderation_blocked");

  // RetryJob puts a FAILED job back to PENDING, and it is leased again.
  auto again = RunAsync(f.io, f.store->Retry(policy.id));
  ASSERT_TRUE(again) << again.error().Describe();
  ASSERT_TRUE(RunAsync(f.io, f.store->Dispatch(10, 100, 1)));
  auto leased = RunAsync(f.io, f.store->Lease("w1", 1, 5s));
  ASSERT_TRUE(leased);
  ASSERT_EQ(leased->size(), 1u);
  EXPECT_EQ(leased->front().id, policy.id);
}

}  // namespace
}  // namespace reelq::queue
