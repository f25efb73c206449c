#include "reelq/worker/job_runner.h"

#include <algorithm>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "input_images.h"
#include "reelq/common/random.h"
#include "reelq/common/spawn.h"
#include "reelq/v1/jobs.pb.h"
#include "reelq/worker/retry_policy.h"
#include "store_writer.h"
#include "transfer.h"

namespace reelq::worker {
namespace {

using providers::TaskState;

awaitable<void> Sleep(JobControl& control, std::chrono::milliseconds duration) {
  if (control.stop != StopReason::kNone) co_return;
  control.wake.expires_after(duration);
  co_await control.wake.async_wait(use_nothrow_awaitable);
}

// The reason stored on a job that ends because a create's outcome cannot be known.
constexpr std::string_view kCreateOutcomeUnknown = queue::kCreateOutcomeUnknown;
// Creates in a row whose answers were lost before the attempt is given up (with backoff).
constexpr int kMaxCreateRounds = 3;

// Whether a failed create may still have made (and billed) an upstream task: the request may
// have reached the provider (the adapter's typed flag; providers/provider.h says when).
bool MaybeCreated(const Error& error) { return providers::MaybeDelivered(error); }

providers::GenerationRequest BuildRequest(const v1::JobSpec& spec,
                                          const providers::ModelSpec& model,
                                          const std::string& idempotency_id) {
  providers::GenerationRequest req;
  req.upstream_model = model.upstream_model;
  req.prompt = spec.prompt();
  req.negative_prompt = spec.negative_prompt();
  int total = 0;
  for (const auto& shot : spec.shots()) {
    req.shots.push_back({shot.prompt(), static_cast<int>(shot.duration_seconds())});
    total += static_cast<int>(shot.duration_seconds());
  }
  req.duration_seconds =
      spec.duration_seconds() > 0 ? static_cast<int>(spec.duration_seconds()) : total;
  req.aspect_ratio = spec.aspect_ratio().empty() ? "16:9" : spec.aspect_ratio();
  req.resolution = spec.resolution().empty() ? "720p" : spec.resolution();
  req.audio = !spec.has_audio() || spec.audio();
  req.idempotency_id = idempotency_id;
  return req;
}

// The account's status-poll quota (accounts[].polls_per_minute); 0 when the provider does not
// count polls, and then polling costs no Redis call.
double PollsPerMinute(const providers::Catalogue& catalogue, const std::string& account) {
  for (const auto& a : catalogue.accounts) {
    if (a.id == account) return a.polls_per_minute;
  }
  return 0;
}

}  // namespace

// Backoff jitter comes from the process's one seeded source (common/random.h), so a run with
// REELQ_RANDOM_SEED repeats its choices.
JobRunner::JobRunner(RunnerDeps& deps)
    : deps_(deps),
      writer_(std::make_unique<StoreWriter>(*deps.store, kWriteWindow,
                                            deps.settings.create_rate_guard)),
      rng_(NewRng()) {}

JobRunner::~JobRunner() = default;

std::string JobRunner::ClipKey(const std::string& tenant, const std::string& batch,
                               const std::string& job_id) {
  return tenant + "/" + (batch.empty() ? job_id : batch) + "/" + job_id + ".mp4";
}

std::string JobRunner::SidecarKey(const std::string& clip_key) {
  return clip_key.substr(0, clip_key.size() - 4) + ".json";
}

awaitable<Result<int64_t>> JobRunner::WaitForCreatePermit(const queue::LeasedJob& job,
                                                          JobControl& control) {
  int errors = 0;
  while (control.stop == StopReason::kNone) {
    const int64_t sent_ms = deps_.clock->NowMs();
    // A named request: g++ 12 double-destroys temporaries passed into a coroutine call inside
    // co_await.
    queue::PermitRequest request{job.id, job.token, sent_ms, job.attempt};
    auto wait = co_await writer_->TakeCreatePermit(std::move(request));
    if (wait && wait->count() == 0) co_return sent_ms;
    if (!wait) {
      if (!IsRetryable(wait.error().category) || ++errors > 40) {
        co_return std::unexpected(wait.error());
      }
      co_await Sleep(control, std::chrono::milliseconds(250));
      continue;
    }
    co_await Sleep(control, std::min(*wait, std::chrono::milliseconds(1000)));
  }
  co_return MakeError(ErrorCategory::kCancelled, "stopped while waiting for the create rate");
}

awaitable<RunOutcome> JobRunner::Run(queue::LeasedJob job, std::shared_ptr<JobControl> control) {
  auto& store = *deps_.store;
  const auto& settings = deps_.settings;
  const int64_t leased_ms = deps_.clock->NowMs();

  // The two helpers below are lambda coroutines capturing by reference; that is safe only
  // because each call is awaited at once inside this frame, which outlives it.
  // Redis calls that must land (the upstream id, the outcome) are retried through a Redis
  // restart for as long as the lease could still be ours; a stale token ends the retries.
  auto persist = [&](auto make_call) -> awaitable<Result<void>> {
    Error last{ErrorCategory::kRetryable, "not tried"};
    const auto give_up = std::chrono::steady_clock::now() + settings.lease;
    for (int i = 0; std::chrono::steady_clock::now() < give_up; ++i) {
      auto r = co_await make_call();
      if (r || !IsRetryable(r.error().category)) co_return r;
      last = r.error();
      asio::steady_timer t(co_await asio::this_coro::executor);
      t.expires_after(std::chrono::milliseconds(std::min(50 << std::min(i, 5), 1000)));
      co_await t.async_wait(use_nothrow_awaitable);
    }
    co_return std::unexpected(last);
  };

  // Self-fence. Writes to the object store are not fenced by Redis: while Redis is out of reach
  // no one can tell this worker that its lease is gone, yet the store may still take writes
  // (a partition that cuts Redis off but not the bucket). So a clip or sidecar is committed, and
  // a paid create started, only while the lease is still ours by this worker's own clock, with
  // a guard; past that the job stops as if a heartbeat had reported the loss.
  // Worker::LeaseWatchdog applies the same rule to every held job, so a job that is only
  // polling stops too.
  const auto guard_ms = SelfFenceGuard(settings.lease).count();
  auto lease_held = [&] {
    if (control->stop == StopReason::kNone && control->lease_valid_until_ms > 0 &&
        deps_.clock->NowMs() + guard_ms >= control->lease_valid_until_ms) {
      spdlog::warn("job={} lease lapses by this worker's clock (valid until {}): stopping the job",
                   job.id, control->lease_valid_until_ms);
      control->Stop(StopReason::kLeaseLapsed);
    }
    return control->stop == StopReason::kNone;
  };

  // Takes the error by reference to a named variable: g++ 12 double-destroys temporaries
  // passed into a coroutine call inside co_await.
  // Counted where they happen, for the alerts in deploy/prometheus (a 429 storm, a failing
  // object store).
  auto count_provider_error = [&](const Error& error) {
    if (deps_.metrics == nullptr) return;
    deps_.metrics->provider_errors.WithLabels({job.account, ToString(error.category)}).Inc();
  };
  auto count_store_failure = [&](std::string_view object) {
    if (deps_.metrics != nullptr) deps_.metrics->store_failures.WithLabels({object}).Inc();
  };

  // `reason`: stored as the error code instead of the provider's own when not empty (a reason
  // the provider-neutral vocabulary has no word for, such as create_outcome_unknown).
  auto fail = [&](const Error& error, std::string_view reason) -> awaitable<RunOutcome> {
    auto decision = DecideRetry(error, job.attempt, job.max_attempts, settings, rng_);
    queue::FailRequest req;
    req.job_id = job.id;
    req.token = job.token;
    req.category = error.category;
    req.message = error.message;
    req.code = reason.empty() ? error.provider_code : std::string(reason);
    req.retry = decision.retry;
    req.retry_at_ms = deps_.clock->NowMs() + decision.delay_ms;
    req.count_attempt = decision.count_attempt;
    req.cooldown_ms = decision.cooldown_ms;
    spdlog::info("job={} attempt={} failed: {} (retry={})", job.id, job.attempt, error.Describe(),
                 decision.retry);
    Result<queue::FailOutcome> outcome = std::unexpected(Error{});
    for (int i = 0; i < 40; ++i) {
      outcome = co_await store.Fail(req);
      if (outcome || !IsRetryable(outcome.error().category)) break;
      co_await Sleep(*control, std::chrono::milliseconds(250));
    }
    if (!outcome) co_return RunOutcome::kStopped;
    co_return *outcome == queue::FailOutcome::kRetrying ? RunOutcome::kRetrying
                                                        : RunOutcome::kFailed;
  };

  v1::JobSpec spec;
  if (!spec.ParseFromString(job.spec_bytes)) {
    {
      Error failure = Error{ErrorCategory::kInvalidRequest,
                            "the job record is corrupt: its spec does not parse"};
      auto awaited = co_await fail(failure, "");
      co_return awaited;
    }
  }
  const auto* model = deps_.catalogue->FindModel(job.model);
  if (model == nullptr) {
    Error failure{ErrorCategory::kModelGone,
                  "model '" + job.model + "' is not in this worker's catalogue"};
    auto awaited = co_await fail(failure, "");
    co_return awaited;
  }
  auto provider_it = deps_.providers.find(job.account);
  if (provider_it == deps_.providers.end() || !provider_it->second) {
    Error failure{
        ErrorCategory::kRetryable,
        "account '" + job.account + "' has no usable API key on worker " + settings.worker_id};
    auto awaited = co_await fail(failure, "");
    co_return awaited;
  }
  auto& provider = *provider_it->second;
  const auto deadline_passed = [&] {
    return job.finish_deadline_ms > 0 && deps_.clock->NowMs() > job.finish_deadline_ms;
  };

  // 1. The upstream task: resume the stored one, find one created by a lost answer, or create.
  std::string upstream = job.upstream;
  const std::string idempotency_id = job.id + "-" + std::to_string(job.attempt);
  if (upstream.empty()) {
    if (deadline_passed()) {
      {
        Error failure =
            Error{ErrorCategory::kDeadlineExceeded, "the finish deadline passed before it started"};
        auto awaited = co_await fail(failure, "");
        co_return awaited;
      }
    }
    auto request = BuildRequest(spec, *model, idempotency_id);
    request.job_id = job.id;
    if (auto loaded = co_await LoadInputImages(deps_.objects, spec, &request); !loaded) {
      Error failure = loaded.error();
      auto awaited = co_await fail(failure, "");
      co_return awaited;
    }
    // Non-zero while a create of this attempt may have reached the provider without its
    // answer reaching the job record: an earlier lease died after sending it, or this one lost
    // the answer. Creating again could pay twice, so the task is looked for first.
    int64_t intent_ms = job.create_intent_ms;
    bool stored = false;
    for (int round = 0; !stored; ++round) {
      if (control->stop != StopReason::kNone) co_return RunOutcome::kStopped;
      if (intent_ms > 0) {
        spdlog::info("job={} attempt={}: a create sent at {} has no stored answer; looking for it",
                     job.id, job.attempt, intent_ms);
        if (!provider.CanFindLostCreate()) {
          if (!settings.RecreateOnUnknown(provider.name())) {
            Error failure{ErrorCategory::kCreateOutcomeUnknown,
                          std::string(provider.name()) +
                              " may have started (and billed) a generation for this job whose "
                              "answer was lost (the worker stopped or the connection failed "
                              "after the create was sent), and its API cannot look that "
                              "generation up; reelq does not create again, so nothing is paid "
                              "twice. RetryJob starts, and pays for, a new generation."};
            auto awaited = co_await fail(failure, kCreateOutcomeUnknown);
            co_return awaited;
          }
          spdlog::warn("job={} creating again on {} (worker.on_unknown_create: recreate)", job.id,
                       provider.name());
        } else {
          // A create still on its way to the provider would not be listed yet.
          const int64_t settled_at = intent_ms + settings.lost_create_settle.count();
          if (const int64_t now = deps_.clock->NowMs(); now < settled_at) {
            co_await Sleep(*control, std::chrono::milliseconds(settled_at - now));
            if (control->stop != StopReason::kNone) co_return RunOutcome::kStopped;
          }
          auto found = co_await provider.FindLostCreate(request, intent_ms);
          if (!found && IsRetryable(found.error().category)) {
            // Cannot tell now; another lease (the intent stays on the job) looks again, after
            // a pause so that a provider whose list is down is not asked in a tight loop. (Handed
            // back even when stopped: a drain hands back too, and a lost lease makes it a no-op.)
            spdlog::warn("job={} lost-create lookup failed: {}", job.id, found.error().Describe());
            co_await Sleep(*control,
                           std::max(settings.retry_backoff_initial, found.error().retry_after));
            (void)co_await persist([&] {
              return store.HandBack(job.id, job.token,
                                    "lost-create lookup failed: " + found.error().message);
            });
            co_return RunOutcome::kHandedBack;
          }
          if (!found) {
            Error failure = found.error();
            auto awaited = co_await fail(failure, "");
            co_return awaited;
          }
          // Best match first; a task another job already stored (an identical request) is
          // skipped, so two jobs never share one upstream task.
          for (const std::string& candidate : *found) {
            auto claimed = co_await persist([&] {
              return writer_->SetPhase(
                  {job.id, job.token, queue::JobPhase::kGenerating, candidate,
                   "upstream " + candidate + " (found after a lost create answer)"});
            });
            if (claimed) {
              upstream = candidate;
              stored = true;
              break;
            }
            if (claimed.error().category == ErrorCategory::kFailedPrecondition) {
              spdlog::info("job={} skips upstream task {}: {}", job.id, candidate,
                           claimed.error().message);
              continue;
            }
            if (claimed.error().category == ErrorCategory::kCancelled) {
              (void)co_await provider.Cancel(candidate);
            }
            co_return RunOutcome::kStopped;
          }
          if (stored) {
            spdlog::info("job={} found upstream task {} made by a create whose answer was lost",
                         job.id, upstream);
            break;
          }
          spdlog::info("job={} the lost create made no task upstream; creating", job.id);
        }
      }
      if (round >= kMaxCreateRounds) {
        // Every lookup above found nothing, so giving the attempt up pays for nothing.
        Error failure{ErrorCategory::kRetryable,
                      "the answers of " + std::to_string(round) + " create calls were lost"};
        auto awaited = co_await fail(failure, "");
        co_return awaited;
      }
      // The account's create gate lets the call go and, in the same step, records the intent
      // before the create is sent, so that whoever runs the job next knows to look. Nothing
      // exists upstream yet, so a stop while waiting needs no upstream cancel.
      // A create is paid for: never start one on a lease that is lost or lapsing (by the
      // heartbeat or this worker's own clock): its upstream id could not be recorded once the
      // reaper has handed the job on, and the next worker would pay again. Checked before the
      // permit, which records the intent: a permit granted means Redis still knew the token.
      if (!lease_held()) {
        spdlog::info("job={} lease lost before the create call; another worker runs it", job.id);
        co_return RunOutcome::kStopped;
      }
      auto permitted = co_await WaitForCreatePermit(job, *control);
      if (!permitted) {
        spdlog::info("job={} not created: {}", job.id, permitted.error().Describe());
        if (control->stop == StopReason::kDrain) {
          (void)co_await persist(
              [&] { return store.HandBack(job.id, job.token, "worker draining"); });
          co_return RunOutcome::kHandedBack;
        }
        co_return RunOutcome::kStopped;
      }
      intent_ms = *permitted;
      auto created = co_await provider.Create(request);
      if (!created) {
        count_provider_error(created.error());
        if (MaybeCreated(created.error())) {
          spdlog::warn("job={} create outcome unknown: {}", job.id, created.error().Describe());
          continue;
        }
        // The provider made nothing: fail (and retry) as usual; Fail clears the intent.
        Error failure = created.error();
        auto awaited = co_await fail(failure, "");
        co_return awaited;
      }
      upstream = *created;
      // Stored before anything else happens, so whoever runs the job next resumes this task
      // instead of paying for a new one.
      auto persisted = co_await persist([&] {
        return writer_->SetPhase(
            {job.id, job.token, queue::JobPhase::kGenerating, upstream, "upstream " + upstream});
      });
      if (!persisted) {
        if (persisted.error().category == ErrorCategory::kCancelled) {
          (void)co_await provider.Cancel(upstream);
        }
        spdlog::warn("job={} could not record upstream task {}: {}", job.id, upstream,
                     persisted.error().Describe());
        co_return RunOutcome::kStopped;
      }
      stored = true;
    }
  }

  // 2. Poll until the upstream task ends. Transient poll errors do not spend the upstream task.
  providers::TaskStatus status;
  int poll_errors = 0;
  const double polls_per_minute = PollsPerMinute(*deps_.catalogue, job.account);
  while (true) {
    if (control->stop != StopReason::kNone) break;
    if (deadline_passed()) {
      (void)co_await provider.Cancel(upstream);
      {
        Error failure =
            Error{ErrorCategory::kDeadlineExceeded, "the finish deadline passed while generating"};
        auto awaited = co_await fail(failure, "");
        co_return awaited;
      }
    }
    if (polls_per_minute > 0) {
      // The provider counts polls: take this poll's turn from the account's fleet-wide bucket
      // (one Redis call) and wait for it; no turn is ever refused.
      auto turn = co_await store.TakePollToken(job.account, polls_per_minute);
      if (!turn) {
        co_await Sleep(*control, settings.min_poll_interval);
        continue;
      }
      if (turn->count() > 0) {
        co_await Sleep(*control, *turn);
        if (control->stop != StopReason::kNone) break;
      }
    }
    auto polled = co_await provider.Poll(upstream);
    if (!polled) {
      const auto& e = polled.error();
      count_provider_error(e);
      if (e.category == ErrorCategory::kNotFound) {
        Error failure = e;
        auto awaited = co_await fail(failure, "");
        co_return awaited;
      }
      if (!IsRetryable(e.category)) {
        Error failure = e;
        auto awaited = co_await fail(failure, "");
        co_return awaited;
      }
      if (++poll_errors > settings.poll_error_budget) {
        (void)co_await persist([&] {
          return store.HandBack(job.id, job.token, "upstream polls keep failing: " + e.message);
        });
        co_return RunOutcome::kHandedBack;
      }
      auto wait = std::max(settings.min_poll_interval, e.retry_after);
      co_await Sleep(*control, wait);
      continue;
    }
    poll_errors = 0;
    status = *polled;
    if (status.state == TaskState::kSucceeded) break;
    if (status.state == TaskState::kFailed || status.state == TaskState::kCancelled) {
      Error e = status.error.value_or(
          Error{ErrorCategory::kRetryable, "the upstream task ended without a clip"});
      {
        Error failure = e;
        auto awaited = co_await fail(failure, "");
        co_return awaited;
      }
    }
    auto wait = std::max(settings.min_poll_interval,
                         status.poll_after.value_or(std::chrono::milliseconds(0)));
    co_await Sleep(*control, wait);
  }
  const int64_t generated_ms = deps_.clock->NowMs();

  // 3. Transfer: stream the clip into the store under its deterministic key.
  const std::string clip_key = ClipKey(job.tenant, job.batch, job.id);
  const std::string sidecar_key = SidecarKey(clip_key);
  std::string sha256;
  uint64_t size = 0;
  bool published_now = false;
  if (control->stop == StopReason::kNone) {
    auto phase = co_await persist([&] {
      return writer_->SetPhase(
          {job.id, job.token, queue::JobPhase::kTransferring, "", "storing " + clip_key});
    });
    if (!phase) co_return RunOutcome::kStopped;
    Error last{ErrorCategory::kRetryable, "transfer not tried"};
    bool stored = false;
    for (int attempt = 1; attempt <= settings.transfer_attempts && !stored; ++attempt) {
      if (control->stop != StopReason::kNone) break;
      storage::PutOptions options;
      options.content_type = "video/mp4";
      options.metadata = {{"job-id", job.id},
                          {"model", job.model},
                          {"upstream-id", upstream},
                          {"worker", settings.worker_id}};
      auto writer = co_await deps_.objects->OpenWriter(clip_key, options);
      if (!writer) {
        last = writer.error();
        count_store_failure("clip");
      } else {
        // The hash is of exactly the bytes stored, computed while streaming (the clip is
        // never held whole), and checked against the store's own size and checksum.
        auto transfer = std::make_shared<Transfer>(std::move(*writer));
        auto executor = co_await asio::this_coro::executor;
        SpawnOrDie(executor, "transfer " + job.id,
                   RunTransfer(provider_it->second, upstream, status, transfer, control));
        // Woken by the download's end or by a stop, whichever comes first.
        while (!transfer->done && control->stop == StopReason::kNone) {
          control->wake.expires_after(std::chrono::minutes(1));
          co_await control->wake.async_wait(use_nothrow_awaitable);
        }
        auto& sink = transfer->sink();
        if (!transfer->done) {
          co_await transfer->Abandon();
          break;
        }
        if (!transfer->result) {
          last = transfer->result.error();
          co_await sink.Abort();
        } else if (!lease_held()) {
          co_await sink.Abort();
          break;
        } else {
          auto committed = co_await sink.Commit();
          if (!committed) {
            last = committed.error();
            count_store_failure("clip");
          } else {
            sha256 = sink.sha256_hex();
            size = sink.bytes();
            published_now = !committed->already_existed;
            stored = true;
          }
        }
      }
      if (!stored && !IsRetryable(last.category)) break;
      if (!stored) co_await Sleep(*control, settings.retry_backoff_initial * attempt);
    }
    if (!stored && control->stop == StopReason::kNone) {
      Error failure = last;
      auto awaited = co_await fail(failure, "");
      co_return awaited;
    }
  }

  if (control->stop == StopReason::kNone) {
    const int64_t now = deps_.clock->NowMs();
    nlohmann::json sidecar = {
        {"job_id", job.id},
        {"tenant", job.tenant},
        {"batch_id", job.batch},
        {"prompt", spec.prompt()},
        {"model", job.model},
        {"upstream_model", model->upstream_model},
        {"provider", model->provider},
        {"account", job.account},
        {"upstream_id", upstream},
        {"attempt", job.attempt},
        {"worker", settings.worker_id},
        {"duration_seconds", spec.duration_seconds()},
        {"clip_seconds", status.clip_seconds},
        {"aspect_ratio", spec.aspect_ratio().empty() ? "16:9" : spec.aspect_ratio()},
        {"resolution", spec.resolution().empty() ? "720p" : spec.resolution()},
        {"object_key", clip_key},
        {"size_bytes", size},
        {"sha256", sha256},
        {"timings_ms",
         {{"created", job.created_ms},
          {"leased", leased_ms},
          {"generated", generated_ms},
          {"stored", now}}},
    };
    if (spec.shots_size() > 0) {
      nlohmann::json shots = nlohmann::json::array();
      for (const auto& s : spec.shots()) {
        shots.push_back({{"prompt", s.prompt()}, {"duration_seconds", s.duration_seconds()}});
      }
      sidecar["shots"] = shots;
    }
    nlohmann::json labels = nlohmann::json::object();
    for (const auto& [k, v] : spec.labels()) labels[k] = v;
    sidecar["labels"] = labels;
    const std::string text = sidecar.dump(2) + "\n";
    storage::PutOptions options;
    options.content_type = "application/json";
    auto writer = co_await deps_.objects->OpenWriter(sidecar_key, options);
    Result<storage::CommitResult> committed = std::unexpected(Error{});
    if (writer) {
      auto w = co_await (*writer)->Write(std::as_bytes(std::span(text.data(), text.size())));
      if (!w) {
        committed = std::unexpected(w.error());
      } else if (!lease_held()) {
        co_await (*writer)->Abort();
      } else {
        committed = co_await (*writer)->Commit();
      }
    }
    if (control->stop == StopReason::kNone && (!writer || !committed)) {
      count_store_failure("sidecar");
      {
        Error failure = writer ? committed.error() : writer.error();
        auto awaited = co_await fail(failure, "");
        co_return awaited;
      }
    }
  }

  if (control->stop == StopReason::kNone) {
    queue::CompleteRequest done;
    done.job_id = job.id;
    done.token = job.token;
    done.output_key = clip_key;
    done.sidecar_key = sidecar_key;
    done.sha256 = sha256;
    done.clip_seconds = status.clip_seconds > 0 ? status.clip_seconds : spec.duration_seconds();
    done.generation_ms = std::max<int64_t>(0, generated_ms - leased_ms);
    auto url = deps_.objects->PresignGet(clip_key, std::chrono::hours(24 * 7));
    done.output_url = url ? *url : "";
    auto completed = co_await persist([&] { return writer_->Complete(done); });
    if (completed) co_return RunOutcome::kSucceeded;
    if (completed.error().category == ErrorCategory::kCancelled) {
      control->Stop(StopReason::kCancelled);
    } else {
      spdlog::warn("job={} could not be completed: {}", job.id, completed.error().Describe());
      co_return RunOutcome::kStopped;
    }
  }

  // Stopped: cancelled, lease lost or draining.
  switch (control->stop) {
    case StopReason::kCancelled:
      (void)co_await provider.Cancel(upstream);
      if (published_now) {
        // Nothing is published for a cancelled job.
        (void)co_await deps_.objects->Delete(sidecar_key);
        (void)co_await deps_.objects->Delete(clip_key);
      }
      spdlog::info("job={} cancelled; stopped", job.id);
      break;
    case StopReason::kDrain:
      (void)co_await persist([&] { return store.HandBack(job.id, job.token, "worker draining"); });
      co_return RunOutcome::kHandedBack;
    case StopReason::kLeaseLost:
    case StopReason::kLeaseLapsed:
    case StopReason::kNone:
      spdlog::info("job={} lease lost; another worker resumes it", job.id);
      break;
  }
  co_return RunOutcome::kStopped;
}

}  // namespace reelq::worker
