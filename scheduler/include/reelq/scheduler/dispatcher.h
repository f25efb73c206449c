#pragma once

#include <memory>

#include "reelq/common/asio.h"
#include "reelq/queue/job_store.h"
#include "reelq/scheduler/settings.h"

namespace reelq::scheduler {

// Runs dispatch rounds (queue/lua/dispatch.lua) whenever work may be dispatchable, and the
// reaper (expired leases, due retries). Both are atomic scripts, so several schedulers can run
// this loop against one Redis at once; killing one never stops the others.
class Dispatcher {
 public:
  Dispatcher(queue::JobStore& store, const Settings& settings);

  awaitable<void> RunDispatch();
  awaitable<void> RunReaper();
  // Blocks on the wake list (`blocking` is its own connection) that scripts freeing a slot or
  // adding work push to, and wakes the dispatch loop at once: no slot idles until the next round.
  awaitable<void> RunWakeListener(redis::Connection& blocking);
  // Retention (queue.retention_hours): removes finished jobs past it in bounded chunks, every
  // few seconds (scheduler/src/retention_sweep.cpp). Safe to run from every scheduler.
  awaitable<void> RunRetention();
  void Wake();  // new work: dispatch now
  void Stop();

  uint64_t dispatched_total() const { return dispatched_total_; }
  // Leases this scheduler's reaper found expired (the worker died, froze or lost Redis).
  uint64_t expired_leases_total() const { return expired_leases_total_; }
  uint64_t reaper_failures_total() const { return reaper_failures_total_; }
  uint64_t expired_jobs_total() const { return expired_jobs_total_; }

 private:
  queue::JobStore& store_;
  const Settings& settings_;
  std::unique_ptr<asio::steady_timer> wake_;
  bool wake_pending_ = false;  // a Wake() while a round ran: run another before waiting
  bool stopped_ = false;
  uint64_t expired_jobs_total_ = 0;
  uint64_t dispatched_total_ = 0;
  uint64_t expired_leases_total_ = 0;
  uint64_t reaper_failures_total_ = 0;
};

}  // namespace reelq::scheduler
