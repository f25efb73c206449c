#include "media_tools.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include <nlohmann/json.hpp>

extern char** environ;

namespace reelq::worker {
namespace {

asio::thread_pool& ToolPool() {
  // Leaked on purpose: joining at static destruction could hang on a running tool.
  static auto* pool = new asio::thread_pool(1);
  return *pool;
}

Result<ToolRun> RunBlocking(const std::vector<std::string>& argv, const ToolLimits& limits) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    return MakeError(ErrorCategory::kInternal, std::string("pipe: ") + std::strerror(errno));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 2);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  // A process group of its own: a kill reaches whatever the tool started too.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, args[0], &actions, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  close(fds[1]);
  if (rc != 0) {
    close(fds[0]);
    return MakeError(ErrorCategory::kInternal, "cannot run " + argv.front() + ": " +
                                                   std::strerror(rc) +
                                                   " (install ffmpeg: apt-get install -y ffmpeg)");
  }
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + limits.timeout;
  enum class Killed { kNo, kTimeout, kStopped } killed = Killed::kNo;
  ToolRun run;
  char buf[8192];
  while (true) {
    if (limits.stop && limits.stop->load()) {
      killed = Killed::kStopped;
    } else if (Clock::now() >= deadline) {
      killed = Killed::kTimeout;
    }
    if (killed != Killed::kNo) {
      kill(-pid, SIGKILL);
      break;
    }
    // Woken at least every 200 ms to look at the stop flag and the deadline.
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    pollfd p{fds[0], POLLIN, 0};
    const int ready = poll(&p, 1, static_cast<int>(std::clamp<int64_t>(left, 0, 200)));
    if (ready < 0 && errno != EINTR) break;
    if (ready <= 0) continue;
    const ssize_t n = read(fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // EOF: the tool (and all that held its output) ended
    run.output.append(buf, static_cast<size_t>(n));
    if (run.output.size() > 32768) run.output.erase(0, run.output.size() - 16384);
  }
  close(fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  if (run.output.size() > 16384) run.output.erase(0, run.output.size() - 16384);
  if (killed == Killed::kTimeout) {
    return MakeError(
        ErrorCategory::kRetryable,
        fmt::format("{} ran past its limit of {} s and was killed (a stalled read of a clip?)",
                    argv.front(), limits.timeout.count() / 1000.0));
  }
  if (killed == Killed::kStopped) {
    return MakeError(ErrorCategory::kCancelled,
                     argv.front() + " was killed: the job was stopped while it ran");
  }
  return run;
}

awaitable<Result<ToolRun>> Invoke(std::vector<std::string> argv, ToolLimits limits) {
  co_return RunBlocking(argv, limits);
}

bool IsUrl(const std::string& location) {
  return location.starts_with("http://") || location.starts_with("https://");
}

// -rw_timeout (microseconds) for a URL input; nothing for a path.
std::vector<std::string> UrlReadTimeout(const std::string& location) {
  if (!IsUrl(location)) return {};
  return {"-rw_timeout", std::to_string(std::chrono::microseconds(kUrlReadTimeout).count())};
}

}  // namespace

std::chrono::milliseconds RenderTimeout(double seconds) {
  const double extra = std::clamp(seconds, 0.0, 86400.0) * 20'000;
  return std::chrono::minutes(5) + std::chrono::milliseconds(static_cast<int64_t>(extra));
}

awaitable<Result<ToolRun>> RunTool(std::vector<std::string> argv, ToolLimits limits) {
  auto result = co_await asio::co_spawn(ToolPool().get_executor(),
                                        Invoke(std::move(argv), std::move(limits)), use_awaitable);
  co_return result;
}

std::vector<std::string> ClipInput(const std::string& location) {
  std::vector<std::string> out = UrlReadTimeout(location);
  out.insert(out.end(), {"-format_whitelist", kClipFormats, "-i", location});
  return out;
}

std::vector<std::string> ConcatInput(const std::string& list) {
  // The concat demuxer opens each listed file with its own whitelist (concatdec.c copies it):
  // the list itself is "concat", what it names must be a clip. -safe 0 lets it name absolute
  // paths and URLs (the store's). A listed file it refuses ends the output there with exit 0
  // (-xerror would fail it, but also fails joins on the harmless non-monotonous DTS warnings of
  // a stream copy): the join probes every clip with the same whitelist first (ProbeChildren).
  return {
      "-format_whitelist",   std::string(kClipFormats) + ",concat", "-f", "concat", "-safe", "0",
      "-protocol_whitelist", "file,http,https,tcp,tls,crypto",      "-i", list};
}

awaitable<Result<MediaInfo>> ProbeMedia(std::string path_or_url, ToolLimits limits) {
  // A named vector: g++ 12 cannot pass a braced list of strings into a coroutine call.
  std::vector<std::string> argv{"ffprobe", "-v", "error"};
  const auto timeout = UrlReadTimeout(path_or_url);
  argv.insert(argv.end(), timeout.begin(), timeout.end());
  argv.insert(argv.end(), {"-format_whitelist", kClipFormats, "-show_entries",
                           "stream=codec_type,codec_name,profile,width,height,pix_fmt,"
                           "r_frame_rate,time_base,sample_rate,channels,channel_layout:"
                           "format=duration",
                           "-of", "json", path_or_url});
  auto run = co_await RunTool(std::move(argv), std::move(limits));
  if (!run) {
    co_return MakeError(run.error().category,
                        "ffprobe " + path_or_url + ": " + run.error().message);
  }
  if (run->exit_code != 0) {
    co_return MakeError(ErrorCategory::kInternal,
                        "ffprobe " + path_or_url + " failed: " + run->output);
  }
  auto j = nlohmann::json::parse(run->output, nullptr, false);
  if (!j.is_object()) {
    co_return MakeError(ErrorCategory::kInternal, "ffprobe " + path_or_url + ": not JSON");
  }
  MediaInfo info;
  try {
    info.duration_seconds = std::stod(j["format"].value("duration", "0"));
  } catch (...) {
    info.duration_seconds = 0;
  }
  for (const auto& s : j.value("streams", nlohmann::json::array())) {
    const std::string type = s.value("codec_type", "");
    if (type == "video" && info.width == 0) {
      info.width = s.value("width", 0);
      info.height = s.value("height", 0);
      info.signature += "v:" + s.value("codec_name", "") + "/" + s.value("profile", "") + "/" +
                        std::to_string(info.width) + "x" + std::to_string(info.height) + "/" +
                        s.value("pix_fmt", "") + "/" + s.value("r_frame_rate", "") + "/" +
                        s.value("time_base", "") + ";";
    } else if (type == "audio" && !info.has_audio) {
      info.has_audio = true;
      info.signature += "a:" + s.value("codec_name", "") + "/" + s.value("sample_rate", "") + "/" +
                        std::to_string(s.value("channels", 0)) + ";";
    }
  }
  if (info.width == 0) {
    co_return MakeError(ErrorCategory::kInternal, path_or_url + " has no video stream");
  }
  co_return info;
}

awaitable<Result<MediaInfo>> RenderAndProbe(std::string step,
                                            std::vector<std::vector<std::string>> commands,
                                            std::string output, ToolLimits limits) {
  for (auto& command : commands) {
    auto ran = co_await RunTool(std::move(command), limits);
    if (!ran) co_return MakeError(ran.error().category, step + ": " + ran.error().message);
    if (ran->exit_code != 0) {
      co_return MakeError(ErrorCategory::kInternal, step + ": ffmpeg failed: " + ran->output);
    }
  }
  ToolLimits probe{kProbeTimeout, limits.stop};
  auto probed = co_await ProbeMedia(std::move(output), std::move(probe));
  co_return probed;
}

std::pair<int, int> FrameSizeFor(const std::string& resolution, const std::string& aspect_ratio) {
  int short_side = 720;
  if (resolution == "4k") {
    short_side = 2160;
  } else if (int lines = 0;
             std::sscanf(resolution.c_str(), "%dp", &lines) == 1 && lines >= 32 && lines <= 4320) {
    short_side = lines;
  }
  int a = 16, b = 9;
  if (std::sscanf(aspect_ratio.c_str(), "%d:%d", &a, &b) != 2 || a <= 0 || b <= 0) {
    a = 16;
    b = 9;
  }
  auto even = [](double v) { return std::max(2, static_cast<int>(v / 2 + 0.5) * 2); };
  if (a >= b) return {even(short_side * static_cast<double>(a) / b), short_side};
  return {short_side, even(short_side * static_cast<double>(b) / a)};
}

std::string LabelFont() {
  for (const char* path : {"/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
                           "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"}) {
    if (access(path, R_OK) == 0) return path;
  }
  return "";
}

ScratchDir::ScratchDir(const std::string& name) {
  std::string templ =
      (std::filesystem::temp_directory_path() / ("reelq-" + name + "-XXXXXX")).string();
  if (mkdtemp(templ.data()) != nullptr) path_ = templ;
}

ScratchDir::~ScratchDir() {
  if (path_.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

}  // namespace reelq::worker
