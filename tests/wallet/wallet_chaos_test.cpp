// Issue 12's money under chaos: worker SIGKILLs, a scheduler SIGKILL, injected transient create
// and task failures, and cancels at every stage of a job's life. When every job has ended, the
// wallet holds nothing reserved, available + spent equals the top-ups to the micro-dollar, the
// ledger sums to the balance, and what the jobs were charged is what the wallet spent.
#include <gtest/gtest.h>

#include <algorithm>
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
  // Few slots per account: most of a batch waits PENDING.
  options.account_max_concurrent = 3;
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
  // Cancels up to `n` jobs that are in `state` when looked at (any state when unspecified),
  // counting each cancel under the state the job was actually in (its history says).
  std::map<std::string, int> cancelled_in;
  auto cancel_where = [&](int scheduler, v1::JobState state, int n) {
    auto stub = v1::JobService::NewStub(stack.Channel(scheduler));
    std::vector<std::string> order = ids;
    std::shuffle(order.begin(), order.end(), rng);
    for (const auto& id : order) {
      if (n == 0) break;
      v1::GetJobRequest get;
      get.set_job_id(id);
      v1::JobStatus now;
      if (!stub->GetJob(Authed(token).get(), get, &now).ok()) continue;
      if (state != v1::JOB_STATE_UNSPECIFIED && now.state() != state) continue;
      v1::CancelJobRequest req;
      req.set_job_id(id);
      v1::JobStatus resp;
      if (!stub->CancelJob(Authed(token).get(), req, &resp).ok()) continue;
      --n;
      const auto& t = resp.transitions();
      if (t.size() >= 2) {
        const auto& before = t[t.size() - 2];
        ++cancelled_in[v1::JobState_Name(before.state()) +
                       (before.phase() == v1::JOB_PHASE_UNSPECIFIED
                            ? ""
                            : "/" + v1::JobPhase_Name(before.phase()))];
      }
    }
  };

  // Frozen workers: the first jobs wait DISPATCHED (no worker leases them), the rest PENDING
  // (every account's slots are taken).
  for (int w = 0; w < 3; ++w) stack.PauseWorker(w);
  // Past the 2 s in which dispatch still leases straight to a worker that waited for work
  // (queue/lua/common_lease.lua, WAIT_FRESH_MS): the frozen ones stopped asking.
  std::this_thread::sleep_for(2300ms);
  submit(0, 30, "first");
  std::this_thread::sleep_for(300ms);
  cancel_where(1, v1::JOB_STATE_DISPATCHED, 3);
  cancel_where(1, v1::JOB_STATE_PENDING, 3);
  for (int w = 0; w < 3; ++w) stack.ResumeWorker(w);
  std::this_thread::sleep_for(400ms);
  cancel_where(0, v1::JOB_STATE_RUNNING, 3);
  stack.KillWorker(0);
  stack.KillScheduler(1);
  submit(0, 30, "second");
  std::this_thread::sleep_for(400ms);
  cancel_where(0, v1::JOB_STATE_RUNNING, 3);
  stack.KillWorker(1);
  stack.StartWorker(0);
  std::this_thread::sleep_for(500ms);
  cancel_where(0, v1::JOB_STATE_UNSPECIFIED, 3);
  stack.StartScheduler(1);
  stack.StartWorker(1);
  cancel_where(1, v1::JOB_STATE_UNSPECIFIED, 2);

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
  EXPECT_GT(cancelled_in["JOB_STATE_PENDING"], 0);
  EXPECT_GT(cancelled_in["JOB_STATE_DISPATCHED"], 0);
  int running = 0;
  for (const auto& [state, n] : cancelled_in) {
    if (state.starts_with("JOB_STATE_RUNNING")) running += n;
  }
  EXPECT_GT(running, 0);
  // The simulator's record of every create: the injected faults did happen.
  std::map<std::string, int> outcomes;
  for (const auto& create : stack.SimStats().value("creates", nlohmann::json::array())) {
    ++outcomes[create.value("outcome", "?")];
  }
  std::string sim;
  for (const auto& [outcome, n] : outcomes) sim += outcome + "=" + std::to_string(n) + " ";
  std::cout << "simulator creates by outcome: " << sim << "\n";
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
