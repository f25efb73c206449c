#include "stack.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdlib>
#include <deque>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace reelq::testing {

namespace v1 = reelq::v1;

namespace {

// The simulator's built-in keys (providers/sim/README.md), handed to the children through the
// environment variables the config names.
const std::map<std::string, std::string> kSimKeys = {
    {"SIM_KLING_ACCESS_KEY_A", "sim-kling-ak-a"}, {"SIM_KLING_SECRET_KEY_A", "sim-kling-sk-a"},
    {"SIM_KLING_ACCESS_KEY_B", "sim-kling-ak-b"}, {"SIM_KLING_SECRET_KEY_B", "sim-kling-sk-b"},
    {"SIM_SORA_KEY_A", "sim-sora-key-a"},         {"SIM_SORA_KEY_B", "sim-sora-key-b"},
    {"SIM_VEO_KEY_A", "sim-veo-key-a"},           {"SIM_VEO_KEY_B", "sim-veo-key-b"},
    {"SIM_SEEDANCE_KEY_A", "sim-seedance-key-a"}, {"SIM_SEEDANCE_KEY_B", "sim-seedance-key-b"},
};

std::string Tail(const std::filesystem::path& path, int lines) {
  std::ifstream in(path);
  std::deque<std::string> last;
  std::string line;
  while (std::getline(in, line)) {
    last.push_back(line);
    if (static_cast<int>(last.size()) > lines) last.pop_front();
  }
  std::string out;
  for (const auto& l : last) out += l + "\n";
  return out;
}

std::string Num(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

}  // namespace

bool IsTerminal(v1::JobState state) {
  return state == v1::JOB_STATE_SUCCEEDED || state == v1::JOB_STATE_FAILED ||
         state == v1::JOB_STATE_CANCELLED;
}

std::string E2eStack::MissingBinaries() {
  std::string missing;
  if (!RedisServer::Available()) missing += "redis-server ";
  for (const char* bin :
       {"providers/sim/reelq-provider-sim", "scheduler/reelq-scheduler", "worker/reelq-worker"}) {
    if (!std::filesystem::exists(BuildPath(bin))) missing += BuildPath(bin).string() + " ";
  }
  return missing;
}

E2eStack::E2eStack(E2eStackOptions options) : options_(std::move(options)) {
  if (auto missing = MissingBinaries(); !missing.empty()) {
    throw std::runtime_error("e2e stack: missing " + missing);
  }
  std::filesystem::create_directories(log_dir());
  std::filesystem::create_directories(store_root());
  RedisServerOptions ro;
  ro.appendonly = true;
  ro.appendfsync = options_.appendfsync;
  ro.bind = options_.redis_host;
  redis_ = std::make_unique<RedisServer>(ro);
  if (options_.redis_section_extra) redis_section_extra_ = options_.redis_section_extra(*redis_);
  StartSim();
  WriteConfig();
  for (int i = 0; i < options_.schedulers; ++i) {
    schedulers_.emplace_back();
    StartScheduler(i);
  }
  for (int i = 0; i < options_.workers; ++i) AddWorker();
}

E2eStack::~E2eStack() {
  // Workers first (they hand back leases), then schedulers, the sim; Redis goes with redis_.
  for (auto& w : workers_) {
    if (w.process.pid() > 0) kill(w.process.pid(), SIGCONT);
    w.process.Stop(std::chrono::seconds(10));
  }
  for (auto& s : schedulers_) s.process.Stop(std::chrono::seconds(10));
  sim_.Stop(std::chrono::seconds(5));
}

std::string E2eStack::Logs(int lines) const {
  std::string out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(log_dir(), ec)) {
    out += "----- " + entry.path().filename().string() + " -----\n" + Tail(entry.path(), lines);
  }
  if (redis_) out += "----- redis.log -----\n" + Tail(redis_->log_path(), lines);
  return out;
}

