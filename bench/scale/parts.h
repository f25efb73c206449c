#pragma once

// The parts of bench-scale, each runnable alone (see main.cpp for the flags). Each adds its
// figures to `out` as key=value pairs and prints what it saw on the way.
#include <chrono>
#include <string>

#include "bench_util.h"

namespace reelq::bench::scale {

// Seconds from `a` to `b`, as every part reports its rates.
inline double Seconds(std::chrono::steady_clock::time_point a,
                      std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

struct Args {
  bool enqueue = false, list = false, depth = false, inflight = false, retention = false;
  bool bullmq = true;
  int queued = 100000;        // one SubmitBatch stream of this many items
  int items_per_message = 1;  // --enqueue: items per SubmitBatchRequest (in `specs`)
  int shallow = 1000;         // the shallow queue of the depth ratio
  // Completions measured at depth, per deep window: with the feed's submits a window writes
  // ~5 KB of AOF a job, so 5,000 stay below the ~47 MB that starts the next rewrite of a
  // 100,000-job Redis (the bench rewrites before each deep window, see depth.cpp).
  int deep_window = 5000;
  int shallow_window = 2000;  // completions measured per shallow window
  int depth_rounds = 3;       // deep windows, each followed by shallow_per_round shallow ones
  int shallow_per_round = 3;
  bool slowlog = false;  // --slowlog: Redis time per script in every depth window
  std::string perf_dir;  // when set: `perf record -g` of redis-server in every depth window
  int inflight_jobs = 10000;
  double inflight_latency_scale = 0.5;  // the simulator's Kling 3.0: p50 120 s x 0.5 = 1 min
  int inflight_window_s = 20;
  int soak_jobs = 200000;
  int retention_s = 30;
  double soak_rate = 400;      // jobs/s the retention soak submits, held by the bench
  std::string retention_yaml;  // the config snippet that sets it; built from retention_s if empty
};

// enqueue_jobs_per_s, bytes_per_queued_job (+ the BullMQ addBulk peer), list_ms_p95 and
// depth_ratio: one queue of `queued` jobs with no worker, then a worker started on it.
void RunDeepQueue(const Args& args, KeyValues& out);
// inflight_rss_mb, redis_cmds_per_inflight_job_s, inflight_succeeded (+ BullMQ holding as many).
void RunInflight(const Args& args, KeyValues& out);
// retention_memory_growth, or "unsupported" when the binaries refuse the retention setting.
void RunRetention(const Args& args, KeyValues& out);

}  // namespace reelq::bench::scale
