// bench-scale runs every part at tiny sizes (--smoke) and ends with its key=value line. Figures
// are printed, not judged (no timing assertions); what is checked is that every part ran to the
// end: all in-flight jobs succeeded, and the retention part answered a figure or "unsupported".
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

TEST(BenchScale, SmokeRunPrintsEveryPart) {
  if (auto missing = E2eStack::MissingBinaries(); !missing.empty()) GTEST_SKIP() << missing;
  if (!std::filesystem::exists(SourcePath("tools/node_modules/bullmq"))) {
    GTEST_SKIP() << "tools/node_modules/bullmq missing (npm --prefix tools ci)";
  }
  TempDir dir;
  const auto log = dir.path() / "bench.out";
  auto bench =
      ChildProcess::Start({BuildPath("bench/scale/bench-scale").string(), "--smoke"}, {}, log);
  auto rc = bench.Wait(std::chrono::seconds(250));
  const std::string out = ReadFile(log);
  std::cout << out;
  ASSERT_TRUE(rc.has_value()) << "did not finish in 250 s";
  ASSERT_TRUE(WIFEXITED(*rc) && WEXITSTATUS(*rc) == 0) << out;

  std::string text = out;
  while (!text.empty() && text.back() == '\n') text.pop_back();
  const std::string last = text.substr(text.rfind('\n') + 1);
  auto kv = KeyValues(last);
  for (const char* key :
       {"enqueue_jobs_per_s", "bullmq_enqueue_jobs_per_s", "bytes_per_queued_job", "list_ms_p95",
        "deep_jobs_per_s", "shallow_jobs_per_s", "depth_ratio", "inflight_rss_mb",
        "redis_cmds_per_inflight_job_s", "bullmq_inflight_rss_mb"}) {
    ASSERT_TRUE(kv.contains(key)) << key << " missing from: " << last;
    EXPECT_GT(std::stod(kv[key]), 0) << key << " in: " << last;
  }
  EXPECT_EQ(kv["inflight_jobs"], "200") << last;
  EXPECT_EQ(kv["inflight_succeeded"], "200") << last;
  ASSERT_TRUE(kv.contains("retention_memory_growth")) << last;
  if (kv["retention_memory_growth"] != "unsupported") {
    EXPECT_NO_THROW(std::stod(kv["retention_memory_growth"])) << last;
    // The soak holds its rate: 3,000 jobs at 300 jobs/s, at least four 3 s periods.
    ASSERT_TRUE(kv.contains("soak_jobs") && kv.contains("retention_first_window_mb")) << last;
    EXPECT_GE(std::stoi(kv["soak_jobs"]), 3000) << last;
    EXPECT_GT(std::stod(kv["retention_first_window_mb"]), 0) << last;
  }
}

}  // namespace
}  // namespace reelq::testing