void E2eStack::StartSim() {
  auto binary = BuildPath("providers/sim/reelq-provider-sim");
  auto port_file = dir_.path() / "sim.port";
  std::filesystem::remove(port_file);
  const std::string listen =
      options_.sim_host + ":" + std::to_string(sim_port_);  // port 0 the first time
  sim_ = ChildProcess::Start(
      {binary.string(), "--listen", listen, "--port-file", port_file.string(), "--latency-scale",
       Num(options_.latency_scale), "--seed", std::to_string(options_.sim_seed), "--media-dir",
       (dir_.path() / "sim-media").string(), "--log-level", "warn", "--clip-labels",
       options_.sim_clip_labels ? "on" : "off"},
      {}, log_dir() / "sim.log");
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    std::string text = ReadFile(port_file);
    if (!text.empty()) {
      sim_port_ = std::stoi(text);
      if (WaitForPort(options_.sim_host, sim_port_, std::chrono::seconds(10))) return;
    }
    if (!sim_.running()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  throw std::runtime_error("e2e stack: simulator did not start\n" + Logs());
}

void E2eStack::KillSim() { sim_.Kill(); }

std::filesystem::path E2eStack::CatalogueFile() const {
  const auto shipped = std::filesystem::absolute(SourcePath("deploy/catalogue.yaml"));
  if (!options_.scale_catalogue_latency) return shipped;
  // Every model's `latency: {min: A, p50: B, p95: C, max: D}` line, scaled; nothing else moves.
  static const std::regex kLatency(
      R"(latency: \{min: ([0-9.]+), p50: ([0-9.]+), p95: ([0-9.]+), max: ([0-9.]+)\})");
  const std::string text = ReadFile(shipped);
  std::string out;
  size_t last = 0;
  int scaled = 0;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), kLatency);
       it != std::sregex_iterator(); ++it) {
    const auto& m = *it;
    out += text.substr(last, static_cast<size_t>(m.position()) - last);
    auto s = [&](int i) { return Num(std::stod(m[i].str()) * options_.latency_scale); };
    out += "latency: {min: " + s(1) + ", p50: " + s(2) + ", p95: " + s(3) + ", max: " + s(4) + "}";
    last = static_cast<size_t>(m.position() + m.length());
    ++scaled;
  }
  out += text.substr(last);
  if (scaled == 0) throw std::runtime_error("e2e stack: no latency line in " + shipped.string());
  const auto path = dir_.path() / "catalogue-scaled.yaml";
  std::ofstream(path) << out;
  return path;
}

