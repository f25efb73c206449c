#include "media.h"

#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>
#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <mutex>
#include <numeric>
#include <thread>

#include <spdlog/spdlog.h>

#include "sim.h"

namespace reelq::sim {

// Two threads that run labelled renders (each one an ffmpeg process).
class RenderPool {
 public:
  RenderPool() {
    for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { Loop(); });
  }
  ~RenderPool() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    for (auto& t : threads_) t.join();
  }
  void Post(std::function<void()> job) {
    {
      std::lock_guard lock(mutex_);
      jobs_.push_back(std::move(job));
    }
    wake_.notify_one();
  }

 private:
  void Loop() {
    while (true) {
      std::function<void()> job;
      {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
        if (jobs_.empty()) return;  // stopping, nothing left
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      job();
    }
  }
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

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
  lib.pool_ = std::make_shared<RenderPool>();
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

std::string ClipLabel::Describe() const {
  std::string shots;
  if (shot_durations.size() > 1) {
    shots = fmt::format("shots 1-{}", shot_durations.size());
  } else {
    shots = fmt::format("shot {}", shot);
  }
  return fmt::format("{} {} job {}", model, shots, job);
}

std::string MediaLibrary::FontFile() {
  // Debian fonts-dejavu-core (scripts/install-deps.sh).
  for (const char* path : {"/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
                           "/usr/share/fonts/dejavu/DejaVuSans.ttf"}) {
    std::error_code ec;
    if (std::filesystem::exists(path, ec)) return path;
  }
  return "";
}

namespace {

// Label text goes inside a drawtext option: keep it to characters that need no escaping there.
std::string DrawtextSafe(std::string_view text) {
  std::string out;
  for (char c : text) {
    const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                       c == '.' || c == '-' || c == '_' || c == ' ';
    out += plain ? c : '-';
  }
  return out.substr(0, 48);
}

std::string Drawtext(const std::string& font, const std::string& text, int y,
                     const std::string& enable) {
  std::string filter = fmt::format(
      "drawtext=fontfile={}:text='{}':fontcolor=white:fontsize=14:x=6:y={}", font, text, y);
  if (!enable.empty()) filter += ":enable='" + enable + "'";
  return filter;
}

}  // namespace

Result<std::filesystem::path> MediaLibrary::Get(int duration_s, const std::string& ratio,
                                                bool audio) {
  auto key = std::tuple{duration_s, ratio, audio};
  if (auto it = cache_.find(key); it != cache_.end()) return it->second;
  auto made = Render(duration_s, ratio, audio, nullptr);
  if (made) cache_[key] = *made;
  return made;
}

Result<std::filesystem::path> MediaLibrary::GetLabelled(int duration_s, const std::string& ratio,
                                                        bool audio, const ClipLabel& label) {
  return Render(duration_s, ratio, audio, &label);
}

Result<std::filesystem::path> MediaLibrary::Render(int duration_s, const std::string& ratio,
                                                   bool audio, const ClipLabel* label) {
  auto size = FrameSize(ratio);
  if (!size) return std::unexpected(size.error());
  int w = size->first, h = size->second;
  std::string filters = "setsar=1";
  std::string name = fmt::format("clip-{}s-{}x{}-{}", duration_s, w, h, audio ? "audio" : "silent");
  if (label != nullptr) {
    const std::string font = FontFile();
    if (font.empty()) {
      return MakeError(ErrorCategory::kInternal,
                       "labelled clips need the DejaVu Sans font (apt-get install -y "
                       "fonts-dejavu-core), or set clip_labels: false");
    }
    const int k = (160 + std::min(w, h) - 1) / std::min(w, h);  // short side >= 160 px
    w *= k;
    h *= k;
    if (w % 2) ++w;
    if (h % 2) ++h;
    const std::string model = DrawtextSafe(label->model), job = DrawtextSafe(label->job);
    filters += "," + Drawtext(font, model, 6, "");
    if (label->shot_durations.size() > 1) {
      int start = 0;
      for (size_t i = 0; i < label->shot_durations.size(); ++i) {
        const int end = start + label->shot_durations[i];
        filters += "," + Drawtext(font, fmt::format("shot {}", i + 1), 24,
                                  fmt::format("between(t,{},{})", start, end));
        start = end;
      }
    } else {
      filters += "," + Drawtext(font, fmt::format("shot {}", label->shot), 24, "");
    }
    filters += "," + Drawtext(font, "job " + job, 42, "");
    name += "-" + Sha256Hex(label->Describe() + fmt::format("{}", label->shot_durations.size()))
                      .substr(0, 16);
  }
  const auto path = dir_ / (name + ".mp4");
  std::error_code ec;
  if (std::filesystem::exists(path, ec) && std::filesystem::file_size(path, ec) > 0) return path;
  if (pending_.contains(path)) return path;
  const auto tmp = path.string() + ".tmp.mp4";
  std::string cmd = fmt::format(
      "ffmpeg -hide_banner -loglevel error -nostdin -y -f lavfi -i "
      "color=c=0x3050a0:s={}x{}:r=4:d={}",
      w, h, duration_s);
  if (audio) cmd += fmt::format(" -f lavfi -i anullsrc=r=8000:cl=mono:d={}", duration_s);
  cmd += fmt::format(" -t {} -vf {} -c:v {} -pix_fmt yuv420p", duration_s, Quote(filters),
                     video_codec_);
  if (audio) cmd += " -c:a aac -b:a 16k";
  cmd += " -movflags +faststart " + Quote(tmp);
  auto render = [cmd, tmp, path]() -> Result<void> {
    auto [rc, out] = Run(cmd);
    if (rc != 0) {
      return MakeError(ErrorCategory::kInternal, fmt::format("ffmpeg failed ({}): {}", rc, out));
    }
    std::error_code rename_error;
    std::filesystem::rename(tmp, path, rename_error);
    if (rename_error) {
      return MakeError(ErrorCategory::kInternal, "rename media: " + rename_error.message());
    }
    spdlog::debug("made {}", path.string());
    return {};
  };
  if (label == nullptr) {  // the cached unlabelled files: made once, right here
    if (auto made = render(); !made) return std::unexpected(made.error());
    return path;
  }
  RenderLater(path, std::move(render));
  return path;
}

void MediaLibrary::RenderLater(const std::filesystem::path& path,
                               std::function<Result<void>()> render) {
  // Forget finished renders now and then, so the map stays small when clips are not fetched.
  if (pending_.size() > 256) {
    std::erase_if(pending_, [](const auto& entry) {
      return entry.second.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
    });
  }
  auto task = std::make_shared<std::packaged_task<Result<void>()>>(std::move(render));
  pending_[path] = task->get_future().share();
  pool_->Post([task] { (*task)(); });
}

Result<void> MediaLibrary::WaitReady(const std::filesystem::path& path) {
  auto it = pending_.find(path);
  if (it == pending_.end()) return {};
  Result<void> result = it->second.get();
  if (result) pending_.erase(it);  // a failure stays: every download of it reports it
  return result;
}

std::filesystem::path MediaLibrary::LastFrame(const std::filesystem::path& clip) {
  auto png = clip;
  png.replace_extension(".last.png");
  std::error_code ec;
  if (std::filesystem::exists(png, ec) && std::filesystem::file_size(png, ec) > 0) return png;
  if (pending_.contains(png)) return png;
  // The pool takes jobs in order, so the clip's own render (posted before) is running or done
  // when this one waits for it: two threads never both wait.
  auto render = [clip, png, clip_ready = Pending(clip)]() -> Result<void> {
    if (clip_ready.valid()) {
      if (const auto& made = clip_ready.get(); !made) return made;
    }
    const auto tmp = png.string() + ".tmp.png";
    // Decoding the last second and keeping the final frame written: exact at any frame rate.
    auto [rc, out] = Run(fmt::format(
        "ffmpeg -hide_banner -loglevel error -nostdin -y -sseof -1 -i {} -update 1 -f image2 {}",
        Quote(clip.string()), Quote(tmp)));
    if (rc != 0) {
      return MakeError(ErrorCategory::kInternal,
                       fmt::format("ffmpeg last frame ({}): {}", rc, out));
    }
    std::error_code rename_error;
    std::filesystem::rename(tmp, png, rename_error);
    if (rename_error) {
      return MakeError(ErrorCategory::kInternal, "rename last frame: " + rename_error.message());
    }
    return {};
  };
  RenderLater(png, std::move(render));
  return png;
}

}  // namespace reelq::sim
