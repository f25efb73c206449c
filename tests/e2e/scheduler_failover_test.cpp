// Issue 4: several schedulers dispatch from one Redis; one is SIGKILLed mid-batch. The other
// goes on dispatching, and no job is dispatched (or paid for upstream) twice.
#include <gtest/gtest.h>

#include <thread>

#include "e2e_util.h"
#include "stack.h"

namespace reelq::testing {
namespace {

namespace v1 = reelq::v1;
using namespace std::chrono_literals;

TEST(SchedulerFailover, KilledSchedulerMidBatchEveryJobDispatchedOnce) {
  if (auto missing = E2eStack::MissingBinaries(); !missing.empty()) GTEST_SKIP() << missing;
  // Few upstream slots per account, so the batch is dispatched over several seconds and the kill
  // lands while both schedulers are dispatching.
  E2eStack stack(
      {.schedulers = 2, .workers = 2, .latency_scale = 0.01, .account_max_concurrent = 4});
  auto stub = stack.JobStub(1);
  std::vector<v1::JobSpec> specs;
  const char* models[] = {"kling-3.0", "sora-2", "veo-3.1", "seedance-2.0"};
  for (int i = 0; i < 160; ++i) {
    specs.push_back(MakeSpec("failover " + std::to_string(i), models[i % 4], 4 + (i % 2) * 4));
  }
  grpc::Status status;
  auto batch = SubmitBatch(*stub, specs, &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(batch.items_size(), 160);
  std::vector<std::string> ids;
  for (const auto& item : batch.items()) {
    ASSERT_FALSE(item.job_id().empty()) << item.message();
    ids.push_back(item.job_id());
  }

  // Kill scheduler 0 once some, but not all, jobs are done.
  const auto start = std::chrono::steady_clock::now();
  bool killed = false;
  while (std::chrono::steady_clock::now() - start < 60s) {
    int done = 0;
    for (const auto& job : ListBatch(*stub, batch.batch_id())) {
      done += job.state() == v1::JOB_STATE_SUCCEEDED ? 1 : 0;
    }
    if (done >= 20) {
      EXPECT_LT(done, 160) << "the batch ended before the kill; the test proves nothing";
      stack.KillScheduler(0);
      killed = true;
      break;
    }
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(killed) << "no progress before the kill\n" << stack.Logs();

  auto done = stack.WaitTerminal(ids, 180s);
  int creates_expected = 0;
  for (const auto& id : ids) {
    ASSERT_TRUE(done.contains(id)) << id << " not terminal\n" << stack.Logs();
    const auto& job = done[id];
    EXPECT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.DebugString();
    int dispatched = 0;
    for (const auto& t : job.transitions()) {
      dispatched += t.state() == v1::JOB_STATE_DISPATCHED ? 1 : 0;
    }
    EXPECT_EQ(dispatched, 1) << "job " << id << " dispatched " << dispatched << " times";
    ++creates_expected;
  }
  int creates = 0;
  auto stats = stack.SimStats();
  for (const char* p : {"kling", "sora", "veo", "seedance"}) {
    creates += stats["providers"][p]["creates"].get<int>();
  }
  EXPECT_EQ(creates, creates_expected) << "upstream creates differ from jobs: paid twice or lost";
}

}  // namespace
}  // namespace reelq::testing
