#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>

#include "reelq/common/asio.h"
#include "reelq/providers/provider.h"
#include "reelq/queue/job_store.h"
#include "reelq/v1/jobs.pb.h"
#include "reelq/worker/job_runner.h"

namespace reelq::worker {

class StoreWriter;

// One attempt at one leased job, as a sequence of steps: admit (the record's spec, model and
// account), recover or create the upstream task (and record its id), poll it to its end, store the
// clip, publish the sidecar, finish (record the outcome). Each step is its own coroutine, so only
// the step in progress holds a frame: a job waiting on its provider for minutes costs the attempt's
// fields and the small polling frame, not the locals of every step (one coroutine for the whole
// life made that frame about 9 KB a job, most of a 10,000-job worker's memory).
//
// A step returns the attempt's outcome when the attempt ends there, or nothing to go on. A step
// that sees a stop request (cancel, lease lost, drain) returns nothing; Run then stops the
// attempt the way the request asks (Stopped).
class Attempt {
 public:
  Attempt(RunnerDeps& deps, StoreWriter& writer, std::mt19937_64& rng, queue::LeasedJob job,
          std::shared_ptr<JobControl> control);

  awaitable<RunOutcome> Run();

 private:
  using StepResult = std::optional<RunOutcome>;

  awaitable<StepResult> Admit();
  awaitable<StepResult> RecoverOrCreate();
  // A task resumed from an earlier lease (a takeover, a kept task): when it began, from the
  // job's history, so its generation_timeout is not restarted by every takeover.
  awaitable<void> DateResumedTask();
  // After RecoverOrCreate made a task: stores its upstream id (the write may wait for company).
  awaitable<StepResult> RecordUpstream();
  // After a create whose answer was lost: the task it made, if the provider lists one.
  // `outcome` set: the attempt ends; otherwise `found` says whether upstream_ now holds it.
  // `call_ended_ms`: when the create's call ended (or may have, at the latest); the provider is
  // asked lost_create_settle after that.
  struct LostCreate {
    StepResult outcome;
    bool found = false;
  };
  awaitable<LostCreate> FindLostCreate(const providers::GenerationRequest& request,
                                       int64_t intent_ms, int64_t call_ended_ms);
  awaitable<StepResult> PollUntilDone();
  // One poll of the upstream task, and what follows from its answer.
  struct PollState {
    int errors = 0;  // polls failed in a row
    double polls_per_minute = 0;
  };
  struct PollStep {
    StepResult ended;  // the attempt ends with this
    bool succeeded = false;
    bool stop = false;                  // asked to stop while waiting for the poll's turn
    std::chrono::milliseconds wait{0};  // before the next poll
  };
  awaitable<PollStep> PollOnce(PollState& state);
  awaitable<StepResult> StoreClip();
  awaitable<StepResult> PublishSidecar();
  // A chained shot with a next shot: stores its last frame for that one (chain_frame.cpp).
  awaitable<StepResult> StoreLastFrame();
  awaitable<StepResult> Finish();
  awaitable<RunOutcome> Stopped();
  // What a step's end becomes: Stopped() when it ended because the attempt was asked to stop.
  awaitable<RunOutcome> Ended(RunOutcome outcome);

