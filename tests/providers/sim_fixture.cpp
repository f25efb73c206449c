#include "sim_fixture.h"

#include <thread>

#include <gtest/gtest.h>

namespace reelq::testing {

std::unique_ptr<Sim> Sim::Start(double latency_scale) {
  auto binary = BuildPath("providers/sim/reelq-provider-sim");
  if (!std::filesystem::exists(binary)) return nullptr;
  auto sim = std::unique_ptr<Sim>(new Sim());
  auto port_file = sim->dir_.path() / "port";
  sim->process_ = ChildProcess::Start(
      {binary.string(), "--listen", "127.0.0.1:0", "--port-file", port_file.string(),
       "--latency-scale", std::to_string(latency_scale), "--media-dir",
       (sim->dir_.path() / "media").string(), "--log-level", "warn"},
      {}, sim->dir_.path() / "sim.log");
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    std::string text = ReadFile(port_file);
    if (!text.empty()) {
      sim->port_ = std::stoi(text);
      if (WaitForPort(sim->port_, std::chrono::seconds(5))) return sim;
    }
    if (!sim->process_.running()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ADD_FAILURE() << "simulator did not start; log:\n" << ReadFile(sim->dir_.path() / "sim.log");
  return nullptr;
}

Sim::~Sim() { process_.Stop(); }

nlohmann::json Sim::Call(const std::string& method, const std::string& path,
                         const std::string& body) {
  asio::io_context io;
  auto client = http::MakeClient(io.get_executor());
  http::Request request;
  request.method = method;
  request.url = base_url() + path;
  request.body = body;
  if (!body.empty()) request.headers = {{"content-type", "application/json"}};
  request.timeout = std::chrono::seconds(5);
  auto response = RunSync(io, client->Send(request));
  if (!response) {
    ADD_FAILURE() << "sim control " << path << ": " << response.error().message;
    return {};
  }
  EXPECT_EQ(response->status, 200) << path << ": " << response->body;
  return nlohmann::json::parse(response->body, nullptr, false);
}

nlohmann::json Sim::Stats() { return Call("GET", "/_sim/stats", ""); }
void Sim::Configure(const nlohmann::json& patch) { Call("POST", "/_sim/config", patch.dump()); }
void Sim::Reset() { Call("POST", "/_sim/reset", ""); }

}  // namespace reelq::testing
