// No silent deaths: when a detached loop of a daemon (the scheduler's dispatch loop and reaper,
// a worker's heartbeat and lease watchdog) ends by an exception, the process logs which loop
// and why, and exits non-zero (SpawnOrDie, common/spawn.h) instead of living on half dead. The
// exception is injected through the test-only hook REELQ_FAULT_INJECT_TASK=<task name>.
#include <sys/wait.h>

#include <gtest/gtest.h>

#include "reelq/common/spawn.h"
#include "stack.h"

namespace reelq::testing {
namespace {

struct Case {
  const char* binary;  // under the build directory
  const char* task;    // the name given to SpawnOrDie
};

class DetachedTaskDeath : public ::testing::TestWithParam<Case> {};

TEST_P(DetachedTaskDeath, ProcessExitsNonZeroWithTheCauseLogged) {
  if (auto missing = E2eStack::MissingBinaries(); !missing.empty()) GTEST_SKIP() << missing;
  E2eStack stack({.schedulers = 0, .workers = 0});
  const Case c = GetParam();
  auto env = stack.ChildEnv();
  env["REELQ_FAULT_INJECT_TASK"] = c.task;
  const auto log = stack.log_dir() / (std::string(c.task) + ".log");
  std::vector<std::string> argv = {BuildPath(c.binary).string(), "--config",
                                   stack.config_path().string()};
  if (std::string(c.binary).starts_with("scheduler")) {
    argv.insert(argv.end(), {"--listen", "127.0.0.1:" + std::to_string(FreePort())});
  } else {
    argv.insert(argv.end(), {"--id", "doomed-worker", "--metrics-listen", "127.0.0.1:0"});
  }
  ChildProcess process = ChildProcess::Start(argv, env, log);

  const auto status = process.Wait(std::chrono::seconds(20));
  ASSERT_TRUE(status.has_value()) << "still running after its " << c.task << " loop died; log:\n"
                                  << ReadFile(log);
  ASSERT_TRUE(WIFEXITED(*status)) << "status " << *status << "; log:\n" << ReadFile(log);
  EXPECT_EQ(WEXITSTATUS(*status), kExitDetachedTaskFailed) << ReadFile(log);
  EXPECT_NE(ReadFile(log).find(std::string("detached task '") + c.task +
                               "' ended by an exception: injected fault"),
            std::string::npos)
      << ReadFile(log);
}

INSTANTIATE_TEST_SUITE_P(Loops, DetachedTaskDeath,
                         ::testing::Values(Case{"scheduler/reelq-scheduler", "dispatch"},
                                           Case{"scheduler/reelq-scheduler", "reaper"},
                                           Case{"worker/reelq-worker", "heartbeat"},
                                           Case{"worker/reelq-worker", "lease-watchdog"}),
                         [](const auto& info) {
                           std::string name = info.param.task;
                           for (char& ch : name)
                             if (ch == '-') ch = '_';
                           return name;
                         });

}  // namespace
}  // namespace reelq::testing
