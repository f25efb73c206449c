// A billed job its wallet cannot pay for, against a real redis-server: dispatch parks it out of
// its tenant's queue (queue/lua/dispatch.lua) so that it holds back none of the tenant's jobs
// that can go; a top-up lets it go again (wallet_topup.lua, common_groups.lua's unpark); a cancel
// of it leaves nothing behind (cancel.lua); it is still listed as PENDING and GetJob says what it
// waits for.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "store_fixture.h"

namespace reelq::queue {
namespace {

using namespace std::chrono_literals;
using testing::RunAsync;

class ParkedTest : public StoreTest {
 protected:
  static constexpr int64_t kPrice = 100'000;  // a second of m1 and of m2
  static constexpr int64_t kClip = 5 * kPrice;

  void SetUp() override {
    StoreTest::SetUp();
    Sync(Prices(kPrice));
  }

  // Models m1 (at `m1_price` a second) and m2 (at kPrice), each on an account of its own.
  static QueueSettings Prices(int64_t m1_price) {
    QueueSettings s;
    s.accounts = {UnboundedAccount("a1"), UnboundedAccount("a2")};
    s.models.push_back(
        ModelSetting{.id = "m1", .accounts = {"a1"}, .price_micros_per_second = m1_price});
    s.models.push_back(
        ModelSetting{.id = "m2", .accounts = {"a2"}, .price_micros_per_second = kPrice});
    return s;
  }

  // A billed 5 s clip of `model` for tenant "studio".
  static NewJob Job(const std::string& id, const std::string& model = "m1") {
    return NewJob{.id = id,
                  .tenant = "studio",
                  .spec_bytes = "spec",
                  .candidate_models = {model},
                  .bill = true,
                  .billed_seconds = 5};
  }

  void SubmitAll(std::vector<NewJob> jobs) {
    auto r = RunAsync(io_, store_->SubmitMany(std::move(jobs), 3600));
    ASSERT_TRUE(r) << r.error().Describe();
    for (const auto& one : *r) ASSERT_FALSE(one.refused) << one.refused->Describe();
  }

  // `n` jobs "<prefix><k>" of m1 that cannot be paid for: the wallet held exactly their price at
  // submit (each holds kClip), then a config reload doubled m1's price.
  void SubmitUnaffordable(const std::string& prefix, int n) {
    ASSERT_NO_FATAL_FAILURE(TopUp(n * kClip));
    std::vector<NewJob> jobs;
    for (int k = 0; k < n; ++k) {
      jobs.push_back(Job(prefix +
                         std::string(k < 10    ? "00"
                                     : k < 100 ? "0"
                                               : "") +
                         std::to_string(k)));
    }
    ASSERT_NO_FATAL_FAILURE(SubmitAll(std::move(jobs)));
    ASSERT_EQ(Wallet().balance_micros, 0);
    ASSERT_NO_FATAL_FAILURE(Sync(Prices(2 * kPrice)));
  }

  // One round at the scheduler's default scan depth (64).
  int Dispatch() {
    auto r = RunAsync(io_, store_->Dispatch(16, 64, 1));
    if (!r) throw std::runtime_error(r.error().Describe());
    return r->dispatched;
  }

