#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>

#include "reelq/common/asio.h"
#include "reelq/common/clock.h"
#include "reelq/providers/catalogue.h"
#include "reelq/providers/provider.h"
#include "reelq/queue/job_store.h"
#include "reelq/storage/object_store.h"
#include "reelq/worker/settings.h"
#include "reelq/worker/worker_metrics.h"

namespace reelq::worker {

// Why a job's coroutine must stop touching the job. kLeaseLapsed: by this worker's own clock
// (no heartbeat answered in time), not confirmed by Redis; such a job is still heartbeated
// while its coroutine winds down, so that a create call in flight can still record its
// upstream id if Redis answers again, instead of the next worker paying for another.
enum class StopReason { kNone, kCancelled, kLeaseLost, kLeaseLapsed, kDrain };

// Shared between a job's coroutine and the worker's heartbeat/drain: a stop request, and a
// timer the coroutine sleeps on so a stop wakes it at once.
struct JobControl {
  explicit JobControl(asio::any_io_executor executor) : wake(executor) {}
  StopReason stop = StopReason::kNone;
  asio::steady_timer wake;
  // Until when (RunnerDeps::clock, ms) this worker's lease is certainly still valid: the clock
  // reading taken just before the Lease or Heartbeat call that last set it, plus the lease.
  // Redis stores the expiry as the same clock read a moment later plus the lease, so this
  // never lies after the expiry the reaper acts on. 0: not tracked (no self-fence).
  int64_t lease_valid_until_ms = 0;
  // Until the job leaves its create step (its upstream task recorded, or the attempt over): the
  // worker bounds how many such jobs it holds (Settings::max_starting).
  bool starting = true;
  void Stop(StopReason reason) {
    if (stop == StopReason::kNone || reason == StopReason::kCancelled) stop = reason;
    wake.cancel();
  }
};

struct RunnerDeps {
  queue::JobStore* store = nullptr;
  storage::ObjectStore* objects = nullptr;
  const providers::Catalogue* catalogue = nullptr;
  // account id -> adapter
  std::map<std::string, providers::ProviderPtr> providers;
  Settings settings;
  ClockPtr clock;
  RunnerMetrics* metrics = nullptr;  // none in tests that do not look
  // Called once per job as it leaves its create step (MarkStarted); the worker then leases more.
  std::function<void()> on_started;
};

// Marks the job as past its create step, once.
inline void MarkStarted(const RunnerDeps& deps, JobControl& control) {
  if (!control.starting) return;
  control.starting = false;
  if (deps.on_started) deps.on_started();
}

enum class RunOutcome { kSucceeded, kRetrying, kFailed, kStopped, kHandedBack };

// Drives one leased job to an outcome: create (or resume) the upstream task, poll it, stream
// the clip to object storage with its sidecar, and record the result in Redis — fenced by the
// lease token at every step. Each run is one attempt (worker/src/attempt.h), a step per
// coroutine.
class StoreWriter;

class JobRunner {
 public:
  explicit JobRunner(RunnerDeps& deps);
  ~JobRunner();

  // How long any write (create permit, phase change, completion) waits for others to share its
  // Redis call.
  static constexpr std::chrono::milliseconds kWriteWindow{2};
  // Writes may wait longer for company, up to this (StoreWriter), by what the wait costs: a
  // completion 1 % of its attempt's time (the account's slot was given back at TRANSFERRING),
  // an upstream id half a poll interval (the task generates meanwhile), TRANSFERRING 0.1 %
  // (the slot idles meanwhile). Create permits (before the create) keep the window.
  static constexpr std::chrono::milliseconds kMaxWriteWait{250};

  // The job comes on the heap: a coroutine's frame keeps its by-value parameters for its whole
  // life, and a LeasedJob is ~400 bytes that each of the thousands of waiting jobs would carry
  // twice over (here and in the worker's frame) beside the attempt's own copy.
  awaitable<RunOutcome> Run(std::unique_ptr<queue::LeasedJob> job,
                            std::shared_ptr<JobControl> control);

  // <tenant>/<batch or job>/<job id>.mp4: the same key on every attempt, so a redelivered job
  // overwrites nothing already published.
  static std::string ClipKey(const std::string& tenant, const std::string& batch,
                             const std::string& job_id);
  static std::string SidecarKey(const std::string& clip_key);

  // A lease is treated as lost this long before it ends by the worker's own clock: room for a
  // publication that passed the check to land before the reaper can hand the job to another
  // worker. With heartbeats at most every lease/2 a healthy worker never comes this close.
  static std::chrono::milliseconds SelfFenceGuard(std::chrono::milliseconds lease) {
    return lease / 4;
  }

 private:
  // A group's parent (LeasedJob::kind set): its own step, the join or contact sheet
  // (worker/src/group_step.cpp).
  awaitable<RunOutcome> RunGroupStep(queue::LeasedJob job, std::shared_ptr<JobControl> control);

  RunnerDeps& deps_;
  std::unique_ptr<StoreWriter> writer_;  // phase changes and completions, gathered
  std::mt19937_64 rng_;
};

}  // namespace reelq::worker
