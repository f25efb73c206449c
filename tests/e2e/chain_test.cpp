// Chained storyboards (issue 13) through the whole product: shot k+1 starts from the last frame
// of shot k (Seedance returns it; for Veo the worker extracts it from the stored clip), seen in
// the simulator's record of the images each create carried; a failed shot stops the chain and
// RetryJob resumes from it; refusals at submit naming the field; `reelq storyboard --chain`.
#include <sys/wait.h>

#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "e2e_util.h"
#include "stack.h"

namespace reelq::testing {
namespace {

namespace v1 = reelq::v1;

v1::JobSpec Chain(const std::vector<std::string>& prompts, uint32_t seconds,
                  const std::string& model) {
  v1::JobSpec spec;
  spec.set_storyboard(true);
  spec.set_chain(true);
  spec.add_models(model);
  for (const auto& p : prompts) {
    auto* shot = spec.add_shots();
    shot->set_prompt(p);
    shot->set_duration_seconds(seconds);
  }
  return spec;
}

std::string Sha256Text(const std::string& text, const std::filesystem::path& scratch) {
  const auto file = scratch / "chain-sha.txt";
  std::ofstream(file, std::ios::binary) << text;
  return Sha256File(file);
}

// The simulator's creates whose prompt is `prompt`.
std::vector<nlohmann::json> CreatesOf(E2eStack& stack, const std::string& prompt) {
  const auto sha = Sha256Text(prompt, stack.dir());
  std::vector<nlohmann::json> out;
  const auto stats = stack.SimStats();  // kept: a range-for over a temporary's member dangles
  for (const auto& c : stats["creates"]) {
    if (c.value("prompt_sha256", "") == sha) out.push_back(c);
  }
  return out;
}

v1::JobStatus WaitDone(E2eStack& stack, const std::string& id) {
  return stack.WaitTerminal({id}, std::chrono::seconds(90))[id];
}

// Shot k+1 of a finished chain was created with the last frame of shot k as its first frame,
// exactly the frame stored in the object store.
void ExpectChained(E2eStack& stack, v1::JobService::Stub& stub, const v1::JobStatus& group,
                   const std::vector<std::string>& prompts) {
  ASSERT_EQ(group.children_size(), static_cast<int>(prompts.size()));
  auto first = CreatesOf(stack, prompts[0]);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_TRUE(first[0]["images"].empty()) << first[0].dump();
  std::set<std::string> frames;
  for (size_t k = 0; k + 1 < prompts.size(); ++k) {
    SCOPED_TRACE("shot " + std::to_string(k + 1));
    const auto& shot = group.children(static_cast<int>(k));
    ASSERT_FALSE(shot.last_frame_key().empty()) << group.DebugString();
    const auto frame_file = stack.store_root() / shot.last_frame_key();
    ASSERT_TRUE(std::filesystem::exists(frame_file)) << frame_file;
    const std::string frame_sha = Sha256File(frame_file);
    frames.insert(frame_sha);
    // The frame is a picture of the clip's size.
    const auto frame_info = Probe(frame_file);
    const auto clip_info = Probe(stack.store_root() / shot.output_key());
    EXPECT_TRUE(frame_info.error.empty()) << frame_info.error;
    EXPECT_EQ(frame_info.width, clip_info.width);
    EXPECT_EQ(frame_info.height, clip_info.height);
    // The next shot's job names it as its first frame, and the provider received exactly it.
    auto next = GetJob(stub, group.children(static_cast<int>(k + 1)).job_id());
    ASSERT_TRUE(next.has_value());
    EXPECT_EQ(next->spec().first_frame().key(), shot.last_frame_key());
    auto creates = CreatesOf(stack, prompts[k + 1]);
    ASSERT_EQ(creates.size(), 1u) << stack.SimStats()["creates"].dump(1);
    ASSERT_EQ(creates[0]["images"].size(), 1u) << creates[0].dump();
    EXPECT_EQ(creates[0]["images"][0]["role"], "first_frame");
    EXPECT_EQ(creates[0]["images"][0]["sha256"], frame_sha);
    // It waited for the shot before it.
    bool queued_by_chain = false;
    for (const auto& t : next->transitions()) {
      queued_by_chain =
          queued_by_chain ||
          t.detail() == "queued: starts from the last frame of shots[" + std::to_string(k) + "]";
    }
    EXPECT_TRUE(queued_by_chain) << next->DebugString();
  }
  // Each clip is labelled with its own job, so every last frame differs.
  EXPECT_EQ(frames.size(), prompts.size() - 1);
}

TEST(Chain, ShotsStartFromThePreviousShotsLastFrameOnSeedanceAndVeo) {
  REELQ_SKIP_WITHOUT_STACK_OR_FFPROBE();
  E2eStack stack({.workers = 1, .sim_clip_labels = true});
  auto stub = stack.JobStub();
  struct Case {
    std::string model;
    uint32_t seconds;
  };
  for (const Case& c : {Case{"seedance-2.0", 4}, Case{"veo-3.1", 4}}) {
    SCOPED_TRACE(c.model);
    const std::vector<std::string> prompts = {c.model + ": the courier leaves the station",
                                              c.model + ": the courier crosses the bridge",
                                              c.model + ": the courier reaches the tower"};
    grpc::Status status;
    auto accepted = SubmitJob(*stub, Chain(prompts, c.seconds, c.model), &status);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(accepted.status().kind(), "storyboard");
    auto group = WaitDone(stack, accepted.job_id());
    ASSERT_EQ(group.state(), v1::JOB_STATE_SUCCEEDED) << group.DebugString() << stack.Logs();
    ExpectChained(stack, *stub, group, prompts);
    const auto info = Probe(stack.store_root() / group.output_key());
    ASSERT_TRUE(info.error.empty()) << info.error;
    EXPECT_NEAR(info.duration_seconds, 3.0 * c.seconds, 0.5 * 3);
  }
}

TEST(Chain, AFailedShotStopsTheChainAndRetryResumesFromIt) {
  REELQ_SKIP_WITHOUT_STACK_OR_FFPROBE();
  // One attempt per job: the injected failure fails shot 2, and so the chain.
  E2eStack stack({.workers = 1, .max_attempts = 1});
  auto stub = stack.JobStub();
  const std::vector<std::string> prompts = {
      "chain stop: first", "chain stop: second [sim:fail-once]", "chain stop: third"};
  grpc::Status status;
  auto accepted = SubmitJob(*stub, Chain(prompts, 4, "seedance-2.0"), &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  auto group = WaitDone(stack, accepted.job_id());
  ASSERT_EQ(group.state(), v1::JOB_STATE_FAILED) << group.DebugString() << stack.Logs();
  EXPECT_EQ(group.error().message().rfind("shots[1]", 0), 0u) << group.error().message();
  ASSERT_EQ(group.children_size(), 3);
  EXPECT_EQ(group.children(0).state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(group.children(1).state(), v1::JOB_STATE_FAILED);
  // Shot 3 never ran: cancelled, nothing held for it any more.
  EXPECT_EQ(group.children(2).state(), v1::JOB_STATE_CANCELLED);
  EXPECT_EQ(group.reserved_micros(), 0);
  auto third = GetJob(*stub, group.children(2).job_id());
  ASSERT_TRUE(third.has_value());
  EXPECT_EQ(third->transitions(third->transitions_size() - 1).detail(),
            "not run: the chain stopped at shots[1]");
  EXPECT_EQ(CreatesOf(stack, prompts[2]).size(), 0u);
  const std::string frame = group.children(0).last_frame_key();
  ASSERT_FALSE(frame.empty());

  grpc::ClientContext ctx;
  v1::RetryJobRequest retry;
  retry.set_job_id(accepted.job_id());
  v1::JobStatus retried;
  ASSERT_TRUE(stub->RetryJob(&ctx, retry, &retried).ok());
  group = WaitDone(stack, accepted.job_id());
  ASSERT_EQ(group.state(), v1::JOB_STATE_SUCCEEDED) << group.DebugString() << stack.Logs();
  // Shots 2 and 3 only: the first was made once, and not paid for again.
  EXPECT_EQ(CreatesOf(stack, prompts[0]).size(), 1u);
  auto second = CreatesOf(stack, prompts[1]);
  ASSERT_EQ(second.size(), 2u);
  EXPECT_EQ(CreatesOf(stack, prompts[2]).size(), 1u);
  // The re-run shot 2 started from the same frame as before.
  const std::string frame_sha = Sha256File(stack.store_root() / frame);
  for (const auto& c : second) {
    ASSERT_EQ(c["images"].size(), 1u) << c.dump();
    EXPECT_EQ(c["images"][0]["sha256"], frame_sha);
  }
  EXPECT_EQ(group.children(0).last_frame_key(), frame);
  // Shot 3 started from the last frame of the re-run shot 2.
  const std::string second_frame = group.children(1).last_frame_key();
  ASSERT_FALSE(second_frame.empty());
  auto third_creates = CreatesOf(stack, prompts[2]);
  ASSERT_EQ(third_creates.size(), 1u);
  ASSERT_EQ(third_creates[0]["images"].size(), 1u) << third_creates[0].dump();
  EXPECT_EQ(third_creates[0]["images"][0]["sha256"], Sha256File(stack.store_root() / second_frame));
}

TEST(Chain, BadChainsAreRefusedAtSubmitNamingTheField) {
  REELQ_SKIP_WITHOUT_STACK_OR_FFPROBE();
  // A model that takes no first-frame image (no `inputs:`), on the noop provider.
  E2eStack stack({.workers = 1,
                  .extra_yaml = "models:\n  - id: still-noop\n    provider: noop\n"
                                "    upstream_model: noop\n    durations: [4]\n"
                                "    max_clip_seconds: 4\n    aspect_ratios: [\"16:9\"]\n"
                                "    resolutions: [\"720p\"]\n    audio: true\n"
                                "    latency: {min: 1, p50: 1, p95: 1, max: 1}\n",
                  .extra_accounts_yaml = "  - {id: noop-a, provider: noop}\n"});
  auto stub = stack.JobStub();
  auto refused = [&](const v1::JobSpec& spec, const std::string& message_start) {
    grpc::Status status;
    SubmitJob(*stub, spec, &status);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
    EXPECT_EQ(status.error_message().rfind(message_start, 0), 0u) << status.error_message();
  };
  refused(Chain({"a", "b"}, 4, "still-noop"),
          "chain: shots[1] starts from the last frame of shots[0], but still-noop takes no "
          "first-frame image");
  auto own_model = Chain({"a", "b", "c"}, 4, "seedance-2.0");
  own_model.mutable_shots(2)->set_model("still-noop");
  refused(own_model,
          "chain: shots[2] starts from the last frame of shots[1], but still-noop takes no "
          "first-frame image");
  refused(Chain({"only one"}, 4, "seedance-2.0"), "chain: a chain needs at least two shots");
  v1::JobSpec no_shots = MakeSpec("no shots", "seedance-2.0", 4);
  no_shots.set_chain(true);
  refused(no_shots, "chain: a chain needs a storyboard's shots");
  v1::JobSpec compare = MakeSpec("a compare", "seedance-2.0", 4);
  compare.add_models("veo-3.1");
  compare.set_compare(true);
  compare.set_chain(true);
  refused(compare, "chain: a chain is a storyboard's shots run in order, not a compare");
  // Under auto only models that take a first frame make the chained shots (the fastest model,
  // still-noop, takes none).
  v1::JobSpec routed = Chain({"auto: one", "auto: two"}, 4, "auto");
  routed.mutable_shots(0)->set_model("seedance-2.0");
  grpc::Status status;
  auto accepted = SubmitJob(*stub, routed, &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  auto group = WaitDone(stack, accepted.job_id());
  ASSERT_EQ(group.state(), v1::JOB_STATE_SUCCEEDED) << group.DebugString() << stack.Logs();
  EXPECT_NE(group.children(1).model(), "still-noop");
}

TEST(Chain, ReelqStoryboardChainThroughTheCli) {
  REELQ_SKIP_WITHOUT_STACK_OR_FFPROBE();
  const auto cli = BuildPath("cli/reelq");
  if (!std::filesystem::exists(cli)) GTEST_SKIP() << cli << " not built";
  E2eStack stack({.workers = 1});
  const auto log = stack.dir() / "chain.log";
  auto process = ChildProcess::Start(
      {cli.string(), "--server", stack.scheduler_address(), "storyboard",
       SourcePath("examples/storyboard.yaml").string(), "--chain", "--max-wait", "100s"},
      {}, log);
  auto exit = process.Wait(std::chrono::seconds(120));
  ASSERT_TRUE(exit && WIFEXITED(*exit)) << ReadFile(log);
  EXPECT_EQ(WEXITSTATUS(*exit), 0) << ReadFile(log) << stack.Logs();
  const std::string out = ReadFile(log);
  EXPECT_NE(out.find("output: "), std::string::npos) << out;
  // Shots 2 to 4 each started from a frame.
  int with_image = 0;
  const auto stats = stack.SimStats();
  for (const auto& c : stats["creates"]) with_image += c["images"].empty() ? 0 : 1;
  EXPECT_EQ(with_image, 3) << stats["creates"].dump(1);
}

}  // namespace
}  // namespace reelq::testing
