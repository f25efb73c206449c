// bench-upload: how fast, and in how much memory, a clip streams from an HTTP download into
// the S3 writer (multipart, parallel parts), compared with awscli uploading the same file to
// the same s3rver in the same run. Prints key=value pairs on its last line.
//
// usage: bench-upload [--size-mb N] [--part-mb N] [--parallel N]
// Needs node + tools/node_modules/s3rver (npm --prefix tools ci), python3, awscli.

#include <sys/time.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <future>
#include <iostream>
#include <random>
#include <string>

#include "process.h"
#include "reelq/common/http_client.h"
#include "reelq/storage/hashing_writer.h"
#include "reelq/storage/s3_store.h"

namespace rt = reelq::testing;
using namespace reelq;
using SteadyClock = std::chrono::steady_clock;

namespace {

long StatusKb(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field, 0) == 0) return std::atol(line.c_str() + std::strlen(field));
  }
  return -1;
}

int Shell(const std::string& cmd) { return std::system(cmd.c_str()); }

// Counts bytes so the streamed size can be checked.
class CountingSink : public ByteSink {
 public:
  explicit CountingSink(ByteSink& inner) : inner_(inner) {}
  awaitable<Result<void>> Write(std::span<const std::byte> chunk) override {
    bytes += chunk.size();
    co_return co_await inner_.Write(chunk);
  }
  uint64_t bytes = 0;

 private:
  ByteSink& inner_;
};

struct Outcome {
  bool ok = false;
  std::string error;
  uint64_t bytes = 0;
  std::string sha256;
};

