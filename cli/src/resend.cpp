#include "resend.h"

#include <algorithm>
#include <cstdio>
#include <random>
#include <string_view>
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

namespace {

// Sends `send` until it answers, or answers what does not say "maybe applied", at most
// kSendAttempts times, each time with the same id (named `id_name` in what is printed); when the
// last answer still says "maybe applied", says how to rerun without applying it twice.
template <class Send>
int SendResending(Context& context, std::string_view what, std::string_view id_name,
                  std::string_view rerun_flag, std::string_view twice, const std::string& id,
                  Send send) {
  grpc::Status status;
  for (int attempt = 1;; ++attempt) {
    grpc::ClientContext rpc;
    context.SetDeadline(rpc);
    status = send(rpc);
    if (status.ok()) return kExitOk;
    if (!MayBeStored(status.error_code()) || attempt >= kSendAttempts) break;
    context.io().err << what << ": " << StatusCodeName(status.error_code()) << ": "
                     << status.error_message() << "; sending it again with " << id_name << " " << id
                     << "\n";
    std::this_thread::sleep_for(ResendBackoff(attempt));
  }
  const int code = context.RpcError(status, std::string(what));
  if (MayBeStored(status.error_code())) {
    context.io().err << "the " << what << " may have been applied all the same: rerun with "
                     << rerun_flag << " " << id << " so that it is not " << twice << "\n";
  }
  return code;
}

}  // namespace

int SubmitJobResending(Context& context, v1::JobSpec spec, v1::SubmitJobResponse* response) {
  if (spec.idempotency_key().empty()) spec.set_idempotency_key(NewIdempotencyKey());
  v1::SubmitJobRequest request;
  *request.mutable_spec() = std::move(spec);
  const std::string& key = request.spec().idempotency_key();
  const int code = SendResending(
      context, "submit", "idempotency key", "--idempotency-key", "made (or paid for) twice", key,
      [&](grpc::ClientContext& rpc) { return context.Jobs().SubmitJob(&rpc, request, response); });
  if (code == kExitOk) {
    context.set_rerun_hint("the job is stored: rerun the same submit with --idempotency-key " +
                           key + " to print its id without making it twice");
  }
  return code;
}

int TopUpResending(Context& context, v1::TopUpRequest request, v1::Wallet* response) {
  if (request.request_id().empty()) request.set_request_id(NewIdempotencyKey());
  const std::string& id = request.request_id();
  const int code = SendResending(
      context, "top-up", "request id", "--request-id", "credited twice", id,
      [&](grpc::ClientContext& rpc) { return context.Admin().TopUp(&rpc, request, response); });
  if (code == kExitOk) {
    context.set_rerun_hint("the top-up is credited: rerun it with --request-id " + id +
                           " to print the wallet without crediting it twice");
  }
  return code;
}

}  // namespace reelq::cli
