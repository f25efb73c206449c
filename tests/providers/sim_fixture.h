#pragma once

// Starts the real reelq-provider-sim on 127.0.0.1 (port 0, read back from --port-file) for the
// adapters' contract tests, and talks to its control endpoint.
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "process.h"
#include "reelq/common/http_client.h"
#include "reelq/providers/factory.h"

namespace reelq::testing {

template <class T>
T RunSync(asio::io_context& io, awaitable<T> task) {
  std::optional<T> out;
  std::exception_ptr error;
  asio::co_spawn(io, std::move(task), [&](std::exception_ptr e, T value) {
    error = e;
    if (!e) out = std::move(value);
  });
  io.restart();
  io.run();
  if (error) std::rethrow_exception(error);
  return std::move(*out);
}

class Sim {
 public:
  // Empty when the simulator binary is missing (the caller skips, saying why).
  static std::unique_ptr<Sim> Start(double latency_scale);
  ~Sim();

  std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  nlohmann::json Stats();
  // POST /_sim/config with a partial config document.
  void Configure(const nlohmann::json& patch);
  void Reset();

 private:
  nlohmann::json Call(const std::string& method, const std::string& path, const std::string& body);
  TempDir dir_;
  ChildProcess process_;
  int port_ = 0;
};

}  // namespace reelq::testing
