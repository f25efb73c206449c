#pragma once

#include <grpcpp/grpcpp.h>

#include "reelq/common/asio.h"
#include "reelq/common/error.h"
#include "reelq/scheduler/job_api.h"

namespace reelq::scheduler {

// Runs `work` (an awaitable Result<Response>) on the io executor and finishes the unary reactor
// with its result: the whole of a unary handler once the logic lives in a plain class.
template <class Response, class Work>
grpc::ServerUnaryReactor* Unary(grpc::CallbackServerContext* context, asio::any_io_executor io,
                                Response* response, Work work) {
  auto* reactor = context->DefaultReactor();
  asio::co_spawn(io, std::move(work),
                 [reactor, response](std::exception_ptr error, Result<Response> result) {
                   if (error) {
                     reactor->Finish(grpc::Status(grpc::StatusCode::INTERNAL, "internal error"));
                   } else if (!result) {
                     reactor->Finish(ToGrpcStatus(result.error()));
                   } else {
                     *response = std::move(*result);
                     reactor->Finish(grpc::Status::OK);
                   }
                 });
  return reactor;
}

}  // namespace reelq::scheduler
