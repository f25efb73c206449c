// A batch's budget holds past submit, against a real redis-server: another attempt after a billed
// failure, and a RetryJob, may not take the batch's cost over it. Dispatch fails such an attempt
// naming the budget (dispatch.lua's choose), RetryJob refuses it up front (retry.lua), and both
// go ahead once the budget is raised.
#include <gtest/gtest.h>

#include "store_fixture.h"

namespace reelq::queue {
namespace {

using namespace std::chrono_literals;
using testing::RunAsync;

class BudgetTest : public StoreTest {
 protected:
  static constexpr int64_t kPrice = 100'000;  // a second of m1
  static constexpr int64_t kClip = 5 * kPrice;

  void SetUp() override {
    StoreTest::SetUp();
    auto settings = OneModel();
    settings.models[0].price_micros_per_second = kPrice;
    settings.accounts[0].bills_failed_tasks = true;  // a failed task costs what a made one does
    Sync(settings);
  }

  // A 5 s clip of m1 for tenant "studio" into `batch`, stating `budget` (0: none).
  static NewJob Job(const std::string& id, int64_t budget, const std::string& batch = "b") {
    return NewJob{.id = id,
                  .tenant = "studio",
                  .batch = batch,
                  .spec_bytes = "spec",
                  .candidate_models = {"m1"},
                  .max_attempts = 3,
                  .billed_seconds = 5,
                  .batch_budget_micros = budget};
  }

  void Submit(const std::string& id, int64_t budget, const std::string& batch = "b") {
    auto r = RunAsync(io_, store_->Submit(Job(id, budget, batch), 3600));
    ASSERT_TRUE(r) << r.error().Describe();
    ASSERT_FALSE(r->refused) << r->refused->Describe();
  }

  int Dispatch() {
    auto r = RunAsync(io_, store_->Dispatch(10, 16, 1));
    if (!r) throw std::runtime_error(r.error().Describe());
    return r->dispatched;
  }

  // Leases `id`, records its upstream task and fails it as a passing error: the provider bills
  // the failed task, and the job is to run again.
  void FailBilledAttempt(const std::string& id) {
    auto leased = RunAsync(io_, store_->Lease("w1", 1, 15s));
    ASSERT_TRUE(leased) << leased.error().Describe();
    ASSERT_EQ(leased->size(), 1u);
    const auto& j = leased->front();
    ASSERT_EQ(j.id, id);
    auto permit =
        RunAsync(io_, store_->TakeCreatePermit(j.id, j.token, 0ms, clock_->NowMs(), j.attempt));
    ASSERT_TRUE(permit) << permit.error().Describe();
    auto phase = RunAsync(
        io_, store_->SetPhase(j.id, j.token, JobPhase::kGenerating, "task-" + id, "upstream"));
    ASSERT_TRUE(phase) << phase.error().Describe();
    auto failed = RunAsync(io_, store_->Fail({.job_id = j.id,
                                              .token = j.token,
                                              .category = ErrorCategory::kRetryable,
                                              .message = "upstream 500",
                                              .retry = true,
                                              .retry_at_ms = clock_->NowMs()}));
    ASSERT_TRUE(failed) << failed.error().Describe();
    ASSERT_EQ(*failed, FailOutcome::kRetrying);
  }

  // Leases `id` as `worker`, the one job it gets.
  LeasedJob LeaseOne(const std::string& id, const std::string& worker) {
    auto leased = RunAsync(io_, store_->Lease(worker, 1, 15s));
    if (!leased) throw std::runtime_error(leased.error().Describe());
    if (leased->size() != 1u || leased->front().id != id) {
      throw std::runtime_error(id + " was not leased by " + worker);
    }
    return leased->front();
  }

  // `id` leased by "w1", whose create call was let go (its intent recorded) and, when `upstream`
  // is given, answered with that task; then "w1" dies (SIGKILL: its lease lapses, the reaper
  // hands its jobs back) and "w2" leases the job again, seeing what "w1" recorded.
  LeasedJob LeaseAfterADeadWorker(const std::string& id, const std::string& upstream) {
    auto registered = RunAsync(io_, store_->RegisterWorker("w1", 15s));
    if (!registered) throw std::runtime_error(registered.error().Describe());
    const LeasedJob first = LeaseOne(id, "w1");
    auto permit = RunAsync(
        io_, store_->TakeCreatePermit(first.id, first.token, 0ms, clock_->NowMs(), first.attempt));
    if (!permit) throw std::runtime_error(permit.error().Describe());
    if (!upstream.empty()) {
      auto phase = RunAsync(io_, store_->SetPhase(first.id, first.token, JobPhase::kGenerating,
                                                  upstream, "upstream " + upstream));
      if (!phase) throw std::runtime_error(phase.error().Describe());
    }
    clock_->Advance(20s);
    auto reaped = RunAsync(io_, store_->Reap(100));
    if (!reaped) throw std::runtime_error(reaped.error().Describe());
    return LeaseOne(id, "w2");
  }

