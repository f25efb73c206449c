#pragma once

// An in-process JobService for CLI tests: jobs finish the moment they are submitted (SUCCEEDED,
// or FAILED when the prompt contains "FAIL"; one whose prompt contains "RETRIED" failed once and
// was retried first); items whose prompt contains "REJECT" are rejected
// with INVALID_ARGUMENT. An item whose prompt contains "FLAKY" is stored but answered UNAVAILABLE
// the first time (as a scheduler whose wait for a replica fell short), "FLAKY-ALWAYS" every
// time. An item whose idempotency key a stored job holds is answered with that job (duplicate),
// as the scheduler does. ListJobs serves small pages so the CLI has to page.

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "reelq/v1/jobs.grpc.pb.h"

namespace reelq::cli::testing {

class FakeJobService final : public v1::JobService::Service {
 public:
  bool watch_unimplemented = false;
  // The next watches that many end after their first event with RESOURCE_EXHAUSTED, as the
  // scheduler ends the stream of a client that reads too slowly.
  std::atomic<int> watch_too_slow{0};
  // Answers SubmitBatch as a scheduler older than SubmitBatchRequest.specs: one item a message.
  bool ignores_specs = false;
  uint32_t max_page_size = 2;

  std::vector<v1::JobSpec> received();  // every spec SubmitBatch was sent, in order
  std::vector<v1::JobStatus> jobs();
  int streams();                         // SubmitBatch calls so far
  int messages();                        // SubmitBatch messages read so far
  std::vector<v1::JobSpec> submitted();  // every spec SubmitJob was sent, in order

  // JobService
  // SubmitJob stores the job as SubmitBatch does an item (FLAKY: answered UNAVAILABLE once after
  // it is stored; FLAKY-ALWAYS: every time) and answers a known idempotency key with its job.
  grpc::Status SubmitJob(grpc::ServerContext* context, const v1::SubmitJobRequest* request,
                         v1::SubmitJobResponse* response) override;
  grpc::Status SubmitBatch(grpc::ServerContext* context,
                           grpc::ServerReader<v1::SubmitBatchRequest>* reader,
                           v1::SubmitBatchResponse* response) override;
  grpc::Status WatchJob(grpc::ServerContext* context, const v1::WatchJobRequest* request,
                        grpc::ServerWriter<v1::JobEvent>* writer) override;
  grpc::Status GetBatch(grpc::ServerContext* context, const v1::GetBatchRequest* request,
                        v1::BatchProgress* response) override;
  grpc::Status ListJobs(grpc::ServerContext* context, const v1::ListJobsRequest* request,
                        v1::ListJobsResponse* response) override;
  grpc::Status GetJob(grpc::ServerContext* context, const v1::GetJobRequest* request,
                      v1::JobStatus* response) override;
  // CancelBatch cancels the batch's jobs that have not ended (none here: every job ends at
  // submit); RetryBatch makes its FAILED and CANCELLED jobs SUCCEEDED. NOT_FOUND for a batch
  // without jobs.
  grpc::Status CancelBatch(grpc::ServerContext* context, const v1::CancelBatchRequest* request,
                           v1::BatchActionResponse* response) override;
  grpc::Status RetryBatch(grpc::ServerContext* context, const v1::RetryBatchRequest* request,
                          v1::BatchActionResponse* response) override;

 private:
  v1::BatchProgress Progress(const std::string& batch_id);
  grpc::Status BatchAction(const std::string& batch_id, bool cancel,
                           v1::BatchActionResponse* response);

  std::mutex mutex_;
  std::vector<v1::JobSpec> received_;
  std::vector<v1::JobStatus> jobs_;
  int streams_ = 0;
  int messages_ = 0;
  std::vector<v1::JobSpec> submitted_;
};

// A gRPC server on 127.0.0.1:<free port> serving `service` until destroyed. It takes messages up
// to `max_message_bytes`, as the scheduler does (scheduler.max_message_bytes, 32 MiB by default).
class FakeServer {
 public:
  explicit FakeServer(grpc::Service* service, int max_message_bytes = 32 << 20);
  ~FakeServer();
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace reelq::cli::testing
