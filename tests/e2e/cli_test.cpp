// The reelq CLI against the real stack: `reelq batch examples/batch.jsonl` (the demo's batch)
// exits 0 with every job SUCCEEDED, and its JSON output shows the prompts as the text that was
// sent (JobSpec text fields are `bytes` on the wire; the CLI converts them both ways).
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "stack.h"

namespace reelq::testing {
namespace {

TEST(E2eCli, DemoBatchThroughTheCliSucceedsWithPlainTextPrompts) {
  if (auto missing = E2eStack::MissingBinaries(); !missing.empty()) GTEST_SKIP() << missing;
  const auto cli = BuildPath("cli/reelq");
  if (!std::filesystem::exists(cli)) GTEST_SKIP() << cli << " not built";
  E2eStack stack({.schedulers = 1, .workers = 2});
  const auto batch_file = SourcePath("examples/batch.jsonl");
  const auto out_json = stack.dir() / "batch-result.json";
  auto process = ChildProcess::Start(
      {cli.string(), "--server", stack.scheduler_address(), "batch", batch_file.string(),
       "--max-wait", "240s", "--output-json", out_json.string()},
      {}, stack.dir() / "cli.log");
  auto status = process.Wait(std::chrono::seconds(300));
  ASSERT_TRUE(status.has_value()) << "reelq batch did not finish";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
      << "status " << *status << "\n"
      << ReadFile(stack.dir() / "cli.log") << stack.Logs();

  std::set<std::string> sent;
  std::ifstream in(batch_file);
  for (std::string line; std::getline(in, line);) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto j = nlohmann::json::parse(line);
    if (j.contains("prompt")) sent.insert(j["prompt"].get<std::string>());
  }
  auto result = nlohmann::json::parse(ReadFile(out_json), nullptr, false);
  ASSERT_TRUE(result.is_object()) << ReadFile(out_json);
  ASSERT_EQ(result["jobs"].size(), 60u);
  std::set<std::string> got;
  for (const auto& job : result["jobs"]) {
    EXPECT_EQ(job.value("state", ""), "JOB_STATE_SUCCEEDED") << job.dump();
    const auto& spec = job["spec"];
    if (spec.contains("prompt") && !spec["prompt"].get<std::string>().empty()) {
      got.insert(spec["prompt"].get<std::string>());
    }
    static const std::set<std::string> kNames = {"auto", "kling-3.0", "sora-2", "veo-3.1",
                                                 "seedance-2.0"};
    for (const auto& model : spec["models"]) {
      EXPECT_TRUE(kNames.contains(model.get<std::string>())) << "not plain text: " << model;
    }
  }
  EXPECT_EQ(got, sent);
}

}  // namespace
}  // namespace reelq::testing
