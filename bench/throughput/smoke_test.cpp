// bench-throughput runs end to end on a small count (300 jobs through reelq and through BullMQ),
// in both modes, and ends with its key=value line. Figures are printed, not judged: no timing
// assertions.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <map>
#include <sstream>

#include "process.h"
#include "stack.h"

namespace reelq::testing {
namespace {

std::map<std::string, std::string> KeyValues(const std::string& line) {
  std::map<std::string, std::string> out;
  std::istringstream in(line);
  std::string word;
  while (in >> word) {
    auto eq = word.find('=');
    if (eq != std::string::npos) out[word.substr(0, eq)] = word.substr(eq + 1);
  }
  return out;
}

// Runs the bench on 300 jobs in `mode` and returns its last line's key=value pairs.
std::map<std::string, std::string> RunBench(const std::string& mode) {
  TempDir dir;
  const auto log = dir.path() / "bench.out";
  auto bench = ChildProcess::Start(
      {BuildPath("bench/throughput/bench-throughput").string(), "--mode", mode, "--jobs", "300"},
      {}, log);
  auto rc = bench.Wait(std::chrono::seconds(100));
  const std::string out = ReadFile(log);
  std::cout << out;
  EXPECT_TRUE(rc.has_value()) << "did not finish in 100 s";
  if (!rc) return {};
  EXPECT_TRUE(WIFEXITED(*rc) && WEXITSTATUS(*rc) == 0) << out;
  std::string text = out;
  while (!text.empty() && text.back() == '\n') text.pop_back();
  return KeyValues(text.substr(text.rfind('\n') + 1));
}

void ExpectFigures(std::map<std::string, std::string> kv, const std::string& mode) {
  EXPECT_EQ(kv["mode"], mode);
  EXPECT_EQ(kv["jobs"], "300");
  EXPECT_EQ(kv["reelq_succeeded"], "300");
  for (const char* key : {"reelq_jobs_per_s", "reelq_cmds_per_job", "bullmq_jobs_per_s",
                          "bullmq_cmds_per_job", "jobs_per_s_ratio", "cmds_per_job_ratio"}) {
    ASSERT_TRUE(kv.contains(key)) << key << " missing (mode " << mode << ")";
    EXPECT_GT(std::stod(kv[key]), 0) << key << " (mode " << mode << ")";
  }
  // CPU comes from /proc in clock ticks (10 ms): a process that spent less than a tick on 300
  // jobs reads 0 (the scheduler in queue mode, seen 2026-12-07), so these are only required to
  // be there and not negative.
  for (const char* key : {"reelq_redis_cpu_ms_per_1k", "bullmq_redis_cpu_ms_per_1k",
                          "redis_cpu_ratio", "worker_cpu_ms_per_1k", "scheduler_cpu_ms_per_1k"}) {
    ASSERT_TRUE(kv.contains(key)) << key << " missing (mode " << mode << ")";
    EXPECT_GE(std::stod(kv[key]), 0) << key << " (mode " << mode << ")";
  }
}

class BenchThroughput : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto missing = E2eStack::MissingBinaries(); !missing.empty()) GTEST_SKIP() << missing;
    if (!std::filesystem::exists(SourcePath("tools/node_modules/bullmq"))) {
      GTEST_SKIP() << "tools/node_modules/bullmq missing (npm --prefix tools ci)";
    }
  }
};

// Today's end to end: the simulator and the filesystem store; the sim does the work.
TEST_F(BenchThroughput, FullModePrintsKeyValueLine) {
  auto kv = RunBench("full");
  ExpectFigures(kv, "full");
  EXPECT_GT(std::stod(kv["sim_cpu_ms_per_1k"]), 0);
  EXPECT_GE(std::stoi(kv["sim_creates"]), 300);
}

// The queue alone: the noop provider and the null store, so the simulator stays idle.
TEST_F(BenchThroughput, QueueModeRunsWithoutTheSimulator) {
  auto kv = RunBench("queue");
  ExpectFigures(kv, "queue");
  EXPECT_EQ(kv["sim_creates"], "0") << "the noop provider, not the simulator, runs the jobs";
}

}  // namespace
}  // namespace reelq::testing
