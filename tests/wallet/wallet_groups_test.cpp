// Issue 13's groups on issue 12's wallet: a storyboard's shots are billed as ordinary jobs and
// the group itself holds no money; a group the wallet or its batch's budget cannot pay for
// whole is refused whole (no shot of it is stored or made); a cancelled group refunds the shots
// not yet sent upstream.
#include <gtest/gtest.h>

#include "wallet_util.h"

namespace reelq::testing::wallet {
namespace {

using grpc::StatusCode;

class WalletGroups : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!E2eStack::MissingBinaries().empty()) return;
    stack_ = new E2eStack(AuthedOptions(1, 2));
  }
  static void TearDownTestSuite() {
    delete stack_;
    stack_ = nullptr;
  }
  void SetUp() override {
    if (auto missing = E2eStack::MissingBinaries(); !missing.empty()) GTEST_SKIP() << missing;
  }
  static E2eStack* stack_;
};

E2eStack* WalletGroups::stack_ = nullptr;

// Shots on their own model make a storyboard of one child job per shot.
v1::JobSpec Storyboard(int shots, const std::string& tag) {
  v1::JobSpec spec;
  spec.set_storyboard(true);
  for (int i = 0; i < shots; ++i) {
    auto* shot = spec.add_shots();
    shot->set_prompt(tag + " shot " + std::to_string(i));
    shot->set_duration_seconds(5);
    shot->set_model("seedance-2.0");
  }
  return spec;
}

constexpr int64_t kShot = 5 * kSeedancePerSecond;