void E2eStack::WriteConfig() {
  const std::string sim = "http://" + options_.sim_host + ":" + std::to_string(sim_port_);
  std::ostringstream y;
  y << "# Written by tests/e2e/stack.cpp\n"
    << "catalogue_file: " << CatalogueFile().string() << "\n"
    << "redis:\n  host: " << options_.redis_host << "\n  port: " << redis_->port()
    << "\n  prefix: " << kRedisPrefix << "\n"
    << redis_section_extra_ << "scheduler:\n  listen: 127.0.0.1:0\n  metrics_listen: 127.0.0.1:0\n"
    << "  max_prompt_bytes: " << options_.max_prompt_bytes << "\n"
    << "  max_message_bytes: " << options_.max_message_bytes << "\n"
    << "  max_attempts: " << options_.max_attempts << "\n"
    << "worker:\n  max_in_flight: " << options_.max_in_flight << "\n"
    << "  lease_seconds: " << Num(options_.lease_seconds) << "\n"
    << "  heartbeat_seconds: " << Num(options_.heartbeat_seconds) << "\n"
    << "  min_poll_interval_ms: " << options_.min_poll_interval_ms << "\n"
    << "  drain_timeout_seconds: " << Num(options_.drain_timeout_seconds) << "\n"
    << "  metrics_listen: 127.0.0.1:0\n"
    << "  retry_backoff_initial_ms: " << options_.retry_backoff_initial_ms << "\n"
    << "  retry_backoff_max_ms: " << options_.retry_backoff_max_ms << "\n"
    << (options_.storage_backend == "fs"
            ? "storage:\n  backend: fs\n  fs:\n    root: " + store_root().string() + "\n"
            : "storage:\n  backend: \"" + options_.storage_backend + "\"\n")
    << "accounts:\n"
    << options_.extra_accounts_yaml;
  const std::string limits = ", requests_per_minute: " + std::to_string(options_.account_rpm) +
                             ", max_concurrent: " + std::to_string(options_.account_max_concurrent);
  for (const char* s : {"a", "b"}) {
    std::string S = s[0] == 'a' ? "A" : "B";
    y << "  - {id: kling-" << s << ", provider: kling, base_url: \"" << sim << "/kling\""
      << ", api_key: {env: SIM_KLING_ACCESS_KEY_" << S
      << "}, secret_key: {env: SIM_KLING_SECRET_KEY_" << S << "}" << limits << "}\n";
    y << "  - {id: sora-" << s << ", provider: sora, base_url: \"" << sim << "/sora\""
      << ", api_key: {env: SIM_SORA_KEY_" << S << "}" << limits << "}\n";
    y << "  - {id: veo-" << s << ", provider: veo, base_url: \"" << sim << "/veo\""
      << ", api_key: {env: SIM_VEO_KEY_" << S << "}" << limits << "}\n";
    y << "  - {id: seedance-" << s << ", provider: seedance, base_url: \"" << sim << "/seedance\""
      << ", api_key: {env: SIM_SEEDANCE_KEY_" << S << "}" << limits << "}\n";
  }
  y << options_.extra_yaml << "\n";
  std::ofstream out(config_path());
  out << y.str();
}

std::map<std::string, std::string> E2eStack::ChildEnv() const {
  auto env = kSimKeys;
  for (const auto& [k, v] : options_.env) env[k] = v;
  return env;
}

std::string E2eStack::scheduler_address(int i) const {
  return "127.0.0.1:" + std::to_string(schedulers_.at(i).port);
}

std::shared_ptr<grpc::Channel> E2eStack::Channel(int scheduler) const {
  grpc::ChannelArguments args;
  // Large enough that the scheduler's own limit is what a test meets.
  args.SetMaxSendMessageSize(64 << 20);
  args.SetMaxReceiveMessageSize(64 << 20);
  return grpc::CreateCustomChannel(scheduler_address(scheduler), grpc::InsecureChannelCredentials(),
                                   args);
}

std::string E2eStack::dashboard_address(int i) const {
  return "127.0.0.1:" + std::to_string(schedulers_.at(i).dashboard_port);
}

std::unique_ptr<v1::JobService::Stub> E2eStack::JobStub(int scheduler) const {
  return v1::JobService::NewStub(Channel(scheduler));
}

std::unique_ptr<v1::ModelService::Stub> E2eStack::ModelStub(int scheduler) const {
  return v1::ModelService::NewStub(Channel(scheduler));
}

void E2eStack::StartScheduler(int i) {
  auto& s = schedulers_.at(i);
  if (s.process.running()) throw std::logic_error("scheduler " + std::to_string(i) + " running");
  std::string last;
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (s.port == 0 || attempt > 0) s.port = FreePort();
    std::vector<std::string> argv{BuildPath("scheduler/reelq-scheduler").string(),
                                  "--config",
                                  config_path().string(),
                                  "--listen",
                                  "127.0.0.1:" + std::to_string(s.port),
                                  "--log-level",
                                  options_.log_level};
    if (options_.dashboard) {
      if (s.dashboard_port == 0 || attempt > 0) s.dashboard_port = FreePort();
      argv.push_back("--dashboard-listen");
      argv.push_back("127.0.0.1:" + std::to_string(s.dashboard_port));
    }
    s.process = ChildProcess::Start(argv, ChildEnv(),
                                    log_dir() / ("scheduler-" + std::to_string(i) + ".log"));
    try {
      WaitSchedulerReady(i);
      return;
    } catch (const std::exception& e) {
      last = e.what();
      s.process.Kill();
    }
  }
  throw std::runtime_error(last);
}

