// Storyboards (issue 13) through the whole product: shots on their own models joined into one
// clip, a shot list too long for one generation split, one Kling can make kept whole, cancel
// and retry of a group, and refusals at submit naming the field.
#include <gtest/gtest.h>

#include <fstream>
#include <set>

#include <nlohmann/json.hpp>
#include <thread>

#include "e2e_util.h"
#include "stack.h"

namespace reelq::testing {
namespace {

namespace v1 = reelq::v1;

struct ShotDef {
  std::string prompt;
  uint32_t seconds;
  std::string model;  // empty: the storyboard's
};

v1::JobSpec Storyboard(const std::vector<ShotDef>& shots, const std::string& model = "") {
  v1::JobSpec spec;
  spec.set_storyboard(true);
  if (!model.empty()) spec.add_models(model);
  for (const auto& s : shots) {
    auto* shot = spec.add_shots();
    shot->set_prompt(s.prompt);
    shot->set_duration_seconds(s.seconds);
    if (!s.model.empty()) shot->set_model(s.model);
  }
  return spec;
}

std::string Sha256Text(const std::string& text) {
  const auto file = std::filesystem::temp_directory_path() / "reelq-sb-sha.txt";
  {
    std::ofstream out(file, std::ios::binary);
    out << text;
  }
  auto sha = Sha256File(file);
  std::filesystem::remove(file);
  return sha;
}

// Creates in the simulator's record with this prompt.
int CreatesOf(const nlohmann::json& stats, const std::string& prompt) {
  const auto sha = Sha256Text(prompt);
  int n = 0;
  for (const auto& c : stats["creates"]) n += c.value("prompt_sha256", "") == sha ? 1 : 0;
  return n;
}

v1::JobStatus WaitDone(E2eStack& stack, const std::string& id) {
  auto done = stack.WaitTerminal({id}, std::chrono::seconds(90));
  return done[id];
}

TEST(Storyboard, ShotsOnTwoModelsJoinAndShotListsSplitOrStayWhole) {
  REELQ_SKIP_WITHOUT_STACK_OR_FFPROBE();
  E2eStack stack({.schedulers = 1, .workers = 2});
  auto stub = stack.JobStub();
  grpc::Status status;

  // Four shots across two single-shot models, each naming its own.
  const std::vector<ShotDef> shots = {{"wide: a lighthouse at dusk", 4, "sora-2"},
                                      {"medium: the keeper on the stairs", 4, "veo-3.1"},
                                      {"close-up: the lamp ignites", 8, "sora-2"},
                                      {"aerial: the beam over the sea", 6, "veo-3.1"}};
  auto accepted = SubmitJob(*stub, Storyboard(shots), &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  auto job = WaitDone(stack, accepted.job_id());
  ASSERT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.DebugString() << stack.Logs();
  EXPECT_EQ(job.kind(), "storyboard");
  ASSERT_EQ(job.children_size(), 4);
  for (int i = 0; i < 4; ++i) {
    const auto& c = job.children(i);
    EXPECT_EQ(c.index(), static_cast<uint32_t>(i));
    EXPECT_EQ(c.state(), v1::JOB_STATE_SUCCEEDED);
    EXPECT_EQ(c.model(), shots[i].model);
    // The per-shot clips stay in the store.
    EXPECT_TRUE(std::filesystem::exists(stack.store_root() / c.output_key())) << c.output_key();
  }
  const auto info = Probe(stack.store_root() / job.output_key());
  ASSERT_TRUE(info.error.empty()) << info.error;
  EXPECT_TRUE(info.has_video);
  EXPECT_NEAR(info.duration_seconds, 22, 0.5 * 4) << job.output_key();
  auto sidecar = nlohmann::json::parse(ReadFile(stack.store_root() / job.sidecar_key()));
  ASSERT_EQ(sidecar["shots"].size(), 4u) << sidecar.dump(1);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(sidecar["shots"][i]["model"], shots[i].model);
    EXPECT_FALSE(sidecar["shots"][i]["upstream_id"].get<std::string>().empty());
  }
  auto stats = stack.SimStats();
  EXPECT_EQ(stats["providers"]["sora"]["creates"].get<int>(), 2);
  EXPECT_EQ(stats["providers"]["veo"]["creates"].get<int>(), 2);

  // WatchJob on the storyboard shows its shots' transitions, marked with the shot.
  v1::WatchJobRequest watch;
  watch.set_job_id(accepted.job_id());
  auto events = Watch(*stub, watch, &status, std::chrono::seconds(30));
  ASSERT_TRUE(status.ok()) << status.error_message();
  std::set<uint32_t> shots_seen_succeeding;
  for (const auto& e : events) {
    if (e.parent_job_id() == accepted.job_id() && e.state() == v1::JOB_STATE_SUCCEEDED) {
      shots_seen_succeeding.insert(e.child_index());
    }
  }
  EXPECT_EQ(shots_seen_succeeding, (std::set<uint32_t>{0, 1, 2, 3}));
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().job_id(), accepted.job_id());
  EXPECT_EQ(events.back().state(), v1::JOB_STATE_SUCCEEDED);

