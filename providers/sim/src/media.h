#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <tuple>

#include "reelq/common/error.h"

namespace reelq::sim {

// Small valid MP4 files made with ffmpeg, one per (duration, ratio, audio), cached on disk so
// ffmpeg runs once per combination. Frame size keeps the exact aspect ratio (square pixels).
class MediaLibrary {
 public:
  // Checks that ffmpeg runs and prepares the directory (a fresh temp dir when `dir` is empty).
  static Result<MediaLibrary> Open(std::string dir);

  // "16:9" -> 64x36 etc. Error for anything that is not W:H with small positive integers.
  static Result<std::pair<int, int>> FrameSize(const std::string& ratio);

  Result<std::filesystem::path> Get(int duration_s, const std::string& ratio, bool audio);
  const std::filesystem::path& dir() const { return dir_; }

 private:
  std::filesystem::path dir_;
  std::string video_codec_;
  std::map<std::tuple<int, std::string, bool>, std::filesystem::path> cache_;
};

}  // namespace reelq::sim
