// Issue 5, "nothing paid twice", at its narrowest point: a create that reached the provider
// whose answer never reached the job record. The simulator records the create (the paid task
// exists) and holds its answer (hold_create knob), so the window is hit every time:
//   - WorkerDiesAfterTheCreateWasSent: the worker is SIGKILLed while the answer is held;
//     the restarted worker must find the task instead of paying for another one.
//   - AnswerLostOnTheWire: the sim drops the connection instead of answering; the same
//     worker must find the task.
// Kling (external_task_id), Sora (list matched on model/prompt/seconds/size) and Seedance
// (list matched on the derived seed) end SUCCEEDED with exactly one create each. Veo can look
// nothing up: by default (worker.on_unknown_create: fail) the job ends FAILED with reason
// create_outcome_unknown, one create, and no clip.
#include <gtest/gtest.h>

#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "e2e_util.h"
#include "stack.h"

namespace reelq::testing {
namespace {

namespace v1 = reelq::v1;
using Clock = std::chrono::steady_clock;

struct Case {
  const char* provider;
  const char* model;
  uint32_t seconds;
};
constexpr Case kCases[] = {{"kling", "kling-3.0", 5},
                           {"sora", "sora-2", 4},
                           {"veo", "veo-3.1", 4},
                           {"seedance", "seedance-2.0", 5}};

int Creates(E2eStack& stack, const std::string& provider) {
  return stack.SimStats()["providers"][provider]["creates"].get<int>();
}

// Submits one job per provider after setting the sim to hold each provider's next create
// answer; returns the job ids in kCases order.
std::vector<std::string> SubmitHeld(E2eStack& stack, const nlohmann::json& hold,
                                    const std::string& tag) {
  nlohmann::json providers = nlohmann::json::object();
  for (const auto& c : kCases) providers[c.provider] = {{"hold_create", hold}};
  stack.SimConfigure({{"providers", providers}});
  auto stub = stack.JobStub();
  std::vector<std::string> ids;
  for (const auto& c : kCases) {
    grpc::Status status;
    auto r = SubmitJob(
        *stub, MakeSpec(tag + " " + c.provider + ": a lighthouse in fog", c.model, c.seconds),
        &status);
    EXPECT_TRUE(status.ok()) << status.error_message();
    ids.push_back(r.job_id());
  }
  return ids;
}

void ExpectOutcomes(E2eStack& stack, const std::vector<std::string>& ids) {
  // A restarted worker looks a killed one's create up only once that call could have timed out
  // (30 s after its send) and settled (2 s): about 33 s.
  auto final = stack.WaitTerminal(ids, std::chrono::seconds(60));
  const auto files = stack.StoreFiles();
  for (size_t i = 0; i < ids.size(); ++i) {
    const Case& c = kCases[i];
    SCOPED_TRACE(c.provider);
    EXPECT_EQ(Creates(stack, c.provider), 1) << "paid for twice (or never)\n" << stack.Logs(30);
    auto it = final.find(ids[i]);
    ASSERT_NE(it, final.end()) << stack.Logs(30);
    const auto& job = it->second;
    int clips = 0;
    for (const auto& f : files) clips += f.ends_with(ids[i] + ".mp4") ? 1 : 0;
    std::cout << c.provider << ": " << v1::JobState_Name(job.state()) << ", creates "
              << Creates(stack, c.provider) << ", clips " << clips
              << (job.has_error() ? ", error: " + job.error().message() : "") << "\n";
    if (std::string(c.provider) == "veo") {
      ASSERT_EQ(job.state(), v1::JOB_STATE_FAILED) << job.ShortDebugString();
      EXPECT_EQ(job.error().provider_code(), "create_outcome_unknown") << job.ShortDebugString();
      EXPECT_EQ(job.error().category(), v1::ERROR_CATEGORY_CREATE_OUTCOME_UNKNOWN)
          << job.ShortDebugString();
      EXPECT_NE(job.error().message().find("RetryJob"), std::string::npos);
      EXPECT_EQ(clips, 0);
    } else {
      ASSERT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.ShortDebugString() << "\n"
                                                      << stack.Logs(30);
      EXPECT_EQ(clips, 1);
    }
  }
}

TEST(LostCreate, WorkerDiesAfterTheCreateWasSent) {
  if (auto missing = E2eStack::MissingBinaries(); !missing.empty()) GTEST_SKIP() << missing;
  E2eStack stack({.workers = 1, .lease_seconds = 1, .heartbeat_seconds = 0.25});
  // The answers are held far longer than the test waits: only a worker that looks the task up
  // can go on.
  auto ids = SubmitHeld(stack, {{"count", 1}, {"delay_ms", 120000}, {"drop", false}}, "killed");
  // Wait (bounded) until every provider has recorded its one create.
  const auto until = Clock::now() + std::chrono::seconds(20);
  auto all_sent = [&] {
    for (const auto& c : kCases) {
      if (Creates(stack, c.provider) < 1) return false;
    }
    return true;
  };
  while (!all_sent() && Clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(all_sent()) << stack.Logs(30);
  stack.KillWorker(0);
  stack.StartWorker(0);
  ExpectOutcomes(stack, ids);
  EXPECT_EQ(stack.SimStats()["providers"]["veo"]["create_answers_held"].get<int>(), 1);
}

TEST(LostCreate, AnswerLostOnTheWire) {
  if (auto missing = E2eStack::MissingBinaries(); !missing.empty()) GTEST_SKIP() << missing;
  E2eStack stack({.workers = 1});
  auto ids = SubmitHeld(stack, {{"count", 1}, {"delay_ms", 50}, {"drop", true}}, "dropped");
  ExpectOutcomes(stack, ids);
}

TEST(LostCreate, VeoRecreatesWhenConfiguredTo) {
  // worker.on_unknown_create: {veo: recreate} trades the guarantee for the clip: the lost
  // create is paid for, and a second one makes the clip.
  if (auto missing = E2eStack::MissingBinaries(); !missing.empty()) GTEST_SKIP() << missing;
  E2eStack stack({.workers = 1, .env = {{"REELQ__WORKER__ON_UNKNOWN_CREATE__VEO", "recreate"}}});
  stack.SimConfigure(
      {{"providers",
        {{"veo", {{"hold_create", {{"count", 1}, {"delay_ms", 50}, {"drop", true}}}}}}}});
  auto stub = stack.JobStub();
  grpc::Status status;
  auto r = SubmitJob(*stub, MakeSpec("recreate veo: a lighthouse in fog", "veo-3.1", 4), &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  auto final = stack.WaitTerminal({r.job_id()}, std::chrono::seconds(40));
  ASSERT_EQ(final.count(r.job_id()), 1u) << stack.Logs(30);
  EXPECT_EQ(final[r.job_id()].state(), v1::JOB_STATE_SUCCEEDED)
      << final[r.job_id()].ShortDebugString();
  EXPECT_EQ(Creates(stack, "veo"), 2);
}

}  // namespace
}  // namespace reelq::testing
