#include "fake_job_service.h"

#include <algorithm>

namespace reelq::cli::testing {
namespace {

google::protobuf::Timestamp At(int64_t seconds) {
  google::protobuf::Timestamp ts;
  ts.set_seconds(seconds);
  return ts;
}

void AddTransition(v1::JobStatus& job, v1::JobState state, v1::JobPhase phase, int64_t at) {
  auto* t = job.add_transitions();
  t->set_state(state);
  t->set_phase(phase);
  *t->mutable_at() = At(at);
}

}  // namespace

std::vector<v1::JobSpec> FakeJobService::received() {
  std::lock_guard lock(mutex_);
  return received_;
}

std::vector<v1::JobStatus> FakeJobService::jobs() {
  std::lock_guard lock(mutex_);
  return jobs_;
}

std::vector<v1::JobSpec> FakeJobService::submitted() {
  std::lock_guard lock(mutex_);
  return submitted_;
}

grpc::Status FakeJobService::SubmitJob(grpc::ServerContext*, const v1::SubmitJobRequest* request,
                                       v1::SubmitJobResponse* response) {
  std::lock_guard lock(mutex_);
  const auto& spec = request->spec();
  submitted_.push_back(spec);
  const bool flaky = spec.prompt().find("FLAKY") != std::string::npos;
  const bool always = spec.prompt().find("FLAKY-ALWAYS") != std::string::npos;
  auto held = std::find_if(jobs_.begin(), jobs_.end(), [&](const v1::JobStatus& job) {
    return !spec.idempotency_key().empty() &&
           job.spec().idempotency_key() == spec.idempotency_key();
  });
  if (held == jobs_.end()) {
    v1::JobStatus job;
    job.set_job_id("job-" + std::to_string(jobs_.size() + 1));
    *job.mutable_spec() = spec;
    job.set_model(spec.models_size() > 0 ? spec.models(0) : "seedance-2.0");
    job.set_state(v1::JOB_STATE_SUCCEEDED);
    jobs_.push_back(std::move(job));
    if (flaky) {
      return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                          "redis.wait_replicas: 0 of 1 replicas confirmed the write; send it "
                          "again");
    }
    response->set_job_id(jobs_.back().job_id());
    *response->mutable_status() = jobs_.back();
    return grpc::Status::OK;
  }
  if (always) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                        "redis.wait_replicas: 0 of 1 replicas confirmed the write; send it again");
  }
  response->set_job_id(held->job_id());
  response->set_duplicate(true);
  *response->mutable_status() = *held;
  return grpc::Status::OK;
}

int FakeJobService::messages() {
  std::lock_guard lock(mutex_);
  return messages_;
}

int FakeJobService::streams() {
  std::lock_guard lock(mutex_);
  return streams_;
}

