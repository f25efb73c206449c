#pragma once

#include <chrono>
#include <functional>
#include <string>

#include <grpcpp/support/status.h>

#include "reelq/common/asio.h"
#include "reelq/common/clock.h"
#include "reelq/common/error.h"
#include "reelq/common/redis.h"
#include "reelq/queue/job_store.h"
#include "reelq/scheduler/admission.h"
#include "reelq/scheduler/settings.h"
#include "reelq/storage/object_store.h"
#include "reelq/v1/jobs.pb.h"

namespace reelq::scheduler {

// The JobService's logic as a plain class (the gRPC shell only moves messages): admission,
// storage in Redis, reads, cancel and retry.
class JobApi {
 public:
  JobApi(queue::JobStore& store, const Admission& admission, const Settings& settings,
         storage::ObjectStore* objects, ClockPtr clock);

  // Called after every accepted submission (the dispatcher wakes up).
  void OnSubmitted(std::function<void()> callback) { on_submitted_ = std::move(callback); }

  // redis.wait_replicas: every accepted submission is answered only once `replicas` replicas
  // have it (WAIT on `connection`, which must be the one the JobStore writes with); until then,
  // or when they do not confirm within `timeout`, Submit fails with kRetryable (a retry with
  // the same idempotency key finds the job and waits again).
  void RequireReplicas(redis::ConnectionPtr connection, int replicas,
                       std::chrono::milliseconds timeout);

  awaitable<Result<v1::SubmitJobResponse>> Submit(v1::JobSpec spec);
  awaitable<Result<v1::JobStatus>> Get(std::string job_id);
  awaitable<Result<v1::ListJobsResponse>> List(v1::ListJobsRequest request);
  awaitable<Result<v1::JobStatus>> Cancel(std::string job_id);
  awaitable<Result<v1::JobStatus>> Retry(std::string job_id);
  awaitable<Result<v1::BatchProgress>> GetBatch(std::string batch_id);

  // The id of a batch submitted without one (the job ids' clock and seeded source).
  std::string NewBatchId() const;

  v1::JobStatus ToStatus(const queue::JobRecord& record) const;
  static v1::BatchProgress ToProgress(const std::string& batch_id, const queue::BatchCounts& c);

 private:
  queue::JobStore& store_;
  const Admission& admission_;
  const Settings& settings_;
  storage::ObjectStore* objects_;
  ClockPtr clock_;
  std::function<void()> on_submitted_;
  redis::ConnectionPtr replicated_on_;
  int wait_replicas_ = 0;
  std::chrono::milliseconds wait_timeout_{0};
};

// The one place reelq errors become gRPC statuses.
grpc::Status ToGrpcStatus(const Error& error);

v1::JobState ParseState(std::string_view state);
v1::JobPhase ParsePhase(std::string_view phase);
v1::ErrorCategory ParseCategory(std::string_view category);
std::string StateName(v1::JobState state);  // "PENDING" ... as stored in Redis

}  // namespace reelq::scheduler