  // This worker cannot go on with a job whose upstream task may already exist (its id recorded,
  // or a create intent left by a lost answer): failing it would clear the task and the next
  // attempt would pay for another. It goes back for a worker that can (the account's key), after
  // a jittered pause so this one does not lease it straight back.
  awaitable<RunOutcome> HandBackForAnother(const std::string& why);
  // A fresh job (no upstream task yet) that this worker cannot run: its account has no usable
  // key here, or its model is not in this worker's catalogue (a worker of a rollout not yet
  // given them). Failing it would spend an attempt (or end it as model_gone) while other
  // workers could run it, and this worker, its room free again at once, would draw the
  // retries. It is handed back, spending no attempt, after a pause that doubles with each such
  // hand-back (retry_backoff_initial up to retry_backoff_max), for as long as
  // Settings::wait_for_capable_worker after its first one; nothing once that has passed (a key
  // or model missing from the whole fleet), and the caller then fails the job as before.
  awaitable<StepResult> HandBackForCapableWorker(const std::string& why);
  bool MayHaveUpstreamTask() const { return !upstream_.empty() || job_.create_intent_ms > 0; }
  // Records the failure (the retry policy decides whether the job runs again).
  // `at_create`: the error is the provider's answer to this attempt's create (DecideRetry), which
  // made nothing: its create intent is settled, and fail.lua does not bill it.
  awaitable<RunOutcome> Fail(const Error& error, std::string_view reason = {},
                             bool keep_task = false, bool at_create = false);
  // A failure once the upstream task has finished (its clip downloaded, stored, published):
  // the provider made the clip and bills it, so a retry fetches it again from the same task
  // instead of paying for another. Even a download refused as gone (an expired URL, a CDN's
  // 403): the retry's poll hands out a fresh URL. A task the provider no longer knows (the
  // poll's kNotFound) ends the job as result_expired, charged: it is not made again.
  awaitable<RunOutcome> FailAfterGeneration(const Error& error);
  // Retries a Redis call that must land (the upstream id, the outcome) through a Redis
  // restart for as long as the lease could still be ours; a stale token ends the retries.
  template <class MakeCall>
  awaitable<Result<void>> Persist(MakeCall make_call);
  // Waits until the account's create gate lets this job's create go (JobStore::
  // TakeCreatePermit, which also records the create intent); returns when the create was let
  // go. An error when the job stopped or was lost meanwhile.
  awaitable<Result<int64_t>> WaitForCreatePermit();
  awaitable<void> Sleep(std::chrono::milliseconds duration);

  // Self-fence: whether the lease is still ours by this worker's own clock (see LeaseHeld in
  // attempt.cpp); stops the attempt when it is not.
  bool LeaseHeld();
  bool DeadlinePassed() const;
  // The model's generation_timeout has passed since the upstream task began (its create, as
  // this worker saw it or the job's history recorded it; the lease that resumed it when the
  // history could not be read).
  bool GenerationTimedOut() const;
  std::chrono::milliseconds SinceLease() const;
  // The clip's length, for the sidecar and the record alike.
  double ClipSeconds() const;
  bool Stopping() const { return control_->stop != StopReason::kNone; }
  void CountProviderError(const Error& error);
  void CountStoreFailure(std::string_view object);

  RunnerDeps& deps_;
  StoreWriter& writer_;
  std::mt19937_64& rng_;
  queue::LeasedJob job_;  // its spec_bytes dropped once parsed (Admit)
  const std::shared_ptr<JobControl> control_;
  const int64_t leased_ms_;

  // Set by Admit.
  v1::JobSpec spec_;
  const providers::ModelSpec* model_ = nullptr;
  providers::ProviderPtr provider_;
  // Set by RecoverOrCreate (or the record, for a resumed attempt) and PollUntilDone.
  std::string upstream_;
  bool upstream_unrecorded_ = false;  // created by this attempt, not yet stored (RecordUpstream)
  int64_t upstream_since_ms_ = 0;     // when upstream_ began, by GenerationTimedOut's reckoning
  providers::TaskStatus status_;
  int64_t generated_ms_ = 0;
  // Set by StoreClip.
  std::string clip_key_;
  std::string sidecar_key_;
  std::string sha256_;
  uint64_t size_ = 0;
  bool published_now_ = false;
  // Set by StoreLastFrame.
  std::string last_frame_key_;
};

// A template: both attempt.cpp and attempt_create.cpp instantiate it.
template <class MakeCall>
awaitable<Result<void>> Attempt::Persist(MakeCall make_call) {
  Error last{ErrorCategory::kRetryable, "not tried"};
  const auto give_up = std::chrono::steady_clock::now() + deps_.settings.lease;
  for (int i = 0; std::chrono::steady_clock::now() < give_up; ++i) {
    auto r = co_await make_call();
    if (r || !IsRetryable(r.error().category)) co_return r;
    last = r.error();
    asio::steady_timer t(co_await asio::this_coro::executor);
    t.expires_after(std::chrono::milliseconds(std::min(50 << std::min(i, 5), 1000)));
    co_await t.async_wait(use_nothrow_awaitable);
  }
  co_return std::unexpected(last);
}

}  // namespace reelq::worker