  void FailForGood(const LeasedJob& job, ErrorCategory category, bool create_answered = false) {
    auto failed = RunAsync(io_, store_->Fail({.job_id = job.id,
                                              .token = job.token,
                                              .category = category,
                                              .message = "given up",
                                              .create_answered = create_answered}));
    ASSERT_TRUE(failed) << failed.error().Describe();
    ASSERT_EQ(*failed, FailOutcome::kFailed);
  }

  int64_t BatchCost() {
    auto batch = RunAsync(io_, store_->GetBatch("b"));
    if (!batch) throw std::runtime_error(batch.error().Describe());
    return batch->cost_micros;
  }
};

TEST_F(BudgetTest, AnAttemptPastTheBudgetFailsAtDispatchAndARetryPastItIsRefused) {
  ASSERT_TRUE(RunAsync(io_, store_->RegisterWorker("w1", 60s)));
  Submit("x", kClip);  // the budget takes exactly one attempt
  ASSERT_EQ(Dispatch(), 1);
  ASSERT_NO_FATAL_FAILURE(FailBilledAttempt("x"));
  EXPECT_EQ(BatchCost(), kClip);  // the failed task, settled

  // Its retry is due; the budget has nothing left for it.
  ASSERT_TRUE(RunAsync(io_, store_->Reap(100)));
  EXPECT_EQ(Dispatch(), 0);
  auto job = Get("x");
  EXPECT_EQ(job.state, JobState::kFailed);
  EXPECT_EQ(job.error_category, ErrorCategory::kFailedPrecondition);
  EXPECT_EQ(job.error_code, "budget_exceeded");
  EXPECT_NE(job.error_message.find("past its budget of $0.500000"), std::string::npos)
      << job.error_message;
  EXPECT_NE(job.error_message.find("raise the budget"), std::string::npos) << job.error_message;
  EXPECT_EQ(BatchCost(), kClip);
  EXPECT_EQ(job.reserved_micros, 0);

  // RetryJob is refused up front, naming the budget, and changes nothing.
  auto retried = RunAsync(io_, store_->Retry("x"));
  ASSERT_FALSE(retried);
  EXPECT_EQ(retried.error().category, ErrorCategory::kFailedPrecondition);
  EXPECT_NE(retried.error().message.find("batch budget"), std::string::npos)
      << retried.error().message;
  EXPECT_NE(retried.error().message.find("$0.000000 left of its budget of $0.500000"),
            std::string::npos)
      << retried.error().message;
  EXPECT_EQ(Get("x").state, JobState::kFailed);

  // A later submission to the batch raises its budget: the retry goes ahead and is dispatched.
  Submit("y", 3 * kClip);
  ASSERT_TRUE(RunAsync(io_, store_->Retry("x")));
  EXPECT_EQ(Dispatch(), 2);
  EXPECT_EQ(Get("x").state, JobState::kDispatched);
  EXPECT_EQ(BatchCost(), 3 * kClip);  // x's failed task and its new hold, y's hold
}

// Within the budget, a billed failure's retry is dispatched as before.
// A submit whose every item its budget refuses stores nothing: no batch record holding only the
// budget it stated (retention would never remove it, having no job of it to remove, and a later
// owner of the id would inherit the budget). A stated budget is stored with the first job.
TEST_F(BudgetTest, ASubmitTheBudgetRefusesWholeLeavesNoBatchRecord) {
  auto refused = RunAsync(io_, store_->Submit(Job("too-dear", kClip - 1), 3600));
  ASSERT_TRUE(refused) << refused.error().Describe();
  ASSERT_TRUE(refused->refused);
  EXPECT_NE(refused->refused->message.find("budget"), std::string::npos)
      << refused->refused->message;
  EXPECT_EQ(server_->Run({"EXISTS", "t:{q}:batch:b"}).integer, 0);

  ASSERT_NO_FATAL_FAILURE(Submit("fits", kClip));
  EXPECT_EQ(server_->Run({"HGET", "t:{q}:batch:b", "budget"}).str, std::to_string(kClip));
}

// A price raised in the catalogue while a job runs does not reach it: it is settled at the price
// it was dispatched at (its hold), so its batch stays within its budget (and a billed tenant's
// wallet, which the hold came from, above zero). A later submission stating a lower budget
// does not lower it.
TEST_F(BudgetTest, AJobIsChargedThePriceItWasDispatchedAt) {
  ASSERT_TRUE(RunAsync(io_, store_->RegisterWorker("w1", 60s)));
  ASSERT_NO_FATAL_FAILURE(Submit("a", kClip));
  ASSERT_EQ(Dispatch(), 1);
  auto leased = RunAsync(io_, store_->Lease("w1", 1, 15s));
  ASSERT_TRUE(leased) << leased.error().Describe();
  ASSERT_EQ(leased->size(), 1u);
  auto dearer = OneModel();
  dearer.models[0].price_micros_per_second = kPrice * 6 / 5;
  Sync(dearer);
  const auto& j = leased->front();
  ASSERT_TRUE(RunAsync(io_, store_->Complete({.job_id = j.id, .token = j.token})));
  EXPECT_EQ(Get("a").cost_micros, kClip);
  EXPECT_EQ(BatchCost(), kClip) << "the batch went past its budget";

  // Another batch: a budget for four clips (at the first price), then a submission stating one
  // clip's, less than the batch has committed by then.
  ASSERT_NO_FATAL_FAILURE(Submit("x", 4 * kClip, "b2"));
  ASSERT_NO_FATAL_FAILURE(Submit("y", kClip, "b2"));
  EXPECT_EQ(server_->Run({"HGET", "t:{q}:batch:b2", "budget"}).str, std::to_string(4 * kClip));
}

TEST_F(BudgetTest, AnAttemptWithinTheBudgetIsDispatched) {
  ASSERT_TRUE(RunAsync(io_, store_->RegisterWorker("w1", 60s)));
  Submit("x", 2 * kClip);
  ASSERT_EQ(Dispatch(), 1);
  ASSERT_NO_FATAL_FAILURE(FailBilledAttempt("x"));
  ASSERT_TRUE(RunAsync(io_, store_->Reap(100)));
  EXPECT_EQ(Dispatch(), 1);
  EXPECT_EQ(Get("x").state, JobState::kDispatched);
  EXPECT_EQ(BatchCost(), 2 * kClip);
}

// A job given up while its task may be generating upstream is billed, as its slot is held: the
// provider bills that task. A worker SIGKILLed after its create was sent leaves the intent; the
// next lease, past the job's finish deadline, fails it deadline_exceeded before looking the task
// up, or finds its model gone from its catalogue (a config rollout). Both were refunded in full
// while the provider billed the task. A create the provider itself refused (model_gone at
// create: its answer came back) made nothing, and is refunded.
TEST_F(BudgetTest, AJobGivenUpWhileItsTaskMayGenerateIsBilledARefusedCreateIsNot) {
  ASSERT_TRUE(RunAsync(io_, store_->RegisterWorker("w2", 3600s)));
  struct Case {
    std::string id;
    std::string upstream;  // the task "w1" recorded ("": only its create intent)
    ErrorCategory category;
    int64_t charged;
  };
  for (const Case& c : {Case{"late-intent", "", ErrorCategory::kDeadlineExceeded, kClip},
                        Case{"gone-intent", "", ErrorCategory::kModelGone, kClip},
                        Case{"gone-task", "task-1", ErrorCategory::kModelGone, kClip}}) {
    SCOPED_TRACE(c.id);
    Submit(c.id, 0);
    ASSERT_EQ(Dispatch(), 1);
    const LeasedJob again = LeaseAfterADeadWorker(c.id, c.upstream);
    if (c.upstream.empty()) {
      ASSERT_GT(again.create_intent_ms, 0);
    } else {
      ASSERT_EQ(again.upstream, c.upstream);
    }
    ASSERT_NO_FATAL_FAILURE(FailForGood(again, c.category));
    const auto job = Get(c.id);
    EXPECT_EQ(job.state, JobState::kFailed);
    EXPECT_EQ(job.cost_micros, c.charged);
    EXPECT_EQ(job.reserved_micros, 0);
  }

  // The provider answered this job's create: unknown model. Nothing was made: refunded.
  Submit("refused", 0);
  ASSERT_EQ(Dispatch(), 1);
  const LeasedJob j = LeaseOne("refused", "w2");
  auto permit =
      RunAsync(io_, store_->TakeCreatePermit(j.id, j.token, 0ms, clock_->NowMs(), j.attempt));
  ASSERT_TRUE(permit) << permit.error().Describe();
  ASSERT_NO_FATAL_FAILURE(FailForGood(j, ErrorCategory::kModelGone, /*create_answered=*/true));
  const auto job = Get("refused");
  EXPECT_EQ(job.state, JobState::kFailed);
  EXPECT_EQ(job.cost_micros, 0);
  EXPECT_EQ(job.reserved_micros, 0);
  EXPECT_EQ(BatchCost(), 3 * kClip);
}

}  // namespace
}  // namespace reelq::queue
