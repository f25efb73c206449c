#include "context.h"

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <tuple>

#include "parse.h"
#include "rpc_status.h"

namespace reelq::cli {

std::string ExitCodeHelp() {
  return "Exit codes:\n"
         "  0   success (for batch/watch: every job SUCCEEDED)\n"
         "  1   internal error in the CLI, or standard output could not be written\n"
         "  2   bad flag or flag value (the message names the flag)\n"
         "  3   input file unreadable, or no usable line in it\n"
         "  4   a job FAILED or was CANCELLED, or a batch line was rejected\n"
         "  5   --max-wait ran out before the job or batch finished\n"
         "  20+N  gRPC error with status code N, e.g. 23 INVALID_ARGUMENT, 24 DEADLINE_EXCEEDED,\n"
         "        25 NOT_FOUND, 28 RESOURCE_EXHAUSTED, 29 FAILED_PRECONDITION, 34 UNAVAILABLE,\n"
         "        27 PERMISSION_DENIED, 36 UNAUTHENTICATED\n";
}

std::string_view StatusCodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::UNKNOWN:
      return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED:
      return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS:
      return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return "UNKNOWN_CODE";
  }
}

int ExitCodeFor(grpc::StatusCode code) {
  const int value = static_cast<int>(code);
  if (value <= 0 || value > 16) return kExitRpcBase + static_cast<int>(grpc::StatusCode::UNKNOWN);
  return kExitRpcBase + value;
}

std::shared_ptr<grpc::Channel> Context::Channel() {
  if (!channel_) {
    grpc::SslCredentialsOptions tls;
    tls.pem_root_certs = ca_pem_;
    tls.pem_cert_chain = cert_pem_;
    tls.pem_private_key = key_pem_;
    auto credentials =
        options_.tls ? grpc::SslCredentials(tls) : grpc::InsecureChannelCredentials();
    grpc::ChannelArguments args;
    // Batch summaries page through up to 1000 statuses at a time.
    args.SetMaxReceiveMessageSize(64 << 20);
    channel_ = grpc::CreateCustomChannel(options_.server, credentials, args);
  }
  return channel_;
}

v1::JobService::Stub& Context::Jobs() {
  if (!jobs_) jobs_ = v1::JobService::NewStub(Channel());
  return *jobs_;
}

v1::ModelService::Stub& Context::Models() {
  if (!models_) models_ = v1::ModelService::NewStub(Channel());
  return *models_;
}

v1::AdminService::Stub& Context::Admin() {
  if (!admin_) admin_ = v1::AdminService::NewStub(Channel());
  return *admin_;
}

std::string Context::LoadTlsFiles() {
  for (auto [flag, path, pem] : {std::tuple{"--ca", &options_.ca_file, &ca_pem_},
                                 std::tuple{"--cert", &options_.cert_file, &cert_pem_},
                                 std::tuple{"--key", &options_.key_file, &key_pem_}}) {
    if (path->empty()) continue;
    options_.tls = true;
    std::ifstream in(*path);
    std::stringstream contents;
    if (in) contents << in.rdbuf();
    if (!in || contents.str().empty()) return std::string(flag) + ": cannot read " + *path;
    *pem = contents.str();
  }
  if (cert_pem_.empty() != key_pem_.empty()) return "--cert and --key: give both or neither";
  return {};
}

void Context::Authorize(grpc::ClientContext& context) const {
  if (!options_.token.empty()) context.AddMetadata("authorization", "Bearer " + options_.token);
}

void Context::SetDeadline(grpc::ClientContext& context, std::chrono::milliseconds extra) const {
  context.set_deadline(std::chrono::system_clock::now() + timeout_ + extra);
  Authorize(context);
}

int Context::RpcError(const grpc::Status& status, std::string_view what) {
  io_.err << "error: " << what << ": " << StatusCodeName(status.error_code()) << ": "
          << status.error_message();
  // The hint only when no connection is up: a scheduler that answered UNAVAILABLE itself (Redis
  // out of reach, a replica wait that fell short) is listening.
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE &&
      (!channel_ || channel_->GetState(false) != GRPC_CHANNEL_READY))
    io_.err << " (is a reelq scheduler listening on " << options_.server << "?)";
  if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED)
    io_.err << " (after --timeout " << options_.timeout << ")";
  io_.err << "\n";
  return ExitCodeFor(status.error_code());
}

int Context::UsageError(std::string_view flag, std::string_view message) {
  io_.err << "error: " << flag << ": " << message << "\n";
  return kExitUsage;
}

int Context::Fail(int code, std::string_view message) {
  io_.err << "error: " << message << "\n";
  return code;
}

}  // namespace reelq::cli
