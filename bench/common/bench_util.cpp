#include "bench_util.h"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "e2e_util.h"
#include "process.h"

namespace reelq::bench {

namespace rt = reelq::testing;
namespace v1 = reelq::v1;

int IntFlag(const std::string& flag, const std::string& text) {
  int value = 0;
  const char* end = text.data() + text.size();
  auto [at, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || at != end || text.empty()) {
    throw std::runtime_error(flag + ": '" + text + "' is not a whole number");
  }
  return value;
}

double NumberFlag(const std::string& flag, const std::string& text) {
  size_t used = 0;
  double value = 0;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size() || !std::isfinite(value)) {
    throw std::runtime_error(flag + ": '" + text + "' is not a number");
  }
  return value;
}

std::map<std::string, int64_t> CommandStats(rt::RedisServer& redis) {
  std::map<std::string, int64_t> out;
  std::istringstream in(redis.Info("commandstats"));
  std::string line;
  while (std::getline(in, line)) {
    if (!line.starts_with("cmdstat_")) continue;
    auto colon = line.find(':');
    auto calls = line.find("calls=");
    if (colon == std::string::npos || calls == std::string::npos) continue;
    out[line.substr(8, colon - 8)] = std::atoll(line.c_str() + calls + 6);
  }
  return out;
}

int64_t TotalCommands(const std::map<std::string, int64_t>& stats) {
  int64_t total = 0;
  for (const auto& [name, calls] : stats) {
    if (name != "info" && name != "config|resetstat") total += calls;
  }
  return total;
}

std::string ScriptOfFunction(const std::string& function) {
  const size_t hash_end =
      function.starts_with("reelq_") ? function.find('_', 6) : std::string::npos;
  return hash_end == std::string::npos ? function : function.substr(hash_end + 1);
}

std::string TopCommands(const std::map<std::string, int64_t>& stats, double per, size_t n) {
  std::vector<std::pair<int64_t, std::string>> v;
  for (const auto& [name, calls] : stats) {
    if (name != "info" && name != "config|resetstat" && calls > 0) v.emplace_back(calls, name);
  }
  std::sort(v.rbegin(), v.rend());
  std::ostringstream s;
  s.precision(2);
  s << std::fixed;
  for (size_t i = 0; i < v.size() && i < n; ++i) {
    s << (i ? ", " : "") << v[i].second << " " << static_cast<double>(v[i].first) / per;
  }
  return s.str();
}

int64_t UsedMemory(rt::RedisServer& redis) {
  auto v = redis.InfoField("used_memory", "memory");
  if (!v) throw std::runtime_error("INFO memory has no used_memory");
  return std::stoll(*v);
}

double CpuMs(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
  auto close = text.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream fields(text.substr(close + 2));
  std::string field;
  double utime = 0, stime = 0;
  // Fields 3.. follow; utime is field 14 and stime 15 (proc(5)).
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14) utime = std::stod(field);
    if (i == 15) stime = std::stod(field);
  }
  return (utime + stime) * 1000.0 / static_cast<double>(sysconf(_SC_CLK_TCK));
}

namespace {
int64_t StatusKb(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with(field + ":")) return std::atoll(line.c_str() + field.size() + 1);
  }
  return 0;
}
}  // namespace

int64_t PeakRssKb(pid_t pid) { return StatusKb(pid, "VmHWM"); }
int64_t RssKb(pid_t pid) { return StatusKb(pid, "VmRSS"); }

std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

CpuWindow::CpuWindow(std::vector<std::pair<std::string, pid_t>> processes)
    : processes_(std::move(processes)) {}

void CpuWindow::Start() {
  for (const auto& [name, pid] : processes_) start_[name] = CpuMs(pid);
}

void CpuWindow::Stop() {
  for (const auto& [name, pid] : processes_) used_[name] = CpuMs(pid) - start_[name];
}

double CpuWindow::Ms(const std::string& name) const {
  auto it = used_.find(name);
  return it == used_.end() ? 0 : it->second;
}

