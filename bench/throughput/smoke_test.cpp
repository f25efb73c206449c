// bench-throughput runs end to end on a small count (300 jobs through reelq and through BullMQ)
// and ends with its key=value line. Figures are printed, not judged: no timing assertions.
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

TEST(BenchThroughput, SmallRunPrintsKeyValueLine) {
  if (auto missing = E2eStack::MissingBinaries(); !missing.empty()) GTEST_SKIP() << missing;
  if (!std::filesystem::exists(SourcePath("tools/node_modules/bullmq"))) {
    GTEST_SKIP() << "tools/node_modules/bullmq missing (npm --prefix tools ci)";
  }
  TempDir dir;
  const auto log = dir.path() / "bench.out";
  auto bench = ChildProcess::Start(
      {BuildPath("bench/throughput/bench-throughput").string(), "--jobs", "300"}, {}, log);
  auto rc = bench.Wait(std::chrono::seconds(100));
  const std::string out = ReadFile(log);
  std::cout << out;
  ASSERT_TRUE(rc.has_value()) << "did not finish in 100 s";
  ASSERT_TRUE(WIFEXITED(*rc) && WEXITSTATUS(*rc) == 0) << out;

  std::string text = out;
  while (!text.empty() && text.back() == '\n') text.pop_back();
  const std::string last = text.substr(text.rfind('\n') + 1);
  auto kv = KeyValues(last);
  EXPECT_EQ(kv["jobs"], "300") << last;
  EXPECT_EQ(kv["reelq_succeeded"], "300") << last;
  for (const char* key : {"reelq_jobs_per_s", "reelq_cmds_per_job", "bullmq_jobs_per_s",
                          "bullmq_cmds_per_job", "jobs_per_s_ratio", "cmds_per_job_ratio"}) {
    ASSERT_TRUE(kv.contains(key)) << key << " missing from: " << last;
    EXPECT_GT(std::stod(kv[key]), 0) << key << " in: " << last;
  }
}

}  // namespace
}  // namespace reelq::testing
