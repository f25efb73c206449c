#pragma once

// Calls with a bearer token, for the auth_ tests.
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "reelq/v1/admin.grpc.pb.h"
#include "reelq/v1/jobs.grpc.pb.h"
#include "reelq/v1/models.grpc.pb.h"

namespace reelq::testing {

// A call context with a 10 s deadline and, unless `token` is empty, `authorization: Bearer`.
std::unique_ptr<grpc::ClientContext> Authed(const std::string& token);

struct RpcOutcome {
  std::string rpc;
  grpc::Status status;
};

// Every JobService, ModelService and AdminService RPC once, with `token`, on `channel`; the
// requests are well formed, so only authentication can refuse them.
std::vector<RpcOutcome> CallEveryRpc(const std::shared_ptr<grpc::Channel>& channel,
                                     const std::string& token);

// SubmitJob / SubmitBatch / WatchJob with a token.
reelq::v1::SubmitJobResponse SubmitAs(reelq::v1::JobService::Stub& stub, const std::string& token,
                                      const reelq::v1::JobSpec& spec, grpc::Status* status);
reelq::v1::SubmitBatchResponse SubmitBatchAs(reelq::v1::JobService::Stub& stub,
                                             const std::string& token,
                                             const std::vector<reelq::v1::JobSpec>& specs,
                                             grpc::Status* status);
// Reads a WatchJob stream to its end (at most `timeout`); the final status.
grpc::Status WatchAs(reelq::v1::JobService::Stub& stub, const std::string& token,
                     const reelq::v1::WatchJobRequest& request, std::chrono::seconds timeout,
                     int* events = nullptr);

// Lines of every file under `dir` (recursively) that contain `secret`, as "<file>: <line>".
std::vector<std::string> LinesContaining(const std::string& dir, const std::string& secret);

}  // namespace reelq::testing
