#include "attempt.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "chain_frame.h"
#include "input_images.h"
#include "reelq/common/random.h"
#include "reelq/common/spawn.h"
#include "reelq/worker/retry_policy.h"
#include "sidecar.h"
#include "store_writer.h"
#include "transfer.h"

namespace reelq::worker {
namespace {

using providers::TaskState;

// In the history entry of a hand-back of a job this worker cannot run (HandBackForCapableWorker),
// which counts them.
constexpr std::string_view kForACapableWorker = "handed back for a worker that can run it";

// The account's status-poll quota (accounts[].polls_per_minute); 0 when the provider does not
// count polls, and then polling costs no Redis call.
double PollsPerMinute(const providers::Catalogue& catalogue, const std::string& account) {
  for (const auto& a : catalogue.accounts) {
    if (a.id == account) return a.polls_per_minute;
  }
  return 0;
}

// A 429 once the task has finished (the clip's CDN throttling downloads, S3's SlowDown) says
// nothing about the account's create rate: it is retried for this job only, after its
// Retry-After, as a passing failure, and neither cools the account nor halves its learned rate
// (fail.lua does both for a rate_limited failure).
Error ThrottledForThisJob(Error error) {
  if (error.category != ErrorCategory::kRateLimited) return error;
  error.category = ErrorCategory::kRetryable;
  error.over_concurrency = false;
  error.message = "rate limited after the generation (retried for this job only): " + error.message;
  return error;
}

}  // namespace

Attempt::Attempt(RunnerDeps& deps, StoreWriter& writer, std::mt19937_64& rng, queue::LeasedJob job,
                 std::shared_ptr<JobControl> control)
    : deps_(deps),
      writer_(writer),
      rng_(rng),
      job_(std::move(job)),
      control_(std::move(control)),
      leased_ms_(deps.clock->NowMs()),
      upstream_(job_.upstream),
      // A task resumed from the record began before this lease: DateResumedTask looks up when.
      upstream_since_ms_(leased_ms_) {}

awaitable<RunOutcome> Attempt::Run() {
  if (auto ended = co_await Admit()) co_return co_await Ended(*ended);
  if (upstream_.empty()) {
    if (auto ended = co_await RecoverOrCreate()) co_return co_await Ended(*ended);
  } else {
    co_await DateResumedTask();
  }
  // The create's exchange is over: the worker may start another job while this one's upstream
  // id waits for company (max_starting bounds creates, not Redis writes).
  MarkStarted(deps_, *control_);
  if (upstream_unrecorded_) {
    if (auto ended = co_await RecordUpstream()) co_return co_await Ended(*ended);
  }
  if (auto ended = co_await PollUntilDone()) co_return co_await Ended(*ended);
  if (!Stopping()) {
    if (auto ended = co_await StoreClip()) co_return co_await Ended(*ended);
  }
  if (!Stopping()) {
    if (auto ended = co_await PublishSidecar()) co_return co_await Ended(*ended);
  }
  if (!Stopping() && spec_.chain()) {
    if (auto ended = co_await StoreLastFrame()) co_return co_await Ended(*ended);
  }
  if (!Stopping()) {
    if (auto ended = co_await Finish()) co_return co_await Ended(*ended);
  }
  co_return co_await Stopped();
}

// A step that ended because the attempt was asked to stop still owes the stop its due: a drain
// hands the job back at once (not to the reaper, a lease later), a cancel cancels the upstream
// task it knows of.
awaitable<RunOutcome> Attempt::Ended(RunOutcome outcome) {
  if (outcome == RunOutcome::kStopped && Stopping()) co_return co_await Stopped();
  co_return outcome;
}

awaitable<void> Attempt::Sleep(std::chrono::milliseconds duration) {
  if (Stopping()) co_return;
  control_->wake.expires_after(duration);
  co_await control_->wake.async_wait(use_nothrow_awaitable);
}

// Self-fence. Writes to the object store are not fenced by Redis: while Redis is out of reach
// no one can tell this worker that its lease is gone, yet the store may still take writes
// (a partition that cuts Redis off but not the bucket). So a clip or sidecar is committed, and
// a paid create started, only while the lease is still ours by this worker's own clock, with
// a guard; past that the job stops as if a heartbeat had reported the loss.
// Worker::LeaseWatchdog applies the same rule to every held job, so a job that is only
// polling stops too.
bool Attempt::LeaseHeld() {
  const auto guard_ms = JobRunner::SelfFenceGuard(deps_.settings.lease).count();
  if (!Stopping() && control_->lease_valid_until_ms > 0 &&
      deps_.clock->NowMs() + guard_ms >= control_->lease_valid_until_ms) {
    spdlog::warn("job={} lease lapses by this worker's clock (valid until {}): stopping the job",
                 job_.id, control_->lease_valid_until_ms);
    control_->Stop(StopReason::kLeaseLapsed);
  }
  return !Stopping();
}

bool Attempt::GenerationTimedOut() const {
  const double timeout_s = model_ != nullptr ? model_->generation_timeout_seconds : 0;
  return timeout_s > 0 &&
         deps_.clock->NowMs() - upstream_since_ms_ > static_cast<int64_t>(timeout_s * 1000);
}

// The provider's own word when it gives one; Veo's answer names no length, and then the clip is
// as long as the spec asked (the model made that duration). The sidecar and the record say the
// same.
double Attempt::ClipSeconds() const {
  return status_.clip_seconds > 0 ? status_.clip_seconds : spec_.duration_seconds();
}

std::chrono::milliseconds Attempt::SinceLease() const {
  return std::chrono::milliseconds(std::max<int64_t>(0, deps_.clock->NowMs() - leased_ms_));
}

bool Attempt::DeadlinePassed() const {
  return job_.finish_deadline_ms > 0 && deps_.clock->NowMs() > job_.finish_deadline_ms;
}

// Counted where they happen, for the alerts in deploy/prometheus (a 429 storm, a failing
// object store).
void Attempt::CountProviderError(const Error& error) {
  if (deps_.metrics == nullptr) return;
  deps_.metrics->provider_errors.WithLabels({job_.account, ToString(error.category)}).Inc();
}

void Attempt::CountStoreFailure(std::string_view object) {
  if (deps_.metrics != nullptr) deps_.metrics->store_failures.WithLabels({object}).Inc();
}

// `reason`: stored as the error code instead of the provider's own when not empty (a reason
// the provider-neutral vocabulary has no word for, such as create_outcome_unknown).
awaitable<RunOutcome> Attempt::Fail(const Error& error, std::string_view reason, bool keep_task,
                                    bool at_create) {
  const auto& settings = deps_.settings;
  auto decision = DecideRetry(error, job_.attempt, job_.max_attempts, settings, rng_, at_create,
                              /*after_generation=*/keep_task);
  queue::FailRequest req;
  req.job_id = job_.id;
  req.token = job_.token;
  req.category = error.category;
  req.message = error.message;
  req.code = reason.empty() ? error.provider_code : std::string(reason);
  req.retry = decision.retry;
  req.retry_at_ms = deps_.clock->NowMs() + decision.delay_ms;
  req.count_attempt = decision.count_attempt;
  req.cooldown_ms = decision.cooldown_ms;
  req.keep_task = keep_task;
  req.account_fault = decision.account_fault;
  req.over_concurrency = error.over_concurrency && error.category == ErrorCategory::kRateLimited;
  req.create_answered = at_create;
  spdlog::info("job={} attempt={} failed: {} (retry={})", job_.id, job_.attempt, error.Describe(),
               decision.retry);
  Result<queue::FailOutcome> outcome = std::unexpected(Error{});
  for (int i = 0; i < 40; ++i) {
    outcome = co_await deps_.store->Fail(req);
    if (outcome || !IsRetryable(outcome.error().category)) break;
    co_await Sleep(std::chrono::milliseconds(250));
  }
  if (!outcome) co_return RunOutcome::kStopped;
  co_return *outcome == queue::FailOutcome::kRetrying ? RunOutcome::kRetrying : RunOutcome::kFailed;
}

awaitable<RunOutcome> Attempt::HandBackForAnother(const std::string& why) {
  const auto pause = EqualJitter(
      std::max(deps_.settings.retry_backoff_initial, std::chrono::milliseconds(1)), rng_);
  const int64_t retry_at_ms = deps_.clock->NowMs() + pause.count();
  const std::string task = upstream_.empty() ? "a create whose answer was lost" : upstream_;
  spdlog::warn("job={} handed back, its upstream task ({}) kept, for a later lease: {}", job_.id,
               task, why);
  const std::string reason = why + "; handed back with its upstream task kept";
  auto handed = co_await Persist(
      [&] { return deps_.store->HandBack(job_.id, job_.token, reason, retry_at_ms); });
  co_return handed ? RunOutcome::kHandedBack : RunOutcome::kStopped;
}

awaitable<Attempt::StepResult> Attempt::HandBackForCapableWorker(const std::string& why) {
  // One read of the record, paid only on this path: how often, and since when, this attempt
  // was handed back so (its history keeps every hand-back's detail). Only the hand-backs since
  // the attempt was queued count: walking back from the newest entry, leases (RUNNING) are
  // passed and each hand-back counted, and any other entry (a retry or RetryJob back to
  // PENDING, a retry that kept its task, dispatch) is where this attempt began. Counted over
  // the job's whole life, a hand-back of an earlier attempt would fail a later one as
  // model_gone at once, although workers that can run it exist.
  int handed = 0;
  int64_t first_ms = 0;
  if (auto record = co_await deps_.store->Get(job_.id); record) {
    for (auto entry = record->history.rbegin(); entry != record->history.rend(); ++entry) {
      if (entry->state == queue::JobState::kRunning) continue;
      if (entry->state != queue::JobState::kDispatched ||
          entry->detail.find(kForACapableWorker) == std::string::npos) {
        break;
      }
      ++handed;
      first_ms = entry->at_ms;
    }
  } else {
    spdlog::warn("job={} its earlier hand-backs could not be read ({}); counted as none", job_.id,
                 record.error().Describe());
  }
  const int64_t now_ms = deps_.clock->NowMs();
  if (handed > 0 && now_ms - first_ms >= deps_.settings.wait_for_capable_worker.count()) {
    spdlog::error(
        "job={} no worker that can run it took it within {} ms of its first hand-back ({} "
        "hand-backs): {}",
        job_.id, deps_.settings.wait_for_capable_worker.count(), handed, why);
    co_return std::nullopt;
  }
  const auto& settings = deps_.settings;
  const double base =
      static_cast<double>(std::max<int64_t>(1, settings.retry_backoff_initial.count())) *
      std::pow(2.0, std::min(handed, 30));
  const auto capped = static_cast<int64_t>(std::min(
      base, static_cast<double>(std::max<int64_t>(1, settings.retry_backoff_max.count()))));
  const auto pause = EqualJitter(std::chrono::milliseconds(capped), rng_);
  spdlog::warn("job={} handed back for another worker without spending an attempt: {}", job_.id,
               why);
  const std::string reason = why + "; " + std::string(kForACapableWorker) + " (no attempt spent)";
  const int64_t retry_at_ms = now_ms + pause.count();
  auto handed_back = co_await Persist(
      [&] { return deps_.store->HandBack(job_.id, job_.token, reason, retry_at_ms); });
  co_return handed_back ? RunOutcome::kHandedBack : RunOutcome::kStopped;
}

awaitable<RunOutcome> Attempt::FailAfterGeneration(const Error& error) {
  const Error failure = ThrottledForThisJob(error);
  co_return co_await Fail(failure, {}, /*keep_task=*/true);
}

// Errors are handed to Fail as named variables throughout: g++ 12 double-destroys temporaries
// passed into a coroutine call inside co_await.
awaitable<Attempt::StepResult> Attempt::Admit() {
  if (!spec_.ParseFromString(job_.spec_bytes)) {
    Error failure{ErrorCategory::kInvalidRequest,
                  "the job record is corrupt: its spec does not parse"};
    co_return co_await Fail(failure);
  }
  // Parsed: the bytes would only double what each waiting job holds.
  std::string().swap(job_.spec_bytes);
  // A chained shot starts from the previous shot's last frame (set when that one succeeded).
  if (!job_.chain_frame.empty()) spec_.mutable_first_frame()->set_key(job_.chain_frame);
  model_ = deps_.catalogue->FindModel(job_.model);
  if (model_ == nullptr) {
    Error failure{
        ErrorCategory::kModelGone,
        "model '" + job_.model + "' is not in the catalogue of worker " + deps_.settings.worker_id};
    if (!MayHaveUpstreamTask()) {
      if (auto handed = co_await HandBackForCapableWorker(failure.message)) co_return handed;
    }
    co_return co_await Fail(failure);
  }
  auto provider = deps_.providers.find(job_.account);
  if (provider == deps_.providers.end() || !provider->second) {
    Error failure{ErrorCategory::kRetryable, "account '" + job_.account +
                                                 "' has no usable API key on worker " +
                                                 deps_.settings.worker_id};
    if (!MayHaveUpstreamTask()) {
      if (auto handed = co_await HandBackForCapableWorker(failure.message)) co_return handed;
    }
    // Handed back while its task could still be generating (a worker with the key resumes
    // it); past the model's generation_timeout it is failed as before, or a key gone from the
    // whole fleet would pass the job from worker to worker for good.
    if (MayHaveUpstreamTask()) {
      int64_t began_ms = job_.create_intent_ms > 0 ? job_.create_intent_ms : leased_ms_;
      if (!upstream_.empty()) {
        co_await DateResumedTask();
        began_ms = upstream_since_ms_;
      }
      const double timeout_s =
          model_->generation_timeout_seconds > 0 ? model_->generation_timeout_seconds : 3600;
      if (deps_.clock->NowMs() - began_ms < static_cast<int64_t>(timeout_s * 1000)) {
        co_return co_await HandBackForAnother(failure.message);
      }
    }
    co_return co_await Fail(failure);
  }
  provider_ = provider->second;
  co_return std::nullopt;
}

// The history entry that stored the upstream id ("upstream <id>", and " (found after …)" when a
// lost create was looked up) is when the task began, as far as reelq knows. One read of the
// record, paid only by a resumed task (a takeover, or a retry of a task kept from an earlier
// attempt), never by a job's ordinary life. When the read fails or the entry is gone, the
// timeout counts from this lease, which only ever gives the task longer.
awaitable<void> Attempt::DateResumedTask() {
  auto record = co_await deps_.store->Get(job_.id);
  if (!record) {
    spdlog::warn(
        "job={} resumes upstream task {}: its start could not be read ({}); its "
        "generation timeout counts from this lease",
        job_.id, upstream_, record.error().Describe());
    co_return;
  }
  const std::string stored = "upstream " + upstream_;
  for (auto entry = record->history.rbegin(); entry != record->history.rend(); ++entry) {
    const std::string& detail = entry->detail;
    if (detail.starts_with(stored) &&
        (detail.size() == stored.size() || detail[stored.size()] == ' ')) {
      if (entry->at_ms > 0 && entry->at_ms < upstream_since_ms_) upstream_since_ms_ = entry->at_ms;
      co_return;
    }
  }
}

// Polls until the upstream task ends; transient poll errors do not spend the upstream task.
// Returns nothing both when the task succeeded and when the attempt was asked to stop. Each
// poll is its own coroutine (PollOnce) and the wait between polls happens here, so a job
// waiting on its provider keeps only this small frame: the poll's locals (its answer, errors,
// the HTTP exchange below it) are gone while it sleeps.
awaitable<Attempt::StepResult> Attempt::PollUntilDone() {
  PollState state;
  state.polls_per_minute = PollsPerMinute(*deps_.catalogue, job_.account);
  while (!Stopping()) {
    const PollStep step = co_await PollOnce(state);
    if (step.ended) co_return step.ended;
    if (step.succeeded || step.stop || Stopping()) break;
    control_->wake.expires_after(step.wait);
    co_await control_->wake.async_wait(use_nothrow_awaitable);
  }
  generated_ms_ = deps_.clock->NowMs();
  co_return std::nullopt;
}

awaitable<Attempt::PollStep> Attempt::PollOnce(PollState& state) {
  const auto& settings = deps_.settings;
  auto& provider = *provider_;
  PollStep step;
  if (state.polls_per_minute > 0) {
    // The provider counts polls: take this poll's turn from the account's fleet-wide bucket
    // (one Redis call) and wait for it; no turn is ever refused.
    auto turn = co_await deps_.store->TakePollToken(job_.account, state.polls_per_minute);
    if (!turn) {
      step.wait = settings.min_poll_interval;
      co_return step;
    }
    if (turn->count() > 0) {
      co_await Sleep(*turn);
      if (Stopping()) {
        step.stop = true;
        co_return step;
      }
    }
  }
  auto polled = co_await provider.Poll(upstream_);
  // The deadlines are checked against the poll's answer, not before asking: a task that
  // finished while the worker waited to poll (a generation_timeout or finish deadline passing
  // between two polls, a kept task leased after it) made a clip the provider bills, which is
  // fetched, not thrown away with a cancel.
  if (!polled || polled->state == TaskState::kQueued || polled->state == TaskState::kRunning) {
    if (DeadlinePassed()) {
      (void)co_await provider.Cancel(upstream_);
      Error failure{ErrorCategory::kDeadlineExceeded,
                    "the finish deadline passed while generating"};
      step.ended = co_await Fail(failure);
      co_return step;
    }
    if (GenerationTimedOut()) {
      // A task the provider never ends (stuck in its queue, or answering in a shape we cannot
      // read) would hold the account's slot and its batch forever.
      (void)co_await provider.Cancel(upstream_);
      Error failure{ErrorCategory::kDeadlineExceeded,
                    fmt::format("upstream task {} on account {} did not end within the model's "
                                "generation_timeout ({} s); cancelled where the provider "
                                "allows. Not retried: the provider may still bill the task",
                                upstream_, job_.account, model_->generation_timeout_seconds)};
      step.ended = co_await Fail(failure, queue::kGenerationTimeout);
      co_return step;
    }
  }
  if (!polled) {
    Error failure = polled.error();
    CountProviderError(failure);
    // An auth failure on a poll does not end a task that is generating (and billed): a key
    // rotated mid-task, or a worker clock ahead of the provider's (Kling's JWT nbf), passes or is
    // fixed while the task runs on. It counts against the poll error budget like a transient
    // failure, which hands the job back with its task kept; generation_timeout bounds it.
    const bool passing =
        IsRetryable(failure.category) || failure.category == ErrorCategory::kAuthFailed;
    if (failure.category == ErrorCategory::kNotFound || !passing) {
      step.ended = co_await Fail(failure);
      co_return step;
    }
    if (++state.errors > settings.poll_error_budget) {
      (void)co_await Persist([&] {
        return deps_.store->HandBack(job_.id, job_.token,
                                     "upstream polls keep failing: " + failure.message);
      });
      step.ended = RunOutcome::kHandedBack;
      co_return step;
    }
    step.wait = std::max(settings.min_poll_interval, failure.retry_after);
    co_return step;
  }
  state.errors = 0;
  status_ = std::move(*polled);
  if (status_.state == TaskState::kSucceeded) {
    step.succeeded = true;
    co_return step;
  }
  if (status_.state == TaskState::kFailed || status_.state == TaskState::kCancelled) {
    Error failure = status_.error.value_or(
        Error{ErrorCategory::kRetryable, "the upstream task ended without a clip"});
    step.ended = co_await Fail(failure);
    co_return step;
  }
  step.wait = std::max(settings.min_poll_interval,
                       status_.poll_after.value_or(std::chrono::milliseconds(0)));
  co_return step;
}

// Streams the clip into the store under its deterministic key.
awaitable<Attempt::StepResult> Attempt::StoreClip() {
  const auto& settings = deps_.settings;
  // A group's children are stored beside the group's own output.
  clip_key_ =
      JobRunner::ClipKey(job_.tenant, job_.parent.empty() ? job_.batch : job_.parent, job_.id);
  sidecar_key_ = JobRunner::SidecarKey(clip_key_);
  // TRANSFERRING gives the account's slot back, so waiting to share the call idles the slot:
  // up to 0.1 % of the attempt's time so far (a poll interval's detection delay already costs
  // far more), i.e. the window for a job of seconds and 60 ms for one of a minute.
  const auto may_wait = std::min(JobRunner::kMaxWriteWait, SinceLease() / 1000);
  auto phase = co_await Persist([&] {
    return writer_.SetPhase(
        {job_.id, job_.token, queue::JobPhase::kTransferring, "", "storing " + clip_key_},
        may_wait);
  });
  if (!phase) co_return RunOutcome::kStopped;
  Error last{ErrorCategory::kRetryable, "transfer not tried"};
  bool stored = false;
  for (int attempt = 1; attempt <= settings.transfer_attempts && !stored; ++attempt) {
    if (Stopping()) break;
    storage::PutOptions options;
    options.content_type = "video/mp4";
    options.metadata = {{"job-id", job_.id},
                        {"model", job_.model},
                        {"upstream-id", upstream_},
                        {"worker", settings.worker_id}};
    auto writer = co_await deps_.objects->OpenWriter(clip_key_, options);
    if (!writer) {
      last = writer.error();
      CountStoreFailure("clip");
    } else {
      // The hash is of exactly the bytes stored, computed while streaming (the clip is never
      // held whole), and checked against the store's own size and checksum.
      auto transfer = std::make_shared<Transfer>(std::move(*writer), settings.max_clip_bytes);
      auto executor = co_await asio::this_coro::executor;
      SpawnOrDie(executor, "transfer " + job_.id,
                 RunTransfer(provider_, upstream_, status_, transfer, control_));
      // Woken by the download's end or by a stop, whichever comes first.
      while (!transfer->done && !Stopping()) {
        control_->wake.expires_after(std::chrono::minutes(1));
        co_await control_->wake.async_wait(use_nothrow_awaitable);
      }
      auto& sink = transfer->sink();
      if (!transfer->done) {
        co_await transfer->Abandon();
        break;
      }
      if (!transfer->result) {
        last = transfer->result.error();
        co_await sink.Abort();
      } else if (!LeaseHeld()) {
        co_await sink.Abort();
        break;
      } else {
        auto committed = co_await sink.Commit();
        if (!committed) {
          last = committed.error();
          CountStoreFailure("clip");
        } else {
          sha256_ = sink.sha256_hex();
          size_ = sink.bytes();
          published_now_ = !committed->already_existed;
          // The key already held a clip (an earlier attempt's, which a RetryJob made from
          // another task): that one stays, so the record and the sidecar describe it, not the
          // bytes this attempt downloaded. A store that keeps no checksum of its own (S3's HEAD
          // has none) and holds bytes of another size leaves the record's empty: unknown,
          // rather than the checksum of bytes that were not kept. Of the same size, it is the
          // same task fetched again (a kept task's retry), whose bytes are this download's.
          const auto& existing = committed->info;
          if (committed->already_existed) {
            const bool other_bytes =
                existing.sha256.empty() ? existing.size != size_ : existing.sha256 != sha256_;
            if (other_bytes) {
              spdlog::warn(
                  "job={} {} was already stored from an earlier attempt and is kept: "
                  "its checksum is {}, this download's {}",
                  job_.id, clip_key_, existing.sha256.empty() ? "unknown" : existing.sha256,
                  sha256_);
            }
            if (!existing.sha256.empty()) {
              sha256_ = existing.sha256;
            } else if (other_bytes) {
              sha256_.clear();
            }
            size_ = existing.size;
          }
          stored = true;
        }
      }
    }
    if (stored) break;
    last = ThrottledForThisJob(std::move(last));
    if (!IsRetryable(last.category)) break;
    if (attempt < settings.transfer_attempts) {
      co_await Sleep(std::max<std::chrono::milliseconds>(settings.retry_backoff_initial * attempt,
                                                         last.retry_after));
    }
  }
  if (!stored && !Stopping()) co_return co_await FailAfterGeneration(last);
  co_return std::nullopt;
}

awaitable<Attempt::StepResult> Attempt::PublishSidecar() {
  SidecarFacts facts{.job = job_,
                     .spec = spec_,
                     .model = *model_,
                     .upstream = upstream_,
                     .worker_id = deps_.settings.worker_id,
                     .clip_seconds = ClipSeconds(),
                     .clip_key = clip_key_,
                     .size_bytes = size_,
                     .sha256 = sha256_,
                     .leased_ms = leased_ms_,
                     .generated_ms = generated_ms_,
                     .stored_ms = deps_.clock->NowMs()};
  const std::string text = SidecarJson(facts);
  storage::PutOptions options;
  options.content_type = "application/json";
  // Tried as often as the clip: one failed write (an S3 503) must not cost the attempt.
  Error last{ErrorCategory::kRetryable, "sidecar not tried"};
  for (int attempt = 1; attempt <= deps_.settings.transfer_attempts; ++attempt) {
    if (Stopping()) co_return std::nullopt;
    auto writer = co_await deps_.objects->OpenWriter(sidecar_key_, options);
    if (writer) {
      auto w = co_await (*writer)->Write(std::as_bytes(std::span(text.data(), text.size())));
      if (!w) {
        last = w.error();
        co_await (*writer)->Abort();
      } else if (!LeaseHeld()) {
        co_await (*writer)->Abort();
        co_return std::nullopt;
      } else {
        auto committed = co_await (*writer)->Commit();
        if (committed) co_return std::nullopt;
        last = committed.error();
      }
    } else {
      last = writer.error();
    }
    CountStoreFailure("sidecar");
    last = ThrottledForThisJob(std::move(last));
    if (!IsRetryable(last.category)) break;
    if (attempt < deps_.settings.transfer_attempts) {
      co_await Sleep(std::max<std::chrono::milliseconds>(
          deps_.settings.retry_backoff_initial * attempt, last.retry_after));
    }
  }
  if (Stopping()) co_return std::nullopt;
  co_return co_await FailAfterGeneration(last);
}

awaitable<Attempt::StepResult> Attempt::StoreLastFrame() {
  ChainFrameSource source{.tenant = job_.tenant,
                          .clip_key = clip_key_,
                          .provider = provider_,
                          .upstream = upstream_,
                          .status = status_};
  auto stored = co_await StoreChainFrame(deps_, std::move(source));
  if (!stored) {
    CountStoreFailure("last_frame");
    Error failure = stored.error();
    failure.message = "the chain's next shot needs this shot's last frame: " + failure.message;
    co_return co_await FailAfterGeneration(failure);
  }
  last_frame_key_ = std::move(*stored);
  co_return std::nullopt;
}

awaitable<Attempt::StepResult> Attempt::Finish() {
  queue::CompleteRequest done;
  done.job_id = job_.id;
  done.token = job_.token;
  done.output_key = clip_key_;
  done.sidecar_key = sidecar_key_;
  done.sha256 = sha256_;
  done.clip_seconds = ClipSeconds();
  done.generation_ms = std::max<int64_t>(0, generated_ms_ - leased_ms_);
  auto url = deps_.objects->PresignGet(clip_key_, std::chrono::hours(24 * 7));
  done.output_url = url ? *url : "";
  done.last_frame_key = last_frame_key_;
  // Waiting to share a call costs this job up to 1 % of its time so far (and nothing to the
  // account, whose slot is already free): a completion of a job of minutes waits up to
  // kMaxWriteWait, one of a job of milliseconds only the window.
  const auto may_wait = std::min(JobRunner::kMaxWriteWait, SinceLease() / 100);
  auto completed = co_await Persist([&] { return writer_.Complete(done, may_wait); });
  if (completed) co_return RunOutcome::kSucceeded;
  if (completed.error().category == ErrorCategory::kCancelled) {
    control_->Stop(StopReason::kCancelled);
    co_return std::nullopt;
  }
  spdlog::warn("job={} could not be completed: {}", job_.id, completed.error().Describe());
  co_return RunOutcome::kStopped;
}

// Stopped: cancelled, lease lost or draining.
awaitable<RunOutcome> Attempt::Stopped() {
  switch (control_->stop) {
    case StopReason::kCancelled:
      // provider_ is unset when the attempt stopped before Admit found the account's key.
      if (!upstream_.empty() && provider_) (void)co_await provider_->Cancel(upstream_);
      if (published_now_) {
        // Nothing is published for a cancelled job.
        (void)co_await deps_.objects->Delete(sidecar_key_);
        (void)co_await deps_.objects->Delete(clip_key_);
      }
      spdlog::info("job={} cancelled; stopped", job_.id);
      break;
    case StopReason::kDrain:
      (void)co_await Persist(
          [&] { return deps_.store->HandBack(job_.id, job_.token, "worker draining"); });
      co_return RunOutcome::kHandedBack;
    case StopReason::kLeaseLost:
    case StopReason::kLeaseLapsed:
    case StopReason::kNone:
      spdlog::info("job={} lease lost; another worker resumes it", job_.id);
      break;
  }
  co_return RunOutcome::kStopped;
}

}  // namespace reelq::worker