grpc::Status FakeJobService::SubmitBatch(grpc::ServerContext*,
                                         grpc::ServerReader<v1::SubmitBatchRequest>* reader,
                                         v1::SubmitBatchResponse* response) {
  std::lock_guard lock(mutex_);
  ++streams_;
  v1::SubmitBatchRequest request;
  std::string batch_id;
  uint32_t index = 0;
  const int64_t t0 = 1'800'000'000;
  while (reader->Read(&request)) {
    ++messages_;
    // A message's items: `spec`, or `spec` when set and then each of `specs`.
    std::vector<v1::JobSpec> items;
    if (request.specs_size() == 0 || request.has_spec() || ignores_specs) {
      items.push_back(request.spec());
    }
    if (!ignores_specs) {
      for (const auto& more : request.specs()) items.push_back(more);
    }
    for (const auto& spec : items) {
      received_.push_back(spec);
      if (batch_id.empty() && !spec.batch_id().empty()) batch_id = spec.batch_id();
      auto* item = response->add_items();
      item->set_index(index++);
      if (spec.prompt().find("REJECT") != std::string::npos) {
        item->set_code(static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
        item->set_message("duration_seconds: no allowed model can make a 99 s clip");
        response->set_rejected(response->rejected() + 1);
        continue;
      }
      const bool flaky = spec.prompt().find("FLAKY") != std::string::npos;
      const bool always = spec.prompt().find("FLAKY-ALWAYS") != std::string::npos;
      auto held = std::find_if(jobs_.begin(), jobs_.end(), [&](const v1::JobStatus& job) {
        return !spec.idempotency_key().empty() &&
               job.spec().idempotency_key() == spec.idempotency_key();
      });
      if (held != jobs_.end() && !always) {
        item->set_job_id(held->job_id());
        item->set_duplicate(true);
        response->set_accepted(response->accepted() + 1);
        continue;
      }
      if (flaky) {
        // Stored (once), but the answer says it may not be.
        item->set_code(static_cast<int>(grpc::StatusCode::UNAVAILABLE));
        item->set_message(
            "redis.wait_replicas: 0 of 1 replicas confirmed the write; send it again");
        response->set_rejected(response->rejected() + 1);
        if (held != jobs_.end()) continue;
      }
      v1::JobStatus job;
      job.set_job_id("job-" + std::to_string(jobs_.size() + 1));
      if (!flaky) item->set_job_id(job.job_id());
      *job.mutable_spec() = spec;
      job.set_model(spec.models_size() > 0 ? spec.models(0) : "seedance-2.0");
      const bool fail = spec.prompt().find("FAIL") != std::string::npos;
      job.set_state(fail ? v1::JOB_STATE_FAILED : v1::JOB_STATE_SUCCEEDED);
      // Every job: created at t0, create call at t0+2, clip ready at t0+2+gen, done 1 s later.
      const int64_t gen = static_cast<int64_t>(spec.duration_seconds());
      *job.mutable_created_at() = At(t0);
      AddTransition(job, v1::JOB_STATE_PENDING, v1::JOB_PHASE_UNSPECIFIED, t0);
      AddTransition(job, v1::JOB_STATE_RUNNING, v1::JOB_PHASE_SUBMITTING, t0 + 2);
      if (spec.prompt().find("RETRIED") != std::string::npos) {
        // Failed once, then run again by a RetryJob: its history keeps the first end.
        AddTransition(job, v1::JOB_STATE_FAILED, v1::JOB_PHASE_UNSPECIFIED, t0 + 3);
        AddTransition(job, v1::JOB_STATE_PENDING, v1::JOB_PHASE_UNSPECIFIED, t0 + 4);
        AddTransition(job, v1::JOB_STATE_RUNNING, v1::JOB_PHASE_SUBMITTING, t0 + 5);
      }
      if (fail) {
        AddTransition(job, v1::JOB_STATE_FAILED, v1::JOB_PHASE_UNSPECIFIED, t0 + 3);
        job.mutable_error()->set_category(v1::ERROR_CATEGORY_POLICY_REJECTED);
        job.mutable_error()->set_message("the provider refused the prompt");
      } else {
        AddTransition(job, v1::JOB_STATE_RUNNING, v1::JOB_PHASE_TRANSFERRING, t0 + 2 + gen);
        AddTransition(job, v1::JOB_STATE_SUCCEEDED, v1::JOB_PHASE_UNSPECIFIED, t0 + 3 + gen);
      }
      jobs_.push_back(std::move(job));
      if (!flaky) response->set_accepted(response->accepted() + 1);
    }
  }
  if (batch_id.empty()) batch_id = "batch-generated";
  for (auto& job : jobs_) {
    if (job.spec().batch_id().empty()) job.mutable_spec()->set_batch_id(batch_id);
  }
  response->set_batch_id(batch_id);
  return grpc::Status::OK;
}

v1::BatchProgress FakeJobService::Progress(const std::string& batch_id) {
  v1::BatchProgress progress;
  progress.set_batch_id(batch_id);
  for (const auto& job : jobs_) {
    if (job.spec().batch_id() != batch_id) continue;
    progress.set_total(progress.total() + 1);
    if (job.state() == v1::JOB_STATE_SUCCEEDED) progress.set_succeeded(progress.succeeded() + 1);
    if (job.state() == v1::JOB_STATE_FAILED) progress.set_failed(progress.failed() + 1);
  }
  return progress;
}

grpc::Status FakeJobService::WatchJob(grpc::ServerContext*, const v1::WatchJobRequest* request,
                                      grpc::ServerWriter<v1::JobEvent>* writer) {
  if (watch_unimplemented) return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "no watch here");
  std::vector<v1::JobStatus> jobs = this->jobs();
  // Replay: each job's transitions, with the batch counts as they were after each terminal one.
  v1::BatchProgress progress;
  progress.set_batch_id(request->batch_id());
  for (const auto& job : jobs) {
    if (job.spec().batch_id() == request->batch_id()) progress.set_total(progress.total() + 1);
  }
  progress.set_pending(progress.total());
  for (const auto& job : jobs) {
    const bool match = request->has_batch_id() ? job.spec().batch_id() == request->batch_id()
                                               : job.job_id() == request->job_id();
    if (!match) continue;
    for (const auto& t : job.transitions()) {
      v1::JobEvent event;
      event.set_job_id(job.job_id());
      event.set_state(t.state());
      event.set_phase(t.phase());
      *event.mutable_at() = t.at();
      event.set_model(job.model());
      if (request->has_batch_id()) {
        if (t.state() == v1::JOB_STATE_SUCCEEDED) progress.set_succeeded(progress.succeeded() + 1);
        if (t.state() == v1::JOB_STATE_FAILED) progress.set_failed(progress.failed() + 1);
        if (t.state() == v1::JOB_STATE_RUNNING && t.phase() == v1::JOB_PHASE_SUBMITTING) {
          progress.set_pending(progress.pending() - 1);
          progress.set_running(progress.running() + 1);
        }
        if (t.state() == v1::JOB_STATE_SUCCEEDED || t.state() == v1::JOB_STATE_FAILED)
          progress.set_running(progress.running() - 1);
        *event.mutable_batch() = progress;
      }
      if (!writer->Write(event)) return grpc::Status::OK;
      if (watch_too_slow > 0) {
        --watch_too_slow;
        return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                            "the client reads too slowly; open the watch again");
      }
    }
  }
  return grpc::Status::OK;
}

