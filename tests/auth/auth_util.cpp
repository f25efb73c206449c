#include "auth_util.h"

#include <filesystem>
#include <fstream>

namespace reelq::testing {

namespace v1 = reelq::v1;

std::unique_ptr<grpc::ClientContext> Authed(const std::string& token) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  if (!token.empty()) ctx->AddMetadata("authorization", "Bearer " + token);
  return ctx;
}

std::vector<RpcOutcome> CallEveryRpc(const std::shared_ptr<grpc::Channel>& channel,
                                     const std::string& token) {
  auto jobs = v1::JobService::NewStub(channel);
  auto models = v1::ModelService::NewStub(channel);
  auto admin = v1::AdminService::NewStub(channel);
  std::vector<RpcOutcome> out;
  v1::JobSpec spec;
  spec.set_prompt("a lighthouse in fog");
  spec.add_models("seedance-2.0");
  spec.set_duration_seconds(5);
  {
    v1::SubmitJobRequest req;
    *req.mutable_spec() = spec;
    v1::SubmitJobResponse resp;
    out.push_back({"SubmitJob", jobs->SubmitJob(Authed(token).get(), req, &resp)});
  }
  {
    grpc::Status status;
    SubmitBatchAs(*jobs, token, {spec}, &status);
    out.push_back({"SubmitBatch", status});
  }
  {
    v1::GetJobRequest req;
    req.set_job_id("no-such-job");
    v1::JobStatus resp;
    out.push_back({"GetJob", jobs->GetJob(Authed(token).get(), req, &resp)});
  }
  {
    v1::ListJobsRequest req;
    v1::ListJobsResponse resp;
    out.push_back({"ListJobs", jobs->ListJobs(Authed(token).get(), req, &resp)});
  }
  {
    v1::WatchJobRequest req;
    req.set_job_id("no-such-job");
    out.push_back({"WatchJob", WatchAs(*jobs, token, req, std::chrono::seconds(10))});
  }
  {
    v1::CancelJobRequest req;
    req.set_job_id("no-such-job");
    v1::JobStatus resp;
    out.push_back({"CancelJob", jobs->CancelJob(Authed(token).get(), req, &resp)});
  }
  {
    v1::RetryJobRequest req;
    req.set_job_id("no-such-job");
    v1::JobStatus resp;
    out.push_back({"RetryJob", jobs->RetryJob(Authed(token).get(), req, &resp)});
  }
  {
    v1::PickTakeRequest req;
    req.set_job_id("no-such-job");
    req.set_take_job_id("no-such-take");
    v1::JobStatus resp;
    out.push_back({"PickTake", jobs->PickTake(Authed(token).get(), req, &resp)});
  }
  {
    v1::GetBatchRequest req;
    req.set_batch_id("no-such-batch");
    v1::BatchProgress resp;
    out.push_back({"GetBatch", jobs->GetBatch(Authed(token).get(), req, &resp)});
  }
  {
    v1::CancelBatchRequest req;
    req.set_batch_id("no-such-batch");
    v1::BatchActionResponse resp;
    out.push_back({"CancelBatch", jobs->CancelBatch(Authed(token).get(), req, &resp)});
  }
  {
    v1::RetryBatchRequest req;
    req.set_batch_id("no-such-batch");
    v1::BatchActionResponse resp;
    out.push_back({"RetryBatch", jobs->RetryBatch(Authed(token).get(), req, &resp)});
  }
  {
    v1::ListModelsResponse resp;
    out.push_back({"ListModels", models->ListModels(Authed(token).get(), {}, &resp)});
  }
  {
    v1::GetStatsResponse resp;
    out.push_back({"GetStats", models->GetStats(Authed(token).get(), {}, &resp)});
  }
  {
    v1::CreateTenantRequest req;
    req.set_name("intruder");
    v1::Tenant resp;
    out.push_back({"CreateTenant", admin->CreateTenant(Authed(token).get(), req, &resp)});
  }
  {
    v1::ListTenantsResponse resp;
    out.push_back({"ListTenants", admin->ListTenants(Authed(token).get(), {}, &resp)});
  }
  {
    v1::CreateTokenRequest req;
    req.set_tenant("intruder");
    v1::IssuedToken resp;
    out.push_back({"CreateToken", admin->CreateToken(Authed(token).get(), req, &resp)});
  }
  {
    v1::RotateTokenRequest req;
    req.set_tenant("intruder");
    req.set_token_id("0123456789abcdef");
    v1::IssuedToken resp;
    out.push_back({"RotateToken", admin->RotateToken(Authed(token).get(), req, &resp)});
  }
  {
    v1::RevokeTokenRequest req;
    req.set_tenant("intruder");
    req.set_token_id("0123456789abcdef");
    v1::RevokeTokenResponse resp;
    out.push_back({"RevokeToken", admin->RevokeToken(Authed(token).get(), req, &resp)});
  }
  {
    v1::SetWeightRequest req;
    req.set_tenant("intruder");
    req.set_weight(2);
    v1::Tenant resp;
    out.push_back({"SetWeight", admin->SetWeight(Authed(token).get(), req, &resp)});
  }
  {
    v1::GetWalletRequest req;
    v1::Wallet resp;
    out.push_back({"GetWallet", jobs->GetWallet(Authed(token).get(), req, &resp)});
  }
  {
    v1::TopUpRequest req;
    req.set_tenant("intruder");
    req.set_amount_micros(1);
    v1::Wallet resp;
    out.push_back({"TopUp", admin->TopUp(Authed(token).get(), req, &resp)});
  }
  {
    v1::SetLimitsRequest req;
    req.set_tenant("intruder");
    v1::Tenant resp;
    out.push_back({"SetLimits", admin->SetLimits(Authed(token).get(), req, &resp)});
  }
  {
    v1::WebhookSecretRequest req;
    req.set_tenant("intruder");
    v1::WebhookSecret resp;
    out.push_back({"GetWebhookSecret", admin->GetWebhookSecret(Authed(token).get(), req, &resp)});
  }
  return out;
}

