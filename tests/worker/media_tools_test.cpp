// The worker's media tools (worker/src/media_tools.h) on a stored "clip" that is not one: an HLS
// playlist saved as .mp4 that names another local file. ffprobe and ffmpeg, left to guess the
// format from the content, read it as a playlist and with it that file; every read of a
// stored clip (the probe before a join or a contact sheet, the join's inputs and concat list,
// a chain's last frame) takes it only as MP4/MOV and fails. And a tool run's limits: killed at
// its timeout (retryable) or when its job stops. Needs ffmpeg and ffprobe on PATH.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "../../worker/src/chain_frame.h"
#include "../../worker/src/media_tools.h"
#include "../redis_conn/run_async.h"
#include "reelq/storage/fs_store.h"

namespace reelq::worker {
namespace {

using testing::RunAsync;

class MediaToolsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::system("command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null") != 0) {
      GTEST_SKIP() << "ffmpeg/ffprobe not installed";
    }
    ASSERT_TRUE(scratch_.ok());
    root_ = scratch_.path() / "store";
    std::filesystem::create_directories(root_ / "t");
    // A real three-second clip, and a "clip" that is a playlist naming it.
    clip_ = root_ / "t" / "real.mp4";
    const auto made = Run({"ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-f",
                           "lavfi", "-i", "testsrc=size=64x64:rate=24:duration=3", "-c:v",
                           "libx264", "-g", "12", "-pix_fmt", "yuv420p", clip_.string()});
    ASSERT_EQ(made.exit_code, 0) << made.output;
    playlist_ = root_ / "t" / "evil.mp4";
    std::ofstream(playlist_) << "#EXTM3U\n#EXT-X-TARGETDURATION:3\n#EXTINF:3,\nfile://"
                             << clip_.string() << "\n#EXT-X-ENDLIST\n";
  }

  ToolRun Run(std::vector<std::string> argv) {
    auto run = RunAsync(io_, RunTool(std::move(argv), ToolLimits{kProbeTimeout, nullptr}));
    if (!run) throw std::runtime_error(run.error().Describe());
    return *run;
  }

  // ffmpeg reading `input` (its arguments) to nowhere.
  ToolRun Decode(const std::vector<std::string>& input) {
    std::vector<std::string> argv{"ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y"};
    argv.insert(argv.end(), input.begin(), input.end());
    argv.insert(argv.end(), {"-f", "null", "-"});
    return Run(argv);
  }

  asio::io_context io_;
  ScratchDir scratch_{"media-tools-test"};
  std::filesystem::path root_, clip_, playlist_;
};

TEST_F(MediaToolsTest, AProbeReadsAClipAndRefusesAPlaylistSavedAsOne) {
  auto real = RunAsync(io_, ProbeMedia(clip_.string(), ToolLimits{kProbeTimeout, nullptr}));
  ASSERT_TRUE(real) << real.error().Describe();
  EXPECT_EQ(real->width, 64);
  auto evil = RunAsync(io_, ProbeMedia(playlist_.string(), ToolLimits{kProbeTimeout, nullptr}));
  ASSERT_FALSE(evil) << "the playlist was read as a clip of " << evil->duration_seconds << " s";
  EXPECT_NE(evil.error().message.find("not on whitelist"), std::string::npos)
      << evil.error().message;
}

TEST_F(MediaToolsTest, FfmpegInputsAndTheJoinsConcatListRefuseAPlaylistSavedAsAClip) {
  EXPECT_EQ(Decode(ClipInput(clip_.string())).exit_code, 0);
  const auto direct = Decode(ClipInput(playlist_.string()));
  EXPECT_NE(direct.exit_code, 0) << direct.output;

  auto concat = [&](const std::filesystem::path& second) {
    const auto list = scratch_.path() / "list.txt";
    std::ofstream(list) << "file '" << clip_.string() << "'\nfile '" << second.string() << "'\n";
    std::vector<std::string> argv{"ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y"};
    const auto input = ConcatInput(list.string());
    argv.insert(argv.end(), input.begin(), input.end());
    argv.insert(argv.end(), {"-map", "0", "-c", "copy", (scratch_.path() / "joined.mp4").string()});
    return Run(argv);
  };
  // The join of [clip, playlist] reads the clip and not the file the playlist names (ffmpeg
  // ends the output at the refused entry; the join probes each clip first, which fails).
  const auto joined_path = (scratch_.path() / "joined.mp4").string();
  const auto both = concat(clip_);
  ASSERT_EQ(both.exit_code, 0) << both.output;
  auto whole = RunAsync(io_, ProbeMedia(joined_path, ToolLimits{kProbeTimeout, nullptr}));
  ASSERT_TRUE(whole) << whole.error().Describe();
  EXPECT_GT(whole->duration_seconds, 5.5);
  const auto refused = concat(playlist_);
  EXPECT_NE(refused.output.find("not on whitelist"), std::string::npos) << refused.output;
  auto cut = RunAsync(io_, ProbeMedia(joined_path, ToolLimits{kProbeTimeout, nullptr}));
  ASSERT_TRUE(cut) << cut.error().Describe();
  EXPECT_LT(cut->duration_seconds, 3.5) << "the file the playlist names was joined";
}