grpc::Status FakeJobService::GetBatch(grpc::ServerContext*, const v1::GetBatchRequest* request,
                                      v1::BatchProgress* response) {
  std::lock_guard lock(mutex_);
  *response = Progress(request->batch_id());
  if (response->total() == 0) return grpc::Status(grpc::StatusCode::NOT_FOUND, "no such batch");
  return grpc::Status::OK;
}

grpc::Status FakeJobService::BatchAction(const std::string& batch_id, bool cancel,
                                         v1::BatchActionResponse* response) {
  std::lock_guard lock(mutex_);
  uint32_t changed = 0;
  for (auto& job : jobs_) {
    if (job.spec().batch_id() != batch_id) continue;
    const bool ended = job.state() == v1::JOB_STATE_SUCCEEDED ||
                       job.state() == v1::JOB_STATE_FAILED ||
                       job.state() == v1::JOB_STATE_CANCELLED;
    const bool moves =
        cancel ? !ended
               : job.state() == v1::JOB_STATE_FAILED || job.state() == v1::JOB_STATE_CANCELLED;
    if (!moves) continue;
    job.set_state(cancel ? v1::JOB_STATE_CANCELLED : v1::JOB_STATE_SUCCEEDED);
    ++changed;
  }
  *response->mutable_progress() = Progress(batch_id);
  if (response->progress().total() == 0) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND, "batch " + batch_id + " not found");
  }
  response->set_jobs_changed(changed);
  return grpc::Status::OK;
}

grpc::Status FakeJobService::CancelBatch(grpc::ServerContext*,
                                         const v1::CancelBatchRequest* request,
                                         v1::BatchActionResponse* response) {
  return BatchAction(request->batch_id(), /*cancel=*/true, response);
}

grpc::Status FakeJobService::RetryBatch(grpc::ServerContext*, const v1::RetryBatchRequest* request,
                                        v1::BatchActionResponse* response) {
  return BatchAction(request->batch_id(), /*cancel=*/false, response);
}

grpc::Status FakeJobService::ListJobs(grpc::ServerContext*, const v1::ListJobsRequest* request,
                                      v1::ListJobsResponse* response) {
  std::lock_guard lock(mutex_);
  std::vector<const v1::JobStatus*> matching;
  for (const auto& job : jobs_) {
    if (!request->batch_id().empty() && job.spec().batch_id() != request->batch_id()) continue;
    if (request->state() != v1::JOB_STATE_UNSPECIFIED && job.state() != request->state()) continue;
    matching.push_back(&job);
  }
  const size_t offset = request->page_token().empty() ? 0 : std::stoul(request->page_token());
  const size_t page =
      std::min<size_t>(request->page_size() ? request->page_size() : 100, max_page_size);
  for (size_t i = offset; i < matching.size() && i < offset + page; ++i)
    *response->add_jobs() = *matching[i];
  if (offset + page < matching.size()) response->set_next_page_token(std::to_string(offset + page));
  return grpc::Status::OK;
}

grpc::Status FakeJobService::GetJob(grpc::ServerContext*, const v1::GetJobRequest* request,
                                    v1::JobStatus* response) {
  std::lock_guard lock(mutex_);
  for (const auto& job : jobs_) {
    if (job.job_id() == request->job_id()) {
      *response = job;
      return grpc::Status::OK;
    }
  }
  return grpc::Status(grpc::StatusCode::NOT_FOUND, "job " + request->job_id() + " not found");
}

FakeServer::FakeServer(grpc::Service* service, int max_message_bytes) {
  grpc::ServerBuilder builder;
  builder.SetMaxReceiveMessageSize(max_message_bytes);
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
  builder.RegisterService(service);
  server_ = builder.BuildAndStart();
}

FakeServer::~FakeServer() {
  if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
}

}  // namespace reelq::cli::testing
