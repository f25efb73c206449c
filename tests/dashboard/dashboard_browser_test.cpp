// Issue 14's browser test: the stack runs a batch, headless Chromium (Debian's, driven by
// playwright-core from tools/) opens the dashboard, sees the batch reach 100 %, plays a clip
// through the Range proxy, presses Retry on a failed job and sees it run again, and saves a
// screenshot of every page. The browser part is tests/dashboard/browser_test.mjs.
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "dashboard_host.h"
#include "e2e_util.h"

namespace reelq::testing {
namespace {

namespace v1 = reelq::v1;
namespace fs = std::filesystem;

constexpr const char* kChromium = "/usr/bin/chromium";

fs::path SourceDir() {
  const char* dir = std::getenv("REELQ_SOURCE_DIR");
  return dir ? fs::path(dir) : fs::path(REELQ_TEST_SOURCE_DIR);
}

// Empty when Chromium, node and playwright-core are all there; else what is missing.
std::string MissingBrowser() {
  if (!fs::exists(kChromium)) {
    return std::string(kChromium) +
           " is not installed (scripts/install-deps.sh installs Debian's "
           "chromium)";
  }
  if (std::system("node --version >/dev/null 2>&1") != 0) return "node is not installed";
  if (!fs::exists(SourceDir() / "tools/node_modules/playwright-core")) {
    return "tools/node_modules/playwright-core is missing (scripts/install-deps.sh runs npm ci)";
  }
  return {};
}

TEST(DashboardBrowser, BatchToHundredPercentClipPlaysRetryRunsAgain) {
  if (auto missing = E2eStack::MissingBinaries(); !missing.empty()) GTEST_SKIP() << missing;
  if (auto missing = MissingBrowser(); !missing.empty()) GTEST_SKIP() << missing;

  // One attempt per job: the job whose first create fails stays FAILED until Retry.
  E2eStack stack({.schedulers = 1, .workers = 2, .max_attempts = 1, .dashboard = true});
  DashboardHost host(stack, {{"tok-acme", {"acme", false}}});

  auto stub = stack.JobStub();
  std::vector<v1::JobSpec> specs;
  const char* prompts[] = {"a lighthouse in fog at dawn", "neon rain on a tram window",
                           "a paper boat on a canal",     "dust over a desert highway",
                           "a fox crossing fresh snow",   "lanterns over a night market"};
  const char* models[] = {"seedance-2.0", "kling-3.0", "veo-3.1", "sora-2"};
  for (int i = 0; i < 12; ++i) {
    auto spec = MakeSpec(std::string(prompts[i % 6]) + ", take " + std::to_string(i / 6 + 1),
                         models[i % 4], i % 4 >= 2 ? 4 : 5);
    spec.set_tenant("acme");
    specs.push_back(spec);
  }
  // The simulator fails the first create of this exact prompt and lets the next one through.
  auto flaky = MakeSpec("[sim:fail-once] a storm over the harbour wall", "seedance-2.0", 5);
  flaky.set_tenant("acme");
  specs.push_back(flaky);
  grpc::Status status;
  auto batch = SubmitBatch(*stub, specs, &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(batch.accepted(), specs.size());
  const std::string flaky_job = batch.items(static_cast<int>(specs.size()) - 1).job_id();
  // As if Kling had refused one of kling-b's creates for concurrency with 9 running (fail.lua):
  // the Accounts page shows the learned lower concurrency.
  const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  stack.redis().Run({"HSET", std::string(E2eStack::kRedisPrefix) + ":{q}:acct:kling-b",
                     "learned_conc", "8", "learned_conc_at", std::to_string(now_ms)});

  const fs::path out =
      fs::path(std::getenv("REELQ_BUILD_DIR") ? std::getenv("REELQ_BUILD_DIR") : ".") /
      "tests/dashboard/dashboard_browser_test-output";
  fs::remove_all(out);
  fs::create_directories(out);
  const std::string command = "cd '" + (SourceDir() / "tools").string() + "' && " +
                              "DASHBOARD_URL='" + host.url() + "' OPEN_DASHBOARD_URL='http://" +
                              stack.dashboard_address() + "' TOKEN=tok-acme BATCH_ID='" +
                              batch.batch_id() + "' FAILED_JOB='" + flaky_job + "' OUT_DIR='" +
                              out.string() + "' CHROMIUM='" + kChromium + "' timeout 90 node '" +
                              (SourceDir() / "tests/dashboard/browser_test.mjs").string() +
                              "' > '" + (out / "browser.log").string() + "' 2>&1";
  const int rc = std::system(command.c_str());
  std::ifstream log_file(out / "browser.log");
  std::string log((std::istreambuf_iterator<char>(log_file)), std::istreambuf_iterator<char>());
  std::cout << log;
  ASSERT_EQ(rc, 0) << "browser script failed:\n" << log << "\n" << stack.Logs(20);

  // What the browser saw, checked through the API: the retried job ran again and succeeded.
  auto final_status = GetJob(*stub, flaky_job);
  ASSERT_TRUE(final_status.has_value());
  EXPECT_EQ(final_status->state(), v1::JOB_STATE_SUCCEEDED) << final_status->DebugString();
  bool retried = false;
  for (const auto& t : final_status->transitions()) retried |= t.detail() == "retried by request";
  EXPECT_TRUE(retried) << final_status->DebugString();
  for (const char* shot : {"overview.png", "batches.png", "batch.png", "job.png", "job-failed.png",
                           "job-retried.png", "accounts.png", "tenants.png", "overview-phone.png",
                           "job-phone.png", "open-overview.png"}) {
    EXPECT_TRUE(fs::exists(out / shot) && fs::file_size(out / shot) > 1000) << shot;
  }
  std::cout << "screenshots in " << out.string() << "\n";
}

}  // namespace
}  // namespace reelq::testing
