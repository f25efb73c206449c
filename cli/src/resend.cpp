#include "resend.h"

#include <algorithm>
#include <cstdio>
#include <random>
#include <thread>

#include "rpc_status.h"

namespace reelq::cli {

bool MayBeStored(int code) {
  return code == static_cast<int>(grpc::StatusCode::UNAVAILABLE) ||
         code == static_cast<int>(grpc::StatusCode::DEADLINE_EXCEEDED);
}

std::chrono::milliseconds ResendBackoff(int attempt) {
  return std::min(std::chrono::milliseconds(200) * (1 << std::clamp(attempt - 1, 0, 4)),
                  std::chrono::milliseconds(2000));
}

std::string NewIdempotencyKey() {
  std::random_device rd;
  std::string key = "cli-";
  for (int i = 0; i < 4; ++i) {
    char part[9];
    std::snprintf(part, sizeof part, "%08x", static_cast<unsigned>(rd()));
    key += part;
  }
  return key;
}

int SubmitJobResending(Context& context, v1::JobSpec spec, v1::SubmitJobResponse* response) {
  if (spec.idempotency_key().empty()) spec.set_idempotency_key(NewIdempotencyKey());
  v1::SubmitJobRequest request;
  *request.mutable_spec() = std::move(spec);
  const std::string& key = request.spec().idempotency_key();
  grpc::Status status;
  for (int attempt = 1;; ++attempt) {
    grpc::ClientContext rpc;
    context.SetDeadline(rpc);
    status = context.Jobs().SubmitJob(&rpc, request, response);
    if (status.ok()) return kExitOk;
    if (!MayBeStored(status.error_code()) || attempt >= kSendAttempts) break;
    context.io().err << "submit: " << StatusCodeName(status.error_code()) << ": "
                     << status.error_message() << "; sending it again with idempotency key " << key
                     << "\n";
    std::this_thread::sleep_for(ResendBackoff(attempt));
  }
  const int code = context.RpcError(status, "submit");
  if (MayBeStored(status.error_code())) {
    context.io().err << "the job may be stored all the same: rerun with --idempotency-key " << key
                     << " so that it is not made (or paid for) twice\n";
  }
  return code;
}

int TopUpResending(Context& context, v1::TopUpRequest request, v1::Wallet* response) {
  if (request.request_id().empty()) request.set_request_id(NewIdempotencyKey());
  const std::string& id = request.request_id();
  grpc::Status status;
  for (int attempt = 1;; ++attempt) {
    grpc::ClientContext rpc;
    context.SetDeadline(rpc);
    status = context.Admin().TopUp(&rpc, request, response);
    if (status.ok()) return kExitOk;
    if (!MayBeStored(status.error_code()) || attempt >= kSendAttempts) break;
    context.io().err << "top-up: " << StatusCodeName(status.error_code()) << ": "
                     << status.error_message() << "; sending it again with request id " << id
                     << "\n";
    std::this_thread::sleep_for(ResendBackoff(attempt));
  }
  const int code = context.RpcError(status, "top-up");
  if (MayBeStored(status.error_code())) {
    context.io().err << "the top-up may have been applied all the same: rerun with --request-id "
                     << id << " so that it is not credited twice\n";
  }
  return code;
}

}  // namespace reelq::cli
