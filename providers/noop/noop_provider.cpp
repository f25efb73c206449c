// The benchmark/test provider: every call answers at once, without I/O (see noop_provider.h).
#include "reelq/providers/noop_provider.h"

#include <span>

namespace reelq::providers {
namespace {

class NoopProvider final : public Provider {
 public:
  explicit NoopProvider(std::string account_id) : account_id_(std::move(account_id)) {}

  std::string_view name() const override { return "noop"; }

  // The task id is derived from the attempt id, so FindLostCreate can name it again.
  awaitable<Result<std::string>> Create(GenerationRequest request) override {
    co_return TaskId(request.idempotency_id);
  }

  bool CanFindLostCreate() const override { return true; }
  awaitable<Result<std::vector<std::string>>> FindLostCreate(GenerationRequest request,
                                                             int64_t /*sent_at_ms*/) override {
    co_return std::vector<std::string>{TaskId(request.idempotency_id)};
  }

  awaitable<Result<TaskStatus>> Poll(std::string task_id) override {
    if (!task_id.starts_with("noop-")) {
      co_return MakeError(ErrorCategory::kNotFound, "noop provider: no task '" + task_id + "'");
    }
    TaskStatus status;
    status.state = TaskState::kSucceeded;
    status.progress_percent = 100;
    status.video_url = "noop://" + task_id;
    co_return status;
  }

  awaitable<Result<void>> Download(std::string /*task_id*/, TaskStatus /*status*/,
                                   ByteSink& sink) override {
    co_return co_await sink.Write(
        std::as_bytes(std::span(kNoopClipBody.data(), kNoopClipBody.size())));
  }

  awaitable<Result<void>> Cancel(std::string /*task_id*/) override { co_return Result<void>{}; }

 private:
  std::string TaskId(const std::string& idempotency_id) const {
    return "noop-" + account_id_ + "-" + idempotency_id;
  }

  std::string account_id_;
};

}  // namespace

ProviderPtr MakeNoopProvider(const AccountSpec& account) {
  return std::make_shared<NoopProvider>(account.id);
}

}  // namespace reelq::providers