void E2eStack::WaitSchedulerReady(int i) {
  auto& s = schedulers_.at(i);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    if (!s.process.running()) break;
    if (WaitForPort(s.port, std::chrono::milliseconds(200))) {
      // Listening is not enough when another process had the port: ask the API itself.
      auto stub = JobStub(i);
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
      v1::GetJobRequest req;
      req.set_job_id("e2e-readiness-probe");
      v1::JobStatus resp;
      auto status = stub->GetJob(&ctx, req, &resp);
      if (status.error_code() != grpc::StatusCode::UNAVAILABLE &&
          status.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED &&
          status.error_code() != grpc::StatusCode::UNIMPLEMENTED) {
        return;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  throw std::runtime_error("e2e stack: scheduler " + std::to_string(i) + " not ready on port " +
                           std::to_string(s.port) + "\n" + Logs());
}

int E2eStack::AddWorker() {
  workers_.emplace_back();
  int i = static_cast<int>(workers_.size()) - 1;
  StartWorker(i);
  return i;
}

E2eWorkerPlacement E2eStack::Placement(int worker) const {
  if (worker < static_cast<int>(options_.worker_placement.size())) {
    return options_.worker_placement[worker];
  }
  return {};
}

std::string E2eStack::worker_metrics_address(int i) const {
  return Placement(i).host + ":" + std::to_string(workers_.at(i).port);
}

void E2eStack::StartWorker(int i) {
  auto& w = workers_.at(i);
  if (w.process.running()) throw std::logic_error("worker " + std::to_string(i) + " running");
  const auto placement = Placement(i);
  for (int attempt = 0; attempt < 3; ++attempt) {
    // FreePort() asks the test's own network namespace; in another one the port is at worst
    // taken, and the retry picks another.
    w.port = FreePort();
    std::vector<std::string> argv = placement.command_prefix;
    for (std::string arg :
         {BuildPath("worker/reelq-worker").string(), std::string("--config"),
          config_path().string(), std::string("--id"), worker_id(i),
          std::string("--metrics-listen"), placement.host + ":" + std::to_string(w.port),
          std::string("--log-level"), options_.log_level}) {
      argv.push_back(std::move(arg));
    }
    w.process =
        ChildProcess::Start(argv, ChildEnv(), log_dir() / ("worker-" + std::to_string(i) + ".log"));
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline && w.process.running()) {
      if (WaitForPort(placement.host, w.port, std::chrono::milliseconds(200))) return;
    }
    w.process.Kill();
  }
  throw std::runtime_error("e2e stack: worker " + std::to_string(i) + " did not start\n" + Logs());
}

void E2eStack::KillScheduler(int i) { schedulers_.at(i).process.Kill(); }
void E2eStack::KillWorker(int i) {
  auto& p = workers_.at(i).process;
  if (p.pid() > 0) kill(p.pid(), SIGCONT);  // a stopped process still dies, but be explicit
  p.Kill();
}

std::optional<int> E2eStack::TermScheduler(int i, std::chrono::milliseconds grace) {
  auto& p = schedulers_.at(i).process;
  p.Signal(SIGTERM);
  return p.Wait(grace);
}

std::optional<int> E2eStack::TermWorker(int i, std::chrono::milliseconds grace) {
  auto& p = workers_.at(i).process;
  p.Signal(SIGCONT);
  p.Signal(SIGTERM);
  return p.Wait(grace);
}

void E2eStack::PauseWorker(int i) { workers_.at(i).process.Signal(SIGSTOP); }
void E2eStack::ResumeWorker(int i) { workers_.at(i).process.Signal(SIGCONT); }

std::string E2eStack::SimHttp(const std::string& method, const std::string& path,
                              const std::string& body, int* status) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  inet_pton(AF_INET, options_.sim_host.c_str(), &addr.sin_addr);
  addr.sin_port = htons(static_cast<uint16_t>(sim_port_));
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    throw std::runtime_error("sim control: cannot connect to port " + std::to_string(sim_port_));
  }
  std::string request = method + " " + path + " HTTP/1.1\r\nHost: " + options_.sim_host + ":" +
                        std::to_string(sim_port_) +
                        "\r\nConnection: close\r\nContent-Type: application/json\r\n"
                        "Content-Length: " +
                        std::to_string(body.size()) + "\r\n\r\n" + body;
  size_t sent = 0;
  while (sent < request.size()) {
    ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  std::string response;
  char buf[16384];
  while (true) {
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    response.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  auto head_end = response.find("\r\n\r\n");
  if (head_end == std::string::npos || response.size() < 12) {
    throw std::runtime_error("sim control " + path + ": no HTTP answer");
  }
  *status = std::atoi(response.c_str() + 9);
  std::string payload = response.substr(head_end + 4);
  // The sim may answer chunked; de-chunk when the head says so.
  std::string head = response.substr(0, head_end);
  for (auto& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (head.find("transfer-encoding: chunked") != std::string::npos) {
    std::string out;
    size_t pos = 0;
    while (pos < payload.size()) {
      size_t eol = payload.find("\r\n", pos);
      if (eol == std::string::npos) break;
      size_t len = std::strtoul(payload.substr(pos, eol - pos).c_str(), nullptr, 16);
      if (len == 0) break;
      out += payload.substr(eol + 2, len);
      pos = eol + 2 + len + 2;
    }
    payload = out;
  }
  return payload;
}

nlohmann::json E2eStack::SimStats() {
  int status = 0;
  auto body = SimHttp("GET", "/_sim/stats", "", &status);
  if (status != 200) throw std::runtime_error("sim stats: HTTP " + std::to_string(status) + body);
  return nlohmann::json::parse(body);
}

nlohmann::json E2eStack::SimConfigure(const nlohmann::json& patch) {
  int status = 0;
  auto body = SimHttp("POST", "/_sim/config", patch.dump(), &status);
  if (status != 200) throw std::runtime_error("sim config: HTTP " + std::to_string(status) + body);
  return nlohmann::json::parse(body);
}

void E2eStack::SimReset() {
  int status = 0;
  auto body = SimHttp("POST", "/_sim/reset", "", &status);
  if (status != 200) throw std::runtime_error("sim reset: HTTP " + std::to_string(status) + body);
}

std::map<std::string, v1::JobStatus> E2eStack::WaitTerminal(const std::vector<std::string>& ids,
                                                            std::chrono::seconds timeout) {
  std::map<std::string, v1::JobStatus> out;
  // Asks the first scheduler that is running: a test may have killed the others.
  int asked = 0;
  for (int i = 0; i < scheduler_count(); ++i) {
    if (schedulers_[i].process.running()) {
      asked = i;
      break;
    }
  }
  auto stub = JobStub(asked);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::vector<std::string> open = ids;
  while (!open.empty()) {
    std::vector<std::string> still;
    for (const auto& id : open) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
      v1::GetJobRequest req;
      req.set_job_id(id);
      v1::JobStatus status;
      if (stub->GetJob(&ctx, req, &status).ok()) out[id] = status;
      if (!out.contains(id) || !IsTerminal(out[id].state())) still.push_back(id);
    }
    open = std::move(still);
    if (open.empty() || std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return out;
}

std::vector<std::string> E2eStack::StoreFiles() const {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(store_root(), ec);
       it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    if (it->is_regular_file()) {
      out.push_back(std::filesystem::relative(it->path(), store_root()).string());
    }
  }
  return out;
}

}  // namespace reelq::testing
