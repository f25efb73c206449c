#include "reelq/scheduler/grpc_auth.h"

namespace reelq::scheduler {

std::string AuthorizationOf(const grpc::ServerContextBase& context) {
  const auto& metadata = context.client_metadata();
  auto it = metadata.find("authorization");
  if (it == metadata.end()) return {};
  return std::string(it->second.data(), it->second.size());
}

grpc::Status AuthStatus(const Error& error) {
  if (error.category == ErrorCategory::kAuthFailed) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, error.message);
  }
  return ToGrpcStatus(error);
}

}  // namespace reelq::scheduler
