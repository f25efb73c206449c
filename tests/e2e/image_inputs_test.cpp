// Input images through the real stack (issue 13): a first-frame PNG submitted to each of the
// four models reaches the simulator in that provider's form (its recorded SHA-256 equals the
// PNG's), the job keeps only the stored key, and the clip is labelled with the job; bad inputs
// (not an image, too big, a model that takes none, another tenant's key) are refused at submit
// naming the field; under `auto` a model that cannot take the input is not chosen; the
// `reelq submit --first-frame` CLI path.
#include <sys/wait.h>

#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "e2e_util.h"
#include "stack.h"
#include "test_images.h"

namespace reelq::testing {
namespace {

using reelq::v1::JobSpec;

std::string Sha256(const std::string& data, const std::filesystem::path& scratch) {
  const auto file = scratch / "sha-input.bin";
  std::ofstream(file, std::ios::binary) << data;
  return Sha256File(file);
}

// Polls GetJob until the job is terminal (or `deadline` passes).
v1::JobStatus WaitTerminal(v1::JobService::Stub& stub, const std::string& id,
                           std::chrono::seconds deadline = std::chrono::seconds(60)) {
  const auto end = std::chrono::steady_clock::now() + deadline;
  v1::JobStatus last;
  while (std::chrono::steady_clock::now() < end) {
    if (auto job = GetJob(stub, id)) {
      last = *job;
      if (last.state() == v1::JOB_STATE_SUCCEEDED || last.state() == v1::JOB_STATE_FAILED ||
          last.state() == v1::JOB_STATE_CANCELLED) {
        return last;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ADD_FAILURE() << "job " << id << " not terminal after " << deadline.count() << " s";
  return last;
}

// The simulator's create records carrying an image with this SHA-256.
std::vector<nlohmann::json> CreatesWithImage(E2eStack& stack, const std::string& sha) {
  std::vector<nlohmann::json> out;
  const auto stats = stack.SimStats();
  for (const auto& c : stats["creates"]) {
    for (const auto& image : c["images"]) {
      if (image["sha256"] == sha) out.push_back(c);
    }
  }
  return out;
}

TEST(E2eImageInputs, FirstFramePngReachesEachModelInItsProvidersForm) {
  REELQ_SKIP_WITHOUT_STACK_OR_FFPROBE();
  E2eStack stack({.workers = 1, .sim_clip_labels = true});
  auto stub = stack.JobStub();
  struct Case {
    std::string model, provider;
    uint32_t seconds;
  };
  const std::vector<Case> cases = {{"kling-3.0", "kling", 5},
                                   {"sora-2", "sora", 4},
                                   {"veo-3.1", "veo", 8},
                                   {"seedance-2.0", "seedance", 5}};
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    SCOPED_TRACE(c.model);
    const std::string png = TinyPng(100 + static_cast<int>(i));
    const std::string sha = Sha256(png, stack.dir());
    JobSpec spec = MakeSpec("the first frame comes alive", c.model, c.seconds);
    spec.mutable_first_frame()->set_data(png);
    grpc::Status status;
    auto submitted = SubmitJob(*stub, spec, &status);
    ASSERT_TRUE(status.ok()) << status.error_message();
    // The job keeps the stored key, not the bytes.
    const std::string key = "inputs/default/" + sha + ".png";
    EXPECT_EQ(submitted.status().spec().first_frame().key(), key);
    EXPECT_TRUE(submitted.status().spec().first_frame().data().empty());
    EXPECT_EQ(Sha256File(stack.store_root() / key), sha);

    auto done = WaitTerminal(*stub, submitted.job_id());
    ASSERT_EQ(done.state(), v1::JOB_STATE_SUCCEEDED) << done.error().message() << stack.Logs();
    EXPECT_EQ(done.model(), c.model);
    EXPECT_EQ(done.spec().first_frame().key(), key);

    auto creates = CreatesWithImage(stack, sha);
    ASSERT_EQ(creates.size(), 1u) << stack.SimStats()["creates"].dump();
    EXPECT_EQ(creates[0]["provider"], c.provider);
    EXPECT_EQ(creates[0]["images"][0]["role"], "first_frame");
    EXPECT_EQ(creates[0]["images"][0]["mime_type"], "image/png");
    // The clip is labelled with the job (the id's last 8 characters).
    const std::string& id = submitted.job_id();
    EXPECT_NE(creates[0]["label"].get<std::string>().find("job " + id.substr(id.size() - 8)),
              std::string::npos)
        << creates[0]["label"];
  }
}

TEST(E2eImageInputs, BadInputsAreRefusedAtSubmitNamingTheField) {
  REELQ_SKIP_WITHOUT_STACK_OR_FFPROBE();
  E2eStack stack({.workers = 1, .env = {{"REELQ__SCHEDULER__MAX_IMAGE_BYTES", "4096"}}});
  auto stub = stack.JobStub();
  auto refused = [&](const JobSpec& spec, const std::string& message_start) {
    grpc::Status status;
    SubmitJob(*stub, spec, &status);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
    EXPECT_EQ(status.error_message().rfind(message_start, 0), 0u) << status.error_message();
  };

  JobSpec not_image = MakeSpec("x", "seedance-2.0", 5);
  not_image.mutable_first_frame()->set_data(NotAnImage());
  refused(not_image, "first_frame.data: not an image");

  JobSpec too_big = MakeSpec("x", "seedance-2.0", 5);
  too_big.mutable_last_frame()->set_data(TinyPng() + std::string(5000, 'x'));
  refused(too_big, "last_frame.data: 5070 bytes — over the 4096-byte limit");

  JobSpec no_last_frame = MakeSpec("x", "sora-2", 4);
  no_last_frame.mutable_last_frame()->set_data(TinyPng(1));
  refused(no_last_frame, "last_frame: an image — sora-2 takes no last-frame image");

  JobSpec no_references = MakeSpec("x", "kling-3.0", 5);
  no_references.add_reference_images()->set_data(TinyPng(2));
  refused(no_references, "reference_images: 1 images — kling-3.0 takes no reference images");

  JobSpec other_tenant = MakeSpec("x", "veo-3.1", 8);
  other_tenant.mutable_first_frame()->set_key("inputs/studio-b/abc.png");
  refused(other_tenant, "first_frame.key:");

  JobSpec missing = MakeSpec("x", "veo-3.1", 8);
  missing.mutable_first_frame()->set_key("inputs/default/nothing-here.png");
  refused(missing, "first_frame.key:");

  JobSpec empty = MakeSpec("x", "veo-3.1", 8);
  empty.mutable_first_frame();
  refused(empty, "first_frame: empty");

  // Under auto, the use case's first choice (sora-2 for photorealism) takes no last frame, so
  // another model makes the job.
  JobSpec routed = MakeSpec("x", "auto", 8);
  routed.set_use_case(v1::USE_CASE_PHOTOREALISM);
  routed.mutable_first_frame()->set_data(TinyPng(3));
  routed.mutable_last_frame()->set_data(TinyPng(4));
  grpc::Status status;
  auto accepted = SubmitJob(*stub, routed, &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  auto done = WaitTerminal(*stub, accepted.job_id());
  ASSERT_EQ(done.state(), v1::JOB_STATE_SUCCEEDED) << done.error().message() << stack.Logs();
  EXPECT_NE(done.model(), "sora-2");

  // A stored image named by key: accepted, and it reaches the provider.
  JobSpec by_key = MakeSpec("x", "veo-3.1", 8);
  by_key.mutable_first_frame()->set_key(done.spec().first_frame().key());
  auto keyed = SubmitJob(*stub, by_key, &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(WaitTerminal(*stub, keyed.job_id()).state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(CreatesWithImage(stack, Sha256(TinyPng(3), stack.dir())).size(), 2u);
}

TEST(E2eImageInputs, CliSubmitsAFirstFrameFile) {
  REELQ_SKIP_WITHOUT_STACK_OR_FFPROBE();
  const auto cli = BuildPath("cli/reelq");
  if (!std::filesystem::exists(cli)) GTEST_SKIP() << cli << " not built";
  E2eStack stack({.workers = 1});
  const auto png_file = stack.dir() / "first.png";
  std::ofstream(png_file, std::ios::binary) << TinyPng(200);
  const auto out = stack.dir() / "cli.out";
  auto process = ChildProcess::Start(
      {cli.string(), "--server", stack.scheduler_address(), "submit", "--prompt", "from a still",
       "--model", "seedance-2.0", "--duration", "5", "--first-frame", png_file.string()},
      {}, out);
  auto exit = process.Wait(std::chrono::seconds(30));
  ASSERT_TRUE(exit && WIFEXITED(*exit) && WEXITSTATUS(*exit) == 0) << ReadFile(out);
  std::string job_id = ReadFile(out);
  job_id = job_id.substr(0, job_id.find('\n'));
  auto stub = stack.JobStub();
  EXPECT_EQ(WaitTerminal(*stub, job_id).state(), v1::JOB_STATE_SUCCEEDED) << stack.Logs();
  EXPECT_EQ(CreatesWithImage(stack, Sha256File(png_file)).size(), 1u);

  // A file that is not an image: the scheduler's refusal, naming the field, and exit 2+.
  const auto text_file = stack.dir() / "notes.png";
  std::ofstream(text_file) << NotAnImage();
  auto bad = ChildProcess::Start(
      {cli.string(), "--server", stack.scheduler_address(), "submit", "--prompt", "x", "--model",
       "seedance-2.0", "--duration", "5", "--first-frame", text_file.string()},
      {}, stack.dir() / "cli-bad.out");
  auto bad_exit = bad.Wait(std::chrono::seconds(30));
  ASSERT_TRUE(bad_exit && WIFEXITED(*bad_exit));
  EXPECT_NE(WEXITSTATUS(*bad_exit), 0);
  EXPECT_NE(ReadFile(stack.dir() / "cli-bad.out").find("first_frame.data: not an image"),
            std::string::npos)
      << ReadFile(stack.dir() / "cli-bad.out");
}

}  // namespace
}  // namespace reelq::testing
