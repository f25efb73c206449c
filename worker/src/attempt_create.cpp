// An attempt's create step (Attempt::RecoverOrCreate): the create gate's permit, the create
// call, and the search for a task whose create answer was lost, so nothing is paid for twice.
#include <algorithm>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "attempt.h"
#include "input_images.h"
#include "reelq/common/random.h"
#include "store_writer.h"

namespace reelq::worker {
namespace {

// The reason stored on a job that ends because a create's outcome cannot be known.
constexpr std::string_view kCreateOutcomeUnknown = queue::kCreateOutcomeUnknown;
// Creates in a row whose answers were lost before the attempt is given up (with backoff).
constexpr int kMaxCreateRounds = 3;

// The spec as admission stored it: every default (aspect ratio, resolution, audio, the
// duration of a shot list) was applied there, once.
providers::GenerationRequest BuildRequest(const v1::JobSpec& spec,
                                          const providers::ModelSpec& model) {
  providers::GenerationRequest req;
  req.upstream_model = model.upstream_model;
  req.prompt = spec.prompt();
  req.negative_prompt = spec.negative_prompt();
  for (const auto& shot : spec.shots()) {
    req.shots.push_back({shot.prompt(), static_cast<int>(shot.duration_seconds())});
  }
  req.duration_seconds = static_cast<int>(spec.duration_seconds());
  req.aspect_ratio = spec.aspect_ratio();
  req.resolution = spec.resolution();
  req.audio = spec.audio();
  return req;
}

}  // namespace

awaitable<Result<int64_t>> Attempt::WaitForCreatePermit() {
  int errors = 0;
  while (!Stopping()) {
    const int64_t sent_ms = deps_.clock->NowMs();
    // A named request: g++ 12 double-destroys temporaries passed into a coroutine call inside
    // co_await.
    queue::PermitRequest request{job_.id, job_.token, sent_ms, job_.attempt};
    auto wait = co_await writer_.TakeCreatePermit(std::move(request));
    if (wait && wait->count() == 0) co_return sent_ms;
    if (!wait) {
      if (!IsRetryable(wait.error().category) || ++errors > 40) {
        co_return std::unexpected(wait.error());
      }
      co_await Sleep(std::chrono::milliseconds(250));
      continue;
    }
    co_await Sleep(std::min(*wait, std::chrono::milliseconds(1000)));
  }
  co_return MakeError(ErrorCategory::kCancelled, "stopped while waiting for the create rate");
}

// The upstream task of an attempt with none recorded: find one created by a lost answer, or
// create it. Stored before anything else happens, so whoever runs the job next resumes this
// task instead of paying for a new one.
awaitable<Attempt::StepResult> Attempt::RecoverOrCreate() {
  const auto& settings = deps_.settings;
  auto& provider = *provider_;
  // Past the finish deadline nothing new is created. A create an earlier lease sent may have
  // made a task all the same: where the provider can look it up, it is looked for first (found,
  // the poll path fetches it if it finished or cancels it); failed unlooked-for, the job would
  // be billed for a task nobody fetched, or for none. Where it cannot be looked up, the job ends
  // billed, as a create whose outcome cannot be known.
  const bool deadline_passed = DeadlinePassed();
  const Error too_late{ErrorCategory::kDeadlineExceeded,
                       "the finish deadline passed before it started"};
  if (deadline_passed && (job_.create_intent_ms == 0 || !provider.CanFindLostCreate())) {
    co_return co_await Fail(too_late);
  }
  // A create's idempotency id names its job and the time it was sent (its create intent's):
  // unique per create, so a job run again by RetryJob (its attempts count from 1 again) never
  // sends one the provider has seen (Kling refuses a repeated external_task_id for good), and a
  // later lease derives the id of a create whose answer was lost from the intent it left.
  auto idempotency_id = [&](int64_t sent_ms) { return job_.id + "-" + std::to_string(sent_ms); };
  auto request = BuildRequest(spec_, *model_);
  request.job_id = job_.id;
  // A chained shot's last frame starts the next shot: where the provider returns it, ask.
  request.return_last_frame = spec_.chain();
  if (auto loaded = co_await LoadInputImages(deps_.objects, spec_, &request); !loaded) {
    Error failure = loaded.error();
    // Fail would clear a create intent left by a lost answer, and the next attempt create
    // again: a passing store error leaves the intent for another lease to look up.
    if (job_.create_intent_ms > 0 && IsRetryable(failure.category)) {
      const std::string why = "its input images could not be read: " + failure.message;
      co_return co_await HandBackForAnother(why);
    }
    co_return co_await Fail(failure);
  }
  // Non-zero while a create of this attempt may have reached the provider without its
  // answer reaching the job record: an earlier lease died after sending it, or this one lost
  // the answer. Creating again could pay twice, so the task is looked for first.
  int64_t intent_ms = job_.create_intent_ms;
  // When that create's call ended. One an earlier lease sent may have been in the air until it
  // timed out (its worker died, or lost the lease, mid-call): the latest it could have ended.
  int64_t call_ended_ms = intent_ms > 0 ? intent_ms + settings.create_call_timeout.count() : 0;
  for (int round = 0;; ++round) {
    if (Stopping()) co_return RunOutcome::kStopped;
    if (intent_ms > 0) {
      spdlog::info("job={} attempt={}: a create sent at {} has no stored answer; looking for it",
                   job_.id, job_.attempt, intent_ms);
      if (!provider.CanFindLostCreate()) {
        if (!settings.RecreateOnUnknown(provider.name())) {
          Error failure{ErrorCategory::kCreateOutcomeUnknown,
                        std::string(provider.name()) +
                            " may have started (and billed) a generation for this job whose "
                            "answer was lost (the worker stopped or the connection failed "
                            "after the create was sent), and its API cannot look that "
                            "generation up; reelq does not create again, so nothing is paid "
                            "twice. RetryJob starts, and pays for, a new generation."};
          co_return co_await Fail(failure, kCreateOutcomeUnknown);
        }
        spdlog::warn("job={} creating again on {} (worker.on_unknown_create: recreate)", job_.id,
                     provider.name());
      } else {
        request.idempotency_id = idempotency_id(intent_ms);
        auto lost = co_await FindLostCreate(request, intent_ms, call_ended_ms);
        if (lost.outcome) co_return lost.outcome;
        if (lost.found) co_return std::nullopt;
        if (deadline_passed) {
          // The lookup says the create made nothing: ended as a create that got its answer
          // (at_create), so neither billed nor its slot held.
          co_return co_await Fail(too_late, {}, /*keep_task=*/false, /*at_create=*/true);
        }
        spdlog::info("job={} the lost create made no task upstream; creating", job_.id);
      }
    }
    if (round >= kMaxCreateRounds) {
      // Every lookup above found nothing, so giving the attempt up pays for nothing.
      Error failure{ErrorCategory::kRetryable,
                    "the answers of " + std::to_string(round) + " create calls were lost"};
      co_return co_await Fail(failure);
    }
    // The account's create gate lets the call go and, in the same step, records the intent
    // before the create is sent, so that whoever runs the job next knows to look. Nothing
    // exists upstream yet, so a stop while waiting needs no upstream cancel.
    // A create is paid for: never start one on a lease that is lost or lapsing (by the
    // heartbeat or this worker's own clock): its upstream id could not be recorded once the
    // reaper has handed the job on, and the next worker would pay again. Checked before the
    // permit, which records the intent: a permit granted means Redis still knew the token.
    if (!LeaseHeld()) {
      spdlog::info("job={} lease lost before the create call; another worker runs it", job_.id);
      co_return RunOutcome::kStopped;
    }
    auto permitted = co_await WaitForCreatePermit();
    if (!permitted) {
      spdlog::info("job={} not created: {}", job_.id, permitted.error().Describe());
      if (control_->stop == StopReason::kDrain) {
        (void)co_await Persist(
            [&] { return deps_.store->HandBack(job_.id, job_.token, "worker draining"); });
        co_return RunOutcome::kHandedBack;
      }
      co_return RunOutcome::kStopped;
    }
    intent_ms = *permitted;
    request.idempotency_id = idempotency_id(intent_ms);
    auto created = co_await provider.Create(request);
    if (!created) {
      CountProviderError(created.error());
      if (providers::MaybeDelivered(created.error())) {
        // A create that timed out may still be landing: the settle counts from now, not from
        // the send, which may be a whole api_timeout ago.
        call_ended_ms = std::max(intent_ms, deps_.clock->NowMs());
        spdlog::warn("job={} create outcome unknown: {}", job_.id, created.error().Describe());
        continue;
      }
      // The provider made nothing: fail (and retry) as usual; Fail clears the intent. A server
      // error or an auth refusal also cools the account (DecideRetry's at_create).
      Error failure = created.error();
      co_return co_await Fail(failure, {}, /*keep_task=*/false, /*at_create=*/true);
    }
    upstream_ = *created;
    upstream_since_ms_ = deps_.clock->NowMs();
    upstream_unrecorded_ = true;  // RecordUpstream, once this step's frame (the request) is gone
    co_return std::nullopt;
  }
}

// Stores the upstream id of the task this attempt just created. The task generates meanwhile
// (for far longer than a poll interval on a real model), so the write may wait up to half a poll
// interval to share its Redis call: that only moves this job's polls later by as much, not when
// its end is seen on average. A worker lost meanwhile leaves the create intent, which the next
// lease recovers from, as for a crash before the write. Its own step: while thousands of jobs
// start at once, each waiting write keeps this small frame, not the create's (its request).
awaitable<Attempt::StepResult> Attempt::RecordUpstream() {
  upstream_unrecorded_ = false;
  const auto may_wait = std::min(JobRunner::kMaxWriteWait, deps_.settings.min_poll_interval / 2);
  auto persisted = co_await Persist([&] {
    return writer_.SetPhase(
        {job_.id, job_.token, queue::JobPhase::kGenerating, upstream_, "upstream " + upstream_},
        may_wait);
  });
  if (!persisted) {
    const std::string task = upstream_;
    if (persisted.error().category == ErrorCategory::kCancelled) {
      (void)co_await provider_->Cancel(task);
      upstream_.clear();  // cancelled once: Stopped() must not cancel it again
    }
    spdlog::warn("job={} could not record upstream task {}: {}", job_.id, task,
                 persisted.error().Describe());
    co_return RunOutcome::kStopped;
  }
  co_return std::nullopt;
}

awaitable<Attempt::LostCreate> Attempt::FindLostCreate(const providers::GenerationRequest& request,
                                                       int64_t intent_ms, int64_t call_ended_ms) {
  const auto& settings = deps_.settings;
  auto& provider = *provider_;
  LostCreate result;
  // A create the provider is still making would not be listed yet.
  const int64_t settled_at =
      std::max(intent_ms, call_ended_ms) + settings.lost_create_settle.count();
  if (const int64_t now = deps_.clock->NowMs(); now < settled_at) {
    co_await Sleep(std::chrono::milliseconds(settled_at - now));
    if (Stopping()) {
      result.outcome = RunOutcome::kStopped;
      co_return result;
    }
  }
  auto found = co_await provider.FindLostCreate(request, intent_ms);
  if (!found && IsRetryable(found.error().category)) {
    spdlog::warn("job={} lost-create lookup failed: {}", job_.id, found.error().Describe());
    const int64_t age_ms = deps_.clock->NowMs() - intent_ms;
    const double timeout_s = model_->generation_timeout_seconds;
    if (timeout_s > 0 && age_ms > static_cast<int64_t>(timeout_s * 1000)) {
      // Whatever the create made would have ended (or been given up) by now: looking on would
      // hold the job and its account's slot for as long as the provider's lookup is down.
      Error failure{ErrorCategory::kCreateOutcomeUnknown,
                    fmt::format("a create sent {} s ago may have started (and billed) a "
                                "generation whose answer was lost, and {}'s lookup kept failing "
                                "({}) past the model's generation_timeout ({} s); reelq does not "
                                "create again, so nothing is paid twice. RetryJob starts, and "
                                "pays for, a new generation",
                                age_ms / 1000, provider.name(), found.error().message, timeout_s)};
      result.outcome = co_await Fail(failure, kCreateOutcomeUnknown);
      co_return result;
    }
    // Cannot tell now; another lease (the intent stays on the job) looks again after a pause
    // that grows with the intent's age, so a provider whose list is down is not asked in a
    // tight loop, and the pause is spent in `delayed`, not holding this worker. (Handed back
    // even when stopped: a drain hands back too, and a lost lease makes it a no-op.)
    // At least retry_backoff_initial, which may be set above the 5-minute ceiling (std::clamp
    // with its bounds reversed is undefined).
    const auto pause = std::max(
        settings.retry_backoff_initial,
        std::min(std::chrono::milliseconds(age_ms / 8), std::chrono::milliseconds(300'000)));
    const int64_t retry_at_ms =
        deps_.clock->NowMs() +
        std::max(EqualJitter(pause, rng_), found.error().retry_after).count();
    const std::string reason = "lost-create lookup failed: " + found.error().message;
    (void)co_await Persist(
        [&] { return deps_.store->HandBack(job_.id, job_.token, reason, retry_at_ms); });
    result.outcome = RunOutcome::kHandedBack;
    co_return result;
  }
  if (!found) {
    Error failure = found.error();
    result.outcome = co_await Fail(failure);
    co_return result;
  }
  // Best match first; a task another job already stored (an identical request) is skipped,
  // so two jobs never share one upstream task.
  for (const std::string& candidate : *found) {
    auto claimed = co_await Persist([&] {
      return writer_.SetPhase({job_.id, job_.token, queue::JobPhase::kGenerating, candidate,
                               "upstream " + candidate + " (found after a lost create answer)"});
    });
    if (claimed) {
      upstream_ = candidate;
      upstream_since_ms_ = intent_ms;
      result.found = true;
      spdlog::info("job={} found upstream task {} made by a create whose answer was lost", job_.id,
                   upstream_);
      co_return result;
    }
    if (claimed.error().category == ErrorCategory::kFailedPrecondition) {
      spdlog::info("job={} skips upstream task {}: {}", job_.id, candidate,
                   claimed.error().message);
      continue;
    }
    if (claimed.error().category == ErrorCategory::kCancelled) {
      (void)co_await provider.Cancel(candidate);
    }
    result.outcome = RunOutcome::kStopped;
    co_return result;
  }
  co_return result;
}

}  // namespace reelq::worker
