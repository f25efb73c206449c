#include "depth.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <stdexcept>
#include <thread>
#include <vector>

#include "e2e_util.h"
#include "process.h"

namespace reelq::bench::scale {

namespace rt = reelq::testing;
namespace v1 = reelq::v1;
using Clock = std::chrono::steady_clock;

namespace {

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

void ListAtDepth(rt::E2eStack& stack, KeyValues& out) {
  auto stub = stack.JobStub();
  std::vector<double> ms;
  size_t short_pages = 0;
  auto page = [&](const std::string& token) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    v1::ListJobsRequest req;
    req.set_state(v1::JOB_STATE_PENDING);
    req.set_page_size(100);
    req.set_page_token(token);
    v1::ListJobsResponse resp;
    const auto t0 = Clock::now();
    auto status = stub->ListJobs(&ctx, req, &resp);
    ms.push_back(Seconds(t0, Clock::now()) * 1000);
    if (!status.ok()) throw std::runtime_error("ListJobs: " + status.error_message());
    if (resp.jobs_size() < 100) ++short_pages;
    return resp.next_page_token();
  };
  for (int i = 0; i < 20; ++i) page("");
  std::string token = page("");
  for (int i = 0; i < 30 && !token.empty(); ++i) token = page(token);
  std::printf(
      "list: %zu ListJobs pages (state PENDING, 100 rows): p50 %.1f ms, p95 %.1f ms, "
      "max %.1f ms; %zu pages had fewer than 100 rows\n",
      ms.size(), Percentile(ms, 0.5), Percentile(ms, 0.95), *std::max_element(ms.begin(), ms.end()),
      short_pages);
  out.Add("list_ms_p50", Percentile(ms, 0.5));
  out.Add("list_ms_p95", Percentile(ms, 0.95));
}

}  // namespace

rt::E2eStackOptions QueueOptions(int workers) {
  rt::E2eStackOptions o;
  o.schedulers = 1;
  o.workers = workers;
  o.lease_seconds = 15;
  o.heartbeat_seconds = 1;
  o.min_poll_interval_ms = 1;
  o.max_in_flight = 256;
  o.log_level = "warn";
  UseNoopProvider(o, kNoopConcurrency);
  return o;
}

void Submit(rt::E2eStack& stack, const std::vector<v1::JobSpec>& specs, int items_per_message) {
  auto stub = stack.JobStub();
  grpc::Status status;
  auto response =
      rt::SubmitBatch(*stub, specs, &status, std::chrono::seconds(1200), items_per_message);
  if (!status.ok()) {
    throw std::runtime_error("SubmitBatch failed: " + status.error_message() + "\n" + stack.Logs());
  }
  if (response.accepted() != specs.size()) {
    throw std::runtime_error("SubmitBatch accepted " + std::to_string(response.accepted()) +
                             " of " + std::to_string(specs.size()));
  }
}

// Writing 100,000 jobs grows the AOF by far more than `auto-aof-rewrite-min-size`, so Redis
// rewrites it soon after: a forked child that takes one of the machine's cores for a second or
// more. Left alone, that rewrite fell inside the deep window (5,000 completions, ~1.5 s) and
// the window measured it instead of the depth (a shallow queue never triggers one). So the
// rewrite is run now and waited for; returns the seconds it took.
double SettleAof(rt::RedisServer& redis) {
  const auto t0 = Clock::now();
  redis.Run({"BGREWRITEAOF"});  // an error answer: one is already running, waited for below
  const auto deadline = t0 + std::chrono::seconds(120);
  while (Clock::now() < deadline) {
    if (redis.InfoField("aof_rewrite_in_progress", "persistence") == "0" &&
        redis.InfoField("aof_rewrite_scheduled", "persistence") == "0") {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return Seconds(t0, Clock::now());
}

void RunDeepQueue(const Args& args, KeyValues& out) {
  {
    rt::E2eStack stack(QueueOptions(0));
    const auto specs = Specs(args.queued, kNoopModel, "deep", "deep");
    const int64_t memory_before = UsedMemory(stack.redis());
    // "client": this process, which serializes and streams the items meanwhile.
    CpuWindow cpu({{"redis", stack.redis().pid()},
                   {"scheduler", stack.scheduler(0).pid()},
                   {"client", getpid()}});
    cpu.Start();
    const auto t0 = Clock::now();
    Submit(stack, specs, args.items_per_message);
    const double seconds = Seconds(t0, Clock::now());
    cpu.Stop();
    // Let the dispatcher's first rounds settle before reading the memory.
    std::this_thread::sleep_for(std::chrono::seconds(1));
    const double bytes =
        static_cast<double>(UsedMemory(stack.redis()) - memory_before) / args.queued;
    std::printf(
        "enqueue: %d jobs in one SubmitBatch stream (%d a message): %.2f s = %.0f jobs/s (CPU "
        "ms per 1,000: redis-server %.0f, scheduler %.0f, bench client %.0f); Redis %.0f bytes "
        "per queued job\n",
        args.queued, args.items_per_message, seconds, args.queued / seconds,
        cpu.Ms("redis") * 1000 / args.queued, cpu.Ms("scheduler") * 1000 / args.queued,
        cpu.Ms("client") * 1000 / args.queued, bytes);
    std::fflush(stdout);
    out.Add("queued", args.queued);
    out.Add("items_per_message", args.items_per_message);
    out.Add("enqueue_jobs_per_s", args.queued / seconds);
    out.Add("bytes_per_queued_job", bytes, 0);
    if (args.bullmq) {
      rt::RedisServerOptions ro;
      ro.appendonly = true;
      rt::RedisServer redis(ro);
      rt::TempDir logs;
      auto j = RunNodePeer("bench/scale/bullmq_scale.js",
                           {std::to_string(redis.port()), "enqueue", std::to_string(args.queued)},
                           {}, logs.path() / "bullmq.log", std::chrono::minutes(20));
      const double peer = j.at("jobs_per_s").get<double>();
      std::printf("enqueue: BullMQ addBulk: %.0f jobs/s, %.0f bytes per queued job\n", peer,
                  j.at("bytes_per_job").get<double>());
      out.Add("bullmq_enqueue_jobs_per_s", peer);
      out.Add("bullmq_bytes_per_queued_job", j.at("bytes_per_job").get<double>(), 0);
      out.Add("enqueue_ratio", args.queued / seconds / peer, 3);
    }
    if (args.list) ListAtDepth(stack, out);
    if (args.depth) {
      std::printf("depth: AOF rewritten before the first deep window (%.1f s)\n",
                  SettleAof(stack.redis()));
      MeasureDepth(args, stack, "deep", out);
    }
  }
}

}  // namespace reelq::bench::scale
