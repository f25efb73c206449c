#include "chain_frame.h"

#include <fstream>
#include <span>
#include <sstream>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "media_tools.h"
#include "reelq/common/byte_sink.h"
#include "reelq/common/image_format.h"
#include "reelq/storage/sha256.h"

namespace reelq::worker {
namespace {

// A frame is a few MiB at most (a 4k PNG); anything larger is not one.
constexpr size_t kMaxFrameBytes = 64 << 20;

class MemorySink final : public ByteSink {
 public:
  awaitable<Result<void>> Write(std::span<const std::byte> chunk) override {
    if (bytes.size() + chunk.size() > kMaxFrameBytes) {
      co_return MakeError(ErrorCategory::kInternal,
                          fmt::format("the last frame is over {} bytes", kMaxFrameBytes));
    }
    bytes.append(reinterpret_cast<const char*>(chunk.data()), chunk.size());
    co_return Result<void>{};
  }
  std::string bytes;
};

// Where ffmpeg reads a stored object: a path for the filesystem store, else a presigned URL.
std::string ReadableLocation(storage::ObjectStore& objects, const std::string& key) {
  auto url = objects.PresignGet(key, std::chrono::hours(1));
  if (!url) return "";
  constexpr std::string_view kFile = "file://";
  if (url->starts_with(kFile)) return url->substr(kFile.size());
  return *url;
}

awaitable<Result<std::string>> ProviderFrame(ChainFrameSource& source) {
  providers::TaskStatus status = source.status;
  status.video_url = status.last_frame_url;
  MemorySink sink;
  auto got = co_await source.provider->Download(source.upstream, status, sink);
  if (!got) co_return std::unexpected(got.error());
  co_return std::move(sink.bytes);
}

awaitable<Result<std::string>> ExtractedFrame(storage::ObjectStore& objects,
                                              const std::string& clip_key) {
  const std::string input = ReadableLocation(objects, clip_key);
  if (input.empty()) {
    co_return MakeError(ErrorCategory::kInternal,
                        "last frame: the store gives no readable location for " + clip_key);
  }
  ScratchDir scratch("chain-frame");
  if (!scratch.ok()) co_return MakeError(ErrorCategory::kInternal, "last frame: no scratch dir");
  const auto png = scratch.path() / "last.png";
  // Decoding the last second and keeping the final frame written: the exact last frame at any
  // frame rate, without decoding the whole clip.
  std::vector<std::string> argv{"ffmpeg",   "-hide_banner", "-loglevel", "error",
                                "-nostdin", "-y",           "-sseof",    "-1"};
  const auto clip = ClipInput(input);
  argv.insert(argv.end(), clip.begin(), clip.end());
  argv.insert(argv.end(), {"-update", "1", "-f", "image2", png.string()});
  ToolLimits limits{kProbeTimeout, nullptr};
  auto run = co_await RunTool(std::move(argv), std::move(limits));
  if (!run) co_return std::unexpected(run.error());
  if (run->exit_code != 0) {
    co_return MakeError(ErrorCategory::kInternal,
                        fmt::format("last frame of {}: ffmpeg exited {}: {}", clip_key,
                                    run->exit_code, run->output));
  }
  std::ifstream in(png, std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  co_return bytes.str();
}

}  // namespace

awaitable<Result<std::string>> StoreChainFrame(RunnerDeps& deps, ChainFrameSource source) {
  if (deps.objects == nullptr) {
    co_return MakeError(ErrorCategory::kInternal, "last frame: this worker has no object store");
  }
  Result<std::string> frame = MakeError(ErrorCategory::kInternal, "last frame: not read");
  if (!source.status.last_frame_url.empty() && source.provider) {
    frame = co_await ProviderFrame(source);
    if (!frame) {
      spdlog::warn("clip {}: the provider's last frame could not be read ({}); extracting it",
                   source.clip_key, frame.error().Describe());
    }
  }
  if (!frame || frame->empty()) frame = co_await ExtractedFrame(*deps.objects, source.clip_key);
  if (!frame) co_return std::unexpected(frame.error());
  const auto format = SniffImageFormat(*frame);
  if (!format) {
    co_return MakeError(ErrorCategory::kInternal,
                        "last frame of " + source.clip_key + ": not a PNG, JPEG or WebP");
  }
  const std::string tenant = source.tenant.empty() ? std::string("default") : source.tenant;
  const std::string key =
      fmt::format("inputs/{}/{}.{}", tenant, storage::Sha256Hex(*frame), FileExtension(*format));
  storage::PutOptions options;
  options.content_type = std::string(MimeType(*format));
  options.if_absent = true;  // content-addressed: the same frame is stored once
  auto writer = co_await deps.objects->OpenWriter(key, options);
  if (!writer) co_return std::unexpected(writer.error());
  const auto& bytes = *frame;
  if (auto wrote = co_await (*writer)->Write(std::as_bytes(std::span(bytes.data(), bytes.size())));
      !wrote) {
    co_await (*writer)->Abort();
    co_return std::unexpected(wrote.error());
  }
  auto committed = co_await (*writer)->Commit();
  if (!committed) co_return std::unexpected(committed.error());
  co_return key;
}

}  // namespace reelq::worker
