// The e2e fixture itself: the stack comes up, runs jobs, and each kind of process can be killed
// and started again with the work still finishing.
#include <gtest/gtest.h>

#include "stack.h"

namespace reelq::testing {
namespace {

namespace v1 = reelq::v1;

std::string Submit(v1::JobService::Stub& stub, const std::string& prompt) {
  v1::SubmitJobRequest req;
  req.mutable_spec()->set_prompt(prompt);
  req.mutable_spec()->add_models("seedance-2.0");
  req.mutable_spec()->set_duration_seconds(5);
  v1::SubmitJobResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  auto status = stub.SubmitJob(&ctx, req, &resp);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return resp.job_id();
}

TEST(E2eStack, RunsJobsAndSurvivesRestarts) {
  if (auto missing = E2eStack::MissingBinaries(); !missing.empty()) GTEST_SKIP() << missing;
  E2eStack stack({.schedulers = 2, .workers = 2});
  auto stub = stack.JobStub(1);
  std::vector<std::string> ids;
  for (int i = 0; i < 4; ++i)
    ids.push_back(Submit(*stub, "a harbour at dawn " + std::to_string(i)));
  auto done = stack.WaitTerminal(ids, std::chrono::seconds(120));
  for (const auto& id : ids) {
    ASSERT_TRUE(done.contains(id)) << stack.Logs();
    EXPECT_EQ(done[id].state(), v1::JOB_STATE_SUCCEEDED) << done[id].DebugString() << stack.Logs();
  }
  auto stats = stack.SimStats();
  EXPECT_EQ(stats["providers"]["seedance"]["creates"].get<int>(), 4);
  stack.SimReset();
  EXPECT_EQ(stack.SimStats()["providers"]["seedance"]["creates"].get<int>(), 0);

  // Every kind of process down and up again; then work still flows.
  stack.KillWorker(0);
  EXPECT_FALSE(stack.worker(0).running());
  auto term = stack.TermWorker(1);
  ASSERT_TRUE(term.has_value()) << "worker 1 did not exit on SIGTERM\n" << stack.Logs();
  stack.KillScheduler(0);
  stack.KillRedis();
  stack.RestartRedis();
  stack.KillSim();
  stack.StartSim();
  stack.StartScheduler(0);
  stack.StartWorker(0);
  stack.StartWorker(1);
  int added = stack.AddWorker();
  EXPECT_EQ(added, 2);

  // Jobs from before the Redis restart are still there (AOF).
  auto before = stack.WaitTerminal({ids[0]}, std::chrono::seconds(30));
  ASSERT_TRUE(before.contains(ids[0])) << stack.Logs();
  EXPECT_EQ(before[ids[0]].state(), v1::JOB_STATE_SUCCEEDED);

  auto stub0 = stack.JobStub(0);
  std::vector<std::string> more;
  for (int i = 0; i < 3; ++i) more.push_back(Submit(*stub0, "after restart " + std::to_string(i)));
  auto done2 = stack.WaitTerminal(more, std::chrono::seconds(120));
  for (const auto& id : more) {
    ASSERT_TRUE(done2.contains(id)) << stack.Logs();
    EXPECT_EQ(done2[id].state(), v1::JOB_STATE_SUCCEEDED)
        << done2[id].DebugString() << stack.Logs();
  }
  EXPECT_FALSE(stack.StoreFiles().empty());
}

}  // namespace
}  // namespace reelq::testing
