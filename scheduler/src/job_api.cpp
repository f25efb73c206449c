#include "reelq/scheduler/job_api.h"

#include <google/protobuf/util/time_util.h>

#include "input_images.h"
#include "reelq/common/ids.h"
#include "reelq/scheduler/groups.h"

namespace reelq::scheduler {
namespace {

using google::protobuf::util::TimeUtil;

google::protobuf::Timestamp Ts(int64_t ms) { return TimeUtil::MillisecondsToTimestamp(ms); }

int64_t Ms(const google::protobuf::Timestamp& t) {
  return t.seconds() == 0 && t.nanos() == 0 ? 0 : TimeUtil::TimestampToMilliseconds(t);
}

}  // namespace

grpc::Status ToGrpcStatus(const Error& error) {
  using grpc::StatusCode;
  StatusCode code = StatusCode::INTERNAL;
  switch (error.category) {
    case ErrorCategory::kInvalidRequest:
      code = StatusCode::INVALID_ARGUMENT;
      break;
    case ErrorCategory::kNotFound:
      code = StatusCode::NOT_FOUND;
      break;
    case ErrorCategory::kFailedPrecondition:
    case ErrorCategory::kCreateOutcomeUnknown:
      code = StatusCode::FAILED_PRECONDITION;
      break;
    case ErrorCategory::kRateLimited:
      code = StatusCode::RESOURCE_EXHAUSTED;
      break;
    case ErrorCategory::kAuthFailed:
      code = StatusCode::PERMISSION_DENIED;
      break;
    case ErrorCategory::kRetryable:
      code = StatusCode::UNAVAILABLE;
      break;
    case ErrorCategory::kDeadlineExceeded:
      code = StatusCode::DEADLINE_EXCEEDED;
      break;
    case ErrorCategory::kCancelled:
      code = StatusCode::CANCELLED;
      break;
    case ErrorCategory::kPolicyRejected:
      code = StatusCode::INVALID_ARGUMENT;
      break;
    case ErrorCategory::kModelGone:
      code = StatusCode::FAILED_PRECONDITION;
      break;
    case ErrorCategory::kLeaseLost:
    case ErrorCategory::kInternal:
      code = StatusCode::INTERNAL;
      break;
  }
  return grpc::Status(code, error.message);
}

v1::JobState ToProto(queue::JobState state) {
  switch (state) {
    case queue::JobState::kPending:
      return v1::JOB_STATE_PENDING;
    case queue::JobState::kDispatched:
      return v1::JOB_STATE_DISPATCHED;
    case queue::JobState::kRunning:
      return v1::JOB_STATE_RUNNING;
    case queue::JobState::kSucceeded:
      return v1::JOB_STATE_SUCCEEDED;
    case queue::JobState::kFailed:
      return v1::JOB_STATE_FAILED;
    case queue::JobState::kCancelled:
      return v1::JOB_STATE_CANCELLED;
  }
  return v1::JOB_STATE_UNSPECIFIED;
}

std::optional<queue::JobState> FromProto(v1::JobState state) {
  switch (state) {
    case v1::JOB_STATE_PENDING:
      return queue::JobState::kPending;
    case v1::JOB_STATE_DISPATCHED:
      return queue::JobState::kDispatched;
    case v1::JOB_STATE_RUNNING:
      return queue::JobState::kRunning;
    case v1::JOB_STATE_SUCCEEDED:
      return queue::JobState::kSucceeded;
    case v1::JOB_STATE_FAILED:
      return queue::JobState::kFailed;
    case v1::JOB_STATE_CANCELLED:
      return queue::JobState::kCancelled;
    default:
      return std::nullopt;
  }
}

v1::JobPhase ToProto(queue::JobPhase phase) {
  switch (phase) {
    case queue::JobPhase::kSubmitting:
      return v1::JOB_PHASE_SUBMITTING;
    case queue::JobPhase::kGenerating:
      return v1::JOB_PHASE_GENERATING;
    case queue::JobPhase::kTransferring:
      return v1::JOB_PHASE_TRANSFERRING;
    case queue::JobPhase::kNone:
      break;
  }
  return v1::JOB_PHASE_UNSPECIFIED;
}

std::string StateName(v1::JobState state) {
  const auto stored = FromProto(state);
  return stored ? std::string(queue::ToString(*stored)) : std::string();
}

queue::JobPhase FromProto(v1::JobPhase phase) {
  switch (phase) {
    case v1::JOB_PHASE_SUBMITTING:
      return queue::JobPhase::kSubmitting;
    case v1::JOB_PHASE_GENERATING:
      return queue::JobPhase::kGenerating;
    case v1::JOB_PHASE_TRANSFERRING:
      return queue::JobPhase::kTransferring;
    default:
      return queue::JobPhase::kNone;
  }
}

v1::ErrorCategory ToProto(std::optional<ErrorCategory> category) {
  if (!category) return v1::ERROR_CATEGORY_INTERNAL;  // a name this build does not know
  switch (*category) {
    case ErrorCategory::kRetryable:
    case ErrorCategory::kNotFound:
      return v1::ERROR_CATEGORY_RETRYABLE;
    case ErrorCategory::kRateLimited:
      return v1::ERROR_CATEGORY_RATE_LIMITED;
    case ErrorCategory::kPolicyRejected:
      return v1::ERROR_CATEGORY_POLICY_REJECTED;
    case ErrorCategory::kInvalidRequest:
      return v1::ERROR_CATEGORY_INVALID_REQUEST;
    case ErrorCategory::kAuthFailed:
      return v1::ERROR_CATEGORY_AUTH_FAILED;
    case ErrorCategory::kModelGone:
      return v1::ERROR_CATEGORY_MODEL_GONE;
    case ErrorCategory::kDeadlineExceeded:
      return v1::ERROR_CATEGORY_DEADLINE_EXCEEDED;
    case ErrorCategory::kCreateOutcomeUnknown:
      return v1::ERROR_CATEGORY_CREATE_OUTCOME_UNKNOWN;
    default:
      return v1::ERROR_CATEGORY_INTERNAL;
  }
}

JobApi::JobApi(queue::JobStore& store, const Admission& admission, const Settings& settings,
               storage::ObjectStore* objects, ClockPtr clock, queue::AuthStore* auth,
               queue::WalletStore* wallets)
    : store_(store),
      admission_(admission),
      settings_(settings),
      objects_(objects),
      clock_(clock ? std::move(clock) : std::make_shared<SystemClock>()),
      auth_(auth),
      wallets_(wallets) {}

std::string JobApi::NewBatchId() const { return "batch-" + NewId(*clock_); }

void JobApi::RequireReplicas(queue::JobStore& writes, redis::ConnectionPtr connection, int replicas,
                             std::chrono::milliseconds timeout) {
  submit_store_ = &writes;
  replicated_on_ = std::move(connection);
  wait_replicas_ = replicas;
  wait_timeout_ = timeout;
}

Result<void> JobApi::ResolveTenant(const Principal& who, v1::JobSpec& spec) const {
  if (who.is_admin) return {};
  if (spec.tenant().empty()) {
    spec.set_tenant(who.tenant);
    return {};
  }
  if (spec.tenant() != who.tenant) {
    return MakeError(ErrorCategory::kAuthFailed,
                     "tenant: the request names another tenant than the token's ('" + who.tenant +
                         "'); leave tenant empty or name your own");
  }
  return {};
}

awaitable<Result<void>> JobApi::ClaimBatch(std::string batch_id, std::string tenant,
                                           BatchClaims* confirmed) {
  if (auth_ == nullptr) co_return Result<void>{};
  auto key = std::make_pair(batch_id, tenant);
  const int64_t now = clock_->NowMs();
  const int64_t trusted_ms = std::min<int64_t>(settings_.retention_ms, 600'000);
  if (auto seen = claimed_batches_.find(key);
      seen != claimed_batches_.end() && now - seen->second < trusted_ms) {
    co_return Result<void>{};
  }
  if (confirmed != nullptr && confirmed->contains(key)) co_return Result<void>{};
  // A claim no job is stored under lasts a retention (as a batch would), at least an hour so
  // that it outlives the submission that made it, then frees the id.
  const int64_t unused_claim_ms = std::max<int64_t>(settings_.retention_ms, 3'600'000);
  auto owner = co_await auth_->ClaimBatch(batch_id, tenant, unused_claim_ms);
  if (!owner) co_return std::unexpected(owner.error());
  if (*owner != tenant) {
    co_return MakeError(
        ErrorCategory::kInvalidRequest,
        "batch_id: '" + batch_id + "' is already used by another tenant; choose another batch id");
  }
  if (confirmed != nullptr) confirmed->insert(std::move(key));
  co_return Result<void>{};
}

void JobApi::RememberClaim(const std::string& batch_id, const std::string& tenant) {
  // Bounded: forgetting only costs a Redis call later.
  if (claimed_batches_.size() > 100'000) claimed_batches_.clear();
  claimed_batches_[std::make_pair(batch_id, tenant)] = clock_->NowMs();
}

awaitable<Result<std::string>> JobApi::BatchOwner(std::string batch_id) {
  if (auth_ == nullptr) co_return std::string();
  co_return co_await auth_->BatchOwner(std::move(batch_id));
}

awaitable<Result<void>> JobApi::CheckBatchVisible(Principal who, std::string batch_id) {
  // No submit stores a batch id that fails this, and one such as "b:ids" would name another key.
  if (auto checked = admission_.CheckBatchId(batch_id); !checked) {
    co_return std::unexpected(checked.error());
  }
  if (who.is_admin) co_return Result<void>{};
  std::string owner;
  if (auth_ != nullptr) {
    auto stored = co_await auth_->BatchOwner(batch_id);
    if (!stored) co_return std::unexpected(stored.error());
    owner = *stored;
  }
  if (owner.empty() || !who.CanSee(owner)) {
    co_return MakeError(ErrorCategory::kNotFound, "no batch with id '" + batch_id + "'");
  }
  co_return Result<void>{};
}

awaitable<Result<v1::SubmitJobResponse>> JobApi::Submit(Principal who, v1::JobSpec spec) {
  std::vector<v1::JobSpec> one;
  one.push_back(std::move(spec));
  auto results = co_await SubmitMany(std::move(who), std::move(one));
  co_return std::move(results.front());
}

awaitable<std::vector<Result<v1::SubmitJobResponse>>> JobApi::SubmitMany(
    Principal who, std::vector<v1::JobSpec> specs, int64_t batch_budget_micros, bool with_status) {
  std::vector<Result<v1::SubmitJobResponse>> results(specs.size());
  std::vector<queue::NewJob> jobs;
  std::vector<size_t> index_of;  // jobs[i] is specs[index_of[i]]
  std::map<std::string, bool> checked_webhooks;
  BatchClaims claims;
  for (size_t i = 0; i < specs.size(); ++i) {
    auto& spec = specs[i];  // admission applies the defaults in place
    if (auto resolved = ResolveTenant(who, spec); !resolved) {
      results[i] = std::unexpected(resolved.error());
      continue;
    }
    auto plan = PlanSubmission(admission_, spec);
    if (!plan) {
      results[i] = std::unexpected(plan.error());
      continue;
    }
    const AdmittedJob* admitted = &plan->admitted;
    if (!who.open && !spec.batch_id().empty()) {
      auto claimed = co_await ClaimBatch(spec.batch_id(), spec.tenant(), &claims);
      if (!claimed) {
        results[i] = std::unexpected(claimed.error());
        continue;
      }
    }
    if (auto stored =
            co_await StoreInputImages(objects_, &spec, admission_.limits().max_image_bytes);
        !stored) {
      results[i] = std::unexpected(stored.error());
      continue;
    }
    queue::NewJob job;
    if (!spec.webhook_url().empty() || !spec.webhook_events().empty()) {
      auto hook =
          co_await WebhookField(spec.webhook_url(), spec.webhook_events(), &checked_webhooks);
      if (!hook) {
        results[i] = std::unexpected(hook.error());
        continue;
      }
      job.webhook = std::move(*hook);
    }
    job.id = NewId(*clock_);
    job.tenant = spec.tenant();
    job.batch = spec.batch_id();
    job.idempotency_key = spec.idempotency_key();
    job.candidate_models = admitted->candidates;
    job.prefer_first = admitted->first_choice_preferred;
    job.priority = spec.priority();
    job.max_attempts = settings_.max_attempts;
    job.start_deadline_ms = spec.has_start_deadline() ? Ms(spec.start_deadline()) : 0;
    job.finish_deadline_ms = spec.has_finish_deadline() ? Ms(spec.finish_deadline()) : 0;
    // The wallet: the open principal (authentication off) is never charged.
    job.bill = !who.open;
    job.billed_seconds = spec.duration_seconds();
    if (job.billed_seconds == 0) {
      for (const auto& shot : spec.shots()) job.billed_seconds += shot.duration_seconds();
    }
    job.resolution = spec.resolution().empty() ? "720p" : spec.resolution();
    job.batch_budget_micros = batch_budget_micros;
    if (!spec.SerializeToString(&job.spec_bytes)) {
      results[i] = MakeError(ErrorCategory::kInternal, "the job spec could not be serialized");
      continue;
    }
    auto children = GroupChildren(*plan, spec, job);
    if (!children) {
      results[i] = std::unexpected(children.error());
      continue;
    }
    jobs.push_back(std::move(job));
    index_of.push_back(i);
    for (auto& child : *children) {
      jobs.push_back(std::move(child));
      index_of.push_back(kChildOfGroup);
    }
  }
  if (jobs.empty()) co_return results;
  const int64_t now = clock_->NowMs();
  // The session the writes go out in: a WAIT in a later one would confirm nothing of them.
  const std::optional<uint64_t> written_in =
      replicated_on_ ? std::optional<uint64_t>(replicated_on_->Session()) : std::nullopt;
  auto outcomes = co_await submit_store_->SubmitMany(jobs, settings_.idempotency_retention_s);
  if (!outcomes) {
    for (size_t i : index_of) {
      if (i != kChildOfGroup) results[i] = std::unexpected(outcomes.error());
    }
    co_return results;
  }
  // Duplicates wait too: the first answer may have failed in this very wait. (submit.lua writes
  // a duplicate's key again, so that this connection's WAIT covers the original.)
  if (wait_replicas_ > 0 && replicated_on_) {
    auto replicated =
        co_await redis::WaitForReplicas(*replicated_on_, wait_replicas_, wait_timeout_, written_in);
    if (!replicated) {
      for (size_t i : index_of) {
        if (i != kChildOfGroup) results[i] = std::unexpected(replicated.error());
      }
      co_return results;
    }
  }
  bool any_new = false;
  for (size_t k = 0; k < jobs.size(); ++k) {
    if (index_of[k] == kChildOfGroup) continue;  // answered through its group
    const auto& outcome = (*outcomes)[k];
    if (outcome.refused) {
      results[index_of[k]] = std::unexpected(*outcome.refused);
      continue;
    }
    v1::SubmitJobResponse response;
    response.set_job_id(outcome.job_id);
    response.set_duplicate(outcome.duplicate);
    if (!outcome.duplicate) {
      any_new = true;
      if (!who.open && !jobs[k].batch.empty()) RememberClaim(jobs[k].batch, jobs[k].tenant);
    }
    if (!with_status) {
      results[index_of[k]] = std::move(response);
      continue;
    }
    if (outcome.duplicate) {
      // The job that holds the key already exists: read what it is now.
      auto record = co_await store_.Get(outcome.job_id);
      if (record) *response.mutable_status() = ToStatus(*record);
    } else {
      // Nothing to read back: the record is what was just stored.
      queue::JobRecord stored;
      stored.id = outcome.job_id;
      stored.spec_bytes = std::move(jobs[k].spec_bytes);
      stored.tenant = jobs[k].tenant;
      stored.batch = jobs[k].batch;
      stored.state = queue::JobState::kPending;
      stored.attempt = 1;
      stored.max_attempts = jobs[k].max_attempts;
      stored.created_ms = stored.updated_ms = now;
      stored.kind = jobs[k].kind;
      stored.children = jobs[k].children;
      stored.history.push_back(
          {1, queue::JobState::kPending, queue::JobPhase::kNone, now, "submitted"});
      *response.mutable_status() = ToStatus(stored);
    }
    results[index_of[k]] = std::move(response);
  }
  if (any_new && on_submitted_) on_submitted_();
  co_return results;
}

awaitable<Result<v1::JobStatus>> JobApi::Get(Principal who, std::string job_id) {
  if (job_id.empty()) co_return MakeError(ErrorCategory::kInvalidRequest, "job_id: required");
  auto record = co_await store_.Get(job_id);
  if (!record) co_return std::unexpected(record.error());
  if (!who.CanSee(record->tenant)) {
    // The same answer as for a job that does not exist.
    co_return MakeError(ErrorCategory::kNotFound, queue::JobStore::NoSuchJob(job_id));
  }
  auto status = ToStatus(*record);
  if (!record->children.empty()) co_await AddChildren(*record, status);
  // The job's own webhook, or its batch's when that asks for every job's end (the job then
  // reports to the batch's URL, keyed by the job like its own would be): either has a URL after
  // the flags.
  const auto bar = record->webhook.find('|');
  if (bar != std::string::npos && bar + 1 < record->webhook.size()) {
    co_await AddDelivery("job", job_id, status.mutable_webhook());
  }
  co_return status;
}

awaitable<Result<v1::ListJobsResponse>> JobApi::List(Principal who, v1::ListJobsRequest request) {
  queue::ListFilter filter;
  filter.tenant = request.tenant();
  if (!who.is_admin) {
    if (!request.tenant().empty() && request.tenant() != who.tenant) {
      co_return MakeError(
          ErrorCategory::kAuthFailed,
          "tenant: the request names another tenant than the token's ('" + who.tenant + "')");
    }
    filter.tenant = who.tenant;
  }
  if (auto checked =
          admission_.CheckListFilter(request.tenant(), request.batch_id(), request.model());
      !checked) {
    co_return std::unexpected(checked.error());
  }
  filter.batch = request.batch_id();
  filter.model = request.model();
  if (request.state() != v1::JOB_STATE_UNSPECIFIED) {
    filter.state = FromProto(request.state());
    if (!filter.state) {
      co_return MakeError(ErrorCategory::kInvalidRequest,
                          "state: unknown value " + std::to_string(request.state()));
    }
  }
  if (request.page_size() > 1000) {
    co_return MakeError(ErrorCategory::kInvalidRequest, "page_size: at most 1000");
  }
  filter.page_size = request.page_size() == 0 ? 100 : static_cast<int>(request.page_size());
  filter.page_token = request.page_token();  // checked by the store: an opaque index position
  auto page = co_await store_.List(filter);
  if (!page) co_return std::unexpected(page.error());
  v1::ListJobsResponse response;
  for (const auto& record : page->jobs) *response.add_jobs() = ToStatus(record);
  response.set_next_page_token(page->next_page_token);
  co_return response;
}

awaitable<Result<v1::JobStatus>> JobApi::Cancel(Principal who, std::string job_id) {
  if (job_id.empty()) co_return MakeError(ErrorCategory::kInvalidRequest, "job_id: required");
  if (!who.is_admin) {
    auto visible = co_await Get(who, job_id);
    if (!visible) co_return std::unexpected(visible.error());
  }
  auto cancelled = co_await store_.Cancel(job_id);
  if (!cancelled) {
    auto e = cancelled.error();
    if (e.category == ErrorCategory::kNotFound) e.message = queue::JobStore::NoSuchJob(job_id);
    if (e.category == ErrorCategory::kFailedPrecondition) {
      e.message = "job " + job_id + " cannot be cancelled: " + e.message;
    }
    co_return std::unexpected(e);
  }
  {
    auto awaited = co_await Get(who, job_id);
    co_return awaited;
  }
}

awaitable<Result<v1::JobStatus>> JobApi::Retry(Principal who, std::string job_id) {
  if (job_id.empty()) co_return MakeError(ErrorCategory::kInvalidRequest, "job_id: required");
  if (!who.is_admin) {
    auto visible = co_await Get(who, job_id);
    if (!visible) co_return std::unexpected(visible.error());
  }
  auto retried = co_await store_.Retry(job_id);
  if (!retried) {
    auto e = retried.error();
    if (e.category == ErrorCategory::kNotFound) e.message = queue::JobStore::NoSuchJob(job_id);
    if (e.category == ErrorCategory::kFailedPrecondition) {
      e.message = "only FAILED or CANCELLED jobs can be retried; " + e.message;
    }
    co_return std::unexpected(e);
  }
  if (on_submitted_) on_submitted_();
  {
    auto awaited = co_await Get(who, job_id);
    co_return awaited;
  }
}

awaitable<Result<v1::BatchProgress>> JobApi::GetBatch(Principal who, std::string batch_id) {
  if (batch_id.empty()) co_return MakeError(ErrorCategory::kInvalidRequest, "batch_id: required");
  if (auto visible = co_await CheckBatchVisible(who, batch_id); !visible) {
    co_return std::unexpected(visible.error());
  }
  auto counts = co_await store_.GetBatch(batch_id);
  if (!counts) co_return std::unexpected(counts.error());
  auto progress = ToProgress(batch_id, *counts);
  co_await AddDelivery("batch", batch_id, progress.mutable_webhook());
  co_return progress;
}

v1::BatchProgress JobApi::ToProgress(const std::string& batch_id, const queue::BatchCounts& c) {
  v1::BatchProgress p;
  p.set_batch_id(batch_id);
  p.set_total(static_cast<uint32_t>(c.total));
  using queue::JobState;
  p.set_pending(
      static_cast<uint32_t>(c.Count(JobState::kPending) + c.Count(JobState::kDispatched)));
  p.set_running(static_cast<uint32_t>(c.Count(JobState::kRunning)));
  p.set_succeeded(static_cast<uint32_t>(c.Count(JobState::kSucceeded)));
  p.set_failed(static_cast<uint32_t>(c.Count(JobState::kFailed)));
  p.set_cancelled(static_cast<uint32_t>(c.Count(JobState::kCancelled)));
  p.set_budget_micros(c.budget_micros);
  p.set_cost_micros(c.cost_micros);
  for (const auto& [model, spent] : c.spent_micros_by_model) {
    (*p.mutable_spent_micros_by_model())[model] = spent;
  }
  return p;
}

v1::JobStatus JobApi::ToStatus(const queue::JobRecord& r) const {
  v1::JobStatus s;
  s.set_job_id(r.id);
  if (!s.mutable_spec()->ParseFromString(r.spec_bytes)) s.clear_spec();
  // A chained shot starts from the previous shot's last frame, set once that one succeeded.
  if (!r.chain_frame.empty()) s.mutable_spec()->mutable_first_frame()->set_key(r.chain_frame);
  s.set_state(ToProto(r.state));
  s.set_phase(ToProto(r.phase));
  s.set_model(r.model);
  s.set_account(r.account);
  s.set_attempt(static_cast<uint32_t>(r.attempt));
  s.set_max_attempts(static_cast<uint32_t>(r.max_attempts));
  s.set_upstream_task_id(r.upstream);
  s.set_output_key(r.output_key);
  s.set_sidecar_key(r.sidecar_key);
  s.set_sha256(r.sha256);
  s.set_worker(r.worker);
  s.set_clip_seconds(r.clip_seconds);
  s.set_reserved_micros(r.reserved_micros);
  s.set_cost_micros(r.cost_micros);
  s.set_output_url(r.output_url);
  if (objects_ != nullptr && !r.output_key.empty()) {
    // A fresh URL on every read: presigned S3 URLs expire.
    if (auto url = objects_->PresignGet(r.output_key, std::chrono::hours(24))) {
      s.set_output_url(*url);
    }
  }
  if (!r.error_category_name.empty()) {
    auto* e = s.mutable_error();
    e->set_category(ToProto(r.error_category));
    e->set_message(r.error_message);
    e->set_provider_code(r.error_code);
    e->set_attempt(static_cast<uint32_t>(r.attempt));
  }
  for (const auto& ae : r.errors) {
    auto* e = s.add_attempt_errors();
    e->set_category(ToProto(ae.category));
    e->set_message(ae.message);
    e->set_provider_code(ae.code);
    e->set_attempt(static_cast<uint32_t>(ae.attempt));
    *e->mutable_at() = Ts(ae.at_ms);
  }
  for (const auto& t : r.history) {
    auto* tr = s.add_transitions();
    tr->set_state(ToProto(t.state));
    tr->set_phase(ToProto(t.phase));
    *tr->mutable_at() = Ts(t.at_ms);
    tr->set_detail(t.detail);
  }
  s.set_kind(r.kind);
  s.set_parent_job_id(r.parent);
  s.set_sheet_key(r.sheet_key);
  s.set_picked_job_id(r.picked);
  s.set_waiting(r.waiting);
  s.set_waiting_need_micros(r.waiting_need_micros);
  if (r.created_ms > 0) *s.mutable_created_at() = Ts(r.created_ms);
  if (r.updated_ms > 0) *s.mutable_updated_at() = Ts(r.updated_ms);
  return s;
}

}  // namespace reelq::scheduler
