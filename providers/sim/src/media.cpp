#include "media.h"

#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>
#include <cstdio>
#include <cstdlib>
#include <numeric>

#include <spdlog/spdlog.h>

namespace reelq::sim {
namespace {

// Runs a shell command, returning its exit status and (up to 64 KiB of) its output.
std::pair<int, std::string> Run(const std::string& command) {
  std::string out;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return {-1, "popen failed"};
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) {
    if (out.size() < 65536) out.append(buf, n);
  }
  int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

std::string Quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) {
    if (c == '\'') {
      q += "'\\''";
    } else {
      q += c;
    }
  }
  return q + "'";
}

}  // namespace

Result<MediaLibrary> MediaLibrary::Open(std::string dir) {
  auto [rc, out] = Run("ffmpeg -hide_banner -encoders");
  if (rc != 0) {
    return MakeError(ErrorCategory::kInternal,
                     "ffmpeg is required to make the simulator's MP4 files but could not be run "
                     "(install it: apt-get install -y ffmpeg)");
  }
  MediaLibrary lib;
  lib.video_codec_ =
      out.find("libx264") != std::string::npos ? "libx264 -preset ultrafast" : "mpeg4";
  if (dir.empty()) {
    std::string templ =
        (std::filesystem::temp_directory_path() / "reelq-sim-media-XXXXXX").string();
    if (!mkdtemp(templ.data())) {
      return MakeError(ErrorCategory::kInternal, "cannot create a temp media dir");
    }
    dir = templ;
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return MakeError(ErrorCategory::kInternal, fmt::format("media dir {}: {}", dir, ec.message()));
  }
  lib.dir_ = dir;
  return lib;
}

Result<std::pair<int, int>> MediaLibrary::FrameSize(const std::string& ratio) {
  int a = 0, b = 0;
  char tail = 0;
  if (std::sscanf(ratio.c_str(), "%d:%d%c", &a, &b, &tail) != 2 || a <= 0 || b <= 0 || a > 100 ||
      b > 100) {
    return MakeError(ErrorCategory::kInvalidRequest, "bad aspect ratio " + ratio);
  }
  const int g = std::gcd(a, b);
  a /= g;
  b /= g;
  // Smallest multiple with both sides >= 32 and even (yuv420p needs even sides).
  for (int k = 1;; ++k) {
    const int w = a * k, h = b * k;
    if (w >= 32 && h >= 32 && w % 2 == 0 && h % 2 == 0) return std::pair{w, h};
  }
}

Result<std::filesystem::path> MediaLibrary::Get(int duration_s, const std::string& ratio,
                                                bool audio) {
  auto key = std::tuple{duration_s, ratio, audio};
  if (auto it = cache_.find(key); it != cache_.end()) return it->second;
  auto size = FrameSize(ratio);
  if (!size) return std::unexpected(size.error());
  const auto [w, h] = *size;
  const auto path =
      dir_ / fmt::format("clip-{}s-{}x{}-{}.mp4", duration_s, w, h, audio ? "audio" : "silent");
  std::error_code ec;
  if (!std::filesystem::exists(path, ec) || std::filesystem::file_size(path, ec) == 0) {
    const auto tmp = path.string() + ".tmp.mp4";
    std::string cmd = fmt::format(
        "ffmpeg -hide_banner -loglevel error -nostdin -y -f lavfi -i "
        "color=c=0x3050a0:s={}x{}:r=4:d={}",
        w, h, duration_s);
    if (audio) cmd += fmt::format(" -f lavfi -i anullsrc=r=8000:cl=mono:d={}", duration_s);
    cmd += fmt::format(" -t {} -vf setsar=1 -c:v {} -pix_fmt yuv420p", duration_s, video_codec_);
    if (audio) cmd += " -c:a aac -b:a 16k";
    cmd += " -movflags +faststart " + Quote(tmp);
    auto [rc, out] = Run(cmd);
    if (rc != 0) {
      return MakeError(ErrorCategory::kInternal, fmt::format("ffmpeg failed ({}): {}", rc, out));
    }
    std::filesystem::rename(tmp, path, ec);
    if (ec) return MakeError(ErrorCategory::kInternal, "rename media: " + ec.message());
    spdlog::debug("made {}", path.string());
  }
  cache_[key] = path;
  return path;
}

}  // namespace reelq::sim
