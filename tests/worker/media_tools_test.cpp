// The worker's media tools (worker/src/media_tools.h) on a stored "clip" that is not one: an HLS
// playlist saved as .mp4 that names another local file. ffprobe and ffmpeg, left to guess the
// format from the content, read it as a playlist and with it that file; every read of a
// stored clip (the probe before a join or a contact sheet, the join's inputs and concat list,
// a chain's last frame) takes it only as MP4/MOV and fails. Needs ffmpeg and ffprobe on PATH.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <span>
#include <string>
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
    auto run = RunAsync(io_, RunTool(std::move(argv)));
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
  auto real = RunAsync(io_, ProbeMedia(clip_.string()));
  ASSERT_TRUE(real) << real.error().Describe();
  EXPECT_EQ(real->width, 64);
  auto evil = RunAsync(io_, ProbeMedia(playlist_.string()));
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
  auto whole = RunAsync(io_, ProbeMedia(joined_path));
  ASSERT_TRUE(whole) << whole.error().Describe();
  EXPECT_GT(whole->duration_seconds, 5.5);
  const auto refused = concat(playlist_);
  EXPECT_NE(refused.output.find("not on whitelist"), std::string::npos) << refused.output;
  auto cut = RunAsync(io_, ProbeMedia(joined_path));
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

}  // namespace
}  // namespace reelq::worker
