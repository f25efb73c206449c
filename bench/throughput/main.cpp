// bench-throughput: N no-op jobs (default 20000) through reelq end to end and, in the same
// invocation, the same N no-op jobs through BullMQ (one Worker) against its own redis-server.
//
//   --mode full   (default) one gRPC SubmitBatch stream into one scheduler, Redis, ONE worker,
//                 the provider simulator at zero latency, the filesystem store.
//   --mode queue  the queue machinery alone: the same, but the worker's provider is the
//                 in-process noop provider (providers/noop_provider.h) and its store the null
//                 store (storage.backend: null): leases, fencing, history, events all on.
//
// For each queue: jobs/s from the first submitted job to the last one finished; Redis commands
// per job from INFO commandstats (reset with CONFIG RESETSTAT first; it counts the commands run
// inside Lua scripts too); CPU per 1,000 jobs of every process over the same window, from
// /proc/<pid>/stat (reelq: its redis-server, scheduler, worker, simulator; BullMQ: its
// redis-server through INFO cpu, which is the same getrusage, and its node process). Completion
// is seen through gRPC GetBatch; the commands of those polls are measured afterwards and taken
// out. Prints both, the ratios, and as its last line the figures as key=value pairs.
//
// usage: bench-throughput [--mode full|queue] [--jobs N] [--bullmq-concurrency C] [--no-bullmq]
//                         [--profile] [--scripts] [--instructions] [--perf FILE]
//   --instructions  both queues' redis-servers run under callgrind (Debian `valgrind`), and the
//                instructions each executes per job are counted: unlike CPU time, a count does
//                not move with the machine's load, so the Redis cost ratio is repeatable. Each
//                queue first runs 200 jobs unmeasured (scripts loaded, caches warm). Slow (Redis
//                runs ~50x slower): use --jobs 2000.
//   --scripts    afterwards, a second reelq run of min(N, 10000) jobs with SLOWLOG recording every
//                command: Redis time per job by script, and the part of Redis's CPU spent
//                outside any command (reading, parsing and answering requests, the AOF).
//   --profile    afterwards, a second reelq run of min(N, 2000) jobs under MONITOR, attributing
//                every command run inside a script to its script (commands per job per script).
//   --perf FILE  `perf record` the reelq processes (redis-server, scheduler, worker, sim) over
//                the measured run into FILE (`perf report -i FILE --sort comm,dso,sym`).
// Needs the reelq binaries built, redis-server, node + tools/node_modules/bullmq
// (`npm --prefix tools ci`, done by scripts/install-deps.sh).
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "bench_util.h"
#include "e2e_util.h"
#include "process.h"
#include "redis_server.h"
#include "stack.h"

namespace rt = reelq::testing;
namespace rb = reelq::bench;
namespace v1 = reelq::v1;
using Clock = std::chrono::steady_clock;

namespace {

struct Args {
  std::string mode = "full";
  int jobs = 20000;
  int bullmq_concurrency = 50;
  bool bullmq = true;
  bool profile = false;
  bool scripts = false;
  bool instructions = false;
  std::string perf_file;
};

struct Figures {
  double seconds = 0;
  double jobs_per_s = 0;
  double cmds_per_job = 0;
  int succeeded = 0;
  // CPU milliseconds per 1,000 jobs, by process ("redis", "scheduler", "worker", "sim", "node").
  std::map<std::string, double> cpu_per_1k;
  int sim_creates = 0;  // create calls the simulator saw (0 in --mode queue)
  // TCP connections the simulator accepted in the window, per job: how well the worker's HTTP
  // client reuses its connections (each new one is a handshake, TLS with a real provider).
  double sim_connections_per_job = 0;
  double redis_kinstr_per_job = 0;  // --instructions: thousands of instructions Redis executed
};

// --instructions: every redis-server the bench starts runs under callgrind, through a wrapper
// named by REELQ_REDIS_SERVER (tests/support/redis_server.cpp), dumping into `dir`.
class Callgrind {
 public:
  void Enable(const std::filesystem::path& dir) {
    dir_ = dir;
    const auto wrapper = dir / "redis-under-callgrind";
    std::ofstream(wrapper) << "#!/bin/sh\nexec valgrind --tool=callgrind --callgrind-out-file="
                           << (dir / "cg.%p").string() << " redis-server \"$@\"\n";
    std::filesystem::permissions(wrapper, std::filesystem::perms::owner_all);
    setenv("REELQ_REDIS_SERVER", wrapper.c_str(), 1);
  }
  bool on() const { return !dir_.empty(); }
  void Zero(pid_t pid) const { Control("-z", pid); }
  // Instructions `pid` executed since Zero: the `totals:` line of the dump this writes.
  int64_t Dump(pid_t pid) const {
    Control("-d", pid);
    return NewestTotal(pid);
  }
  int64_t NewestTotal(pid_t pid) const {
    std::filesystem::path newest;
    std::filesystem::file_time_type newest_at{};
    const std::string prefix = "cg." + std::to_string(pid) + ".";
    for (const auto& e : std::filesystem::directory_iterator(dir_)) {
      if (!e.path().filename().string().starts_with(prefix)) continue;
      if (newest.empty() || e.last_write_time() > newest_at) {
        newest = e.path();
        newest_at = e.last_write_time();
      }
    }
    std::ifstream in(newest);
    std::string line;
    while (std::getline(in, line)) {
      if (line.starts_with("totals:")) return std::stoll(line.substr(7));
    }
    throw std::runtime_error("callgrind: no totals in a dump of pid " + std::to_string(pid));
  }