awaitable<Outcome> StreamUpload(http::ClientPtr client, storage::ObjectStorePtr store,
                                std::string url, std::string key) {
  Outcome out;
  // Named: g++ 12 destroys prvalue temporaries in a co_await expression twice.
  storage::PutOptions options{.content_type = "video/mp4", .if_absent = false};
  auto writer = co_await store->OpenWriter(key, std::move(options));
  if (!writer) {
    out.error = writer.error().Describe();
    co_return out;
  }
  storage::HashingWriter hashing(std::move(*writer));
  CountingSink sink(hashing);
  http::Request request{.method = "GET", .url = url, .timeout = std::chrono::seconds(300)};
  auto response = co_await client->Stream(std::move(request), sink);
  if (!response || response->status != 200) {
    out.error = response ? "download status " + std::to_string(response->status)
                         : response.error().Describe();
    co_await hashing.Abort();
    co_return out;
  }
  auto committed = co_await hashing.Commit();
  if (!committed) {
    out.error = committed.error().Describe();
    co_return out;
  }
  out.ok = true;
  out.bytes = sink.bytes;
  out.sha256 = hashing.sha256_hex();
  co_return out;
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t size_mb = 512, part_mb = 5;
  int parallel = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--size-mb")
      size_mb = std::stoull(argv[i + 1]);
    else if (flag == "--part-mb")
      part_mb = std::stoull(argv[i + 1]);
    else if (flag == "--parallel")
      parallel = std::stoi(argv[i + 1]);
    else {
      std::cerr << "unknown flag " << flag << "\n";
      return 2;
    }
  }
  const char* src = std::getenv("REELQ_SOURCE_DIR");
  std::string source_dir = src ? src : REELQ_BENCH_SOURCE_DIR;
  const std::string s3rver = source_dir + "/tools/node_modules/s3rver/bin/s3rver.js";
  if (!std::ifstream(s3rver)) {
    std::cerr << "s3rver missing: run npm --prefix " << source_dir << "/tools ci\n";
    return 2;
  }

  rt::TempDir dir;
  const auto file = dir.path() / "www" / "clip.mp4";
  std::filesystem::create_directories(file.parent_path());
  {
    std::ofstream out(file, std::ios::binary);
    std::mt19937_64 rng(512);
    std::vector<uint64_t> block(1 << 17);  // 1 MiB
    for (uint64_t mb = 0; mb < size_mb; ++mb) {
      for (auto& w : block) w = rng();
      out.write(reinterpret_cast<const char*>(block.data()), 1 << 20);
    }
  }
  const int web_port = rt::FreePort();
  auto web =
      rt::ChildProcess::Start({"python3", "-m", "http.server", std::to_string(web_port), "--bind",
                               "127.0.0.1", "--directory", (dir.path() / "www").string()},
                              {}, dir.path() / "web.log");
  const int s3_port = rt::FreePort();
  auto s3 = rt::ChildProcess::Start(
      {"node", s3rver, "-d", (dir.path() / "s3").string(), "-a", "127.0.0.1", "-p",
       std::to_string(s3_port), "--silent", "--configure-bucket", "bench"},
      {}, dir.path() / "s3rver.log");
  if (!rt::WaitForPort(web_port, std::chrono::seconds(20)) ||
      !rt::WaitForPort(s3_port, std::chrono::seconds(30))) {
    std::cerr << "servers did not start\n";
    return 1;
  }

  asio::io_context io;
  auto client = http::MakeClient(io.get_executor());
  storage::S3Config config;
  config.endpoint = "http://127.0.0.1:" + std::to_string(s3_port);
  config.bucket = "bench";
  config.path_style = true;
  config.credentials = {"S3RVER", "S3RVER", ""};
  config.part_size = part_mb << 20;
  config.multipart_threshold = part_mb << 20;
  config.parallel_parts = parallel;
  auto store = storage::MakeS3Store(config, client);
  if (!store) {
    std::cerr << store.error().Describe() << "\n";
    return 1;
  }

  // Reset the peak-RSS mark so VmHWM measures the upload alone.
  std::ofstream("/proc/self/clear_refs") << "5";
  const long rss_before_kb = StatusKb("VmRSS:");
  const auto t0 = SteadyClock::now();
  auto future = asio::co_spawn(
      io,
      StreamUpload(client, *store, "http://127.0.0.1:" + std::to_string(web_port) + "/clip.mp4",
                   "bench/reelq.mp4"),
      asio::use_future);
  io.run();
  Outcome outcome = future.get();
  const double reelq_s = std::chrono::duration<double>(SteadyClock::now() - t0).count();
  const long hwm_kb = StatusKb("VmHWM:");
  if (!outcome.ok) {
    std::cerr << "reelq upload failed: " << outcome.error << "\n";
    return 1;
  }

  const std::string aws_env =
      "AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_DEFAULT_REGION=us-east-1 "
      "AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null "
      "AWS_SHARED_CREDENTIALS_FILE=/dev/null ";
  const auto t1 = SteadyClock::now();
  int aws_rc =
      Shell(aws_env + "aws --endpoint-url http://127.0.0.1:" + std::to_string(s3_port) +
            " s3 cp --only-show-errors '" + file.string() + "' s3://bench/bench/awscli.mp4");
  const double aws_s = std::chrono::duration<double>(SteadyClock::now() - t1).count();

  // The object must be whole: size from an independent client.
  const std::string head_out = (dir.path() / "head.json").string();
  Shell(aws_env + "aws --endpoint-url http://127.0.0.1:" + std::to_string(s3_port) +
        " s3api head-object --bucket bench --key bench/reelq.mp4 > '" + head_out + "'");
  const std::string head = rt::ReadFile(head_out);
  const bool size_ok =
      head.find("\"ContentLength\": " + std::to_string(size_mb << 20)) != std::string::npos;

  const double mb = static_cast<double>(size_mb);
  const double reelq_mbps = mb / reelq_s;
  const double aws_mbps = aws_rc == 0 ? mb / aws_s : 0;
  const double growth_mb = static_cast<double>(hwm_kb - rss_before_kb) / 1024.0;
  std::printf("file: %llu MiB from http://127.0.0.1:%d via python3 http.server\n",
              static_cast<unsigned long long>(size_mb), web_port);
  std::printf(
      "reelq: HTTP download -> S3 writer (part %llu MiB, %d parallel): %.2f s, %.1f MiB/s, "
      "sha256 %s, head-object size %s\n",
      static_cast<unsigned long long>(part_mb), parallel, reelq_s, reelq_mbps,
      outcome.sha256.c_str(), size_ok ? "ok" : "WRONG");
  std::printf("reelq: peak RSS growth %.1f MiB (VmHWM %ld kB, VmRSS before %ld kB; target < 64)\n",
              growth_mb, hwm_kb, rss_before_kb);
  std::printf("awscli: s3 cp of the same file: %.2f s, %.1f MiB/s (exit %d)\n", aws_s, aws_mbps,
              aws_rc);
  std::printf(
      "reelq_mb_per_s=%.1f awscli_mb_per_s=%.1f ratio=%.2f reelq_peak_rss_growth_mb=%.1f "
      "size_ok=%d\n",
      reelq_mbps, aws_mbps, aws_mbps > 0 ? reelq_mbps / aws_mbps : 0.0, growth_mb, size_ok ? 1 : 0);
  return size_ok && aws_rc == 0 ? 0 : 1;
}
