#include "reelq/scheduler/grpc_services.h"
#include "unary.h"

namespace reelq::scheduler {

ModelServiceImpl::ModelServiceImpl(asio::any_io_executor io, ModelApi& api)
    : io_(std::move(io)), api_(api) {}

grpc::ServerUnaryReactor* ModelServiceImpl::ListModels(grpc::CallbackServerContext* context,
                                                       const v1::ListModelsRequest* /*request*/,
                                                       v1::ListModelsResponse* response) {
  return Unary(context, io_, response, api_.ListModels());
}

grpc::ServerUnaryReactor* ModelServiceImpl::GetStats(grpc::CallbackServerContext* context,
                                                     const v1::GetStatsRequest* /*request*/,
                                                     v1::GetStatsResponse* response) {
  return Unary(context, io_, response, api_.GetStats());
}

}  // namespace reelq::scheduler
