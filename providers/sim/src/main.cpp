// reelq-provider-sim: a fake Kling / Sora / Veo / Seedance upstream for tests and the demo.
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>

#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "config.h"
#include "http_server.h"
#include "media.h"
#include "reelq/common/asio.h"
#include "reelq/common/logging.h"
#include "sim.h"

namespace {

bool SplitHostPort(const std::string& s, std::string& host, uint16_t& port) {
  const auto colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  host = s.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  try {
    size_t used = 0;
    const int p = std::stoi(s.substr(colon + 1), &used);
    if (used != s.size() - colon - 1 || p < 0 || p > 65535) return false;
    port = static_cast<uint16_t>(p);
  } catch (...) {
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace reelq::sim;
  CLI::App app{"reelq-provider-sim: fake Kling, Sora, Veo and Seedance APIs on one HTTP port"};
  std::string listen = "127.0.0.1:0", port_file, config_path, media_dir, log_level = "info";
  std::optional<double> latency_scale;
  std::optional<uint64_t> seed;
  std::string clip_labels;
  app.add_option("--listen", listen, "host:port to listen on (port 0 picks a free one)");
  app.add_option("--port-file", port_file, "write the bound port here once listening");
  app.add_option("--config", config_path, "YAML config (see deploy/sim.yaml)");
  app.add_option("--latency-scale", latency_scale, "multiply every generation latency (0: instant)")
      ->check(CLI::Range(0.0, 1000.0));
  app.add_option("--seed", seed, "seed of the fault and latency RNG");
  app.add_option("--media-dir", media_dir, "where generated MP4 files are cached");
  app.add_option("--clip-labels", clip_labels,
                 "on (default): draw model, shot and job id on each clip; off: plain cached clips")
      ->check(CLI::IsMember({"on", "off"}));
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
  CLI11_PARSE(app, argc, argv);

  reelq::InitLogging("sim", log_level, /*json=*/false);

  SimConfig config = DefaultConfig();
  if (!config_path.empty()) {
    auto loaded = LoadConfigFile(config_path);
    if (!loaded) {
      std::cerr << "reelq-provider-sim: " << loaded.error().message << "\n";
      return 2;
    }
    config = std::move(*loaded);
  }
  if (latency_scale) config.latency_scale = *latency_scale;
  if (seed) config.seed = *seed;
  if (!clip_labels.empty()) config.clip_labels = clip_labels == "on";
  if (!media_dir.empty()) config.media_dir = media_dir;

  std::string host;
  uint16_t port = 0;
  if (!SplitHostPort(listen, host, port)) {
    std::cerr << "reelq-provider-sim: --listen must be host:port, got '" << listen << "'\n";
    return 2;
  }

  const bool temp_media = config.media_dir.empty();
  auto media = MediaLibrary::Open(config.media_dir);
  if (!media) {
    std::cerr << "reelq-provider-sim: " << media.error().message << "\n";
    return 1;
  }
  config.media_dir = media->dir().string();

  reelq::asio::io_context io;
  Sim sim(std::move(config), std::move(*media));
  HttpServer server(
      io, [&sim](const HttpRequest& req) { return sim.Handle(req); },
      [&sim] { sim.NoteConnectionAccepted(); });
  uint16_t bound = 0;
  try {
    bound = server.Listen(host, port);
  } catch (const std::exception& e) {
    std::cerr << "reelq-provider-sim: cannot listen on " << listen << ": " << e.what() << "\n";
    return 1;
  }
  if (!port_file.empty()) {
    // Write then rename, so a test polling the file never reads half a number.
    const std::string tmp = port_file + ".tmp";
    {
      std::ofstream out(tmp);
      out << bound << "\n";
    }
    std::rename(tmp.c_str(), port_file.c_str());
  }
  spdlog::info("listening on {}:{} (latency scale {}, media {})", host, bound,
               sim.config().latency_scale, sim.media().dir().string());

  reelq::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    spdlog::info("signal {}: stopping", sig);
    server.Stop();
    io.stop();
  });
  io.run();
  if (temp_media) {
    std::error_code ec;
    std::filesystem::remove_all(sim.media().dir(), ec);  // ours alone: made by mkdtemp
  }
  return 0;
}
