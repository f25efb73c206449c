#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>

#include "reelq/common/asio.h"
#include "reelq/common/redis.h"
#include "reelq/worker/job_runner.h"

namespace reelq::worker {

struct WorkerCounters {
  uint64_t leased = 0, succeeded = 0, retrying = 0, failed = 0, stopped = 0, handed_back = 0;
};

// The daemon's core: leases jobs up to the in-flight limit, runs each as a coroutine on one
// executor, renews its one worker lease (which covers every job it holds) with one heartbeat
// call, and delivers cancellations (pushed to it by Redis) and a lost lease to the jobs at once.
// Drain() stops leasing, lets jobs finish until the drain deadline, then hands the rest back so
// another worker resumes their upstream tasks. A worker that cannot renew its leases (Redis out of
// reach) stops those jobs by its own clock once a lease would have lapsed, and publishes nothing
// for them: by then the reaper may have handed them to another worker (LeaseWatchdog, JobRunner's
// lease_held).
class Worker {
 public:
  // `blocking` waits for work; `cancel_blocking` (optional) waits for cancellations of held
  // jobs, which then reach them at once (without it, at the next heartbeat).
  Worker(RunnerDeps& deps, redis::ConnectionPtr blocking,
         redis::ConnectionPtr cancel_blocking = nullptr);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Runs until drained. Returns when every job has finished or been handed back.
  awaitable<void> Run();
  void Drain();  // thread-compatible: call on the worker's executor

  size_t in_flight() const { return jobs_.size(); }
  const WorkerCounters& counters() const { return counters_; }

 private:
  // Gets a new epoch and lease (retrying until it does, or the worker drains).
  awaitable<bool> Register();
  // The worker's lease is gone: every job stops (another worker resumes it).
  void LoseEveryJob();
  // Stops a job cancelled while held (if it still runs here) and acknowledges the notice with
  // the next heartbeat.
  void StopCancelled(const std::string& job_id);
  awaitable<void> LeaseLoop();
  // Holds a leased job and runs it.
  void Start(const asio::any_io_executor& executor, queue::LeasedJob job);
  // Draining: a Lease call for nothing takes the worker out of those waiting for work and hands
  // back what dispatch leased to it but it never started.
  awaitable<void> StopWaiting();
  awaitable<void> HeartbeatLoop();
  awaitable<void> CancelLoop();
  // Self-fence: stops every job whose lease lapses by this worker's own clock (no Lease or
  // Heartbeat call answered within the lease), without waiting for Redis to say so.
  awaitable<void> LeaseWatchdog();
  awaitable<void> RunJob(std::unique_ptr<queue::LeasedJob> job,
                         std::shared_ptr<JobControl> control);

  RunnerDeps& deps_;
  redis::ConnectionPtr blocking_;
  redis::ConnectionPtr cancel_blocking_;
  JobRunner runner_;
  int64_t epoch_ = 0;  // 0: not registered (or the lease was lost)
  // Until when (RunnerDeps::clock) the worker's one lease is certainly valid (see JobControl).
  int64_t lease_valid_until_ms_ = 0;
  struct Held {
    std::string token;
    std::shared_ptr<JobControl> control;
  };
  std::map<std::string, Held> jobs_;
  bool lease_answer_lost_ = false;  // the last Lease call failed: it may have leased jobs
  // Heartbeats found Redis holding more jobs under this worker than it runs (HeartbeatOutcome).
  bool holds_more_ = false;
  int more_streak_ = 0;
  // Cancel notices handled, taken off the worker's cancel list by the next heartbeat.
  std::set<std::string> cancel_acks_;
  int starting_ = 0;  // jobs in jobs_ still in their create step (JobControl::starting)
  bool draining_ = false;
  std::unique_ptr<asio::steady_timer> drained_;  // fires when the last job ends
  std::unique_ptr<asio::steady_timer> slot_free_;
  WorkerCounters counters_;
};

}  // namespace reelq::worker