  int64_t Card(const std::string& key) { return server_->Run({"ZCARD", "t:{q}:" + key}).integer; }
};

TEST_F(ParkedTest, JobsTheWalletCannotPayForDoNotHoldBackALaterJobThatItCan) {
  ASSERT_NO_FATAL_FAILURE(SubmitUnaffordable("p", 100));
  clock_->Advance(1s);
  // A job of m2 (its price unchanged), paid for at submit: behind 100 jobs of the same tenant.
  ASSERT_NO_FATAL_FAILURE(TopUp(kClip));
  ASSERT_NO_FATAL_FAILURE(SubmitAll({Job("paid", "m2")}));

  int rounds = 0;
  while (Get("paid").state == JobState::kPending && rounds < 5) {
    Dispatch();
    ++rounds;
  }
  ASSERT_EQ(Get("paid").state, JobState::kDispatched)
      << "after " << rounds << " rounds the paid-up job was still held back";
  // The 100 wait out of the queue, still PENDING for every count, saying why.
  EXPECT_EQ(Card("pending:studio"), 0);
  EXPECT_EQ(Card("parked:studio"), 100);
  EXPECT_EQ(server_->Run({"HGET", "t:{q}:model:m1", "q_pending"}).str, "100");
  EXPECT_EQ(server_->Run({"HGET", "t:{q}:tlive:studio", "PENDING"}).str, "100");
  const auto p = Get("p042");
  EXPECT_EQ(p.state, JobState::kPending);
  EXPECT_EQ(p.waiting, "funds");
  EXPECT_EQ(p.waiting_need_micros, kClip);
  // Nothing left to dispatch: the tenant is no longer active, and a round reads none of them.
  EXPECT_EQ(Card("active"), 0);
  EXPECT_EQ(Dispatch(), 0);
  EXPECT_EQ(Card("parked:studio"), 100);
}

TEST_F(ParkedTest, ATopUpLetsAParkedJobGo) {
  ASSERT_NO_FATAL_FAILURE(SubmitUnaffordable("p", 1));
  EXPECT_EQ(Dispatch(), 0);
  ASSERT_EQ(Card("parked:studio"), 1);
  EXPECT_EQ(Dispatch(), 0);

  // Short of its need by one micro-dollar: it stays parked.
  ASSERT_NO_FATAL_FAILURE(TopUp(kClip - 1));
  EXPECT_EQ(Card("parked:studio"), 1);
  EXPECT_EQ(Dispatch(), 0);
  EXPECT_EQ(Get("p000").waiting, "funds");

  ASSERT_NO_FATAL_FAILURE(TopUp(1));
  EXPECT_EQ(Card("parked:studio"), 0);
  EXPECT_EQ(Card("pending:studio"), 1);
  EXPECT_EQ(server_->Run({"LLEN", "t:{q}:dwake"}).integer, 1) << "dispatch was not woken";
  ASSERT_EQ(Dispatch(), 1);
  const auto job = Get("p000");
  EXPECT_EQ(job.state, JobState::kDispatched);
  EXPECT_EQ(job.waiting, "");
  EXPECT_EQ(job.reserved_micros, 2 * kClip);
  EXPECT_EQ(Wallet().balance_micros, 0);
}

TEST_F(ParkedTest, CancellingAParkedJobLeavesNothingBehind) {
  ASSERT_NO_FATAL_FAILURE(SubmitUnaffordable("p", 1));
  EXPECT_EQ(Dispatch(), 0);
  ASSERT_EQ(Card("parked:studio"), 1);

  auto cancelled = RunAsync(io_, store_->Cancel("p000"));
  ASSERT_TRUE(cancelled) << cancelled.error().Describe();
  const auto job = Get("p000");
  EXPECT_EQ(job.state, JobState::kCancelled);
  EXPECT_EQ(job.reserved_micros, 0);
  EXPECT_EQ(job.waiting, "");
  EXPECT_EQ(server_->Run({"HGET", "t:{q}:job:p000", "waiting"}).str, "");
  EXPECT_EQ(Wallet().balance_micros, kClip);  // its hold refunded
  EXPECT_EQ(server_->Run({"EXISTS", "t:{q}:parked:studio"}).integer, 0);
  EXPECT_EQ(server_->Run({"EXISTS", "t:{q}:parkneed:studio"}).integer, 0);
  EXPECT_EQ(Card("pending:studio"), 0);
  EXPECT_EQ(server_->Run({"HGET", "t:{q}:tlive:studio", "PENDING"}).str, "0");

  ASSERT_NO_FATAL_FAILURE(TopUp(10 * kClip));
  EXPECT_EQ(Card("pending:studio"), 0);
  EXPECT_EQ(Dispatch(), 0);
  EXPECT_EQ(Get("p000").state, JobState::kCancelled);
}

// A parked job is in no queue that dispatch checks for start deadlines: its deadline still
// holds, and it fails once the deadline has passed, its hold refunded, without a top-up.
TEST_F(ParkedTest, AParkedJobFailsAtItsStartDeadline) {
  ASSERT_NO_FATAL_FAILURE(TopUp(kClip));
  auto job = Job("late");
  job.start_deadline_ms = clock_->NowMs() + 1000;
  ASSERT_NO_FATAL_FAILURE(SubmitAll({job}));
  ASSERT_EQ(Wallet().balance_micros, 0);
  ASSERT_NO_FATAL_FAILURE(Sync(Prices(2 * kPrice)));
  EXPECT_EQ(Dispatch(), 0);
  ASSERT_EQ(Card("parked:studio"), 1);
  ASSERT_EQ(Get("late").waiting, "funds");

  clock_->Advance(2s);
  ASSERT_TRUE(RunAsync(io_, store_->Reap(100)));
  EXPECT_EQ(Dispatch(), 0);
  const auto failed = Get("late");
  EXPECT_EQ(failed.state, JobState::kFailed);
  EXPECT_EQ(failed.error_category, ErrorCategory::kDeadlineExceeded);
  EXPECT_EQ(failed.error_message, "the job had not started by its start deadline");
  EXPECT_EQ(failed.waiting, "");
  EXPECT_EQ(failed.reserved_micros, 0);
  EXPECT_EQ(Wallet().balance_micros, kClip);  // its hold refunded
  EXPECT_EQ(server_->Run({"EXISTS", "t:{q}:parked:studio"}).integer, 0);
  EXPECT_EQ(server_->Run({"EXISTS", "t:{q}:parkneed:studio"}).integer, 0);
  EXPECT_EQ(server_->Run({"EXISTS", "t:{q}:parkdl"}).integer, 0);
  EXPECT_EQ(Card("pending:studio"), 0);
}

// One cancelled, or let go by a top-up, leaves no deadline behind.
TEST_F(ParkedTest, AParkedJobLeavingTheParkedSetsLeavesTheDeadlineSetToo) {
  ASSERT_NO_FATAL_FAILURE(TopUp(2 * kClip));
  auto a = Job("a");
  a.start_deadline_ms = clock_->NowMs() + 60'000;
  auto b = Job("b");
  b.start_deadline_ms = clock_->NowMs() + 60'000;
  ASSERT_NO_FATAL_FAILURE(SubmitAll({a, b}));
  ASSERT_NO_FATAL_FAILURE(Sync(Prices(2 * kPrice)));
  EXPECT_EQ(Dispatch(), 0);
  ASSERT_EQ(Card("parkdl"), 2);
  // Cancelled, "a" leaves it; its refund pays for "b", let go.
  ASSERT_TRUE(RunAsync(io_, store_->Cancel("a")));
  EXPECT_EQ(Card("parked:studio"), 0);
  EXPECT_EQ(Card("parkdl"), 0);
  EXPECT_EQ(Dispatch(), 1);
  EXPECT_EQ(Get("b").state, JobState::kDispatched);
}

// A refund lets go only as many parked jobs as the new balance pays for together, least need
// first; the others stay parked, their history untouched.
TEST_F(ParkedTest, ARefundLetsGoOnlyTheParkedJobsItPaysFor) {
  ASSERT_NO_FATAL_FAILURE(TopUp(3 * kClip));
  ASSERT_NO_FATAL_FAILURE(SubmitAll({Job("p0"), Job("p1"), Job("p2")}));
  ASSERT_NO_FATAL_FAILURE(TopUp(kClip + kClip / 2));
  ASSERT_NO_FATAL_FAILURE(SubmitAll({Job("r", "m2")}));
  ASSERT_EQ(Wallet().balance_micros, kClip / 2);
  ASSERT_NO_FATAL_FAILURE(Sync(Prices(2 * kPrice)));  // each p now needs kClip more
  Dispatch();
  ASSERT_EQ(Card("parked:studio"), 3);
  std::vector<size_t> history;
  for (const char* id : {"p0", "p1", "p2"}) history.push_back(Get(id).history.size());

  // Its refund raises the balance to 1.5 x kClip: enough for one of them, not two.
  ASSERT_TRUE(RunAsync(io_, store_->Cancel("r")));
  ASSERT_EQ(Wallet().balance_micros, kClip + kClip / 2);
  EXPECT_EQ(Card("parked:studio"), 2);
  EXPECT_EQ(Card("pending:studio"), 1);
  EXPECT_EQ(Dispatch(), 1);
  EXPECT_EQ(Card("parked:studio"), 2);
  int dispatched = 0;
  for (int k = 0; k < 3; ++k) {
    const auto job = Get("p" + std::to_string(k));
    if (job.state == JobState::kDispatched) {
      ++dispatched;
      continue;
    }
    EXPECT_EQ(job.state, JobState::kPending);
    EXPECT_EQ(job.waiting, "funds");
    EXPECT_EQ(job.history.size(), history[k]) << job.id << " was parked again with a transition";
  }
  EXPECT_EQ(dispatched, 1);
}

// Let go and parked again for the same need (a price lowered on a model it may not use lets go
// every parked job), a job gets no new transition: no history entry, event or webhook each time.
TEST_F(ParkedTest, AJobParkedAgainForTheSameNeedWritesNoTransition) {
  ASSERT_NO_FATAL_FAILURE(SubmitUnaffordable("p", 1));
  EXPECT_EQ(Dispatch(), 0);
  ASSERT_EQ(Card("parked:studio"), 1);
  const auto before = Get("p000");
  auto lowered = Prices(2 * kPrice);
  lowered.models[1].price_micros_per_second = kPrice / 2;  // m2, which p000 may not use
  ASSERT_NO_FATAL_FAILURE(Sync(lowered));
  EXPECT_EQ(Dispatch(), 0);
  ASSERT_EQ(Card("parked:studio"), 1);
  const auto after = Get("p000");
  EXPECT_EQ(after.state, JobState::kPending);
  EXPECT_EQ(after.waiting, "funds");
  EXPECT_EQ(after.waiting_need_micros, kClip);
  EXPECT_EQ(after.history.size(), before.history.size());

  // Dispatched once a top-up pays for it; parked again after that, it says so again.
  ASSERT_NO_FATAL_FAILURE(TopUp(kClip));
  ASSERT_EQ(Dispatch(), 1);
  EXPECT_EQ(server_->Run({"HGET", "t:{q}:job:p000", "wait_need"}).str, "");
}

TEST_F(ParkedTest, AParkedJobIsListedAsPendingAndSaysItWaitsForFunds) {
  ASSERT_NO_FATAL_FAILURE(SubmitUnaffordable("p", 1));
  EXPECT_EQ(Dispatch(), 0);
  ASSERT_EQ(Card("parked:studio"), 1);

  for (const std::string tenant : {"", "studio"}) {
    auto page =
        RunAsync(io_, store_->List(ListFilter{.tenant = tenant, .state = JobState::kPending}));
    ASSERT_TRUE(page) << page.error().Describe();
    std::vector<std::string> ids;
    for (const auto& j : page->jobs) ids.push_back(j.id);
    EXPECT_EQ(ids, std::vector<std::string>{"p000"}) << "tenant filter '" << tenant << "'";
  }

  const auto job = Get("p000");
  EXPECT_EQ(job.state, JobState::kPending);
  EXPECT_EQ(job.waiting, "funds");
  EXPECT_EQ(job.waiting_need_micros, kClip);
  ASSERT_FALSE(job.history.empty());
  EXPECT_TRUE(job.history.back().detail.starts_with("waiting for funds: "))
      << job.history.back().detail;
  EXPECT_NE(job.history.back().detail.find("$1.000000"), std::string::npos)
      << job.history.back().detail;  // the price it needs
}

TEST_F(ParkedTest, APriceLoweredByAConfigReloadLetsParkedJobsGo) {
  ASSERT_NO_FATAL_FAILURE(SubmitUnaffordable("p", 3));
  EXPECT_EQ(Dispatch(), 0);
  ASSERT_EQ(Card("parked:studio"), 3);
  // A reload that changes nothing lets none go.
  ASSERT_NO_FATAL_FAILURE(Sync(Prices(2 * kPrice)));
  EXPECT_EQ(Dispatch(), 0);
  EXPECT_EQ(Card("parked:studio"), 3);

  // Back to the price they hold: every one goes, with no top-up.
  ASSERT_NO_FATAL_FAILURE(Sync(Prices(kPrice)));
  EXPECT_EQ(Dispatch(), 3);
  EXPECT_EQ(Card("parked:studio"), 0);
  EXPECT_EQ(Card("pending:studio"), 0);
  for (const std::string id : {"p000", "p001", "p002"}) {
    EXPECT_EQ(Get(id).state, JobState::kDispatched) << id;
  }
  EXPECT_EQ(server_->Run({"HEXISTS", "t:{q}:meta", "unpark"}).integer, 0);
}

}  // namespace
}  // namespace reelq::queue
