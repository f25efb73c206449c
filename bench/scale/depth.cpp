// --depth: the processing rate with a deep queue over the rate with a shallow one.
//
// Two stacks live side by side, the deep one (the --enqueue queue) and a fresh shallow one, and
// their windows alternate: a deep window, then --shallow-per-round shallow windows, --depth-rounds
// times. Only one stack has a running worker at a time, so the machine's load (shared with other
// sessions) falls on both sides alike, and each figure is a median. After each deep window the
// deep queue is topped up by what the window finished, so every deep window starts at --queued.
// Per window the bench also prints the CPU per 1,000 jobs of redis-server, the scheduler and the
// worker (their threads' run time from /proc/<pid>/task/*/schedstat, nanoseconds), the Redis
// time per job of the costliest commands (INFO commandstats), redis-server's page faults per job,
// and the AOF rewrites (ended in the window, running at its polls, the reaped child's CPU): CPU
// per job is much steadier than jobs/s on a shared machine, and it says which process pays for
// the depth.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "depth.h"
#include "e2e_util.h"
#include "process.h"

namespace reelq::bench::scale {

namespace rt = reelq::testing;
using Clock = std::chrono::steady_clock;

namespace {

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// Run time of every thread of `pid` so far, in milliseconds (schedstat's first field is
// nanoseconds on a CPU: far finer than /proc/<pid>/stat's 10 ms ticks, which a 0.2 s shallow
// window needs).
double ThreadsCpuMs(pid_t pid) {
  namespace fs = std::filesystem;
  double ns = 0;
  std::error_code ec;
  for (const auto& task : fs::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    std::ifstream in(task.path() / "schedstat");
    double run = 0;
    if (in >> run) ns += run;
  }
  return ns / 1e6;
}

// Field `n` (proc(5) numbering) of /proc/<pid>/stat.
double StatField(pid_t pid, int n) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto close = text.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream fields(text.substr(close + 2));
  std::string field;
  for (int i = 3; i <= n && fields >> field; ++i) {
    if (i == n) return std::stod(field);
  }
  return 0;
}

// CPU of the reaped children of `pid` (Redis's AOF rewrite child), ms: cutime + cstime.
double ChildrenCpuMs(pid_t pid) {
  return (StatField(pid, 16) + StatField(pid, 17)) * 1000.0 /
         static_cast<double>(sysconf(_SC_CLK_TCK));
}

int64_t InfoInt(rt::RedisServer& redis, std::string_view field) {
  auto v = redis.InfoField(field, "persistence");
  return v ? std::stoll(*v) : 0;
}

// INFO commandstats -> microseconds per command.
std::map<std::string, double> CommandUsec(rt::RedisServer& redis) {
  std::map<std::string, double> out;
  std::istringstream in(redis.Info("commandstats"));
  std::string line;
  while (std::getline(in, line)) {
    if (!line.starts_with("cmdstat_")) continue;
    const auto colon = line.find(':');
    const auto usec = line.find(",usec=");
    if (colon == std::string::npos || usec == std::string::npos) continue;
    out[line.substr(8, colon - 8)] = std::atof(line.c_str() + usec + 6);
  }
  return out;
}

constexpr std::array<const char*, 3> kProcesses = {"redis-server", "scheduler", "worker"};

struct Sample {
  Clock::time_point at;
  uint32_t done = 0;
  std::array<double, 3> cpu_ms{};
  double rewrite_child_ms = 0;
  double minor_faults = 0;  // redis-server's
  double kernel_ms = 0;     // redis-server's system time (all threads), 10 ms ticks
  bool rewriting = false;
  int64_t aof_rewrites = 0;
  std::map<std::string, double> usec;
};

Sample TakeSample(rt::E2eStack& stack, uint32_t done) {
  Sample s;
  s.at = Clock::now();
  s.done = done;
  const std::array<pid_t, 3> pids = {stack.redis().pid(), stack.scheduler(0).pid(),
                                     stack.worker(0).pid()};
  for (size_t i = 0; i < pids.size(); ++i) s.cpu_ms[i] = ThreadsCpuMs(pids[i]);
  s.rewrite_child_ms = ChildrenCpuMs(pids[0]);
  s.minor_faults = StatField(pids[0], 10);
  s.kernel_ms = StatField(pids[0], 15) * 1000.0 / static_cast<double>(sysconf(_SC_CLK_TCK));
  s.rewriting = stack.redis().InfoField("aof_rewrite_in_progress", "persistence") == "1";
  s.aof_rewrites = InfoInt(stack.redis(), "aof_rewrites");
  s.usec = CommandUsec(stack.redis());
  return s;
}

struct Window {
  double jobs_per_s = 0;
  std::array<double, 3> cpu_ms_per_1k{};
  std::string top_usec;      // "evalsha 120.3, zrem 4.1, ..." µs per job
  int64_t aof_rewrites = 0;  // AOF rewrites begun and finished in the window
  double rewrite_child_ms_per_1k = 0;
  double faults_per_job = 0;    // redis-server's minor page faults
  double kernel_ms_per_1k = 0;  // redis-server's system time
  double rewriting_share = 0;   // of the window's polls, those that saw an AOF rewrite running
};

// One stack's queue for the depth windows, held at `queued` PENDING jobs while a window runs.
// The scheduler dispatches up to the noop account's `pool` slots ahead of the worker, so a queue
// that is only drained does not measure what its depth costs: in a 1,000-job shallow queue
// drained from 900 to 100 left, about half of the jobs a window finished had been dispatched
// before it began (2026-12-06: dispatch.lua read 0.50 records per finished job in the shallow
// windows and 1.02 in the deep ones), so the shallow side left out half its dispatch cost. Fed,
// both sides run in a steady state: each job a window finishes was submitted and dispatched by
// the same stack at the same depth, and both pay their submits.
class Backlog {
 public:
  // `first`: a batch already queued on `stack` (the --enqueue one), or empty; `feed`: the batch
  // the feed adds to (one batch id for every top-up, so a poll is two GetBatch calls).
  Backlog(rt::E2eStack& stack, std::string first, uint32_t first_jobs, std::string feed,
          uint32_t queued, uint32_t pool)
      : stack_(stack),
        stub_(stack.JobStub()),
        feed_(std::move(feed)),
        target_(queued + pool),
        submitted_(first_jobs) {
    if (!first.empty()) batches_.push_back(std::move(first));
    batches_.push_back(feed_);
  }

