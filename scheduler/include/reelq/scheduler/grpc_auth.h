#pragma once

// The gRPC edge of authentication: the caller's `authorization` metadata to a Principal, and
// a unary call that runs only for an authenticated caller.

#include <string>

#include <grpcpp/grpcpp.h>

#include "reelq/common/asio.h"
#include "reelq/common/error.h"
#include "reelq/scheduler/authenticator.h"
#include "reelq/scheduler/job_api.h"

namespace reelq::scheduler {

// The `authorization` metadata value; empty when the caller sent none.
std::string AuthorizationOf(const grpc::ServerContextBase& context);

// An Authenticator failure as a status: kAuthFailed -> UNAUTHENTICATED, the rest as usual.
grpc::Status AuthStatus(const Error& error);

// Authenticates, then runs `call(principal)` (returning awaitable<Result<Response>>) on the io
// executor and finishes the reactor with its result. `call` must copy what it needs from the
// request: it runs after this function returns.
template <class Response, class Call>
grpc::ServerUnaryReactor* AuthedUnary(grpc::CallbackServerContext* context,
                                      asio::any_io_executor io, Authenticator& auth,
                                      Response* response, Call call) {
  auto* reactor = context->DefaultReactor();
  asio::co_spawn(
      io,
      [](Authenticator& auth, std::string authorization, Response* response,
         Call call) -> awaitable<grpc::Status> {
        auto who = co_await auth.AuthenticateHeader(std::move(authorization));
        if (!who) co_return AuthStatus(who.error());
        auto result = co_await call(*who);
        if (!result) co_return ToGrpcStatus(result.error());
        *response = std::move(*result);
        co_return grpc::Status::OK;
      }(auth, AuthorizationOf(*context), response, std::move(call)),
      [reactor](std::exception_ptr error, grpc::Status status) {
        reactor->Finish(error ? grpc::Status(grpc::StatusCode::INTERNAL, "internal error")
                              : status);
      });
  return reactor;
}

}  // namespace reelq::scheduler
