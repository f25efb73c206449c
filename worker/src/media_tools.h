#pragma once

// ffmpeg and ffprobe for a group's own step (a storyboard's join, a compare's contact sheet),
// run as child processes off the event loop on a one-thread pool: a join is rare and heavy, so
// one at a time per worker keeps it from taking every core from the jobs that only poll.
#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "reelq/common/asio.h"
#include "reelq/common/error.h"

namespace reelq::worker {

struct ToolRun {
  int exit_code = -1;
  std::string output;  // stdout and stderr together, the last 16 KiB
};

// Bounds on one run of a tool. Past `timeout` its process group is killed (SIGKILL) and the
// run is a kRetryable error (a stalled read of a presigned URL must not hold the worker's one
// tool thread, and with it every join and chain frame after it, for good); once `*stop` is set
// (the job was cancelled, lost its lease or is handed back) it is killed the same way, and the
// run is a kCancelled error.
struct ToolLimits {
  std::chrono::milliseconds timeout;
  std::shared_ptr<const std::atomic<bool>> stop;  // may be null
};
// A probe, or a chain's last frame (one second decoded): minutes at most even over a slow URL.
inline constexpr std::chrono::milliseconds kProbeTimeout{std::chrono::minutes(2)};
// A render (join, contact sheet) of clips `seconds` long in all: 5 minutes, plus 20 s per
// second of input (a 1080p re-encode runs at several times real time on one core).
std::chrono::milliseconds RenderTimeout(double seconds);
// How long ffmpeg waits on one read or write of a URL input before it gives up (-rw_timeout).
inline constexpr std::chrono::seconds kUrlReadTimeout{60};

// Runs `argv` (no shell), waiting on the tool pool, within `limits`. kInternal when it cannot
// be started.
awaitable<Result<ToolRun>> RunTool(std::vector<std::string> argv, ToolLimits limits);

// The container formats a stored clip is read as: ffmpeg's mov demuxer (MP4, MOV and kin).
// Left to guess from the content, ffmpeg and ffprobe would read a "clip" that is an HLS
// playlist as one, and with it whatever local file or URL it names.
inline constexpr const char* kClipFormats = "mov,mp4,m4a,3gp,3g2,mj2";

// ffmpeg's arguments reading the stored clip at `location` (a path or a URL) as an input: only
// as one of kClipFormats; a URL with kUrlReadTimeout on each read.
std::vector<std::string> ClipInput(const std::string& location);

// ffmpeg's arguments reading a concat demuxer list of stored clips at `list` (paths or URLs,
// which may be absolute): each listed clip only as one of kClipFormats. ffmpeg ends the output
// at an entry it refuses and exits 0: probe each clip (ProbeMedia) before listing it.
std::vector<std::string> ConcatInput(const std::string& list);

// What decides whether clips can be joined by stream copy, from ffprobe.
struct MediaInfo {
  double duration_seconds = 0;
  int width = 0, height = 0;
  bool has_audio = false;
  // Codec, size, pixel format, frame rate, time base of the video; codec, rate and layout of
  // the audio: equal signatures concatenate without re-encoding.
  std::string signature;
};
// Reads a stored clip only as one of kClipFormats: any other content is an error.
awaitable<Result<MediaInfo>> ProbeMedia(std::string path_or_url, ToolLimits limits);

// Runs each ffmpeg command of `commands` in turn, then probes `output`, which they made. The
// error of a command that fails names `step` ("join", "compare") and carries ffmpeg's output.
// A run killed at its limit or by a stop is an error of that run's category (kRetryable,
// kCancelled); any other failure is kInternal. Each command within `limits`, the probe within
// kProbeTimeout (and the same stop).
awaitable<Result<MediaInfo>> RenderAndProbe(std::string step,
                                            std::vector<std::vector<std::string>> commands,
                                            std::string output, ToolLimits limits);

// The frame size of a clip at `resolution` ("720p", "360p", "4k") and `aspect_ratio` ("16:9"):
// the short side is the resolution's lines, both sides even.
std::pair<int, int> FrameSizeFor(const std::string& resolution, const std::string& aspect_ratio);

// A font for labels (Debian fonts-dejavu-core); empty when none is installed.
std::string LabelFont();

// A temporary directory removed on destruction.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& name);
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  bool ok() const { return !path_.empty(); }

 private:
  std::filesystem::path path_;
};

}  // namespace reelq::worker
