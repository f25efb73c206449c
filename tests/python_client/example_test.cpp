// examples/python/submit_batch.py against the e2e stack: the Python client submits 100 jobs
// (SubmitBatch streamed from a generator) and watches the batch until every job is done; the
// test then checks through gRPC and the simulator that the batch really holds 100 SUCCEEDED jobs,
// each created upstream once.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <iostream>
#include <regex>

#include "e2e_util.h"
#include "stack.h"

namespace reelq::testing {
namespace {

namespace v1 = reelq::v1;

TEST(PythonExample, SubmitsAHundredJobsAndWatchesThemToTheEnd) {
  if (auto missing = E2eStack::MissingBinaries(); !missing.empty()) GTEST_SKIP() << missing;
  if (std::string(REELQ_PYTHON_SKIP_REASON) != "") GTEST_SKIP() << REELQ_PYTHON_SKIP_REASON;
  constexpr int kJobs = 100;
  E2eStack stack({.schedulers = 1, .workers = 2});
  stack.SimReset();

  const auto log = stack.dir() / "logs" / "python-example.log";
  auto example = ChildProcess::Start(
      {REELQ_PYTHON3, SourcePath("examples/python/submit_batch.py").string(), "--target",
       stack.scheduler_address(0), "--count", std::to_string(kJobs), "--model", "kling-3.0",
       "--model", "seedance-2.0", "--duration", "5", "--timeout", "120"},
      {{"PYTHONPATH", REELQ_PYTHON_CLIENT_DIR}, {"PYTHONDONTWRITEBYTECODE", "1"}}, log);
  auto status = example.Wait(std::chrono::seconds(150));
  const std::string output = ReadFile(log);
  std::cout << output;
  ASSERT_TRUE(status.has_value()) << "the example did not finish in 150 s";
  ASSERT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << "exit status " << *status << "\n"
                                                               << output << stack.Logs();

  std::smatch match;
  ASSERT_TRUE(std::regex_search(output, match, std::regex(R"(batch (\S+): (\d+)/(\d+) succeeded)")))
      << output;
  const std::string batch_id = match[1];
  EXPECT_EQ(match[2], std::to_string(kJobs));
  EXPECT_EQ(match[3], std::to_string(kJobs));

  // The server's view, independent of what the example printed.
  auto stub = stack.JobStub();
  auto jobs = ListBatch(*stub, batch_id);
  ASSERT_EQ(jobs.size(), static_cast<size_t>(kJobs));
  std::set<std::string> prompts;
  for (const auto& job : jobs) {
    EXPECT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.ShortDebugString();
    prompts.insert(job.spec().prompt());
  }
  EXPECT_EQ(prompts.size(), static_cast<size_t>(kJobs)) << "every job its own prompt";
  int creates = 0;
  auto stats = stack.SimStats();
  for (const char* p : {"kling", "sora", "veo", "seedance"}) {
    creates += stats["providers"][p]["creates"].get<int>();
  }
  EXPECT_EQ(creates, kJobs) << "one upstream create per job";
}

}  // namespace
}  // namespace reelq::testing
