// bench-scale: how reelq behaves at depth and at width, each part against a peer in the same run
// where one exists (BullMQ, its own redis-server, same persistence). Run by hand, not in CI.
//
//   --enqueue    one SubmitBatch stream of --queued items (100,000) into a stack with no worker:
//                enqueue_jobs_per_s, and bytes_per_queued_job from Redis used_memory; BullMQ
//                addBulk (chunks of 1000) of as many: bullmq_enqueue_jobs_per_s, its bytes.
//                --items-per-message N (1): the stream's items N to a message (in `specs`).
//   --list       at that depth, ListJobs --state PENDING pages of 100 (first pages and 30 pages
//                followed by token): list_ms_p95.
//   --depth      then one worker (noop provider, null store): completions per second over
//                --deep-window jobs (5,000) with --queued PENDING, over --shallow-window jobs
//                (2,000) with --shallow PENDING (1,000) on a second stack; each queue is fed as
//                it drains, so it holds its depth through the window; windows interleaved
//                (--depth-rounds deep windows, --shallow-per-round shallow ones after each),
//                medians: depth_ratio; and CPU per 1,000 jobs of redis-server, scheduler and
//                worker in each window. --perf-dir DIR: perf record of redis-server in each;
//                --slowlog: Redis time per script and command in each.
//   --inflight   --inflight-jobs generations (10,000) on ONE worker, the simulator's Kling at
//                latency scale 0.5 (p50 one minute), product lease/heartbeat/poll defaults:
//                peak RSS of the worker, Redis commands per in-flight job per second over a
//                --inflight-window-s window once 95 % run, all succeeded; BullMQ holding as many
//                jobs for the median latency: its RSS and commands.
//   --retention  a soak of --soak-jobs (200,000) at --soak-rate jobs/s (400) with a
//                --retention-s retention (30): Redis used_memory, mean over the soak's last
//                retention period over the mean of the first one after retention began
//                (retention_memory_growth, within 10 %); "unsupported" when the binaries
//                refuse the setting.
// No part flag: all parts. --smoke: tiny sizes (the ctest). --no-bullmq: no peer.
// The last line is key=value. Everything is measured from outside: gRPC, /proc, Redis INFO.
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

#include "parts.h"

namespace rb = reelq::bench;
namespace rs = reelq::bench::scale;

namespace {

rs::Args Parse(int argc, char** argv) {
  rs::Args a;
  bool any = false;
  for (int i = 1; i < argc; ++i) {
    std::string s = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error(s + " needs a value");
      return argv[++i];
    };
    if (s == "--enqueue") {
      a.enqueue = any = true;
    } else if (s == "--list") {
      a.list = any = true;
    } else if (s == "--depth") {
      a.depth = any = true;
    } else if (s == "--inflight") {
      a.inflight = any = true;
    } else if (s == "--retention") {
      a.retention = any = true;
    } else if (s == "--no-bullmq") {
      a.bullmq = false;
    } else if (s == "--smoke") {
      a.queued = 2000;
      a.shallow = 300;
      a.deep_window = 500;
      a.shallow_window = 300;
      a.depth_rounds = 2;
      a.shallow_per_round = 1;
      a.inflight_jobs = 200;
      a.inflight_latency_scale = 0.02;  // Kling 1.2 .. 6 s
      a.inflight_window_s = 2;
      a.soak_jobs = 3000;
      a.retention_s = 3;
      a.soak_rate = 300;
    } else if (s == "--items-per-message") {
      a.items_per_message = rb::IntFlag(s, next());
    } else if (s == "--queued") {
      a.queued = rb::IntFlag(s, next());
    } else if (s == "--shallow") {
      a.shallow = rb::IntFlag(s, next());
    } else if (s == "--deep-window") {
      a.deep_window = rb::IntFlag(s, next());
    } else if (s == "--depth-rounds") {
      a.depth_rounds = rb::IntFlag(s, next());
    } else if (s == "--shallow-window") {
      a.shallow_window = rb::IntFlag(s, next());
    } else if (s == "--shallow-per-round") {
      a.shallow_per_round = rb::IntFlag(s, next());
    } else if (s == "--slowlog") {
      a.slowlog = true;
    } else if (s == "--perf-dir") {
      a.perf_dir = next();
    } else if (s == "--inflight-jobs") {
      a.inflight_jobs = rb::IntFlag(s, next());
    } else if (s == "--inflight-latency-scale") {
      a.inflight_latency_scale = rb::NumberFlag(s, next());
    } else if (s == "--inflight-window-s") {
      a.inflight_window_s = rb::IntFlag(s, next());
    } else if (s == "--soak-jobs") {
      a.soak_jobs = rb::IntFlag(s, next());
    } else if (s == "--retention-s") {
      a.retention_s = rb::IntFlag(s, next());
    } else if (s == "--soak-rate") {
      a.soak_rate = rb::NumberFlag(s, next());
    } else if (s == "--retention-yaml") {
      a.retention_yaml = next();
    } else {
      std::cerr << "usage: bench-scale [--enqueue] [--list] [--depth] [--inflight] [--retention] "
                   "[--smoke] [--no-bullmq] [--queued N] [--items-per-message N] [--shallow N] "
                   "[--deep-window N] [--shallow-window N] "
                   "[--depth-rounds N] [--shallow-per-round N] [--perf-dir DIR] [--slowlog] "
                   "[--inflight-jobs N] [--inflight-latency-scale X] [--inflight-window-s S] "
                   "[--soak-jobs N] [--soak-rate R] [--retention-s S] [--retention-yaml TEXT]\n";
      std::exit(s == "--help" ? 0 : 2);
    }
  }
  if (!any) a.enqueue = a.list = a.depth = a.inflight = a.retention = true;
  if (a.queued < 10 || a.shallow < 10 || a.deep_window < 10 || a.shallow_window < 10 ||
      a.inflight_jobs < 1 || a.depth_rounds < 1 || a.shallow_per_round < 1 || a.soak_jobs < 10 ||
      a.items_per_message < 1 || a.retention_s < 1 || a.inflight_window_s < 1 ||
      !(a.soak_rate >= 1)) {
    throw std::runtime_error(
        "sizes too small: --queued, --shallow, --deep-window, --shallow-window, --soak-jobs "
        ">= 10; --inflight-jobs, --depth-rounds, --shallow-per-round, --retention-s, "
        "--inflight-window-s, --soak-rate >= 1");
  }
  if (a.retention_yaml.empty()) {
    // queue.retention_hours is the setting issue 11 names; fractions give a short soak.
    a.retention_yaml =
        "queue:\n  retention_hours: " + std::to_string(a.retention_s / 3600.0) + "\n";
  }
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    setenv("REELQ_BUILD_DIR", REELQ_BENCH_BUILD_DIR, 0);
    setenv("REELQ_SOURCE_DIR", REELQ_BENCH_SOURCE_DIR, 0);
    const rs::Args args = Parse(argc, argv);
    std::printf("bench-scale, load average before: %s\n", rb::LoadAverage().c_str());
    std::fflush(stdout);
    rb::KeyValues out;
    if (args.enqueue || args.list || args.depth) rs::RunDeepQueue(args, out);
    if (args.inflight) rs::RunInflight(args, out);
    if (args.retention) rs::RunRetention(args, out);
    std::printf("load average after: %s\n", rb::LoadAverage().c_str());
    std::printf("%s\n", out.Line().c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::cerr << "bench-scale: " << e.what() << "\n";
    return 1;
  }
}
