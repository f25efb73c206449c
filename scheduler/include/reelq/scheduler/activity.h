#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "reelq/common/asio.h"
#include "reelq/common/clock.h"
#include "reelq/common/error.h"
#include "reelq/queue/job_store.h"

namespace reelq::scheduler {

// What the last hour looked like, per model, account, tenant and batch: the figures the queue's
// counters do not keep (completions per minute, generation time and queue wait percentiles,
// dispatch rate per account and tenant, failures by category per batch). Derived from the event
// stream that every transition already writes, so it costs Redis one XRANGE per refresh and
// every scheduler computes the same fleet-wide figures.
struct ModelActivity {
  std::string model;
  // Jobs of the scope now dispatched / running under this model, as the stream shows them
  // (jobs whose last transition is older than the stream's retention are not counted).
  int64_t dispatched = 0;
  int64_t running = 0;
  int64_t succeeded = 0;              // within the window
  int64_t failed = 0;                 // within the window
  int64_t succeeded_last_minute = 0;  // the sliding last 60 seconds
  // Completions per minute over the window, oldest minute first; the last is the current one.
  std::vector<int64_t> completions_per_minute;
  // Generation time: lease (RUNNING) to SUCCEEDED of the same attempt. Queue wait: PENDING
  // (submitted or retried) to DISPATCHED. Seconds; 0 with no samples.
  double generation_p50_s = 0, generation_p95_s = 0;
  double wait_p50_s = 0, wait_p95_s = 0;
  int64_t generation_samples = 0, wait_samples = 0;
};

struct AccountActivity {
  std::string account;
  int64_t dispatched_last_minute = 0;  // create calls the dispatcher let go to this account
};

struct TenantActivity {
  std::string tenant;
  int64_t queued = 0, dispatched = 0, running = 0;  // now, as the stream shows them
  int64_t dispatched_recently = 0;                  // within the share window (5 minutes)
};

struct BatchActivity {
  std::string batch;
  std::string tenant;
  int64_t first_ms = 0, last_ms = 0;  // first and latest event seen
  std::map<std::string, int64_t> failures_by_category;
};

struct ActivitySnapshot {
  int64_t now_ms = 0;
  int64_t window_ms = 0;
  int64_t share_window_ms = 0;
  std::vector<ModelActivity> models;  // sorted by model id
  std::vector<AccountActivity> accounts;
  std::vector<TenantActivity> tenants;
  std::vector<BatchActivity> batches;               // latest activity first
  int64_t queued = 0, dispatched = 0, running = 0;  // totals of the scope
};

class Activity {
 public:
  struct Options {
    std::chrono::milliseconds window{std::chrono::hours(1)};
    std::chrono::milliseconds share_window{std::chrono::minutes(5)};
    // Batches stay listed this long after their last event.
    std::chrono::milliseconds batch_retention{std::chrono::hours(24)};
    // Refresh reads the stream at most this often; calls in between use what was read.
    std::chrono::milliseconds min_refresh_interval{std::chrono::milliseconds(500)};
    int read_chunk = 5000;
    int max_chunks_per_refresh = 20;
    size_t max_tracked_jobs = 500'000;
  };

  Activity(queue::JobStore& store, ClockPtr clock);
  Activity(queue::JobStore& store, ClockPtr clock, Options options);

  // Reads what the stream gained since the last read (the whole window on the first call).
  // Runs on the io executor; concurrent callers share one read.
  awaitable<Result<void>> Refresh();

  // Figures for one tenant, or for every tenant when `tenant` is empty.
  ActivitySnapshot Snapshot(const std::string& tenant) const;
  // The tenant of a batch seen in the stream; empty when unknown.
  std::string BatchTenant(const std::string& batch) const;

  // Folds one event in (Refresh calls it; public for tests).
  void Apply(const queue::Event& event);

 private:
  struct Job {
    std::string tenant, batch, model, account;
    std::optional<queue::JobState> state;  // nullopt until its first event is seen
    int64_t pending_since = 0, running_since = 0, last_ms = 0;
  };
  struct Sample {
    int64_t at_ms;
    std::string model, tenant;
    int64_t value_ms;  // 0 for a plain count
  };
  struct Dispatch {
    int64_t at_ms;
    std::string account, tenant;
  };
  struct Batch {
    std::string tenant;
    int64_t first_ms = 0, last_ms = 0;
    std::map<std::string, int64_t> failures_by_category;
  };

  void Prune(int64_t now_ms);

  queue::JobStore& store_;
  ClockPtr clock_;
  Options options_;
  std::string last_id_;  // empty until the first read
  bool refreshing_ = false;
  int64_t last_refresh_ms_ = 0;
  std::unordered_map<std::string, Job> jobs_;
  std::deque<Sample> generations_, waits_, completions_, failures_;
  std::deque<Dispatch> dispatches_;
  std::map<std::string, Batch> batches_;
};

// "kling-3 via kling-a" (a DISPATCHED event's detail) -> {model, account}; empty when it is
// not of that form (both single words).
std::pair<std::string, std::string> ParseDispatchDetail(std::string_view detail);

// What a failure's transition detail says went wrong: fail.lua's "<category>: <message>" (the
// category one of ErrorCategory's names), or one of the sentences dispatch.lua fails a job with,
// whose category it records apart (err_cat): "batch budget: ..." and "no model this job may use
// has an account configured ..." (failed_precondition), "start deadline passed"
// (deadline_exceeded). nullopt for a detail that names no failure ("queued: ...", a worker id).
struct FailureDetail {
  std::string category;  // as the queue records it: "rate_limited", "failed_precondition", ...
  std::string message;
};
std::optional<FailureDetail> ParseFailureDetail(std::string_view detail);
// A FAILED event's category (ParseFailureDetail); "internal" for a detail that names none.
std::string ParseFailureCategory(std::string_view detail);

// The p-quantile (0..1) of `values` by nearest rank; 0 when empty. Reorders `values`.
double Quantile(std::vector<int64_t>& values, double p);

}  // namespace reelq::scheduler