TEST_F(MediaToolsTest, AChainsLastFrameIsNotTakenFromAPlaylistSavedAsAClip) {
  auto objects = storage::MakeFsStore(root_);
  ASSERT_TRUE(objects) << objects.error().Describe();
  RunnerDeps deps;
  deps.objects = objects->get();
  auto real = RunAsync(io_, StoreChainFrame(deps, ChainFrameSource{.clip_key = "t/real.mp4"}));
  ASSERT_TRUE(real) << real.error().Describe();
  EXPECT_TRUE(real->starts_with("inputs/default/")) << *real;
  auto evil = RunAsync(io_, StoreChainFrame(deps, ChainFrameSource{.clip_key = "t/evil.mp4"}));
  ASSERT_FALSE(evil) << "a frame of the file the playlist names was stored: " << *evil;
  EXPECT_NE(evil.error().message.find("t/evil.mp4"), std::string::npos) << evil.error().message;
}

// A tool that does not end (a stalled read of a presigned URL) is killed at its limit, with
// whatever it started (its process group), and the run is a retryable error: the worker's one
// tool thread is free again, and the step runs again later.
TEST_F(MediaToolsTest, AToolPastItsLimitIsKilledWithWhatItStartedAndTheRunIsRetryable) {
  const auto pid_file = scratch_.path() / "child.pid";
  const auto started = std::chrono::steady_clock::now();
  auto run =
      RunAsync(io_, RunTool({"sh", "-c", "sleep 30 & echo $! > " + pid_file.string() + "; wait"},
                            ToolLimits{std::chrono::seconds(1), nullptr}));
  const auto took = std::chrono::steady_clock::now() - started;
  ASSERT_FALSE(run) << "exit " << run->exit_code;
  EXPECT_EQ(run.error().category, ErrorCategory::kRetryable);
  EXPECT_NE(run.error().message.find("sh ran past its limit of 1 s"), std::string::npos)
      << run.error().message;
  EXPECT_LT(took, std::chrono::seconds(10));
  // The sleep it started is gone too (or a zombie awaiting its new parent).
  std::string pid;
  std::ifstream(pid_file) >> pid;
  ASSERT_FALSE(pid.empty());
  std::string stat;
  std::getline(std::ifstream("/proc/" + pid + "/stat"), stat);
  EXPECT_TRUE(stat.empty() || stat.find(") Z") != std::string::npos) << stat;
}

TEST_F(MediaToolsTest, AToolOfAStoppedJobIsKilledAtOnce) {
  auto stop = std::make_shared<std::atomic<bool>>(false);
  std::thread stopper([stop] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    stop->store(true);
  });
  const auto started = std::chrono::steady_clock::now();
  auto run = RunAsync(io_, RunTool({"sleep", "30"}, ToolLimits{std::chrono::minutes(10), stop}));
  const auto took = std::chrono::steady_clock::now() - started;
  stopper.join();
  ASSERT_FALSE(run) << "exit " << run->exit_code;
  EXPECT_EQ(run.error().category, ErrorCategory::kCancelled) << run.error().message;
  EXPECT_LT(took, std::chrono::seconds(5));
}

// ffprobe and ffmpeg that never answer (scripts earlier on PATH): the probe and the render
// fail retryable, naming the tool and the limit, within it.
TEST_F(MediaToolsTest, AProbeOrRenderThatStallsFailsRetryableWithinItsLimit) {
  const auto bin = scratch_.path() / "bin";
  std::filesystem::create_directories(bin);
  for (const char* tool : {"ffprobe", "ffmpeg"}) {
    const auto script = bin / tool;
    std::ofstream(script) << "#!/bin/sh\nexec sleep 30\n";
    std::filesystem::permissions(script, std::filesystem::perms::owner_all);
  }
  const std::string path = std::getenv("PATH") ? std::getenv("PATH") : "";
  setenv("PATH", (bin.string() + ":" + path).c_str(), 1);
  const auto started = std::chrono::steady_clock::now();
  auto probed =
      RunAsync(io_, ProbeMedia(clip_.string(), ToolLimits{std::chrono::seconds(1), nullptr}));
  std::vector<std::vector<std::string>> commands{{"ffmpeg", "-i", clip_.string(), "out.mp4"}};
  auto rendered = RunAsync(io_, RenderAndProbe("join", commands, clip_.string(),
                                               ToolLimits{std::chrono::seconds(1), nullptr}));
  const auto took = std::chrono::steady_clock::now() - started;
  setenv("PATH", path.c_str(), 1);
  ASSERT_FALSE(probed);
  EXPECT_EQ(probed.error().category, ErrorCategory::kRetryable) << probed.error().message;
  EXPECT_NE(probed.error().message.find("ffprobe ran past its limit of 1 s"), std::string::npos)
      << probed.error().message;
  ASSERT_FALSE(rendered);
  EXPECT_EQ(rendered.error().category, ErrorCategory::kRetryable) << rendered.error().message;
  EXPECT_EQ(rendered.error().message.rfind("join: ffmpeg ran past its limit of 1 s", 0), 0u)
      << rendered.error().message;
  EXPECT_LT(took, std::chrono::seconds(10));
}

}  // namespace
}  // namespace reelq::worker