  // Seven shots, 20 s, `auto`: no one generation can make it, so it is split (never sent to
  // Kling whole); the 2 s shot is made at the shortest length a model makes and cut.
  stack.SimReset();
  std::vector<ShotDef> seven;
  for (int i = 0; i < 7; ++i) seven.push_back({"shot " + std::to_string(i) + " of seven", 3, ""});
  seven.back().seconds = 2;
  accepted = SubmitJob(*stub, Storyboard(seven, "auto"), &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  job = WaitDone(stack, accepted.job_id());
  ASSERT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.DebugString() << stack.Logs();
  EXPECT_EQ(job.kind(), "storyboard");
  EXPECT_EQ(job.children_size(), 7);
  stats = stack.SimStats();
  ASSERT_EQ(stats["creates"].size(), 7u) << stats["creates"].dump(1);
  for (const auto& c : stats["creates"]) {
    EXPECT_TRUE(c["multi_prompt_durations"].empty()) << "sent whole: " << c.dump();
  }
  const auto seven_info = Probe(stack.store_root() / job.output_key());
  ASSERT_TRUE(seven_info.error.empty()) << seven_info.error;
  EXPECT_NEAR(seven_info.duration_seconds, 20, 0.5 * 7);

  // Six shots, 15 s, on Kling: still one native multi-shot generation.
  stack.SimReset();
  std::vector<ShotDef> six;
  for (uint32_t d : {3u, 3u, 3u, 2u, 2u, 2u}) six.push_back({"one of six", d, ""});
  accepted = SubmitJob(*stub, Storyboard(six, "kling-3.0"), &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  job = WaitDone(stack, accepted.job_id());
  ASSERT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.DebugString() << stack.Logs();
  EXPECT_EQ(job.kind(), "");
  EXPECT_EQ(job.children_size(), 0);
  stats = stack.SimStats();
  ASSERT_EQ(stats["creates"].size(), 1u) << stats["creates"].dump(1);
  EXPECT_EQ(stats["creates"][0]["multi_prompt_durations"].size(), 6u);
}

TEST(Storyboard, BadInputIsRefusedNamingTheFieldAndCancelReachesEveryShot) {
  REELQ_SKIP_WITHOUT_STACK_OR_FFPROBE();
  E2eStack stack({.schedulers = 1, .workers = 1});
  auto stub = stack.JobStub();
  grpc::Status status;
  struct Bad {
    v1::JobSpec spec;
    std::string field;
  };
  std::vector<Bad> bad = {
      {Storyboard({}), "shots:"},
      {Storyboard({{"a", 4, ""}, {"b", 0, ""}}), "shots[1].duration_seconds"},
      {Storyboard({{"a", 4, ""}, {"far too long for any model", 40, ""}}),
       "shots[1].duration_seconds"},
      {Storyboard({{"a", 4, "sora-2"}, {"b", 4, "sora-9"}}), "shots[1].model"},
  };
  for (const auto& b : bad) {
    SubmitJob(*stub, b.spec, &status);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << b.field;
    EXPECT_EQ(status.error_message().rfind(b.field, 0), 0u)
        << "want " << b.field << ", got " << status.error_message();
  }
  EXPECT_EQ(stack.SimStats()["creates"].size(), 0u);

  // Cancelling a storyboard cancels each of its shots.
  auto accepted = SubmitJob(*stub,
                            Storyboard({{"[sim:slow] one", 4, "sora-2"},
                                        {"[sim:slow] two", 4, "veo-3.1"},
                                        {"[sim:slow] three", 8, "sora-2"}}),
                            &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  grpc::ClientContext ctx;
  v1::CancelJobRequest cancel;
  cancel.set_job_id(accepted.job_id());
  v1::JobStatus cancelled;
  ASSERT_TRUE(stub->CancelJob(&ctx, cancel, &cancelled).ok());
  EXPECT_EQ(cancelled.state(), v1::JOB_STATE_CANCELLED);
  ASSERT_EQ(cancelled.children_size(), 3);
  for (const auto& c : cancelled.children()) {
    EXPECT_EQ(c.state(), v1::JOB_STATE_CANCELLED) << c.job_id();
  }
}

TEST(Storyboard, ShotsWhoseStreamsDifferAreReencodedAtTheStoryboardsSize) {
  REELQ_SKIP_WITHOUT_STACK_OR_FFPROBE();
  E2eStack stack({.schedulers = 1, .workers = 1});
  auto stub = stack.JobStub();
  grpc::Status status;
  // Audio off: Sora's clip still has a sound track (the simulator's Sora always makes one) and
  // Seedance's has none, so the streams differ and the join re-encodes.
  auto spec = Storyboard({{"silent one", 4, "sora-2"}, {"silent two", 4, "seedance-2.0"}});
  spec.set_audio(false);
  auto accepted = SubmitJob(*stub, spec, &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  auto job = WaitDone(stack, accepted.job_id());
  ASSERT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.DebugString() << stack.Logs();
  auto sidecar = nlohmann::json::parse(ReadFile(stack.store_root() / job.sidecar_key()));
  EXPECT_EQ(sidecar["join"], "reencode") << sidecar.dump(1);
  const auto info = Probe(stack.store_root() / job.output_key());
  ASSERT_TRUE(info.error.empty()) << info.error;
  EXPECT_EQ(info.width, 1280);  // 720p at 16:9
  EXPECT_EQ(info.height, 720);
  EXPECT_NEAR(info.duration_seconds, 8, 0.5 * 2);
}

TEST(Storyboard, RetryRunsOnlyTheFailedShotThenJoins) {
  REELQ_SKIP_WITHOUT_STACK_OR_FFPROBE();
  // One attempt per job: the injected failure fails the shot, and so the storyboard.
  E2eStack stack({.schedulers = 1, .workers = 2, .max_attempts = 1});
  auto stub = stack.JobStub();
  grpc::Status status;
  const std::vector<ShotDef> shots = {{"retry: first", 4, "seedance-2.0"},
                                      {"retry: second [sim:fail-once]", 4, "sora-2"},
                                      {"retry: third", 5, "seedance-2.0"}};
  auto accepted = SubmitJob(*stub, Storyboard(shots), &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  auto job = WaitDone(stack, accepted.job_id());
  ASSERT_EQ(job.state(), v1::JOB_STATE_FAILED) << job.DebugString() << stack.Logs();
  EXPECT_NE(job.error().message().find("shots[1]"), std::string::npos) << job.error().message();
  // The other shots end on their own (they are not cancelled by the failure).
  std::vector<std::string> children;
  for (const auto& c : job.children()) children.push_back(c.job_id());
  auto ended = stack.WaitTerminal(children, std::chrono::seconds(60));
  EXPECT_EQ(ended[children[0]].state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(ended[children[1]].state(), v1::JOB_STATE_FAILED);
  EXPECT_EQ(ended[children[2]].state(), v1::JOB_STATE_SUCCEEDED);

  grpc::ClientContext ctx;
  v1::RetryJobRequest retry;
  retry.set_job_id(accepted.job_id());
  v1::JobStatus retried;
  ASSERT_TRUE(stub->RetryJob(&ctx, retry, &retried).ok());
  job = WaitDone(stack, accepted.job_id());
  ASSERT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.DebugString() << stack.Logs();
  auto stats = stack.SimStats();
  EXPECT_EQ(CreatesOf(stats, shots[0].prompt), 1) << stats["creates"].dump(1);
  EXPECT_EQ(CreatesOf(stats, shots[1].prompt), 2);
  EXPECT_EQ(CreatesOf(stats, shots[2].prompt), 1);
  const auto info = Probe(stack.store_root() / job.output_key());
  ASSERT_TRUE(info.error.empty()) << info.error;
  EXPECT_NEAR(info.duration_seconds, 13, 0.5 * 3);
}

}  // namespace
}  // namespace reelq::testing
