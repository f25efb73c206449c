#pragma once

#include <functional>
#include <optional>
#include <vector>
#include <string>

#include <grpcpp/support/status.h>

#include "reelq/common/asio.h"
#include "reelq/common/clock.h"
#include "reelq/common/error.h"
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

  awaitable<Result<v1::SubmitJobResponse>> Submit(v1::JobSpec spec);
  // Admits each spec on its own (a bad one gets its own error) and stores the admitted ones
  // with one Redis call. One result per spec, in order.
  awaitable<std::vector<Result<v1::SubmitJobResponse>>> SubmitMany(std::vector<v1::JobSpec> specs);
  awaitable<Result<v1::JobStatus>> Get(std::string job_id);
  awaitable<Result<v1::ListJobsResponse>> List(v1::ListJobsRequest request);
  awaitable<Result<v1::JobStatus>> Cancel(std::string job_id);
  awaitable<Result<v1::JobStatus>> Retry(std::string job_id);
  awaitable<Result<v1::BatchProgress>> GetBatch(std::string batch_id);

  v1::JobStatus ToStatus(const queue::JobRecord& record) const;
  static v1::BatchProgress ToProgress(const std::string& batch_id, const queue::BatchCounts& c);

 private:
  queue::JobStore& store_;
  const Admission& admission_;
  const Settings& settings_;
  storage::ObjectStore* objects_;
  ClockPtr clock_;
  std::function<void()> on_submitted_;
};

// The one place reelq errors become gRPC statuses.
grpc::Status ToGrpcStatus(const Error& error);

v1::JobState ToProto(queue::JobState state);
std::optional<queue::JobState> FromProto(v1::JobState state);
v1::JobPhase ToProto(queue::JobPhase phase);
queue::JobPhase FromProto(v1::JobPhase phase);
v1::ErrorCategory ToProto(std::optional<ErrorCategory> category);

}  // namespace reelq::scheduler
