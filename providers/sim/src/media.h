#pragma once

#include <filesystem>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "reelq/common/error.h"

namespace reelq::sim {

class RenderPool;  // media.cpp

// What a labelled clip shows: its model, its shot number(s) and a short job id, so a joined
// storyboard or a contact sheet can be checked by eye.
struct ClipLabel {
  std::string model;
  std::string job;  // short job id (or the task id's tail when the create named no job)
  int shot = 1;     // the shot number of a single-shot clip
  // Kling multi-shot: each shot's duration; shot i's number is drawn during its own seconds.
  std::vector<int> shot_durations;
  std::string Describe() const;  // "kling-v3 shot 1 job 0a1b2c3d" (recorded in /_sim/stats)
};

// Small valid MP4 files made with ffmpeg, one per (duration, ratio, audio), cached on disk so
// ffmpeg runs once per combination. Frame size keeps the exact aspect ratio (square pixels).
class MediaLibrary {
 public:
  // Checks that ffmpeg runs and prepares the directory (a fresh temp dir when `dir` is empty).
  static Result<MediaLibrary> Open(std::string dir);

  // "16:9" -> 64x36 etc. Error for anything that is not W:H with small positive integers.
  static Result<std::pair<int, int>> FrameSize(const std::string& ratio);

  Result<std::filesystem::path> Get(int duration_s, const std::string& ratio, bool audio);
  // A clip with `label` drawn on it (drawtext, DejaVu Sans), at a frame size large enough to
  // read (short side >= 160 px); cached per distinct label. The render runs on a background
  // thread while the generation "runs", so a create answers at once: the path is returned
  // before the file exists, and WaitReady(path) must be called before the file is read.
  Result<std::filesystem::path> GetLabelled(int duration_s, const std::string& ratio, bool audio,
                                            const ClipLabel& label);
  // Blocks until a background render of `path` has finished (at once when there is none);
  // its error when it failed.
  Result<void> WaitReady(const std::filesystem::path& path);
  // The background render of `path`; an invalid future when there is none.
  std::shared_future<Result<void>> Pending(const std::filesystem::path& path) const {
    auto it = pending_.find(path);
    return it == pending_.end() ? std::shared_future<Result<void>>() : it->second;
  }
  // The clip's last frame as a PNG beside it (Seedance return_last_frame), made once per clip
  // on a render thread after the clip itself: the path is returned before the file exists, and
  // Pending(path) is the render to wait for (as with GetLabelled).
  std::filesystem::path LastFrame(const std::filesystem::path& clip);
  // The font drawtext uses; empty when none of the known paths exists.
  static std::string FontFile();
  const std::filesystem::path& dir() const { return dir_; }

 private:
  std::filesystem::path dir_;
  std::string video_codec_;
  std::map<std::tuple<int, std::string, bool>, std::filesystem::path> cache_;
  // Renders in flight or not yet waited for, by output path (touched on the io thread only;
  // the futures are completed by the render threads).
  std::map<std::filesystem::path, std::shared_future<Result<void>>> pending_;
  // Two render threads: ffmpeg processes, not CPU in this process.
  std::shared_ptr<RenderPool> pool_;
  // Runs `render` on a render thread; Pending(path) until it has finished.
  void RenderLater(const std::filesystem::path& path, std::function<Result<void>()> render);
  Result<std::filesystem::path> Render(int duration_s, const std::string& ratio, bool audio,
                                       const ClipLabel* label);
};

}  // namespace reelq::sim
