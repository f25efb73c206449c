#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <vector>

#include "reelq/common/asio.h"
#include "reelq/queue/job_store.h"

namespace reelq::worker {

// Gathers the Redis writes a worker's jobs make within a few milliseconds (create permits,
// phase changes, completions) into one script call of each kind: a worker driving hundreds of
// jobs pays one FCALL and one set of shared counter updates per window instead of per job.
// Each caller still gets its own job's result (a stale token refuses only that job). Lives on
// the worker's executor (single-threaded).
//
// How long a write waits for company: the window (a few ms), or longer when its caller says the
// write may wait (`may_wait`): a worker whose jobs take minutes finishes a few of them a
// second, so a 2 ms window carries one job a call, and a call of one job costs Redis about
// half as much again as one of many (queue_cost_redistest). A call goes when its most
// impatient write is due: a write that may not wait pulls the whole call forward.
class StoreWriter {
 public:
  // `create_guard`: worker.create_rate_guard_ms (see JobStore::TakeCreatePermit).
  StoreWriter(queue::JobStore& store, std::chrono::milliseconds window,
              std::chrono::milliseconds create_guard)
      : store_(store), window_(window), create_guard_(create_guard) {}

  // As JobStore::TakeCreatePermit.
  awaitable<Result<std::chrono::milliseconds>> TakeCreatePermit(queue::PermitRequest request);
  awaitable<Result<void>> SetPhase(queue::PhaseChange change,
                                   std::chrono::milliseconds may_wait = {});
  awaitable<Result<void>> Complete(queue::CompleteRequest done,
                                   std::chrono::milliseconds may_wait = {});

  // One kind of write: what waits for the next call, and who waits for it.
  template <class Request, class OutcomeType>
  struct Pending {
    using Outcome = OutcomeType;
    struct Waiter {
      explicit Waiter(asio::any_io_executor executor) : ready(executor) {}
      std::optional<Result<Outcome>> result;
      asio::steady_timer ready;
    };
    std::vector<Request> requests;
    std::vector<std::shared_ptr<Waiter>> waiters;
    bool flush_scheduled = false;
    std::chrono::steady_clock::time_point due;  // of the scheduled flush
    // The scheduled flush waits on it; cancelled when a write needs the call sooner.
    std::unique_ptr<asio::steady_timer> timer;
  };

 private:
  // When a write that may wait `may_wait` (at least the window) must be on its way.
  std::chrono::steady_clock::time_point Due(std::chrono::milliseconds may_wait) const;

  queue::JobStore& store_;
  std::chrono::milliseconds window_;
  std::chrono::milliseconds create_guard_;
  Pending<queue::PermitRequest, std::chrono::milliseconds> permits_;
  Pending<queue::PhaseChange, void> phases_;
  Pending<queue::CompleteRequest, void> completions_;
};

}  // namespace reelq::worker
