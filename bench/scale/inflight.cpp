// bench-scale's wide part: many generations in flight on one worker.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <stdexcept>
#include <thread>
#include <vector>

#include "e2e_util.h"
#include "parts.h"
#include "process.h"

namespace reelq::bench::scale {

namespace rt = reelq::testing;
namespace v1 = reelq::v1;
using Clock = std::chrono::steady_clock;

namespace {

// The simulator's Kling 3.0 median, seconds (providers/sim/README.md).
constexpr double kKlingP50Seconds = 120;

rt::E2eStackOptions InflightOptions(const Args& args) {
  rt::E2eStackOptions o;
  o.schedulers = 1;
  o.workers = 1;
  o.latency_scale = args.inflight_latency_scale;
  // The product's defaults (worker/src/settings.cpp): what an operator would run.
  o.lease_seconds = 15;
  o.heartbeat_seconds = 1;
  o.min_poll_interval_ms = 5000;
  o.max_in_flight = args.inflight_jobs;
  // No poll quota; enough account room for every job at once.
  o.account_rpm = 100'000'000;
  o.account_max_concurrent = args.inflight_jobs;
  o.log_level = "warn";
  return o;
}

}  // namespace

void RunInflight(const Args& args, KeyValues& out) {
  const int n = args.inflight_jobs;
  rt::E2eStack stack(InflightOptions(args));
  nlohmann::json keys = nlohmann::json::array();
  for (const char* k : {"sim-kling-ak-a", "sim-kling-ak-b"}) {
    keys.push_back({{"access_key", k}, {"rpm", 10'000'000}, {"max_concurrent", 1'000'000}});
  }
  stack.SimConfigure({{"providers", {{"kling", {{"keys", keys}}}}}});
  auto stub = stack.JobStub();
  // The whole run too (submit to the last job's end), per job: what a job's life costs Redis
  // when its worker's writes come one or a few at a time, as they do with real latencies.
  const double redis_cpu_start = CpuMs(stack.redis().pid());
  int64_t whole_polls = 0;
  const auto t0 = Clock::now();
  {
    grpc::Status status;
    auto response = rt::SubmitBatch(*stub, Specs(n, "kling-3.0", "inflight", "wide"), &status,
                                    std::chrono::seconds(600));
    if (!status.ok() || response.accepted() != static_cast<uint32_t>(n)) {
      throw std::runtime_error("inflight SubmitBatch: " + status.error_message() + ", accepted " +
                               std::to_string(response.accepted()) + "\n" + stack.Logs());
    }
  }
  std::printf("inflight: %d submitted in %.1f s\n", n, Seconds(t0, Clock::now()));
  std::fflush(stdout);

  // The window opens once 95 % run (or after two minutes, whatever runs then), and integrates
  // the running count over time (GetBatch once a second) so jobs that end inside it count for
  // the time they ran.
  const auto ramp_deadline = t0 + std::chrono::minutes(2);
  uint32_t running = 0;
  while (Clock::now() < ramp_deadline) {
    if (auto p = GetBatch(*stub, "inflight")) running = p->running();
    ++whole_polls;
    if (running >= 0.95 * n) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  const double ramp_s = Seconds(t0, Clock::now());
  const int64_t ramp_commands = TotalCommands(CommandStats(stack.redis()));
  stack.redis().ResetStats();
  const double redis_cpu_window_start = CpuMs(stack.redis().pid());
  const auto w0 = Clock::now();
  auto last = w0;
  double job_seconds = 0;
  int64_t polls = 0;
  int64_t rss_at_window = RssKb(stack.worker(0).pid());
  while (Seconds(w0, Clock::now()) < args.inflight_window_s) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    auto p = GetBatch(*stub, "inflight");
    ++polls;
    const auto now = Clock::now();
    const uint32_t r = p ? p->running() : running;
    job_seconds += 0.5 * (running + r) * Seconds(last, now);
    running = r;
    last = now;
    rss_at_window = std::max(rss_at_window, RssKb(stack.worker(0).pid()));
  }
  const auto stats = CommandStats(stack.redis());
  const double window_s = Seconds(w0, last);
  // What Redis spends a second while the jobs wait (heartbeats, the scheduler's and the
  // bench's own periodic calls, Redis's own cron): paid by the second, not by the job.
  const double redis_cpu_ms_per_s =
      (CpuMs(stack.redis().pid()) - redis_cpu_window_start) / std::max(window_s, 1e-9);

  // Then every job to its end.
  uint32_t succeeded = 0, terminal = 0;
  const auto end_deadline =
      Clock::now() + std::chrono::seconds(120) +
      std::chrono::seconds(static_cast<int>(kKlingP50Seconds * 2.5 * args.inflight_latency_scale));
  while (Clock::now() < end_deadline) {
    if (auto p = GetBatch(*stub, "inflight")) {
      succeeded = p->succeeded();
      terminal = Terminal(*p);
    }
    ++whole_polls;
    if (terminal >= static_cast<uint32_t>(n)) break;
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  const int64_t after_window_commands = TotalCommands(CommandStats(stack.redis()));
  const double redis_cpu_ms = CpuMs(stack.redis().pid()) - redis_cpu_start;
  const double poll_cost = GetBatchCost(stack, "inflight");
  const double commands = static_cast<double>(TotalCommands(stats)) - poll_cost * polls;
  const double per_job_s = job_seconds > 0 ? commands / job_seconds : 0;
  const double peak_mb = PeakRssKb(stack.worker(0).pid()) / 1024.0;
  std::printf(
      "inflight: ramp to %u running took %.1f s; window %.1f s at %.0f running on average: "
      "%.0f Redis commands = %.3f per in-flight job per second (%.0f/s); by command: %s\n",
      running, ramp_s, window_s, job_seconds / std::max(window_s, 1e-9), commands, per_job_s,
      commands / std::max(window_s, 1e-9), TopCommands(stats, job_seconds).c_str());
  std::printf(
      "inflight: worker RSS %.1f MB in the window, peak %.1f MB; %u of %d succeeded "
      "(%u terminal) %.0f s after submit\n",
      rss_at_window / 1024.0, peak_mb, succeeded, n, terminal, Seconds(t0, Clock::now()));
  std::fflush(stdout);
  out.Add("inflight_jobs", n);
  out.Add("inflight_succeeded", static_cast<int64_t>(succeeded));
  out.Add("inflight_rss_mb", peak_mb);
  out.Add("redis_cmds_per_inflight_job_s", per_job_s, 3);
  // Submit included; the bench's own GetBatch polls taken out of the commands (their CPU is
  // left in: a few ms).
  const double whole_commands = static_cast<double>(ramp_commands + after_window_commands) -
                                poll_cost * (whole_polls + polls);
  std::printf(
      "inflight: whole run, per job: %.2f Redis commands, %.1f us of Redis CPU; while the jobs "
      "waited, Redis used %.2f ms of CPU a second\n",
      whole_commands / n, redis_cpu_ms * 1000 / n, redis_cpu_ms_per_s);
  std::fflush(stdout);
  out.Add("inflight_redis_cmds_per_job", whole_commands / n, 2);
  out.Add("inflight_redis_cpu_us_per_job", redis_cpu_ms * 1000 / n, 1);
  out.Add("inflight_redis_cpu_ms_per_s_waiting", redis_cpu_ms_per_s, 2);

  if (args.bullmq) {
    rt::RedisServerOptions ro;
    ro.appendonly = true;
    rt::RedisServer redis(ro);
    rt::TempDir logs;
    const int hold_ms = static_cast<int>(kKlingP50Seconds * args.inflight_latency_scale * 1000);
    auto j =
        RunNodePeer("bench/scale/bullmq_scale.js",
                    {std::to_string(redis.port()), "inflight", std::to_string(n),
                     std::to_string(hold_ms), std::to_string(args.inflight_window_s)},
                    {}, logs.path() / "bullmq.log", std::chrono::seconds(600 + 4 * hold_ms / 1000));
    std::printf(
        "inflight: BullMQ holding %d jobs %d ms each: RSS peak %.1f MB, %.3f Redis "
        "commands per in-flight job per second, %d completed\n",
        n, hold_ms, j.at("rss_peak_mb").get<double>(),
        j.at("cmds_per_inflight_job_s").get<double>(), j.at("completed").get<int>());
    out.Add("bullmq_inflight_rss_mb", j.at("rss_peak_mb").get<double>());
    out.Add("bullmq_cmds_per_inflight_job_s", j.at("cmds_per_inflight_job_s").get<double>(), 3);
  }
}

}  // namespace reelq::bench::scale
