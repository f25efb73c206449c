#include "reelq/scheduler/job_api.h"

#include <google/protobuf/util/time_util.h>

#include "reelq/common/ids.h"

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

v1::JobState ParseState(std::string_view s) {
  if (s == "PENDING") return v1::JOB_STATE_PENDING;
  if (s == "DISPATCHED") return v1::JOB_STATE_DISPATCHED;
  if (s == "RUNNING") return v1::JOB_STATE_RUNNING;
  if (s == "SUCCEEDED") return v1::JOB_STATE_SUCCEEDED;
  if (s == "FAILED") return v1::JOB_STATE_FAILED;
  if (s == "CANCELLED") return v1::JOB_STATE_CANCELLED;
  return v1::JOB_STATE_UNSPECIFIED;
}

std::string StateName(v1::JobState state) {
  switch (state) {
    case v1::JOB_STATE_PENDING:
      return "PENDING";
    case v1::JOB_STATE_DISPATCHED:
      return "DISPATCHED";
    case v1::JOB_STATE_RUNNING:
      return "RUNNING";
    case v1::JOB_STATE_SUCCEEDED:
      return "SUCCEEDED";
    case v1::JOB_STATE_FAILED:
      return "FAILED";
    case v1::JOB_STATE_CANCELLED:
      return "CANCELLED";
    default:
      return "";
  }
}

v1::JobPhase ParsePhase(std::string_view p) {
  if (p == "SUBMITTING") return v1::JOB_PHASE_SUBMITTING;
  if (p == "GENERATING") return v1::JOB_PHASE_GENERATING;
  if (p == "TRANSFERRING") return v1::JOB_PHASE_TRANSFERRING;
  return v1::JOB_PHASE_UNSPECIFIED;
}

v1::ErrorCategory ParseCategory(std::string_view c) {
  if (c == "retryable" || c == "not_found") return v1::ERROR_CATEGORY_RETRYABLE;
  if (c == "rate_limited") return v1::ERROR_CATEGORY_RATE_LIMITED;
  if (c == "policy_rejected") return v1::ERROR_CATEGORY_POLICY_REJECTED;
  if (c == "invalid_request") return v1::ERROR_CATEGORY_INVALID_REQUEST;
  if (c == "auth_failed") return v1::ERROR_CATEGORY_AUTH_FAILED;
  if (c == "model_gone") return v1::ERROR_CATEGORY_MODEL_GONE;
  if (c == "deadline_exceeded") return v1::ERROR_CATEGORY_DEADLINE_EXCEEDED;
  if (c == queue::kCreateOutcomeUnknown) return v1::ERROR_CATEGORY_CREATE_OUTCOME_UNKNOWN;
  if (c.empty()) return v1::ERROR_CATEGORY_UNSPECIFIED;
  return v1::ERROR_CATEGORY_INTERNAL;
}

JobApi::JobApi(queue::JobStore& store, const Admission& admission, const Settings& settings,
               storage::ObjectStore* objects, ClockPtr clock, queue::AuthStore* auth)
    : store_(store),
      admission_(admission),
      settings_(settings),
      objects_(objects),
      clock_(clock ? std::move(clock) : std::make_shared<SystemClock>()),
      auth_(auth) {}

std::string JobApi::NewBatchId() const { return "batch-" + NewId(*clock_); }

