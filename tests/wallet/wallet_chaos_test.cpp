// Issue 12's money under chaos: worker SIGKILLs, a scheduler SIGKILL, injected transient create
// and task failures, and cancels at every stage of a job's life. When every job has ended, the
// wallet holds nothing reserved, available + spent equals the top-ups to the micro-dollar, the
// ledger sums to the balance, and what the jobs were charged is what the wallet spent.
#include <gtest/gtest.h>

#include <random>
#include <set>
#include <thread>

#include "wallet_util.h"

namespace reelq::testing::wallet {
namespace {

using namespace std::chrono_literals;

TEST(WalletChaos, MoneyAddsUpAfterKillsFaultsAndCancels) {
  if (auto missing = E2eStack::MissingBinaries(); !missing.empty()) GTEST_SKIP() << missing;
  auto options = AuthedOptions(2, 3);
  options.max_attempts = 3;
  options.lease_seconds = 1.5;
  options.heartbeat_seconds = 0.3;
  E2eStack stack(options);
  stack.SimConfigure({{"faults", {{"create_failure", 0.1}, {"task_failure", 0.15}}}});
  constexpr int64_t kTopUp = 100'000'000;
  const auto token = NewTenant(stack, "chaos-studio", kTopUp);

  std::mt19937 rng(12);
  auto make_batch = [&](int n, const std::string& tag) {
    std::vector<v1::JobSpec> specs;
    for (int i = 0; i < n; ++i) {
      const std::string prompt = tag + " " + std::to_string(i) + (i % 4 == 0 ? " [sim:slow]" : "");
      v1::JobSpec spec;
      switch (i % 3) {
        case 0:
          spec = Spec("seedance-2.0", 5, prompt);
          break;
        case 1:
          spec = Spec("kling-3.0", 5, prompt);
          spec.add_models("seedance-2.0");
          break;
        default:
          spec = Spec("veo-3.1", 4, prompt);
          spec.add_models("seedance-2.0");
          break;
      }
      specs.push_back(std::move(spec));
    }
    return specs;
  };
  std::vector<std::string> ids;
  auto submit = [&](int scheduler, int n, const std::string& tag) {
    auto stub = v1::JobService::NewStub(stack.Channel(scheduler));
    grpc::Status status;
    auto resp = SubmitBatchAs(*stub, token, make_batch(n, tag), &status);
    ASSERT_TRUE(status.ok()) << status.error_message();
    ASSERT_EQ(resp.accepted(), static_cast<uint32_t>(n));
    for (const auto& item : resp.items()) ids.push_back(item.job_id());
  };
  std::map<std::string, int> cancelled_in;  // state name -> cancels
  auto cancel_some = [&](int scheduler, int n) {
    auto stub = v1::JobService::NewStub(stack.Channel(scheduler));
    for (int k = 0; k < n; ++k) {
      const auto& id = ids[std::uniform_int_distribution<size_t>(0, ids.size() - 1)(rng)];
      v1::GetJobRequest get;
      get.set_job_id(id);
      v1::JobStatus before;
      (void)stub->GetJob(Authed(token).get(), get, &before);
      v1::CancelJobRequest req;
      req.set_job_id(id);
      v1::JobStatus resp;
      if (stub->CancelJob(Authed(token).get(), req, &resp).ok()) {
        ++cancelled_in[v1::JobState_Name(before.state()) + "/" + v1::JobPhase_Name(before.phase())];
      }
    }
  };

  submit(0, 30, "first");
  cancel_some(1, 3);  // mostly PENDING or DISPATCHED
  std::this_thread::sleep_for(300ms);
  cancel_some(0, 4);  // some RUNNING by now
  stack.KillWorker(0);
  stack.KillScheduler(1);
  submit(0, 30, "second");
  std::this_thread::sleep_for(400ms);
  cancel_some(0, 4);
  stack.KillWorker(1);
  stack.StartWorker(0);
  std::this_thread::sleep_for(500ms);
  cancel_some(0, 4);
  stack.StartScheduler(1);
  stack.StartWorker(1);
  cancel_some(1, 3);

  auto done = WaitEnded(stack, ids, std::chrono::seconds(60));
  ASSERT_EQ(done.size(), ids.size());
  int64_t charged = 0;
  std::map<v1::JobState, int> by_state;
  for (const auto& [id, job] : done) {
    ASSERT_TRUE(job.state() == v1::JOB_STATE_SUCCEEDED || job.state() == v1::JOB_STATE_FAILED ||
                job.state() == v1::JOB_STATE_CANCELLED)
        << id << " did not end: " << job.DebugString() << stack.Logs();
    ++by_state[job.state()];
    EXPECT_EQ(job.reserved_micros(), 0) << id;
    charged += job.cost_micros();
  }
  auto w = WalletOf(stack, "chaos-studio");
  ExpectSettled(w);
  EXPECT_EQ(w.topped_up_micros(), kTopUp);
  EXPECT_EQ(w.spent_micros(), charged) << "the jobs' charges differ from what the wallet spent";
  EXPECT_GT(by_state[v1::JOB_STATE_SUCCEEDED], 0);
  EXPECT_GT(by_state[v1::JOB_STATE_CANCELLED], 0);
  std::string cancels;
  for (const auto& [state, n] : cancelled_in) cancels += state + "=" + std::to_string(n) + " ";
  RecordProperty("cancelled_in", cancels);
  std::cout << "jobs: " << ids.size() << " succeeded " << by_state[v1::JOB_STATE_SUCCEEDED]
            << " failed " << by_state[v1::JOB_STATE_FAILED] << " cancelled "
            << by_state[v1::JOB_STATE_CANCELLED] << "; cancels by state then: " << cancels
            << "; spent " << w.spent_micros() << " of " << w.topped_up_micros() << "\n";
}

}  // namespace
}  // namespace reelq::testing::wallet
