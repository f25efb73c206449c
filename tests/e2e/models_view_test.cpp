// Issue 4 through the API: ListModels / GetStats show each model's queue depth (queued,
// dispatched without a worker, running), and a poll quota (accounts[].polls_per_minute) holds
// the workers' status polls to it.
#include <gtest/gtest.h>

#include <thread>

#include "e2e_util.h"
#include "stack.h"

namespace reelq::testing {
namespace {

namespace v1 = reelq::v1;
using namespace std::chrono_literals;

v1::ModelInfo Model(E2eStack& stack, const std::string& id) {
  auto stub = stack.ModelStub();
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 10s);
  v1::ListModelsResponse response;
  auto status = stub->ListModels(&context, v1::ListModelsRequest(), &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
  for (const auto& m : response.models()) {
    if (m.id() == id) return m;
  }
  ADD_FAILURE() << "ListModels has no " << id;
  return {};
}

v1::GetStatsResponse Stats(E2eStack& stack) {
  auto stub = stack.ModelStub();
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 10s);
  v1::GetStatsResponse response;
  auto status = stub->GetStats(&context, v1::GetStatsRequest(), &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return response;
}

TEST(ModelsView, QueueDepthPerModelAndPollQuota) {
  if (auto missing = E2eStack::MissingBinaries(); !missing.empty()) GTEST_SKIP() << missing;
  // No worker at first, so the counts stand still: two sora accounts with two slots each.
  // sora-a (accounts[1]) and sora-b (accounts[5]) get a poll quota of 60 a minute through the
  // environment overrides, for the scheduler (ListModels) and the worker (polling).
  E2eStack stack({.workers = 0,
                  .latency_scale = 0.002,
                  .account_max_concurrent = 2,
                  .env = {{"REELQ__ACCOUNTS__1__POLLS_PER_MINUTE", "60"},
                          {"REELQ__ACCOUNTS__5__POLLS_PER_MINUTE", "60"}}});
  auto jobs = stack.JobStub();
  std::vector<std::string> ids;
  for (int i = 0; i < 6; ++i) {
    grpc::Status status;
    auto r = SubmitJob(*jobs, MakeSpec("depth " + std::to_string(i), "sora-2", 4), &status);
    ASSERT_TRUE(status.ok()) << status.error_message();
    ids.push_back(r.job_id());
  }
  v1::ModelInfo sora;
  for (int i = 0; i < 100; ++i) {  // dispatch runs in the background: up to 10 s
    sora = Model(stack, "sora-2");
    if (sora.dispatched() == 4) break;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(sora.queue_depth(), 2u) << sora.DebugString();
  EXPECT_EQ(sora.dispatched(), 4u) << sora.DebugString();
  EXPECT_EQ(sora.in_flight(), 0u) << sora.DebugString();
  EXPECT_EQ(Model(stack, "kling-3.0").queue_depth(), 0u);
  ASSERT_EQ(sora.accounts_size(), 2);
  for (const auto& a : sora.accounts()) EXPECT_EQ(a.polls_per_minute(), 60) << a.account();
  bool listed = false;
  const v1::GetStatsResponse stats = Stats(stack);
  for (const auto& m : stats.models()) {
    if (m.model() != "sora-2") continue;
    listed = true;
    EXPECT_EQ(m.queue_depth(), 2u);
    EXPECT_EQ(m.dispatched(), 4u);
    EXPECT_EQ(m.in_flight(), 0u);
  }
  EXPECT_TRUE(listed);

  // A worker runs them. Sora takes ~0.4 s here and the worker would poll every 50 ms; the quota
  // (a bucket of one, a poll a second per account) holds each account to one poll per second.
  stack.SimReset();
  const auto start = std::chrono::steady_clock::now();
  stack.AddWorker();
  auto done = stack.WaitTerminal(ids, 120s);
  const double elapsed_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (const auto& id : ids) {
    ASSERT_TRUE(done.contains(id)) << id << "\n" << stack.Logs();
    EXPECT_EQ(done[id].state(), v1::JOB_STATE_SUCCEEDED) << done[id].DebugString();
  }
  const auto sim = stack.SimStats()["providers"]["sora"]["keys"];
  int polls = 0;
  for (const auto& [key, counters] : sim.items()) {
    const int n = counters.value("polls", 0);
    polls += n;
    // At most one poll per second of the run per account, plus the one a full bucket holds.
    EXPECT_LE(n, 2 + static_cast<int>(elapsed_s)) << key << " in " << elapsed_s << " s";
  }
  EXPECT_GE(polls, 6);  // every job polled at least once
  sora = Model(stack, "sora-2");
  EXPECT_EQ(sora.queue_depth(), 0u);
  EXPECT_EQ(sora.dispatched(), 0u);
  EXPECT_EQ(sora.in_flight(), 0u);
  EXPECT_EQ(sora.succeeded(), 6u);
}

}  // namespace
}  // namespace reelq::testing