void JobApi::RequireReplicas(redis::ConnectionPtr connection, int replicas,
                             std::chrono::milliseconds timeout) {
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

awaitable<Result<void>> JobApi::ClaimBatch(std::string batch_id, std::string tenant) {
  if (auth_ == nullptr) co_return Result<void>{};
  auto key = std::make_pair(batch_id, tenant);
  if (claimed_batches_.contains(key)) co_return Result<void>{};
  auto owner = co_await auth_->ClaimBatch(batch_id, tenant);
  if (!owner) co_return std::unexpected(owner.error());
  if (*owner != tenant) {
    co_return MakeError(
        ErrorCategory::kInvalidRequest,
        "batch_id: '" + batch_id + "' is already used by another tenant; choose another batch id");
  }
  // Bounded: ownership never changes, so forgetting only costs a Redis call later.
  if (claimed_batches_.size() > 100'000) claimed_batches_.clear();
  claimed_batches_.insert(std::move(key));
  co_return Result<void>{};
}

awaitable<Result<void>> JobApi::CheckBatchVisible(Principal who, std::string batch_id) {
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
  if (auto resolved = ResolveTenant(who, spec); !resolved) {
    co_return std::unexpected(resolved.error());
  }
  auto admitted = admission_.Admit(spec);
  if (!admitted) co_return std::unexpected(admitted.error());
  if (!who.open && !spec.batch_id().empty()) {
    auto claimed = co_await ClaimBatch(spec.batch_id(), spec.tenant());
    if (!claimed) co_return std::unexpected(claimed.error());
  }
  queue::NewJob job;
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
  if (!spec.SerializeToString(&job.spec_bytes)) {
    co_return MakeError(ErrorCategory::kInternal, "the job spec could not be serialized");
  }
  auto outcome = co_await store_.Submit(job, settings_.idempotency_retention_s);
  if (!outcome) co_return std::unexpected(outcome.error());
  // A duplicate waits too: the first answer may have failed in this very wait.
  if (wait_replicas_ > 0 && replicated_on_) {
    auto replicated =
        co_await redis::WaitForReplicas(*replicated_on_, wait_replicas_, wait_timeout_);
    if (!replicated) co_return std::unexpected(replicated.error());
  }
  if (!outcome->duplicate && on_submitted_) on_submitted_();
  v1::SubmitJobResponse response;
  response.set_job_id(outcome->job_id);
  response.set_duplicate(outcome->duplicate);
  auto record = co_await store_.Get(outcome->job_id);
  if (record) *response.mutable_status() = ToStatus(*record);
  co_return response;
}

awaitable<Result<v1::JobStatus>> JobApi::Get(Principal who, std::string job_id) {
  if (job_id.empty()) co_return MakeError(ErrorCategory::kInvalidRequest, "job_id: required");
  auto record = co_await store_.Get(job_id);
  if (!record) co_return std::unexpected(record.error());
  if (!who.CanSee(record->tenant)) {
    // The same answer as for a job that does not exist.
    co_return MakeError(ErrorCategory::kNotFound, "no job with id '" + job_id + "'");
  }
  co_return ToStatus(*record);
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
  filter.batch = request.batch_id();
  filter.model = request.model();
  if (request.state() != v1::JOB_STATE_UNSPECIFIED) {
    filter.state = StateName(request.state());
    if (filter.state.empty()) {
      co_return MakeError(ErrorCategory::kInvalidRequest,
                          "state: unknown value " + std::to_string(request.state()));
    }
  }
  if (request.page_size() > 1000) {
    co_return MakeError(ErrorCategory::kInvalidRequest, "page_size: at most 1000");
  }
  filter.page_size = request.page_size() == 0 ? 100 : static_cast<int>(request.page_size());
  if (!request.page_token().empty()) {
    try {
      size_t used = 0;
      filter.offset = std::stoll(request.page_token(), &used);
      if (used != request.page_token().size() || filter.offset < 0) throw std::invalid_argument("");
    } catch (...) {
      co_return MakeError(ErrorCategory::kInvalidRequest,
                          "page_token: not a token this server gave out");
    }
  }
  auto page = co_await store_.List(filter);
  if (!page) co_return std::unexpected(page.error());
  v1::ListJobsResponse response;
  for (const auto& record : page->jobs) *response.add_jobs() = ToStatus(record);
  if (page->next_offset >= 0) response.set_next_page_token(std::to_string(page->next_offset));
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
    if (e.category == ErrorCategory::kNotFound) e.message = "no job with id '" + job_id + "'";
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
    if (e.category == ErrorCategory::kNotFound) e.message = "no job with id '" + job_id + "'";
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
  co_return ToProgress(batch_id, *counts);
}

v1::BatchProgress JobApi::ToProgress(const std::string& batch_id, const queue::BatchCounts& c) {
  v1::BatchProgress p;
  p.set_batch_id(batch_id);
  p.set_total(static_cast<uint32_t>(c.total));
  p.set_pending(static_cast<uint32_t>(c.Count(queue::kPending) + c.Count(queue::kDispatched)));
  p.set_running(static_cast<uint32_t>(c.Count(queue::kRunning)));
  p.set_succeeded(static_cast<uint32_t>(c.Count(queue::kSucceeded)));
  p.set_failed(static_cast<uint32_t>(c.Count(queue::kFailed)));
  p.set_cancelled(static_cast<uint32_t>(c.Count(queue::kCancelled)));
  return p;
}

v1::JobStatus JobApi::ToStatus(const queue::JobRecord& r) const {
  v1::JobStatus s;
  s.set_job_id(r.id);
  if (!s.mutable_spec()->ParseFromString(r.spec_bytes)) s.clear_spec();
  s.set_state(ParseState(r.state));
  s.set_phase(ParsePhase(r.phase));
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
  s.set_output_url(r.output_url);
  if (objects_ != nullptr && !r.output_key.empty()) {
    // A fresh URL on every read: presigned S3 URLs expire.
    if (auto url = objects_->PresignGet(r.output_key, std::chrono::hours(24))) {
      s.set_output_url(*url);
    }
  }
  if (!r.error_category.empty()) {
    auto* e = s.mutable_error();
    e->set_category(ParseCategory(r.error_category));
    e->set_message(r.error_message);
    e->set_provider_code(r.error_code);
    e->set_attempt(static_cast<uint32_t>(r.attempt));
  }
  for (const auto& ae : r.errors) {
    auto* e = s.add_attempt_errors();
    e->set_category(ParseCategory(ae.category));
    e->set_message(ae.message);
    e->set_provider_code(ae.code);
    e->set_attempt(static_cast<uint32_t>(ae.attempt));
    *e->mutable_at() = Ts(ae.at_ms);
  }
  for (const auto& t : r.history) {
    auto* tr = s.add_transitions();
    tr->set_state(ParseState(t.state));
    tr->set_phase(ParsePhase(t.phase));
    *tr->mutable_at() = Ts(t.at_ms);
    tr->set_detail(t.detail);
  }
  if (r.created_ms > 0) *s.mutable_created_at() = Ts(r.created_ms);
  if (r.updated_ms > 0) *s.mutable_updated_at() = Ts(r.updated_ms);
  return s;
}

}  // namespace reelq::scheduler