v1::SubmitJobResponse SubmitAs(v1::JobService::Stub& stub, const std::string& token,
                               const v1::JobSpec& spec, grpc::Status* status) {
  v1::SubmitJobRequest req;
  *req.mutable_spec() = spec;
  v1::SubmitJobResponse resp;
  *status = stub.SubmitJob(Authed(token).get(), req, &resp);
  return resp;
}

v1::SubmitBatchResponse SubmitBatchAs(v1::JobService::Stub& stub, const std::string& token,
                                      const std::vector<v1::JobSpec>& specs, grpc::Status* status) {
  auto ctx = Authed(token);
  v1::SubmitBatchResponse resp;
  auto writer = stub.SubmitBatch(ctx.get(), &resp);
  for (const auto& spec : specs) {
    v1::SubmitBatchRequest item;
    *item.mutable_spec() = spec;
    if (!writer->Write(item)) break;  // the server ended the call (e.g. UNAUTHENTICATED)
  }
  writer->WritesDone();
  *status = writer->Finish();
  return resp;
}

grpc::Status WatchAs(v1::JobService::Stub& stub, const std::string& token,
                     const v1::WatchJobRequest& request, std::chrono::seconds timeout,
                     int* events) {
  auto ctx = Authed(token);
  ctx->set_deadline(std::chrono::system_clock::now() + timeout);
  auto reader = stub.WatchJob(ctx.get(), request);
  v1::JobEvent event;
  int n = 0;
  while (reader->Read(&event)) ++n;
  if (events) *events = n;
  return reader->Finish();
}

std::vector<std::string> LinesContaining(const std::string& dir, const std::string& secret) {
  std::vector<std::string> hits;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path());
    std::string line;
    while (std::getline(in, line)) {
      // The hit is reported with the secret masked: a failing test must not leak it either.
      bool found = false;
      for (auto at = line.find(secret); at != std::string::npos; at = line.find(secret, at)) {
        line.replace(at, secret.size(), "<secret>");
        found = true;
      }
      if (found) hits.push_back(entry.path().filename().string() + ": " + line.substr(0, 200));
    }
  }
  return hits;
}

}  // namespace reelq::testing
