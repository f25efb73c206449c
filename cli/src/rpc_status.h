#pragma once

#include <string_view>

#include <grpcpp/support/status.h>

namespace reelq::cli {

// "UNAVAILABLE", "INVALID_ARGUMENT", ... (the canonical gRPC names).
std::string_view StatusCodeName(grpc::StatusCode code);

// The process exit code for a failed RPC: kExitRpcBase + the status code.
int ExitCodeFor(grpc::StatusCode code);

}  // namespace reelq::cli