 private:
  static void Control(const char* what, pid_t pid) {
    const std::string cmd =
        std::string("callgrind_control ") + what + " " + std::to_string(pid) + " >/dev/null 2>&1";
    if (std::system(cmd.c_str()) != 0) throw std::runtime_error("failed: " + cmd);
  }
  std::filesystem::path dir_;
};
Callgrind callgrind;

rt::E2eStackOptions StackOptions(const std::string& mode) {
  rt::E2eStackOptions o;
  o.schedulers = 1;
  o.workers = 1;
  o.latency_scale = 0;  // no-op jobs: the sim answers at once
  o.lease_seconds = 10;
  o.heartbeat_seconds = 1;
  // At zero latency the first poll already finds the task done; a long minimum interval would
  // be the whole job time.
  o.min_poll_interval_ms = 1;
  o.max_in_flight = 256;
  // The bench measures the queue, not account limits.
  o.account_rpm = 100'000'000;
  o.account_max_concurrent = 100'000;
  o.log_level = "warn";
  if (mode == "queue") rb::UseNoopProvider(o);
  return o;
}

std::string ModelFor(const std::string& mode) {
  return mode == "queue" ? rb::kNoopModel : "kling-3.0";
}

// Raises the simulator's hidden per-key limits (6000 creates/min) so they do not cap the run.
void OpenSimLimits(rt::E2eStack& stack) {
  nlohmann::json keys = nlohmann::json::array();
  for (const char* k : {"sim-kling-ak-a", "sim-kling-ak-b"}) {
    keys.push_back({{"access_key", k}, {"rpm", 10'000'000}, {"max_concurrent", 100'000}});
  }
  stack.SimConfigure({{"providers", {{"kling", {{"keys", keys}}}}}});
}

// `perf record` of the given processes until Stop (SIGINT, as perf expects).
class PerfRecord {
 public:
  PerfRecord(const std::string& file, const std::vector<pid_t>& pids,
             const std::filesystem::path& log) {
    if (file.empty()) return;
    std::string list;
    for (pid_t p : pids) list += (list.empty() ? "" : ",") + std::to_string(p);
    process_ = rt::ChildProcess::Start(
        {"perf", "record", "-F", "999", "-g", "-o", file, "-p", list}, {}, log);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  ~PerfRecord() { Stop(); }
  void Stop() {
    if (process_.pid() <= 0 || !process_.running()) return;
    process_.Signal(SIGINT);
    process_.Wait(std::chrono::seconds(60));
  }

 private:
  rt::ChildProcess process_;
};

// One run of `jobs` no-op jobs through `stack`: SubmitBatch on a thread, completion seen by
// GetBatch every 50 ms; the Redis commands of those polls are measured after the run (the batch
// is then finished and nothing else moves) and taken out.
Figures RunReelq(rt::E2eStack& stack, const std::string& mode, int jobs,
                 const std::string& batch_id, std::chrono::seconds timeout,
                 const std::string& perf_file = "") {
  const auto specs = rb::Specs(jobs, ModelFor(mode), batch_id, "noop");
  auto stub = stack.JobStub();
  rb::CpuWindow cpu({{"redis", stack.redis().pid()},
                     {"scheduler", stack.scheduler(0).pid()},
                     {"worker", stack.worker(0).pid()},
                     {"sim", stack.sim_pid()}});
  PerfRecord perf(perf_file, {stack.redis().pid(), stack.scheduler(0).pid(), stack.worker(0).pid()},
                  stack.log_dir() / "perf.log");
  stack.redis().ResetStats();
  const auto connections_before = stack.SimStats().value("connections_accepted", int64_t{0});
  grpc::Status status;
  v1::SubmitBatchResponse response;
  std::atomic<bool> submitted{false};
  if (callgrind.on()) callgrind.Zero(stack.redis().pid());
  cpu.Start();
  const auto t0 = Clock::now();
  std::thread submitter([&] {
    response = rt::SubmitBatch(*stub, specs, &status, timeout);
    submitted = true;
  });
  int64_t polls = 0;
  Figures f;
  uint32_t terminal = 0;
  const auto deadline = t0 + timeout;
  while (Clock::now() < deadline) {
    auto progress = rb::GetBatch(*stub, batch_id);
    ++polls;
    if (progress) {
      terminal = rb::Terminal(*progress);
      f.succeeded = static_cast<int>(progress->succeeded());
    }
    if (terminal >= static_cast<uint32_t>(jobs)) break;
    if (submitted && !status.ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const auto t1 = Clock::now();
  cpu.Stop();
  const int64_t instructions = callgrind.on() ? callgrind.Dump(stack.redis().pid()) : 0;
  perf.Stop();
  submitter.join();
  auto stats = rb::CommandStats(stack.redis());
  if (!status.ok()) {
    throw std::runtime_error("SubmitBatch failed: " + status.error_message() + "\n" + stack.Logs());
  }
  if (response.accepted() != static_cast<uint32_t>(jobs)) {
    throw std::runtime_error("SubmitBatch accepted " + std::to_string(response.accepted()) +
                             " of " + std::to_string(jobs));
  }
  if (terminal < static_cast<uint32_t>(jobs)) {
    throw std::runtime_error("only " + std::to_string(terminal) + " of " + std::to_string(jobs) +
                             " jobs finished in time\n" + stack.Logs());
  }
  const double poll_cost = rb::GetBatchCost(stack, batch_id);
  if (callgrind.on()) {
    // The bench's own GetBatch polls are taken out as their commands are.
    constexpr int kPolls = 20;
    callgrind.Zero(stack.redis().pid());
    for (int i = 0; i < kPolls; ++i) rb::GetBatch(*stub, batch_id);
    const double per_poll = static_cast<double>(callgrind.Dump(stack.redis().pid())) / kPolls;
    f.redis_kinstr_per_job =
        (static_cast<double>(instructions) - per_poll * static_cast<double>(polls)) / 1000.0 / jobs;
    std::printf("reelq: %.1f thousand Redis instructions per job (%lld polls at %.0f each out)\n",
                f.redis_kinstr_per_job, static_cast<long long>(polls), per_poll);
  }
  f.seconds = std::chrono::duration<double>(t1 - t0).count();
  f.jobs_per_s = jobs / f.seconds;
  f.cmds_per_job =
      (static_cast<double>(rb::TotalCommands(stats)) - poll_cost * static_cast<double>(polls)) /
      jobs;
  for (const char* p : {"redis", "scheduler", "worker", "sim"}) {
    f.cpu_per_1k[p] = cpu.Ms(p) * 1000.0 / jobs;
  }
  int sim_creates = 0;
  const nlohmann::json sim_stats = stack.SimStats();
  for (const auto& provider : sim_stats.at("providers"))
    sim_creates += provider.value("creates", 0);
  f.sim_creates = sim_creates;
  f.sim_connections_per_job =
      static_cast<double>(sim_stats.value("connections_accepted", int64_t{0}) -
                          connections_before) /
      jobs;
  std::printf("reelq: %lld GetBatch polls at %.2f commands each taken out\n",
              static_cast<long long>(polls), poll_cost);
  std::cout << "reelq commands per job by command (polls included): "
            << rb::TopCommands(stats, jobs) << "\n";
  return f;
}

Figures RunBullmq(int jobs, int concurrency, const std::filesystem::path& log_dir) {
  // Its own server, persisted the same way as reelq's (AOF, fsync every second).
  rt::RedisServerOptions ro;
  ro.appendonly = true;
  ro.appendfsync = "everysec";
  rt::RedisServer redis(ro);
  redis.ResetStats();
  // The script counts commands and the server's CPU between its own INFO calls (the queue's
  // setup excluded, its worker included).
  std::map<std::string, std::string> env{
      {"REELQ_BENCH_BULLMQ_CONCURRENCY", std::to_string(concurrency)}};
  // bullmq_noop.js brackets its measured window with callgrind_control itself.
  if (callgrind.on()) env["REELQ_BENCH_CALLGRIND_PID"] = std::to_string(redis.pid());
  auto j = rb::RunNodePeer("bench/throughput/bullmq_noop.js",
                           {std::to_string(redis.port()), std::to_string(jobs)}, env,
                           log_dir / "bullmq.log", std::chrono::minutes(30));
  Figures f;
  f.seconds = j.at("seconds").get<double>();
  f.jobs_per_s = j.at("jobs_per_s").get<double>();
  f.cmds_per_job = j.at("cmds_per_job").get<double>();
  f.cpu_per_1k["redis"] = j.at("redis_cpu_ms").get<double>() * 1000.0 / jobs;
  f.cpu_per_1k["node"] = j.at("node_cpu_ms").get<double>() * 1000.0 / jobs;
  f.succeeded = jobs;
  if (callgrind.on()) {
    f.redis_kinstr_per_job =
        static_cast<double>(callgrind.NewestTotal(redis.pid())) / 1000.0 / jobs;
    std::printf("bullmq: %.1f thousand Redis instructions per job\n", f.redis_kinstr_per_job);
  }
  std::cout << "bullmq commands per job by command: "
            << rb::TopCommands(rb::CommandStats(redis), jobs) << "\n";
  return f;
}

// --- --profile: commands per job per script, from MONITOR -------------------------------------

// A raw MONITOR connection read on a thread into a file (MONITOR is refused by the project's
// client, and the sync client cannot stream).
class Monitor {
 public:
  Monitor(int port, std::filesystem::path file) : file_(std::move(file)) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      throw std::runtime_error("monitor: connect failed");
    }
    const std::string cmd = "MONITOR\r\n";
    if (write(fd_, cmd.data(), cmd.size()) != static_cast<ssize_t>(cmd.size())) {
      throw std::runtime_error("monitor: write failed");
    }
    thread_ = std::thread([this] {
      FILE* out = std::fopen(file_.c_str(), "w");
      char buf[1 << 16];
      ssize_t n;
      while ((n = read(fd_, buf, sizeof buf)) > 0) std::fwrite(buf, 1, n, out);
      std::fclose(out);
    });
    // The +OK that starts the stream.
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ~Monitor() { Stop(); }
  void Stop() {
    if (fd_ < 0) return;
    shutdown(fd_, SHUT_RDWR);
    thread_.join();
    close(fd_);
    fd_ = -1;
  }

 private:
  std::filesystem::path file_;
  int fd_ = -1;
  std::thread thread_;
};

// MONITOR lines: `+<time> [<db> <client>] "cmd" "arg"...`; commands run by a script carry
// `[<db> lua]`. Redis 7.0 feeds FCALL to MONITOR before the commands it runs (checked by hand
// with redis-cli monitor), so each inner command belongs to the last FCALL seen. Prints per
// script: calls/job, inner commands/job, total/job and the inner commands by name.
void PrintProfile(const std::filesystem::path& file, int jobs) {
  std::ifstream in(file);
  std::string line;
  struct Per {
    int64_t calls = 0, inner = 0;
    std::map<std::string, int64_t> by_cmd;
  };
  std::map<std::string, Per> per_script;
  std::map<std::string, int64_t> plain;  // commands sent directly (not in scripts)
  Per* current = nullptr;
  // The i-th quoted word after position `from` (no escaped quotes in the words we read).
  auto word = [](const std::string& l, size_t from, int i) {
    size_t q = from;
    for (int k = 0; k <= i; ++k) {
      q = l.find('"', q);
      if (q == std::string::npos) return std::string();
      auto e = l.find('"', q + 1);
      if (e == std::string::npos) return std::string();
      if (k == i) return l.substr(q + 1, e - q - 1);
      q = e + 1;
    }
    return std::string();
  };
  while (std::getline(in, line)) {
    auto br = line.find(']');
    if (line.empty() || line[0] != '+' || br == std::string::npos) continue;
    const bool lua = line.compare(br - 3, 3, "lua") == 0;
    std::string cmd = word(line, br, 0);
    std::transform(cmd.begin(), cmd.end(), cmd.begin(), ::tolower);
    if (lua) {
      if (current) {
        ++current->inner;
        ++current->by_cmd[cmd];
      }
      continue;
    }
    if (cmd == "fcall") {
      current = &per_script[rb::ScriptOfFunction(word(line, br, 1))];
      ++current->calls;
    } else if (cmd == "eval" || cmd == "evalsha") {
      current = &per_script[cmd];
      ++current->calls;
    } else if (!cmd.empty()) {
      current = nullptr;
      ++plain[cmd];
    }
  }
  std::printf("profile (%d jobs, MONITOR): per job, by script: calls, commands inside, total\n",
              jobs);
  double total = 0;
  for (const auto& [name, p] : per_script) {
    const double t = static_cast<double>(p.calls + p.inner) / jobs;
    total += t;
    std::ostringstream detail;
    detail.precision(2);
    detail << std::fixed;
    for (const auto& [c, n] : p.by_cmd) detail << " " << c << "=" << static_cast<double>(n) / jobs;
    std::printf("  %-13s %6.2f calls %6.2f inside %6.2f total |%s\n", name.c_str(),
                static_cast<double>(p.calls) / jobs, static_cast<double>(p.inner) / jobs, t,
                detail.str().c_str());
  }
  for (const auto& [c, n] : plain) {
    total += static_cast<double>(n) / jobs;
    std::printf("  %-13s %6.2f direct\n", c.c_str(), static_cast<double>(n) / jobs);
  }
  std::printf("  total         %6.2f per job (the bench's own GetBatch polls and INFO included)\n",
              total);
}

// --- --scripts: Redis time per job by script, from SLOWLOG -------------------------------------

// Redis's SLOWLOG with a threshold of 0 records every command a client sent (a script's inner
// commands are part of its FCALL's time, not entries of their own) with the microseconds it
// took to execute. Summed per script and set against the server's CPU over the same run, it
// splits Redis's cost into the scripts and what no command accounts for: reading and parsing
// requests, writing replies, the AOF, the event loop.
void RunScriptsProfile(rt::E2eStack& stack, const std::string& mode, int jobs,
                       std::chrono::seconds timeout) {
  auto& redis = stack.redis();
  redis.Run({"CONFIG", "SET", "slowlog-max-len", "2000000"});
  redis.Run({"SLOWLOG", "RESET"});
  redis.Run({"CONFIG", "SET", "slowlog-log-slower-than", "0"});
  const auto cpu_before = rb::CpuMs(redis.pid());
  const Figures f = RunReelq(stack, mode, jobs, "scripts", timeout);
  const auto cpu_ms = rb::CpuMs(redis.pid()) - cpu_before;
  redis.Run({"CONFIG", "SET", "slowlog-log-slower-than", "-1"});
  const auto log = redis.Run({"SLOWLOG", "GET", "-1"});
  redis.Run({"SLOWLOG", "RESET"});
  struct Per {
    int64_t calls = 0, usec = 0;
  };
  std::map<std::string, Per> per;
  int64_t total_usec = 0;
  for (const auto& entry : log.elements) {
    // id, timestamp, microseconds, arguments, client address, client name
    if (entry.elements.size() < 4 || entry.elements[3].elements.empty()) continue;
    // A command a script ran is logged too, from the scripts' client ("?:0"), and its time is
    // part of its script's: count it apart.
    const bool inner = entry.elements.size() > 4 && entry.elements[4].str == "?:0";
    const auto& argv = entry.elements[3].elements;
    std::string cmd = argv[0].str;
    std::transform(cmd.begin(), cmd.end(), cmd.begin(), ::tolower);
    if (cmd == "slowlog" || cmd == "config") continue;
    std::string name = inner ? "  (in scripts) " + cmd : cmd;
    if (cmd == "fcall" && argv.size() > 1) name = rb::ScriptOfFunction(argv[1].str) + ".lua";
    auto& p = per[name];
    ++p.calls;
    p.usec += entry.elements[2].integer;
    if (!inner) total_usec += entry.elements[2].integer;
  }
  // What clients sent first, then what the scripts ran inside; each by time, largest first.
  std::vector<std::tuple<bool, int64_t, std::string>> order;
  for (const auto& [name, p] : per) order.emplace_back(name.starts_with(" "), -p.usec, name);
  std::sort(order.begin(), order.end());
  std::printf(
      "scripts (%d jobs, %.0f jobs/s, SLOWLOG of %zu commands): Redis CPU %.1f us per job, of "
      "which "
      "commands %.1f us, outside commands %.1f us\n",
      jobs, f.jobs_per_s, log.elements.size(), cpu_ms * 1000.0 / jobs,
      static_cast<double>(total_usec) / jobs,
      cpu_ms * 1000.0 / jobs - static_cast<double>(total_usec) / jobs);
  std::printf("  %-26s %10s %12s %12s %10s\n", "command", "calls/job", "us/call", "us/job",
              "jobs/call");
  for (const auto& [inner, usec, name] : order) {
    const auto& p = per[name];
    const double calls_per_job = static_cast<double>(p.calls) / jobs;
    std::printf("  %-26s %10.3f %12.1f %12.2f %10.1f\n", name.c_str(), calls_per_job,
                static_cast<double>(p.usec) / static_cast<double>(p.calls),
                static_cast<double>(p.usec) / jobs, calls_per_job > 0 ? 1.0 / calls_per_job : 0.0);
  }
}

Args Parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string s = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error(s + " needs a value");
      return argv[++i];
    };
    if (s == "--mode") {
      a.mode = next();
    } else if (s == "--jobs") {
      a.jobs = rb::IntFlag(s, next());
    } else if (s == "--bullmq-concurrency") {
      a.bullmq_concurrency = rb::IntFlag(s, next());
    } else if (s == "--no-bullmq") {
      a.bullmq = false;
    } else if (s == "--profile") {
      a.profile = true;
    } else if (s == "--instructions") {
      a.instructions = true;
    } else if (s == "--scripts") {
      a.scripts = true;
    } else if (s == "--perf") {
      a.perf_file = next();
    } else {
      std::cerr
          << "usage: bench-throughput [--mode full|queue] [--jobs N] "
             "[--bullmq-concurrency C] [--no-bullmq] [--profile] [--scripts] [--instructions] "
             "[--perf FILE]\n";
      std::exit(s == "--help" ? 0 : 2);
    }
  }
  if (a.mode != "full" && a.mode != "queue") {
    throw std::runtime_error("--mode must be full or queue, not '" + a.mode + "'");
  }
  if (a.jobs <= 0) throw std::runtime_error("--jobs must be positive");
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    // Run by hand from anywhere: the binaries and sources this build was configured with.
    setenv("REELQ_BUILD_DIR", REELQ_BENCH_BUILD_DIR, 0);
    setenv("REELQ_SOURCE_DIR", REELQ_BENCH_SOURCE_DIR, 0);
    const Args args = Parse(argc, argv);
    const auto timeout = std::chrono::seconds(600 + args.jobs / 10);
    std::printf("mode %s, %d jobs, load average before: %s\n", args.mode.c_str(), args.jobs,
                rb::LoadAverage().c_str());

    Figures reelq_f;
    rt::TempDir log_dir;
    if (args.instructions) callgrind.Enable(log_dir.path());
    {
      auto options = StackOptions(args.mode);
      if (args.instructions) {
        // Redis runs ~50x slower under callgrind: a submit chunk's call takes seconds.
        options.redis_section_extra = [](rt::RedisServer&) {
          return std::string("  command_timeout_ms: 120000\n");
        };
      }
      rt::E2eStack stack(options);
      if (args.mode == "full") OpenSimLimits(stack);
      if (args.instructions) RunReelq(stack, args.mode, 200, "warm-up", timeout);
      reelq_f = RunReelq(stack, args.mode, args.jobs, "bench", timeout, args.perf_file);
      std::printf(
          "reelq:  %d jobs in %.2f s = %.0f jobs/s, %.2f redis commands/job (%d succeeded)\n",
          args.jobs, reelq_f.seconds, reelq_f.jobs_per_s, reelq_f.cmds_per_job, reelq_f.succeeded);
      std::printf(
          "reelq CPU ms per 1,000 jobs: redis-server %.0f, scheduler %.0f, worker %.0f, sim %.0f\n",
          reelq_f.cpu_per_1k["redis"], reelq_f.cpu_per_1k["scheduler"],
          reelq_f.cpu_per_1k["worker"], reelq_f.cpu_per_1k["sim"]);
      if (args.mode == "full") {
        std::printf("reelq: the simulator accepted %.3f TCP connections per job\n",
                    reelq_f.sim_connections_per_job);
      }
      std::fflush(stdout);
      if (args.profile) {
        const int n = std::min(args.jobs, 2000);
        const auto file = log_dir.path() / "monitor.txt";
        {
          Monitor monitor(stack.redis().port(), file);
          RunReelq(stack, args.mode, n, "profile", timeout);
          monitor.Stop();
        }
        PrintProfile(file, n);
      }
      if (args.scripts) RunScriptsProfile(stack, args.mode, std::min(args.jobs, 10000), timeout);
    }
    Figures bull_f;
    if (args.bullmq) {
      bull_f = RunBullmq(args.jobs, args.bullmq_concurrency, log_dir.path());
      std::printf(
          "bullmq: %d jobs in %.2f s = %.0f jobs/s, %.2f redis commands/job (concurrency %d)\n",
          args.jobs, bull_f.seconds, bull_f.jobs_per_s, bull_f.cmds_per_job,
          args.bullmq_concurrency);
      std::printf("bullmq CPU ms per 1,000 jobs: redis-server %.0f, node %.0f\n",
                  bull_f.cpu_per_1k["redis"], bull_f.cpu_per_1k["node"]);
      std::printf(
          "ratios: reelq/bullmq jobs/s %.3f (goal >= 2), commands/job %.3f, redis CPU %.3f "
          "(goal <= 0.5)\n",
          reelq_f.jobs_per_s / bull_f.jobs_per_s, reelq_f.cmds_per_job / bull_f.cmds_per_job,
          reelq_f.cpu_per_1k["redis"] / bull_f.cpu_per_1k["redis"]);
    }
    std::printf("load average after: %s\n", rb::LoadAverage().c_str());
    rb::KeyValues kv;
    kv.Add("mode", args.mode);
    kv.Add("jobs", args.jobs);
    kv.Add("reelq_jobs_per_s", reelq_f.jobs_per_s);
    kv.Add("reelq_cmds_per_job", reelq_f.cmds_per_job, 2);
    kv.Add("reelq_succeeded", reelq_f.succeeded);
    kv.Add("reelq_redis_cpu_ms_per_1k", reelq_f.cpu_per_1k["redis"]);
    kv.Add("worker_cpu_ms_per_1k", reelq_f.cpu_per_1k["worker"]);
    kv.Add("scheduler_cpu_ms_per_1k", reelq_f.cpu_per_1k["scheduler"]);
    kv.Add("sim_cpu_ms_per_1k", reelq_f.cpu_per_1k["sim"]);
    kv.Add("sim_creates", reelq_f.sim_creates);
    kv.Add("sim_connections_per_job", reelq_f.sim_connections_per_job, 3);
    if (args.bullmq) {
      kv.Add("bullmq_jobs_per_s", bull_f.jobs_per_s);
      kv.Add("bullmq_cmds_per_job", bull_f.cmds_per_job, 2);
      kv.Add("bullmq_redis_cpu_ms_per_1k", bull_f.cpu_per_1k["redis"]);
      kv.Add("bullmq_node_cpu_ms_per_1k", bull_f.cpu_per_1k["node"]);
      kv.Add("jobs_per_s_ratio", reelq_f.jobs_per_s / bull_f.jobs_per_s, 3);
      kv.Add("cmds_per_job_ratio", reelq_f.cmds_per_job / bull_f.cmds_per_job, 3);
      kv.Add("redis_cpu_ratio", reelq_f.cpu_per_1k["redis"] / bull_f.cpu_per_1k["redis"], 3);
    }
    if (args.instructions) {
      kv.Add("reelq_redis_kinstr_per_job", reelq_f.redis_kinstr_per_job);
      if (args.bullmq) {
        kv.Add("bullmq_redis_kinstr_per_job", bull_f.redis_kinstr_per_job);
        kv.Add("redis_instr_ratio", reelq_f.redis_kinstr_per_job / bull_f.redis_kinstr_per_job, 3);
      }
    }
    std::printf("%s\n", kv.Line().c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::cerr << "bench-throughput: " << e.what() << "\n";
    return 1;
  }
}
