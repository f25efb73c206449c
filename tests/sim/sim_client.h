#pragma once

// A deliberately small HTTP/1.1 client and process harness for the simulator tests. It shares
// nothing with the provider adapters: the tests check the simulator against shared/providers.md.
#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "process.h"

namespace reelq::simtest {

struct HttpResult {
  std::string error;  // empty when a whole response arrived
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  nlohmann::json Json() const {
    return nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  }
  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

// One request on a fresh connection to 127.0.0.1:port, with a deadline on the whole exchange.
HttpResult Http(int port, const std::string& method, const std::string& target,
                const std::string& body = "",
                const std::map<std::string, std::string>& headers = {},
                std::chrono::milliseconds timeout = std::chrono::seconds(10));
// GET of an absolute http://127.0.0.1:port/... URL.
HttpResult GetUrl(const std::string& url, const std::map<std::string, std::string>& headers = {},
                  std::chrono::milliseconds timeout = std::chrono::seconds(10));

// A Kling JWT: HS256 over {"iss":ak,"exp":now+exp_in,"nbf":now+nbf_in}.
std::string KlingJwt(const std::string& ak, const std::string& sk, int exp_in = 1800,
                     int nbf_in = -5);

// ffprobe's view of an MP4 file; nullopt when ffprobe is missing.
struct Probe {
  double duration = 0;
  std::string display_aspect_ratio;
  int width = 0;
  int height = 0;
};
std::optional<Probe> FfProbe(const std::filesystem::path& file);

// The simulator as a real child process on 127.0.0.1, port from --port-file.
class SimProcess {
 public:
  explicit SimProcess(std::vector<std::string> extra_args = {});
  int port() const { return port_; }
  testing::ChildProcess& process() { return process_; }
  nlohmann::json Stats() const;
  void Control(const nlohmann::json& config) const;  // POST /_sim/config, asserts 200

 private:
  testing::TempDir dir_;
  testing::ChildProcess process_;
  int port_ = 0;
};

}  // namespace reelq::simtest
