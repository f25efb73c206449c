#include "reelq/scheduler/grpc_auth.h"
#include "reelq/scheduler/grpc_services.h"

namespace reelq::scheduler {

ModelServiceImpl::ModelServiceImpl(asio::any_io_executor io, ModelApi& api, Authenticator& auth)
    : io_(std::move(io)), api_(api), auth_(auth) {}

grpc::ServerUnaryReactor* ModelServiceImpl::ListModels(grpc::CallbackServerContext* context,
                                                       const v1::ListModelsRequest* /*request*/,
                                                       v1::ListModelsResponse* response) {
  return AuthedUnary(context, io_, auth_, response,
                     [this](Principal who) { return api_.ListModels(std::move(who)); });
}

grpc::ServerUnaryReactor* ModelServiceImpl::GetStats(grpc::CallbackServerContext* context,
                                                     const v1::GetStatsRequest* /*request*/,
                                                     v1::GetStatsResponse* response) {
  return AuthedUnary(context, io_, auth_, response,
                     [this](Principal who) { return api_.GetStats(std::move(who)); });
}

}  // namespace reelq::scheduler
