// All four models through the whole product against the simulator; Kling
// multi-shot as one multi_prompt generation, and the multi-shot refusals at submit.
#include <gtest/gtest.h>

#include <iostream>
#include <nlohmann/json.hpp>
#include <numeric>

#include "e2e_util.h"
#include "stack.h"

namespace reelq::testing {
namespace {

namespace v1 = reelq::v1;

struct Kind {
  std::string model;
  std::vector<uint32_t> durations;
  std::vector<std::string> ratios;
};

// Within each model's catalogue entry (deploy/catalogue.yaml); a spread of lengths and shapes,
// not every combination (the simulator makes each distinct clip once with ffmpeg).
const std::vector<Kind>& Kinds() {
  static const std::vector<Kind> kinds = {
      {"kling-3.0", {3, 5, 10, 15}, {"16:9", "9:16", "1:1"}},
      {"sora-2", {4, 8, 12}, {"16:9", "9:16"}},
      {"veo-3.1", {4, 6, 8}, {"16:9", "9:16"}},
      {"seedance-2.0", {4, 8, 12}, {"16:9", "4:3", "1:1", "3:4", "9:16", "21:9"}},
  };
  return kinds;
}

// "21:9" and "7:3" are the same shape: compare w:h against the ratio's numbers.
bool SameShape(int width, int height, const std::string& ratio) {
  auto colon = ratio.find(':');
  if (colon == std::string::npos || width <= 0 || height <= 0) return false;
  const long rw = std::stol(ratio.substr(0, colon));
  const long rh = std::stol(ratio.substr(colon + 1));
  return static_cast<long>(width) * rh == static_cast<long>(height) * rw;
}

TEST(ModelMix, Mixed400JobBatchOverAllFourModelsHasRequestedDurationAndShape) {
  REELQ_SKIP_WITHOUT_STACK_OR_FFPROBE();
  E2eStack stack({.schedulers = 1, .workers = 2});
  auto stub = stack.JobStub();
  std::vector<v1::JobSpec> specs;
  std::map<std::string, int> per_model;
  for (int i = 0; i < 400; ++i) {
    const auto& kind = Kinds()[i % Kinds().size()];
    const int n = i / static_cast<int>(Kinds().size());
    const uint32_t duration = kind.durations[n % kind.durations.size()];
    const std::string& ratio = kind.ratios[(n / kind.durations.size()) % kind.ratios.size()];
    specs.push_back(MakeSpec("mixed clip " + std::to_string(i) + ": rain on a tin roof", kind.model,
                             duration, ratio));
    ++per_model[kind.model];
  }
  grpc::Status status;
  const auto t0 = std::chrono::steady_clock::now();
  auto batch = SubmitBatch(*stub, specs, &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(batch.accepted(), 400u);
  v1::WatchJobRequest watch;
  watch.set_batch_id(batch.batch_id());
  auto events = Watch(*stub, watch, &status, std::chrono::seconds(300));
  // Reported, not asserted: how long the batch took from submit to its watch's end.
  std::cout << "batch done in "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()
            << " s after submit\n";
  ASSERT_TRUE(status.ok()) << status.error_message() << "\n" << stack.Logs();

  std::vector<std::string> ids;
  for (const auto& item : batch.items()) ids.push_back(item.job_id());
  auto final = stack.WaitTerminal(ids, std::chrono::seconds(60));
  std::vector<std::filesystem::path> clips;
  for (const auto& id : ids) clips.push_back(stack.store_root() / final[id].output_key());
  const auto probes = ProbeAll(clips);
  int checked = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    const auto& spec = specs[i];
    const auto& job = final[ids[i]];
    SCOPED_TRACE(ids[i] + " " + spec.models(0) + " " + std::to_string(spec.duration_seconds()) +
                 "s " + spec.aspect_ratio());
    ASSERT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.DebugString() << stack.Logs();
    EXPECT_EQ(job.model(), spec.models(0));
    const auto& info = probes[i];
    ASSERT_TRUE(info.error.empty()) << info.error;
    ASSERT_TRUE(info.has_video);
    // Container duration to within a frame or two (the clips are 4 fps).
    EXPECT_NEAR(info.duration_seconds, spec.duration_seconds(), 0.5);
    EXPECT_TRUE(SameShape(info.width, info.height, spec.aspect_ratio()))
        << info.width << "x" << info.height << " (DAR " << info.display_aspect_ratio << ")";
    ++checked;
  }
  EXPECT_EQ(checked, 400);
  // Every model really went to its own provider's API.
  auto stats = stack.SimStats();
  EXPECT_EQ(stats["providers"]["kling"]["creates"].get<int>(), per_model["kling-3.0"]);
  EXPECT_EQ(stats["providers"]["sora"]["creates"].get<int>(), per_model["sora-2"]);
  EXPECT_EQ(stats["providers"]["veo"]["creates"].get<int>(), per_model["veo-3.1"]);
  EXPECT_EQ(stats["providers"]["seedance"]["creates"].get<int>(), per_model["seedance-2.0"]);
}

v1::JobSpec Shots(const std::vector<uint32_t>& durations, uint32_t clip) {
  v1::JobSpec spec;
  spec.add_models("kling-3.0");
  spec.set_duration_seconds(clip);
  for (size_t i = 0; i < durations.size(); ++i) {
    auto* shot = spec.add_shots();
    shot->set_prompt("shot " + std::to_string(i + 1) + ": the harbour, a gull, the boat");
    shot->set_duration_seconds(durations[i]);
  }
  return spec;
}

int KlingCreates(E2eStack& stack) {
  return stack.SimStats()["providers"]["kling"]["creates"].get<int>();
}

TEST(ModelMix, KlingSixShotsAreOneMultiPromptGenerationAndBadShotListsAreRefused) {
  REELQ_SKIP_WITHOUT_STACK_OR_FFPROBE();
  E2eStack stack({.schedulers = 1, .workers = 2});
  auto stub = stack.JobStub();
  grpc::Status status;

  // Refused at submit, with the reason, and nothing reaches the provider.
  SubmitJob(*stub, Shots({2, 2, 2, 2, 2, 2, 3}, 15), &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("shots"), std::string::npos) << status.error_message();
  EXPECT_NE(status.error_message().find("7"), std::string::npos) << status.error_message();
  EXPECT_NE(status.error_message().find("6"), std::string::npos)
      << "the limit is part of the reason: " << status.error_message();

  SubmitJob(*stub, Shots({5, 5}, 15), &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("shots"), std::string::npos) << status.error_message();
  EXPECT_NE(status.error_message().find("10"), std::string::npos) << status.error_message();
  EXPECT_NE(status.error_message().find("15"), std::string::npos) << status.error_message();

  // The same two as batch items are refused the same way.
  auto refused = SubmitBatch(*stub, {Shots({2, 2, 2, 2, 2, 2, 3}, 15), Shots({5, 5}, 15)}, &status);
  ASSERT_TRUE(status.ok());
  ASSERT_EQ(refused.items_size(), 2);
  for (const auto& item : refused.items()) {
    EXPECT_EQ(item.code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
    EXPECT_NE(item.message().find("shots"), std::string::npos) << item.message();
  }
  EXPECT_EQ(KlingCreates(stack), 0);

  // Six shots summing to 15 s: one generation upstream carrying all six.
  const std::vector<uint32_t> durations = {3, 3, 3, 2, 2, 2};
  auto accepted = SubmitJob(*stub, Shots(durations, 15), &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  auto done = stack.WaitTerminal({accepted.job_id()}, std::chrono::seconds(120));
  const auto& job = done[accepted.job_id()];
  ASSERT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.DebugString() << stack.Logs();
  auto stats = stack.SimStats();
  ASSERT_EQ(stats["providers"]["kling"]["creates"].get<int>(), 1) << stats.dump(1);
  const auto& creates = stats["creates"];
  ASSERT_EQ(creates.size(), 1u) << creates.dump(1);
  const auto& create = creates[0];
  EXPECT_EQ(create["provider"], "kling");
  EXPECT_EQ(create["duration_s"].get<int>(), 15);
  EXPECT_EQ(create["task_id"].get<std::string>(), job.upstream_task_id());
  std::vector<int> sent = create["multi_prompt_durations"].get<std::vector<int>>();
  EXPECT_EQ(sent, std::vector<int>(durations.begin(), durations.end())) << create.dump();
  const auto info = Probe(stack.store_root() / job.output_key());
  ASSERT_TRUE(info.error.empty()) << info.error;
  EXPECT_NEAR(info.duration_seconds, 15, 0.5);
  // The sidecar lists the shots.
  auto sidecar = nlohmann::json::parse(ReadFile(stack.store_root() / job.sidecar_key()));
  ASSERT_TRUE(sidecar.contains("shots"));
  EXPECT_EQ(sidecar["shots"].size(), 6u);
}

}  // namespace
}  // namespace reelq::testing
