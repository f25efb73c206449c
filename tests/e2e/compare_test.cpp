// Compare (issue 13) through the whole product: one prompt on four models, a contact sheet (a
// 2x2 grid video, a PNG), a take picked and recorded; refusals at submit; and both group
// commands of the reelq CLI (storyboard, compare) against the stack.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "e2e_util.h"
#include "stack.h"

namespace reelq::testing {
namespace {

namespace v1 = reelq::v1;

v1::JobSpec Compare(const std::vector<std::string>& models) {
  v1::JobSpec spec;
  spec.set_compare(true);
  spec.set_prompt("a red fox in fresh snow, morning light");
  spec.set_duration_seconds(8);
  for (const auto& m : models) spec.add_models(m);
  return spec;
}

TEST(Compare, FourModelsMakeATwoByTwoSheetAndATakeIsPicked) {
  REELQ_SKIP_WITHOUT_STACK_OR_FFPROBE();
  E2eStack stack({.schedulers = 1, .workers = 2});
  auto stub = stack.JobStub();
  grpc::Status status;

  // Refused at submit, naming the field.
  SubmitJob(*stub, Compare({"sora-2"}), &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message().rfind("models:", 0), 0u) << status.error_message();
  SubmitJob(*stub, Compare({"sora-2", "sora-9"}), &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message().rfind("models[1]", 0), 0u) << status.error_message();

  const std::vector<std::string> models = {"kling-3.0", "sora-2", "veo-3.1", "seedance-2.0"};
  auto accepted = SubmitJob(*stub, Compare(models), &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  auto done = stack.WaitTerminal({accepted.job_id()}, std::chrono::seconds(90));
  auto job = done[accepted.job_id()];
  ASSERT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.DebugString() << stack.Logs();
  EXPECT_EQ(job.kind(), "compare");
  ASSERT_EQ(job.children_size(), 4);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(job.children(i).model(), models[i]);
    EXPECT_GT(job.children(i).cost_usd_estimate(), 0) << models[i];
  }
  // The grid: 2x2 tiles of 640x360 (16:9 at 360 lines).
  const auto grid = Probe(stack.store_root() / job.output_key());
  ASSERT_TRUE(grid.error.empty()) << grid.error;
  EXPECT_EQ(grid.width, 2 * 640);
  EXPECT_EQ(grid.height, 2 * 360);
  ASSERT_FALSE(job.sheet_key().empty());
  const std::string png = ReadFile(stack.store_root() / job.sheet_key());
  ASSERT_GT(png.size(), 8u);
  EXPECT_EQ(png.substr(1, 3), "PNG");
  auto sidecar = nlohmann::json::parse(ReadFile(stack.store_root() / job.sidecar_key()));
  ASSERT_EQ(sidecar["takes"].size(), 4u);
  EXPECT_TRUE(sidecar["picked"].is_null());
  // What only the worker knew: the grid's checksum, the sheet's, the worker.
  const auto made = sidecar;
  ASSERT_TRUE(made.contains("grid") && made["grid"].contains("sha256")) << made.dump(1);
  ASSERT_TRUE(made.contains("sheet_sha256")) << made.dump(1);

  // Pick one take (and delete the others from the store).
  const auto picked = job.children(2);
  grpc::ClientContext ctx;
  v1::PickTakeRequest pick;
  pick.set_job_id(accepted.job_id());
  pick.set_take_job_id(picked.job_id());
  pick.set_delete_others(true);
  v1::JobStatus after;
  ASSERT_TRUE(stub->PickTake(&ctx, pick, &after).ok());
  EXPECT_EQ(after.picked_job_id(), picked.job_id());
  sidecar = nlohmann::json::parse(ReadFile(stack.store_root() / job.sidecar_key()));
  EXPECT_EQ(sidecar["picked"], picked.job_id()) << sidecar.dump(1);
  EXPECT_TRUE(sidecar.contains("picked_at_ms")) << sidecar.dump(1);
  // The pick changed only the pick: the worker's checksums and grid stay (it used to write
  // the sidecar anew from the records, without them).
  EXPECT_EQ(sidecar["grid"], made["grid"]) << sidecar.dump(1);
  EXPECT_EQ(sidecar["sheet_sha256"], made["sheet_sha256"]) << sidecar.dump(1);
  EXPECT_EQ(sidecar["worker"], made["worker"]) << sidecar.dump(1);
  EXPECT_EQ(sidecar["takes"], made["takes"]);
  for (const auto& take : job.children()) {
    EXPECT_EQ(std::filesystem::exists(stack.store_root() / take.output_key()),
              take.job_id() == picked.job_id())
        << take.output_key();
  }
  // Another take, whose clip that pick deleted, cannot be picked now.
  grpc::ClientContext ctx3;
  pick.set_take_job_id(job.children(0).job_id());
  pick.set_delete_others(false);
  const auto gone = stub->PickTake(&ctx3, pick, &after);
  EXPECT_EQ(gone.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << gone.error_message();
  EXPECT_NE(gone.error_message().find("no longer in the store"), std::string::npos)
      << gone.error_message();
  // A take that is not one of the group's is refused, naming the field.
  grpc::ClientContext ctx2;
  pick.set_take_job_id("not-a-take");
  EXPECT_EQ(stub->PickTake(&ctx2, pick, &after).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

// One sick provider does not sink a compare: with every Sora task failing, the sheet is made of
// the other three takes (Sora's a gray "failed" tile), the compare SUCCEEDED, a good take can be
// picked and Sora's is refused naming its state. Once Sora recovers, RetryJob runs only its take
// again and makes the sheet anew with all four.
TEST(Compare, AFailingModelLeavesASheetOfTheOtherTakes) {
  REELQ_SKIP_WITHOUT_STACK_OR_FFPROBE();
  E2eStack stack({.schedulers = 1, .workers = 2, .max_attempts = 2});
  stack.SimConfigure({{"providers", {{"sora", {{"faults", {{"task_failure", 1.0}}}}}}}});
  auto stub = stack.JobStub();
  grpc::Status status;
  const std::vector<std::string> models = {"kling-3.0", "sora-2", "veo-3.1", "seedance-2.0"};
  auto accepted = SubmitJob(*stub, Compare(models), &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  auto done = stack.WaitTerminal({accepted.job_id()}, std::chrono::seconds(90));
  auto job = done[accepted.job_id()];
  ASSERT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.DebugString() << stack.Logs();
  ASSERT_EQ(job.children_size(), 4);
  const auto sora = job.children(1);
  EXPECT_EQ(sora.model(), "sora-2");
  EXPECT_EQ(sora.state(), v1::JOB_STATE_FAILED);
  EXPECT_TRUE(sora.output_key().empty());
  for (int i : {0, 2, 3}) EXPECT_EQ(job.children(i).state(), v1::JOB_STATE_SUCCEEDED) << i;
  // The grid keeps its 2x2 layout (Sora's tile gray), and the PNG is made.
  const auto grid = Probe(stack.store_root() / job.output_key());
  ASSERT_TRUE(grid.error.empty()) << grid.error;
  EXPECT_EQ(grid.width, 2 * 640);
  EXPECT_EQ(grid.height, 2 * 360);
  const std::string png = ReadFile(stack.store_root() / job.sheet_key());
  ASSERT_GT(png.size(), 8u);
  EXPECT_EQ(png.substr(1, 3), "PNG");
  // The sidecar lists every take with its state, and why Sora's has no clip.
  auto sidecar = nlohmann::json::parse(ReadFile(stack.store_root() / job.sidecar_key()));
  ASSERT_EQ(sidecar["takes"].size(), 4u) << sidecar.dump(1);
  EXPECT_EQ(sidecar["takes_failed"], 1) << sidecar.dump(1);
  EXPECT_EQ(sidecar["takes"][1]["state"], "FAILED") << sidecar.dump(1);
  EXPECT_EQ(sidecar["takes"][1]["model"], "sora-2") << sidecar.dump(1);
  ASSERT_TRUE(sidecar["takes"][1].contains("error")) << sidecar.dump(1);
  EXPECT_FALSE(sidecar["takes"][1]["error"]["message"].get<std::string>().empty());
  EXPECT_EQ(sidecar["takes"][0]["state"], "SUCCEEDED") << sidecar.dump(1);
  const auto first_grid_sha = sidecar["grid"]["sha256"];

  // Sora's take cannot be picked: the refusal names its state.
  grpc::ClientContext ctx;
  v1::PickTakeRequest pick;
  pick.set_job_id(accepted.job_id());
  pick.set_take_job_id(sora.job_id());
  v1::JobStatus after;
  const auto refused = stub->PickTake(&ctx, pick, &after);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << refused.error_message();
  EXPECT_NE(refused.error_message().find("(sora-2) FAILED"), std::string::npos)
      << refused.error_message();
  EXPECT_NE(refused.error_message().find("only a take that succeeded can be picked"),
            std::string::npos)
      << refused.error_message();

  // Sora recovers: RetryJob runs its take again (only it) and makes the sheet anew.
  stack.SimConfigure({{"providers", {{"sora", {{"faults", {{"task_failure", 0.0}}}}}}}});
  stack.SimReset();
  grpc::ClientContext rctx;
  v1::RetryJobRequest retry;
  retry.set_job_id(accepted.job_id());
  v1::JobStatus retried;
  const auto again = stub->RetryJob(&rctx, retry, &retried);
  ASSERT_TRUE(again.ok()) << again.error_message();
  done = stack.WaitTerminal({accepted.job_id()}, std::chrono::seconds(90));
  job = done[accepted.job_id()];
  ASSERT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.DebugString() << stack.Logs();
  for (int i = 0; i < 4; ++i) EXPECT_EQ(job.children(i).state(), v1::JOB_STATE_SUCCEEDED) << i;
  const auto stats = stack.SimStats();
  EXPECT_EQ(stats["providers"]["sora"]["creates"], 1) << stats.dump(1);
  EXPECT_EQ(stats["providers"]["kling"]["creates"], 0) << stats.dump(1);
  sidecar = nlohmann::json::parse(ReadFile(stack.store_root() / job.sidecar_key()));
  EXPECT_EQ(sidecar["takes_failed"], 0) << sidecar.dump(1);
  EXPECT_EQ(sidecar["takes"][1]["state"], "SUCCEEDED") << sidecar.dump(1);
  EXPECT_NE(sidecar["grid"]["sha256"], first_grid_sha) << sidecar.dump(1);

  // A good take is picked.
  grpc::ClientContext pctx;
  pick.set_take_job_id(job.children(2).job_id());
  ASSERT_TRUE(stub->PickTake(&pctx, pick, &after).ok());
  EXPECT_EQ(after.picked_job_id(), job.children(2).job_id());
}

TEST(Compare, StoryboardAndCompareThroughTheCli) {
  REELQ_SKIP_WITHOUT_STACK_OR_FFPROBE();
  const auto cli = BuildPath("cli/reelq");
  if (!std::filesystem::exists(cli)) GTEST_SKIP() << cli << " not built";
  E2eStack stack({.schedulers = 1, .workers = 2});
  auto run = [&](std::vector<std::string> args, const std::string& log) {
    args.insert(args.begin(), {cli.string(), "--server", stack.scheduler_address()});
    auto process = ChildProcess::Start(args, {}, stack.dir() / log);
    auto status = process.Wait(std::chrono::seconds(120));
    return status.has_value() && WIFEXITED(*status) ? WEXITSTATUS(*status) : -1;
  };
  EXPECT_EQ(
      run({"storyboard", SourcePath("examples/storyboard.yaml").string(), "--max-wait", "100s"},
          "storyboard.log"),
      0)
      << ReadFile(stack.dir() / "storyboard.log") << stack.Logs();
  const std::string story = ReadFile(stack.dir() / "storyboard.log");
  EXPECT_NE(story.find("storyboard"), std::string::npos) << story;
  EXPECT_NE(story.find("output: "), std::string::npos) << story;
  EXPECT_NE(story.find("sora-2"), std::string::npos) << story;

  EXPECT_EQ(run({"compare", "--prompt", "a paper boat on a puddle", "--model", "sora-2", "--model",
                 "veo-3.1", "--duration", "8", "--max-wait", "100s"},
                "compare.log"),
            0)
      << ReadFile(stack.dir() / "compare.log") << stack.Logs();
  const std::string compare = ReadFile(stack.dir() / "compare.log");
  EXPECT_NE(compare.find("sheet: "), std::string::npos) << compare;
  EXPECT_NE(compare.find("veo-3.1"), std::string::npos) << compare;
}

}  // namespace
}  // namespace reelq::testing
