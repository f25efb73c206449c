#pragma once

#include <atomic>

#include <grpcpp/grpcpp.h>

#include "reelq/common/asio.h"
#include "reelq/providers/catalogue.h"
#include "reelq/scheduler/authenticator.h"
#include "reelq/scheduler/event_hub.h"
#include "reelq/scheduler/job_api.h"
#include "reelq/scheduler/model_api.h"
#include "reelq/scheduler/watch_limits.h"
#include "reelq/v1/jobs.grpc.pb.h"
#include "reelq/v1/models.grpc.pb.h"

namespace reelq::scheduler {

// Thin gRPC shells (callback API: no thread per call). Each call hops onto the scheduler's
// io executor, where JobApi, ModelApi and EventHub live, and finishes its reactor from there.
class JobServiceImpl final : public v1::JobService::CallbackService {
 public:
  JobServiceImpl(asio::any_io_executor io, JobApi& api, EventHub& events, const Settings& settings,
                 Authenticator& auth);

  grpc::ServerUnaryReactor* SubmitJob(grpc::CallbackServerContext* context,
                                      const v1::SubmitJobRequest* request,
                                      v1::SubmitJobResponse* response) override;
  grpc::ServerReadReactor<v1::SubmitBatchRequest>* SubmitBatch(
      grpc::CallbackServerContext* context, v1::SubmitBatchResponse* response) override;
  grpc::ServerUnaryReactor* GetJob(grpc::CallbackServerContext* context,
                                   const v1::GetJobRequest* request,
                                   v1::JobStatus* response) override;
  grpc::ServerUnaryReactor* ListJobs(grpc::CallbackServerContext* context,
                                     const v1::ListJobsRequest* request,
                                     v1::ListJobsResponse* response) override;
  grpc::ServerWriteReactor<v1::JobEvent>* WatchJob(grpc::CallbackServerContext* context,
                                                   const v1::WatchJobRequest* request) override;
  grpc::ServerUnaryReactor* CancelJob(grpc::CallbackServerContext* context,
                                      const v1::CancelJobRequest* request,
                                      v1::JobStatus* response) override;
  grpc::ServerUnaryReactor* RetryJob(grpc::CallbackServerContext* context,
                                     const v1::RetryJobRequest* request,
                                     v1::JobStatus* response) override;
  grpc::ServerUnaryReactor* GetBatch(grpc::CallbackServerContext* context,
                                     const v1::GetBatchRequest* request,
                                     v1::BatchProgress* response) override;
  grpc::ServerUnaryReactor* CancelBatch(grpc::CallbackServerContext* context,
                                        const v1::CancelBatchRequest* request,
                                        v1::BatchActionResponse* response) override;
  grpc::ServerUnaryReactor* RetryBatch(grpc::CallbackServerContext* context,
                                       const v1::RetryBatchRequest* request,
                                       v1::BatchActionResponse* response) override;
  grpc::ServerUnaryReactor* PickTake(grpc::CallbackServerContext* context,
                                     const v1::PickTakeRequest* request,
                                     v1::JobStatus* response) override;
  // wallet_api.cpp
  grpc::ServerUnaryReactor* GetWallet(grpc::CallbackServerContext* context,
                                      const v1::GetWalletRequest* request,
                                      v1::Wallet* response) override;

  // The most messages any WatchJob stream has held queued for its client so far (never more
  // than Settings::watch_max_queued_messages).
  size_t WatchMostQueued() const { return watch_most_queued_.load(); }
  // The WatchJob streams open now (Settings::max_watches_per_tenant, max_watches).
  const WatchLimits& watches() const { return watch_limits_; }

 private:
  asio::any_io_executor io_;
  JobApi& api_;
  EventHub& events_;
  const Settings& settings_;
  Authenticator& auth_;
  std::atomic<size_t> watch_most_queued_{0};
  WatchLimits watch_limits_;
};

class ModelServiceImpl final : public v1::ModelService::CallbackService {
 public:
  ModelServiceImpl(asio::any_io_executor io, ModelApi& api, Authenticator& auth);

  grpc::ServerUnaryReactor* ListModels(grpc::CallbackServerContext* context,
                                       const v1::ListModelsRequest* request,
                                       v1::ListModelsResponse* response) override;
  grpc::ServerUnaryReactor* GetStats(grpc::CallbackServerContext* context,
                                     const v1::GetStatsRequest* request,
                                     v1::GetStatsResponse* response) override;

 private:
  asio::any_io_executor io_;
  ModelApi& api_;
  Authenticator& auth_;
};

}  // namespace reelq::scheduler