TEST_F(WalletGroups, ShotsAreBilledAndAGroupIsTakenOrRefusedWhole) {
  const auto token = NewTenant(*stack_, "board-studio", 3 * kShot);
  auto stub = v1::JobService::NewStub(stack_->Channel(0));
  grpc::Status status;

  // Four shots cost more than the wallet holds: refused whole, naming the wallet.
  const size_t creates_before = stack_->SimStats()["creates"].size();
  SubmitAs(*stub, token, Storyboard(4, "too big"), &status);
  EXPECT_EQ(status.error_code(), StatusCode::RESOURCE_EXHAUSTED) << status.error_message();
  EXPECT_EQ(status.error_message().rfind("wallet: tenant 'board-studio' has ", 0), 0u)
      << status.error_message();
  auto w = WalletOf(*stack_, "board-studio");
  EXPECT_EQ(w.reserved_micros(), 0);
  EXPECT_EQ(w.available_micros(), 3 * kShot);
  EXPECT_EQ(w.ledger_size(), 1) << "only the top-up: no shot of a refused group reserved money";

  // Three shots fit exactly: each shot reserves and settles its own price; the group none.
  auto accepted = SubmitAs(*stub, token, Storyboard(3, "fits"), &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  w = WalletOf(*stack_, "board-studio");
  EXPECT_EQ(w.reserved_micros(), 3 * kShot);
  EXPECT_EQ(w.available_micros(), 0);
  auto done = WaitEnded(*stack_, {accepted.job_id()}, std::chrono::seconds(90));
  const auto group = done[accepted.job_id()];
  ASSERT_EQ(group.state(), v1::JOB_STATE_SUCCEEDED) << group.DebugString() << stack_->Logs();
  ASSERT_EQ(group.children_size(), 3);
  EXPECT_EQ(group.cost_micros(), 3 * kShot) << "GetJob on a group sums its shots' cost";
  EXPECT_EQ(group.reserved_micros(), 0);
  w = WalletOf(*stack_, "board-studio");
  EXPECT_EQ(w.spent_micros(), 3 * kShot);
  ExpectSettled(w);
  EXPECT_TRUE(LedgerOf(w, accepted.job_id()).empty()) << "the group itself moves no money";
  for (const auto& shot : group.children()) {
    EXPECT_EQ(LedgerOf(w, shot.job_id()),
              (std::vector<std::string>{"reserve:-" + std::to_string(kShot) + ":0",
                                        "settle:0:" + std::to_string(kShot)}))
        << shot.job_id();
  }
  EXPECT_EQ(stack_->SimStats()["creates"].size(), creates_before + 3)
      << "the three shots of the group that fit, nothing of the refused one";
}

TEST_F(WalletGroups, ABatchBudgetCountsTheShotsOfItsStoryboards) {
  const auto token = NewTenant(*stack_, "budget-board-studio", 50 * kShot);
  auto stub = v1::JobService::NewStub(stack_->Channel(0));
  auto ctx = Authed(token);
  v1::SubmitBatchResponse resp;
  auto writer = stub->SubmitBatch(ctx.get(), &resp);
  // Budget: five shots. Two storyboards of two shots fit; the third (two more) does not.
  for (int i = 0; i < 3; ++i) {
    v1::SubmitBatchRequest item;
    *item.mutable_spec() = Storyboard(2, "budgeted " + std::to_string(i));
    item.mutable_spec()->set_batch_id("board-budget-1");
    if (i == 0) item.set_budget_micros(5 * kShot);
    ASSERT_TRUE(writer->Write(item));
  }
  writer->WritesDone();
  ASSERT_TRUE(writer->Finish().ok());
  ASSERT_EQ(resp.items_size(), 3);
  EXPECT_EQ(resp.accepted(), 2u);
  EXPECT_EQ(resp.items(2).code(), StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(resp.items(2).message().rfind("budget: batch 'board-budget-1'", 0), 0u)
      << resp.items(2).message();
  std::vector<std::string> ids{resp.items(0).job_id(), resp.items(1).job_id()};
  auto done = WaitEnded(*stack_, ids, std::chrono::seconds(90));
  for (const auto& id : ids) EXPECT_EQ(done[id].state(), v1::JOB_STATE_SUCCEEDED) << id;
  v1::GetBatchRequest get;
  get.set_batch_id("board-budget-1");
  v1::BatchProgress progress;
  ASSERT_TRUE(stub->GetBatch(Authed(token).get(), get, &progress).ok());
  EXPECT_EQ(progress.cost_micros(), 4 * kShot) << "the batch's cost counts its storyboards' shots";
  ExpectSettled(WalletOf(*stack_, "budget-board-studio"));
}

TEST_F(WalletGroups, CancellingAGroupRefundsItsShotsNotYetCreated) {
  const auto token = NewTenant(*stack_, "cancel-board-studio", 10 * kShot);
  auto stub = v1::JobService::NewStub(stack_->Channel(0));
  grpc::Status status;
  auto spec = Storyboard(3, "[sim:slow] cancelled");
  auto accepted = SubmitAs(*stub, token, spec, &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  v1::CancelJobRequest cancel;
  cancel.set_job_id(accepted.job_id());
  v1::JobStatus cancelled;
  auto cancel_status = stub->CancelJob(Authed(token).get(), cancel, &cancelled);
  ASSERT_TRUE(cancel_status.ok()) << cancel_status.error_message();
  ASSERT_EQ(cancelled.children_size(), 3);
  auto w = WalletOf(*stack_, "cancel-board-studio");
  EXPECT_EQ(w.reserved_micros(), 0);
  ExpectSettled(w);
  // A shot whose create was sent is charged (the provider may bill it); the others refunded.
  int64_t charged = 0;
  for (const auto& shot : cancelled.children()) {
    EXPECT_EQ(shot.state(), v1::JOB_STATE_CANCELLED) << shot.job_id();
    const auto entries = LedgerOf(w, shot.job_id());
    ASSERT_EQ(entries.size(), 2u) << shot.job_id();
    if (entries[1].rfind("settle:", 0) == 0) charged += kShot;
  }
  EXPECT_EQ(w.spent_micros(), charged);
}

}  // namespace
}  // namespace reelq::testing::wallet
