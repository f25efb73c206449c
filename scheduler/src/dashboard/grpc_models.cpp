// DashboardModels over a ModelService channel: the gRPC callback completes on a gRPC thread and
// hands the answer back to the io executor, where the waiting coroutine resumes.
#include <grpcpp/grpcpp.h>

#include "reelq/scheduler/dashboard.h"
#include "reelq/v1/models.grpc.pb.h"

namespace reelq::scheduler {
namespace {

template <class Response>
struct Call {
  grpc::ClientContext context;
  Response response;
  grpc::Status status;
};

Error FromStatus(const grpc::Status& status) {
  ErrorCategory category = ErrorCategory::kInternal;
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE ||
      status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    category = ErrorCategory::kRetryable;
  }
  return Error{.category = category, .message = "model service: " + status.error_message()};
}

class GrpcModels final : public DashboardModels {
 public:
  GrpcModels(asio::any_io_executor io, std::shared_ptr<grpc::Channel> channel)
      : io_(std::move(io)), stub_(v1::ModelService::NewStub(std::move(channel))) {}

  awaitable<Result<v1::ListModelsResponse>> ListModels() override {
    auto call = std::make_shared<Call<v1::ListModelsResponse>>();
    v1::ListModelsRequest request;
    co_await Await(call, [&](std::function<void(grpc::Status)> done) {
      stub_->async()->ListModels(&call->context, &request, &call->response, std::move(done));
    });
    if (!call->status.ok()) co_return std::unexpected(FromStatus(call->status));
    co_return std::move(call->response);
  }

  awaitable<Result<v1::GetStatsResponse>> GetStats() override {
    auto call = std::make_shared<Call<v1::GetStatsResponse>>();
    v1::GetStatsRequest request;
    co_await Await(call, [&](std::function<void(grpc::Status)> done) {
      stub_->async()->GetStats(&call->context, &request, &call->response, std::move(done));
    });
    if (!call->status.ok()) co_return std::unexpected(FromStatus(call->status));
    co_return std::move(call->response);
  }

 private:
  // Starts the call and waits for its one completion. A timer that never fires stands in for
  // an event: the completion cancels it from the io executor, which also orders the status
  // write before the read.
  template <class C, class Start>
  awaitable<void> Await(std::shared_ptr<C> call, Start start) {
    call->context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    auto done = std::make_shared<asio::steady_timer>(io_, asio::steady_timer::time_point::max());
    start([call, done, io = io_](grpc::Status status) {
      asio::post(io, [call, done, status = std::move(status)]() mutable {
        call->status = std::move(status);
        done->cancel();
      });
    });
    co_await done->async_wait(use_nothrow_awaitable);
  }

  asio::any_io_executor io_;
  std::unique_ptr<v1::ModelService::Stub> stub_;
};

}  // namespace

std::unique_ptr<DashboardModels> DashboardModelsOverGrpc(asio::any_io_executor io,
                                                         std::shared_ptr<grpc::Channel> channel) {
  return std::make_unique<GrpcModels>(std::move(io), std::move(channel));
}

namespace {

class ModelApiModels final : public DashboardModels {
 public:
  explicit ModelApiModels(ModelApi& api) : api_(api) {}
  awaitable<Result<v1::ListModelsResponse>> ListModels() override { return api_.ListModels(); }
  awaitable<Result<v1::GetStatsResponse>> GetStats() override { return api_.GetStats(); }

 private:
  ModelApi& api_;
};

}  // namespace

std::unique_ptr<DashboardModels> DashboardModelsOf(ModelApi& api) {
  return std::make_unique<ModelApiModels>(api);
}

}  // namespace reelq::scheduler
