// A create whose answer was lost, against a real redis-server, on a provider that looks creates
// up by their idempotency id and refuses a second create under one it has seen (as Kling's
// external_task_id, unique per account). Each create's id names its job and the time its create
// intent records, so the lease that looks for a lost create (this one, or a later one after a
// takeover) asks for exactly that create's task, and pays for no second one.
#include <gtest/gtest.h>

#include "reelq/providers/fake_provider.h"
#include "worker_harness.h"

namespace reelq::worker {
namespace {

using namespace std::chrono_literals;
using testing::RedisServer;

using providers::FakeProvider;

struct Fixture : WorkerHarness {
  std::shared_ptr<FakeProvider> provider = std::make_shared<FakeProvider>();

  Fixture() : WorkerHarness(/*max_concurrent=*/10) {
    provider->can_find_lost_create = true;
    deps.settings.lost_create_settle = 50ms;
    deps.settings.create_call_timeout = 100ms;
    deps.settings.retry_backoff_initial = 20ms;
    deps.settings.retry_backoff_max = 20ms;
  }

  // Job "x" dispatched, with the create intent an earlier lease left `ago` before now (it sent
  // the create and died before storing the answer); `fields` are written with it. The intent's
  // send time, which names the create's idempotency id ("x-<ms>").
  int64_t IntentLeftByAnEarlierLease(std::chrono::milliseconds ago,
                                     std::vector<std::string> fields = {}) {
    Submit("x");
    Dispatch(10);
    const int64_t sent_ms = clock->NowMs() - ago.count();
    std::vector<std::string> hset{"HSET", "rq:{q}:job:x", "create_intent",
                                  std::to_string(sent_ms) + ":1"};
    hset.insert(hset.end(), fields.begin(), fields.end());
    server.Run(hset);
    return sent_ms;
  }
};

TEST(WorkerLostCreateTest, ALookupFindsTheTaskOfTheCreateWhoseAnswerWasLost) {
  if (!RedisServer::Available()) GTEST_SKIP() << "redis-server is not installed";
  Fixture f;
  f.Start(f.provider);
  f.provider->create_answers_lost = 1;
  ASSERT_NO_FATAL_FAILURE(f.Submit("x"));
  f.Dispatch(10);
  ASSERT_TRUE(f.RunToEnd("x"));

  const auto job = f.Get("x");
  EXPECT_EQ(job.state, queue::JobState::kSucceeded) << job.error_message;
  EXPECT_EQ(job.upstream, "task-1");
  EXPECT_EQ(f.provider->creates, 1) << "a second task was made";
  EXPECT_EQ(f.provider->creates_refused, 0);
  EXPECT_EQ(f.provider->lookups, 1);
}

// The worker that sent the create died before storing its answer, and the next lease comes
// after the job's finish deadline: the task is looked for before the job is given up. Found, it
// is fetched and billed once; not found, the job fails refunded, its slot free.
TEST(WorkerLostCreateTest, PastTheFinishDeadlineALostCreateIsLookedUpBeforeTheJobIsGivenUp) {
  if (!RedisServer::Available()) GTEST_SKIP() << "redis-server is not installed";
  for (const bool made : {true, false}) {
    SCOPED_TRACE(made ? "the create made a task" : "the create made nothing");
    Fixture f;
    f.Fund(10'000'000);
    f.bill = true;
    const int64_t sent_ms = f.IntentLeftByAnEarlierLease(
        5s, {"finish_deadline", std::to_string(f.clock->NowMs() - 1000)});
    if (made) f.provider->task_by_idempotency_id["x-" + std::to_string(sent_ms)] = "task-early";
    f.Start(f.provider);
    ASSERT_TRUE(f.RunToEnd("x"));

    const auto job = f.Get("x");
    EXPECT_EQ(f.provider->creates, 0);
    EXPECT_EQ(f.provider->lookups, 1);
    if (made) {
      EXPECT_EQ(job.upstream, "task-early");
      EXPECT_GT(job.cost_micros, 0) << "the task the create made is billed";
    } else {
      EXPECT_EQ(job.state, queue::JobState::kFailed);
      EXPECT_EQ(job.error_category, ErrorCategory::kDeadlineExceeded);
      EXPECT_EQ(job.cost_micros, 0) << "billed for a create that made nothing";
      EXPECT_EQ(f.Wallet().spent_micros, 0);
      EXPECT_EQ(f.server.Run({"ZCARD", "rq:{q}:slothold"}).integer, 0);
    }
  }
}

// The worker that sent the create died before storing its answer: the next lease finds the
// create intent on the job and looks for the task under the id that intent's time names.
TEST(WorkerLostCreateTest, ACreateLostUnderAnEarlierLeaseIsLookedUpByTheIdItsIntentNames) {
  if (!RedisServer::Available()) GTEST_SKIP() << "redis-server is not installed";
  Fixture f;
  const int64_t sent_ms = f.IntentLeftByAnEarlierLease(5s);
  f.provider->task_by_idempotency_id["x-" + std::to_string(sent_ms)] = "task-made-earlier";
  f.Start(f.provider);
  ASSERT_TRUE(f.RunToEnd("x"));

  const auto job = f.Get("x");
  EXPECT_EQ(job.state, queue::JobState::kSucceeded) << job.error_message;
  EXPECT_EQ(job.upstream, "task-made-earlier");
  EXPECT_EQ(f.provider->creates, 0) << "the lost create's task was not found";
  EXPECT_EQ(f.provider->lookups, 1);
}

// A create the provider refused (model_gone: a model retired upstream) got its answer: nothing
// was made, so the create intent its permit recorded no longer says a task may exist, and the
// job is refunded (fail.lua bills a job given up as model_gone only while a task may exist).
TEST(WorkerLostCreateTest, ACreateRefusedAsModelGoneIsRefundedNotBilled) {
  if (!RedisServer::Available()) GTEST_SKIP() << "redis-server is not installed";
  Fixture f;
  f.Fund(10'000'000);
  f.bill = true;
  f.provider->create_refusal = Error{ErrorCategory::kModelGone, "model not found"};
  f.Start(f.provider);
  ASSERT_NO_FATAL_FAILURE(f.Submit("x"));
  f.Dispatch(10);
  ASSERT_TRUE(f.RunToEnd("x"));

  const auto job = f.Get("x");
  EXPECT_EQ(job.state, queue::JobState::kFailed);
  EXPECT_EQ(job.error_category, ErrorCategory::kModelGone);
  EXPECT_EQ(f.provider->creates_refused, 1);
  EXPECT_EQ(job.cost_micros, 0);
  const auto wallet = f.Wallet();
  EXPECT_EQ(wallet.spent_micros, 0);
  EXPECT_EQ(wallet.reserved_micros, 0);
  EXPECT_EQ(wallet.balance_micros, 10'000'000);
  // Nor is its account slot held as if a task ran: the refusal made none.
  EXPECT_EQ(f.server.Run({"HGET", "rq:{q}:acct:a", "in_flight"}).str, "0");
  EXPECT_EQ(f.server.Run({"ZCARD", "rq:{q}:slothold"}).integer, 0);
}

// A create slower than the call's timeout: the call fails (maybe delivered) long after the send,
// and the provider lists the task a moment later. The lookup waits the settle from the failure,
// not from the send (long past), so it finds the task and pays for no second one.
TEST(WorkerLostCreateTest, ATimedOutCreateIsLookedUpASettleAfterTheCallEnded) {
  if (!RedisServer::Available()) GTEST_SKIP() << "redis-server is not installed";
  Fixture f;
  f.deps.settings.lost_create_settle = 300ms;
  f.provider->creates_timed_out = 1;
  f.provider->slow_create_call = 600ms;          // the send's settle passed during the call
  f.provider->slow_create_listed_after = 150ms;  // listed within a settle of the failure
  f.Start(f.provider);
  ASSERT_NO_FATAL_FAILURE(f.Submit("x"));
  f.Dispatch(10);
  ASSERT_TRUE(f.RunToEnd("x"));

  const auto job = f.Get("x");
  EXPECT_EQ(job.state, queue::JobState::kSucceeded) << job.error_message;
  EXPECT_EQ(job.upstream, "task-1");
  EXPECT_EQ(f.provider->creates, 1) << "a second task was made";
  EXPECT_EQ(f.provider->lookups, 1);
}

// An earlier lease sent a create and died (or lost its lease) mid-call: that call may have been
// in the air until its timeout, and the provider may list its task only then. The next lease
// waits for the call's timeout plus the settle before trusting "not found".
TEST(WorkerLostCreateTest, ACreateAnEarlierLeaseSentIsLookedUpOnlyAfterItsCallCouldHaveEnded) {
  if (!RedisServer::Available()) GTEST_SKIP() << "redis-server is not installed";
  Fixture f;
  f.deps.settings.lost_create_settle = 100ms;
  f.deps.settings.create_call_timeout = 600ms;
  const int64_t sent_ms = f.IntentLeftByAnEarlierLease(0ms);
  const std::string id = "x-" + std::to_string(sent_ms);
  f.provider->task_by_idempotency_id[id] = "task-made-earlier";
  // Listed once the earlier lease's call would have timed out: before its timeout plus the
  // settle, but after the send plus the settle.
  f.provider->listed_from[id] = std::chrono::steady_clock::now() + 500ms;
  f.Start(f.provider);
  ASSERT_TRUE(f.RunToEnd("x"));

  const auto job = f.Get("x");
  EXPECT_EQ(job.state, queue::JobState::kSucceeded) << job.error_message;
  EXPECT_EQ(job.upstream, "task-made-earlier");
  EXPECT_EQ(f.provider->creates, 0) << "the earlier lease's task was not found";
  EXPECT_EQ(f.provider->lookups, 1);
}

}  // namespace
}  // namespace reelq::worker