  // Terminal jobs of every batch; nullopt when a GetBatch fails.
  std::optional<uint32_t> Done() {
    uint32_t done = 0;
    for (const auto& batch : batches_) {
      auto p = GetBatch(*stub_, batch);
      if (!p) {
        if (batch == feed_ && fed_ == 0) continue;  // not submitted to yet: no batch record
        return std::nullopt;
      }
      done += Terminal(*p);
    }
    return done;
  }

  // Tops the unfinished jobs up to `queued` + `pool` given `done`, in one SubmitBatch when at
  // least kMinFeed are missing (a feed per 50 ms poll carries a few hundred jobs).
  void Feed(uint32_t done) {
    const int64_t missing = static_cast<int64_t>(target_) - (submitted_ - done);
    if (missing < kMinFeed) return;
    const std::string prefix = feed_ + " " + std::to_string(fed_);
    Submit(stack_, Specs(static_cast<int>(missing), kNoopModel, feed_, prefix), 100);
    submitted_ += static_cast<uint32_t>(missing);
    fed_ += static_cast<uint32_t>(missing);
  }

  const std::vector<std::string>& batches() const { return batches_; }

 private:
  static constexpr int64_t kMinFeed = 50;
  rt::E2eStack& stack_;
  std::unique_ptr<v1::JobService::Stub> stub_;
  std::string feed_;
  std::vector<std::string> batches_;
  uint32_t target_;
  uint32_t submitted_;
  uint32_t fed_ = 0;
};

// Completions between the `from`-th and `to`-th terminal job of `backlog` (GetBatch every
// 50 ms, the CPU and commandstats sampled with each, the backlog fed after each): the window
// starts at the last poll that saw fewer than `from` (or the first poll, when that saw more) and
// ends at the first that saw `to`.
Window Measure(rt::E2eStack& stack, Backlog& backlog, uint32_t from, uint32_t to,
               std::chrono::seconds timeout) {
  const auto deadline = Clock::now() + timeout;
  std::optional<Sample> start;
  int polls = 0, rewriting = 0;
  while (Clock::now() < deadline) {
    if (auto terminal = backlog.Done()) {
      const uint32_t done = *terminal;
      Sample s = TakeSample(stack, done);
      ++polls;
      if (s.rewriting) ++rewriting;
      if (!start || done < from) {
        polls = rewriting = 0;
        start = std::move(s);
      } else if (done >= to && done > start->done && s.at > start->at) {
        const double jobs = done - start->done;
        Window w;
        w.jobs_per_s = jobs / Seconds(start->at, s.at);
        for (size_t i = 0; i < kProcesses.size(); ++i) {
          w.cpu_ms_per_1k[i] = (s.cpu_ms[i] - start->cpu_ms[i]) * 1000 / jobs;
        }
        std::vector<std::pair<double, std::string>> per_job;
        for (const auto& [name, usec] : s.usec) {
          const double d = usec - (start->usec.contains(name) ? start->usec.at(name) : 0);
          if (d > 0 && name != "info") per_job.emplace_back(d / jobs, name);
        }
        std::sort(per_job.rbegin(), per_job.rend());
        std::ostringstream top;
        top.precision(1);
        top << std::fixed;
        for (size_t i = 0; i < per_job.size() && i < 8; ++i) {
          top << (i ? ", " : "") << per_job[i].second << " " << per_job[i].first;
        }
        w.top_usec = top.str();
        w.aof_rewrites = s.aof_rewrites - start->aof_rewrites;
        w.rewrite_child_ms_per_1k = (s.rewrite_child_ms - start->rewrite_child_ms) * 1000 / jobs;
        w.faults_per_job = (s.minor_faults - start->minor_faults) / jobs;
        w.kernel_ms_per_1k = (s.kernel_ms - start->kernel_ms) * 1000 / jobs;
        w.rewriting_share = polls > 0 ? static_cast<double>(rewriting) / polls : 0;
        return w;
      }
      backlog.Feed(done);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  throw std::runtime_error("batch " + backlog.batches().front() + " (and its feed) did not reach " +
                           std::to_string(to) + " finished jobs in time\n" + stack.Logs());
}

uint32_t Done(Backlog& backlog) {
  auto done = backlog.Done();
  if (!done) throw std::runtime_error("GetBatch of " + backlog.batches().front() + " failed");
  return *done;
}

// `perf record -g` of a redis-server while a window runs, when --perf-dir is given.
class PerfRecording {
 public:
  PerfRecording(const std::string& dir, pid_t pid, const std::string& label) {
    if (dir.empty()) return;
    std::filesystem::create_directories(dir);
    perf_ = rt::ChildProcess::Start(
        {"perf", "record", "-g", "-p", std::to_string(pid), "-o", dir + "/" + label + ".data"}, {},
        dir + "/" + label + ".log");
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // attached before the window
  }
  ~PerfRecording() {
    if (perf_.pid() <= 0) return;
    perf_.Signal(SIGINT);
    if (!perf_.Wait(std::chrono::seconds(30))) perf_.Kill();
  }

 private:
  rt::ChildProcess perf_;
};

// --slowlog: every command Redis runs in a window, timed (SLOWLOG at 0 µs), summed per script
// (FCALL's function, "reelq_<hash>_<script>": queue/CMakeLists.txt) and per other command.
class SlowlogWindow {
 public:
  SlowlogWindow(bool on, rt::RedisServer& redis) : on_(on), redis_(redis) {
    if (!on_) return;
    redis_.Run({"CONFIG", "SET", "slowlog-max-len", "2000000"});
    redis_.Run({"CONFIG", "SET", "slowlog-log-slower-than", "0"});
    redis_.Run({"SLOWLOG", "RESET"});
  }
  // Per job: µs and calls of each script (and the commands it ran), the largest first, over `jobs`
  // jobs finished since the start.
  std::string Report(double jobs) {
    if (!on_) return "";
    redis_.Run({"CONFIG", "SET", "slowlog-log-slower-than", "10000"});
    auto log = redis_.Run({"SLOWLOG", "GET", "-1"});
    std::map<std::string, std::pair<double, double>> by;  // name -> calls, µs
    // A script's own commands are logged just before it (scripts run atomically), with the
    // client "?:0": they are charged to it as "<script>.lua:<command>".
    std::vector<std::string> nested;
    for (auto e = log.elements.rbegin(); e != log.elements.rend(); ++e) {
      if (e->elements.size() < 5 || e->elements[3].elements.empty()) continue;
      const auto& argv = e->elements[3].elements;
      std::string name = argv[0].str;
      for (auto& c : name) c = static_cast<char>(std::tolower(c));
      if (name == "slowlog" || name == "config" || name == "info" || name == "script") continue;
      if (name == "fcall" && argv.size() > 1) {
        name = bench::ScriptOfFunction(argv[1].str) + ".lua";
        for (const auto& inner : nested) by[name + ":" + inner].first += 1;
        nested.clear();
      } else if (e->elements[4].str == "?:0") {
        nested.push_back(name);
        name = "(in scripts) " + name;
      }
      by[name].first += 1;
      by[name].second += static_cast<double>(e->elements[2].integer);
    }
    redis_.Run({"SLOWLOG", "RESET"});
    std::vector<std::pair<double, std::string>> v;
    for (const auto& [name, cu] : by) {
      if (name.find(':') == std::string::npos) v.emplace_back(cu.second, name);
    }
    std::sort(v.rbegin(), v.rend());
    std::ostringstream out;
    out.precision(2);
    out << std::fixed;
    for (size_t i = 0; i < v.size() && i < 12; ++i) {
      const std::string& name = v[i].second;
      out << "\n    " << name << " " << v[i].first / jobs << " µs, " << by[name].first / jobs
          << " calls";
      for (const auto& [inner, cu] : by) {
        if (inner.starts_with(name + ":") && cu.first / jobs >= 0.01) {
          out << ", " << inner.substr(name.size() + 1) << " " << cu.first / jobs;
        }
      }
    }
    return out.str();
  }

 private:
  bool on_;
  rt::RedisServer& redis_;
};

void Print(const char* what, int queued, int round, const Window& w) {
  std::printf(
      "depth: %s %d queued, window %d: %.0f jobs/s; CPU ms per 1,000 jobs: redis-server %.1f, "
      "scheduler "
      "%.1f, worker %.1f (AOF rewrite child %.1f; %lld rewrites ended, one running in %.0f %% of "
      "the polls); redis-server in the kernel %.1f, page faults per job %.2f; "
      "Redis µs per job: %s\n",
      what, queued, round, w.jobs_per_s, w.cpu_ms_per_1k[0], w.cpu_ms_per_1k[1], w.cpu_ms_per_1k[2],
      w.rewrite_child_ms_per_1k, static_cast<long long>(w.aof_rewrites), w.rewriting_share * 100,
      w.kernel_ms_per_1k, w.faults_per_job, w.top_usec.c_str());
  std::fflush(stdout);
}

}  // namespace

void MeasureDepth(const Args& args, rt::E2eStack& deep, const std::string& deep_batch,
                  KeyValues& out) {
  rt::E2eStack shallow(QueueOptions(0));
  std::vector<Window> deep_windows, shallow_windows;
  const uint32_t warm = std::min(1000, args.queued / 10);
  const uint32_t shallow_warm = std::min(200, args.shallow_window / 5);
  Backlog deep_jobs(deep, deep_batch, args.queued, deep_batch + "-feed", args.queued,
                    kNoopConcurrency);
  Backlog shallow_jobs(shallow, "", 0, "shallow-feed", args.shallow, kNoopConcurrency);
  shallow_jobs.Feed(0);
  int shallow_round = 0;
  for (int round = 0; round < args.depth_rounds; ++round) {
    {
      const uint32_t before = Done(deep_jobs);
      PerfRecording perf(args.perf_dir, deep.redis().pid(), "deep-" + std::to_string(round));
      SlowlogWindow slowlog(args.slowlog, deep.redis());
      if (deep.worker_count() == 0) {
        deep.AddWorker();
      } else {
        deep.StartWorker(0);
      }
      deep_windows.push_back(Measure(deep, deep_jobs, before + warm,
                                     before + warm + args.deep_window, std::chrono::seconds(600)));
      deep.TermWorker(0);
      Print("deep", args.queued, round, deep_windows.back());
      if (args.slowlog) {
        const double finished = Done(deep_jobs) - before;
        std::printf("depth: deep scripts: %s\n", slowlog.Report(finished).c_str());
      }
    }
    // The feeds grew both AOFs: a rewrite that is due runs here, between windows, not inside
    // one. A rewrite's forked child takes one of the two cores, and its copy-on-write faults
    // slow Redis itself (2026-12-06, --deep-window 10,000 with the feed: a rewrite ran in 11-20 %
    // of a deep window's polls and the windows ran at 0.87 x shallow). Its cost follows the
    // dataset's size, not the queue's depth, and a deployment sets its cadence
    // (auto-aof-rewrite-percentage); bench/scale/README.md has the figures with it.
    SettleAof(deep.redis());
    SettleAof(shallow.redis());
    for (int i = 0; i < args.shallow_per_round; ++i, ++shallow_round) {
      const uint32_t before = Done(shallow_jobs);
      PerfRecording perf(args.perf_dir, shallow.redis().pid(),
                         "shallow-" + std::to_string(shallow_round));
      SlowlogWindow slowlog(args.slowlog, shallow.redis());
      if (shallow.worker_count() == 0) {
        shallow.AddWorker();
      } else {
        shallow.StartWorker(0);
      }
      shallow_windows.push_back(Measure(shallow, shallow_jobs, before + shallow_warm,
                                        before + shallow_warm + args.shallow_window,
                                        std::chrono::seconds(300)));
      shallow.TermWorker(0);
      Print("shallow", args.shallow, shallow_round, shallow_windows.back());
      if (args.slowlog) {
        const double finished = Done(shallow_jobs) - before;
        std::printf("depth: shallow scripts: %s\n", slowlog.Report(finished).c_str());
      }
    }
  }
  auto median = [](const std::vector<Window>& ws, auto field) {
    std::vector<double> v;
    for (const auto& w : ws) v.push_back(field(w));
    return Median(v);
  };
  const double deep_rate = median(deep_windows, [](const Window& w) { return w.jobs_per_s; });
  const double shallow_rate = median(shallow_windows, [](const Window& w) { return w.jobs_per_s; });
  std::printf(
      "depth: median %.0f jobs/s at %d queued (%zu windows of %d completions), %.0f at %d "
      "(%zu windows of %d)\n",
      deep_rate, args.queued, deep_windows.size(), args.deep_window, shallow_rate, args.shallow,
      shallow_windows.size(), args.shallow_window);
  out.Add("deep_jobs_per_s", deep_rate);
  out.Add("shallow_jobs_per_s", shallow_rate);
  out.Add("depth_ratio", deep_rate / shallow_rate, 3);
  const std::array<const char*, 3> keys = {"redis", "scheduler", "worker"};
  for (size_t i = 0; i < keys.size(); ++i) {
    auto cpu = [i](const Window& w) { return w.cpu_ms_per_1k[i]; };
    out.Add(std::string("deep_") + keys[i] + "_cpu_ms_per_1k", median(deep_windows, cpu));
    out.Add(std::string("shallow_") + keys[i] + "_cpu_ms_per_1k", median(shallow_windows, cpu));
  }
}

}  // namespace reelq::bench::scale
