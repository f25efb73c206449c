#include "reelq/worker/worker.h"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "reelq/common/spawn.h"

namespace reelq::worker {

Worker::Worker(RunnerDeps& deps, redis::ConnectionPtr blocking,
               redis::ConnectionPtr cancel_blocking)
    : deps_(deps),
      blocking_(std::move(blocking)),
      cancel_blocking_(std::move(cancel_blocking)),
      runner_(deps) {
  deps_.on_started = [this] {
    --starting_;
    if (slot_free_) slot_free_->cancel();
  };
}

Worker::~Worker() { deps_.on_started = nullptr; }

awaitable<bool> Worker::Register() {
  auto executor = co_await asio::this_coro::executor;
  const auto& s = deps_.settings;
  while (!draining_) {
    const int64_t asked_ms = deps_.clock->NowMs();
    auto epoch = co_await deps_.store->RegisterWorker(s.worker_id, s.lease);
    if (epoch) {
      epoch_ = *epoch;
      lease_valid_until_ms_ = asked_ms + s.lease.count();
      spdlog::info("worker={} registered (epoch {})", s.worker_id, epoch_);
      co_return true;
    }
    spdlog::warn("worker={} cannot register: {}", s.worker_id, epoch.error().Describe());
    asio::steady_timer t(executor);
    t.expires_after(std::chrono::milliseconds(500));
    co_await t.async_wait(use_nothrow_awaitable);
  }
  co_return false;
}

void Worker::LoseEveryJob() {
  epoch_ = 0;
  for (auto& [id, held] : jobs_) held.control->Stop(StopReason::kLeaseLost);
}

void Worker::Drain() {
  if (draining_) return;
  draining_ = true;
  spdlog::info("worker={} draining: {} jobs in flight", deps_.settings.worker_id, jobs_.size());
  if (slot_free_) {
    slot_free_->cancel();
    // Out of the workers waiting for work now, not once LeaseLoop's wait ends: dispatch would
    // lease jobs to it meanwhile.
    SpawnOrDie(slot_free_->get_executor(), "stop-waiting", StopWaiting());
  }
}

awaitable<void> Worker::Run() {
  auto executor = co_await asio::this_coro::executor;
  drained_ = std::make_unique<asio::steady_timer>(executor);
  slot_free_ = std::make_unique<asio::steady_timer>(executor);
  if (!co_await Register()) co_return;
  SpawnOrDie(executor, "heartbeat", HeartbeatLoop());
  SpawnOrDie(executor, "lease-watchdog", LeaseWatchdog());
  if (cancel_blocking_) SpawnOrDie(executor, "cancel-listener", CancelLoop());
  co_await LeaseLoop();
  // Out of the workers waiting for work; what dispatch leased to it meanwhile goes back.
  co_await StopWaiting();

  // Draining: in-flight jobs go on until the deadline; then the rest are handed back.
  drained_->expires_after(deps_.settings.drain_timeout);
  if (!jobs_.empty()) co_await drained_->async_wait(use_nothrow_awaitable);
  if (!jobs_.empty()) {
    spdlog::info("worker={} drain deadline: handing back {} jobs", deps_.settings.worker_id,
                 jobs_.size());
    for (auto& [id, held] : jobs_) held.control->Stop(StopReason::kDrain);
    // Each job hands itself back and leaves `jobs_`; give them a bounded moment to do so.
    drained_->expires_after(std::chrono::seconds(30));
    co_await drained_->async_wait(use_nothrow_awaitable);
  }
  blocking_->Close();
  if (cancel_blocking_) cancel_blocking_->Close();
  spdlog::info("worker={} drained (succeeded={} failed={} retrying={} handed_back={})",
               deps_.settings.worker_id, counters_.succeeded, counters_.failed, counters_.retrying,
               counters_.handed_back);
}

awaitable<void> Worker::LeaseLoop() {
  auto executor = co_await asio::this_coro::executor;
  const auto& s = deps_.settings;
  while (!draining_) {
    if (epoch_ == 0 && !co_await Register()) break;
    // Bounded twice: jobs held, and of those the ones still in their create step, each of
    // which carries a create call's exchange (Settings::max_starting).
    const int free =
        std::min(s.max_in_flight - static_cast<int>(jobs_.size()), s.max_starting - starting_);
    // After a lease call whose answer was lost, or heartbeats that found Redis holding more
    // under this worker than it runs, the next call also hands back what Redis holds beyond the
    // jobs it runs.
    const bool hand_back = lease_answer_lost_ || holds_more_;
    if (free <= 0 && !hand_back) {
      // Full: wait until a job ends or leaves its create step (both cancel the timer). (A full
      // worker whose Redis holds more than it runs still makes the call that hands those back.)
      slot_free_->expires_after(std::chrono::seconds(1));
      co_await slot_free_->async_wait(use_nothrow_awaitable);
      continue;
    }
    // Read before the call: Redis sets the expiry from a later reading of the same clock.
    const int64_t asked_ms = deps_.clock->NowMs();
    std::vector<std::string> holding;
    if (hand_back) {
      for (const auto& [id, held] : jobs_) holding.push_back(id);
    }
    // At most 64 from `ready` a call; dispatch may lease it up to `free` straight.
    bool waiting = false;
    auto leased =
        co_await deps_.store->Lease(s.worker_id, std::clamp(free, 0, 64), s.lease, epoch_,
                                    hand_back ? &holding : nullptr, std::max(free, 0), &waiting);
    if (!leased && leased.error().category == ErrorCategory::kLeaseLost) {
      spdlog::warn("worker={} lease lost: stopping {} jobs, registering again", s.worker_id,
                   jobs_.size());
      LoseEveryJob();
      continue;
    }
    if (!leased) {
      // The call may have run in Redis with its answer lost on the way back.
      lease_answer_lost_ = true;
      spdlog::warn("worker={} lease failed: {}", s.worker_id, leased.error().Describe());
      asio::steady_timer t(executor);
      t.expires_after(std::chrono::milliseconds(500));
      co_await t.async_wait(use_nothrow_awaitable);
      continue;
    }
    lease_answer_lost_ = false;
    if (hand_back) holds_more_ = false;
    // Leasing extends the worker's lease: every job it holds is covered as long.
    if (!leased->empty()) {
      lease_valid_until_ms_ = std::max(lease_valid_until_ms_, asked_ms + s.lease.count());
    }
    for (auto& job : *leased) Start(executor, std::move(job));
    if ((leased->empty() || waiting) && !draining_) {
      // Nothing ready, or `ready` ran dry in this call and it entered this worker among those
      // waiting for work with the room it has left: block (on its own connection) until
      // dispatch leases jobs straight to it or puts work on `ready`; the next call returns
      // them. A failed wait loses nothing (it pops a token). Calling again at once would only
      // enter it again (a lease call per push for nothing, when each carries a job or two).
      auto waited = co_await deps_.store->WaitForWork(*blocking_, std::chrono::milliseconds(1000),
                                                      s.worker_id);
      if (!waited) {
        spdlog::warn("worker={} waiting for work failed: {}", s.worker_id,
                     waited.error().Describe());
        asio::steady_timer t(executor);
        t.expires_after(std::chrono::milliseconds(200));
        co_await t.async_wait(use_nothrow_awaitable);
      }
    }
  }
}

void Worker::Start(const asio::any_io_executor& executor, queue::LeasedJob job) {
  auto control = std::make_shared<JobControl>(executor);
  control->lease_valid_until_ms = lease_valid_until_ms_;
  // The job may come back to this worker while its previous attempt, stopped when the lease
  // was lost, is still inside a provider call: that attempt's token is stale, and from here on
  // the entry (cancels, heartbeats, drain) is the new attempt's. RunJob leaves it alone.
  auto& entry = jobs_[job.id];
  if (entry.control && entry.control->stop == StopReason::kNone) {
    entry.control->Stop(StopReason::kLeaseLost);
  }
  entry = Held{job.token, control};
  ++counters_.leased;
  ++starting_;
  std::string name = "job " + job.id;
  auto held = std::make_unique<queue::LeasedJob>(std::move(job));
  SpawnOrDie(executor, std::move(name), RunJob(std::move(held), control));
}

awaitable<void> Worker::StopWaiting() {
  if (epoch_ == 0) co_return;  // no lease: register.lua hands back whatever it held
  const auto& s = deps_.settings;
  std::vector<std::string> holding;
  for (const auto& [id, held] : jobs_) holding.push_back(id);
  auto stopped = co_await deps_.store->Lease(s.worker_id, 0, s.lease, epoch_, &holding);
  if (!stopped) {
    // Its jobs that dispatch pushed meanwhile go back when its lease lapses (the reaper).
    spdlog::warn("worker={} could not stop waiting for work: {}", s.worker_id,
                 stopped.error().Describe());
  }
}

awaitable<void> Worker::HeartbeatLoop() {
  auto executor = co_await asio::this_coro::executor;
  asio::steady_timer timer(executor);
  const auto& s = deps_.settings;
  while (!(draining_ && jobs_.empty())) {
    timer.expires_after(s.heartbeat);
    co_await timer.async_wait(use_nothrow_awaitable);
    if (epoch_ == 0) continue;  // LeaseLoop registers again
    const int64_t epoch = epoch_;
    // Read before the call, like the lease: the renewed expiry is at least this plus the lease.
    const int64_t sent_ms = deps_.clock->NowMs();
    // One call for the worker's one lease, however many jobs it holds.
    std::vector<std::string> acks(cancel_acks_.begin(), cancel_acks_.end());
    auto beat = co_await deps_.store->Heartbeat(s.worker_id, epoch, s.lease, acks,
                                                static_cast<int64_t>(jobs_.size()));
    if (!beat) {
      // The lease is not extended; LeaseWatchdog stops the jobs once it would lapse.
      spdlog::warn("worker={} heartbeat failed: {}", s.worker_id, beat.error().Describe());
      continue;
    }
    for (const auto& id : acks) cancel_acks_.erase(id);  // off the list in Redis now
    if (epoch != epoch_) continue;                       // registered again meanwhile
    if (beat->lease_lost) {
      spdlog::warn("worker={} lease lapsed and its jobs were handed on: stopping {} jobs",
                   s.worker_id, jobs_.size());
      LoseEveryJob();
      continue;
    }
    // Twice in a row: once can be a lease answer on its way to this worker as the heartbeat ran.
    more_streak_ = beat->holds_more ? more_streak_ + 1 : 0;
    if (more_streak_ >= 2 && !holds_more_) {
      spdlog::warn(
          "worker={} Redis holds more jobs under this worker than the {} it runs (a lost lease "
          "answer, or a failover that lost writes): its next lease call hands them back",
          s.worker_id, jobs_.size());
      holds_more_ = true;
      more_streak_ = 0;
      if (slot_free_) slot_free_->cancel();
    }
    for (const auto& id : beat->cancelled) StopCancelled(id);
    lease_valid_until_ms_ = std::max(lease_valid_until_ms_, sent_ms + s.lease.count());
    for (auto& [id, held] : jobs_) {
      // A job stopped by its own clock (kLeaseLapsed) is still covered while it winds down: if
      // Redis answers, the lease was ours after all, and a create call in flight can still
      // record its upstream id. It publishes nothing either way.
      auto& control = *held.control;
      if (control.stop != StopReason::kNone && control.stop != StopReason::kLeaseLapsed) continue;
      control.lease_valid_until_ms = std::max(control.lease_valid_until_ms, lease_valid_until_ms_);
    }
  }
}

void Worker::StopCancelled(const std::string& job_id) {
  cancel_acks_.insert(job_id);
  auto it = jobs_.find(job_id);
  // Seen again until acknowledged (by the listener and the heartbeat): stopped once.
  if (it == jobs_.end() || it->second.control->stop == StopReason::kCancelled) return;
  spdlog::info("worker={} job={} cancelled", deps_.settings.worker_id, job_id);
  it->second.control->Stop(StopReason::kCancelled);
}

awaitable<void> Worker::CancelLoop() {
  auto executor = co_await asio::this_coro::executor;
  const auto& s = deps_.settings;
  while (!(draining_ && jobs_.empty())) {
    auto cancelled = co_await deps_.store->WaitForCancel(*cancel_blocking_, s.worker_id,
                                                         std::chrono::milliseconds(5000));
    if (!cancelled) {
      if (draining_ && jobs_.empty()) break;
      asio::steady_timer t(executor);
      t.expires_after(std::chrono::milliseconds(200));
      co_await t.async_wait(use_nothrow_awaitable);
      continue;
    }
    for (const auto& id : *cancelled) StopCancelled(id);
  }
}

awaitable<void> Worker::LeaseWatchdog() {
  auto executor = co_await asio::this_coro::executor;
  asio::steady_timer timer(executor);
  const auto& s = deps_.settings;
  // Its own loop, not a step of HeartbeatLoop: a heartbeat to an unreachable Redis waits for
  // the command timeout, which may be longer than the lease itself.
  const auto guard_ms = JobRunner::SelfFenceGuard(s.lease).count();
  const auto tick = std::clamp<std::chrono::milliseconds>(
      s.lease / 20, std::chrono::milliseconds(10), std::chrono::milliseconds(250));
  while (!(draining_ && jobs_.empty())) {
    timer.expires_after(tick);
    co_await timer.async_wait(use_nothrow_awaitable);
    const int64_t now = deps_.clock->NowMs();
    for (auto& [id, h] : jobs_) {
      auto& control = *h.control;
      if (control.stop != StopReason::kNone || control.lease_valid_until_ms == 0) continue;
      if (now + guard_ms < control.lease_valid_until_ms) continue;
      spdlog::warn(
          "worker={} job={} lease lapses by this worker's clock (no heartbeat answered; valid "
          "until {}): stopping the job, another worker resumes it",
          s.worker_id, id, control.lease_valid_until_ms);
      control.Stop(StopReason::kLeaseLapsed);
    }
  }
}

awaitable<void> Worker::RunJob(std::unique_ptr<queue::LeasedJob> job,
                               std::shared_ptr<JobControl> control) {
  const std::string id = job->id;
  RunOutcome outcome = RunOutcome::kStopped;
  try {
    outcome = co_await runner_.Run(std::move(job), control);
  } catch (const std::exception& e) {
    // A bug must not take the other jobs down; the lease expires and the job is resumed.
    spdlog::error("job={} runner threw: {}", id, e.what());
  }
  MarkStarted(deps_, *control);  // an attempt that ended in its create step
  switch (outcome) {
    case RunOutcome::kSucceeded:
      ++counters_.succeeded;
      break;
    case RunOutcome::kRetrying:
      ++counters_.retrying;
      break;
    case RunOutcome::kFailed:
      ++counters_.failed;
      break;
    case RunOutcome::kStopped:
      ++counters_.stopped;
      break;
    case RunOutcome::kHandedBack:
      ++counters_.handed_back;
      break;
  }
  // Only this attempt's own entry: the job may have been leased to this worker again meanwhile.
  if (auto it = jobs_.find(id); it != jobs_.end() && it->second.control == control) jobs_.erase(it);
  if (slot_free_) slot_free_->cancel();
  if (draining_ && jobs_.empty() && drained_) drained_->cancel();
}

}  // namespace reelq::worker