void UseNoopProvider(rt::E2eStackOptions& o, int max_concurrent) {
  o.storage_backend = "null";
  o.extra_accounts_yaml +=
      "  - {id: noop-a, provider: noop, requests_per_minute: 100000000, max_concurrent: " +
      std::to_string(max_concurrent) + "}\n";
  o.extra_yaml += std::string("models:\n  - id: ") + kNoopModel +
                  "\n    provider: noop\n    upstream_model: noop\n    durations: [5]\n"
                  "    max_clip_seconds: 5\n    aspect_ratios: [\"16:9\", \"9:16\", \"1:1\"]\n"
                  "    resolutions: [\"720p\", \"1080p\"]\n"
                  "    latency: {min: 1, p50: 1, p95: 1, max: 1}\n";
}

std::optional<v1::BatchProgress> GetBatch(v1::JobService::Stub& stub, const std::string& batch_id) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::GetBatchRequest req;
  req.set_batch_id(batch_id);
  v1::BatchProgress out;
  if (!stub.GetBatch(&ctx, req, &out).ok()) return std::nullopt;
  return out;
}

double GetBatchCost(rt::E2eStack& stack, const std::string& batch_id, int calls) {
  auto stub = stack.JobStub();
  // Background commands (dispatch rounds, heartbeats) go on meanwhile: take the idle rate over
  // the same time out.
  auto idle_start = TotalCommands(CommandStats(stack.redis()));
  const auto t0 = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const auto idle_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const auto idle = static_cast<double>(TotalCommands(CommandStats(stack.redis())) - idle_start);
  const auto before = TotalCommands(CommandStats(stack.redis()));
  const auto t1 = std::chrono::steady_clock::now();
  for (int i = 0; i < calls; ++i) GetBatch(*stub, batch_id);
  const auto busy_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  const auto used = static_cast<double>(TotalCommands(CommandStats(stack.redis())) - before);
  return std::max(0.0, (used - idle * busy_s / idle_s) / calls);
}

std::vector<v1::JobSpec> Specs(int count, const std::string& model, const std::string& batch_id,
                               const std::string& prefix) {
  std::vector<v1::JobSpec> specs;
  specs.reserve(count);
  for (int i = 0; i < count; ++i) {
    auto spec = rt::MakeSpec(prefix + " " + std::to_string(i), model, 5);
    spec.set_batch_id(batch_id);
    specs.push_back(std::move(spec));
  }
  return specs;
}

bool BullmqAvailable() {
  return std::filesystem::exists(rt::SourcePath("tools/node_modules/bullmq"));
}

nlohmann::json RunNodePeer(const std::string& script, const std::vector<std::string>& args,
                           const std::map<std::string, std::string>& env,
                           const std::filesystem::path& log, std::chrono::seconds timeout) {
  if (!BullmqAvailable()) {
    throw std::runtime_error("tools/node_modules/bullmq missing: run `npm --prefix tools ci`");
  }
  std::vector<std::string> argv = {"node", rt::SourcePath(script).string()};
  argv.insert(argv.end(), args.begin(), args.end());
  auto node = rt::ChildProcess::Start(argv, env, log);
  auto rc = node.Wait(timeout);
  const std::string out = rt::ReadFile(log);
  if (!rc || *rc != 0) throw std::runtime_error(script + " failed:\n" + out);
  auto start = out.rfind("\n{");
  start = start == std::string::npos ? (out.starts_with("{") ? 0 : start) : start + 1;
  if (start == std::string::npos) throw std::runtime_error(script + ": no result\n" + out);
  return nlohmann::json::parse(out.substr(start, out.find('\n', start) - start));
}

void KeyValues::Add(const std::string& key, double value, int decimals) {
  std::ostringstream s;
  s.precision(decimals);
  s << std::fixed << value;
  Add(key, s.str());
}

std::string KeyValues::Line() const {
  std::string out;
  for (const auto& [k, v] : pairs_) out += (out.empty() ? "" : " ") + k + "=" + v;
  return out;
}

}  // namespace reelq::bench
