#pragma once

#include "reelq/providers/provider.h"
#include "src/http_adapter.h"

namespace reelq::providers::seedance {

// Seedance on BytePlus ModelArk / Volcengine Ark. Auth: bearer ARK API key. Cancel is
// DELETE on the task, which Ark honours only while the task is queued.
class SeedanceProvider final : public Provider, private HttpAdapter {
 public:
  SeedanceProvider(AccountSpec account, std::string api_key, http::ClientPtr client, ClockPtr clock,
                   AdapterOptions options);

  // Provider
  std::string_view name() const override { return "seedance"; }
  awaitable<Result<std::string>> Create(GenerationRequest request) override;
  bool CanFindLostCreate() const override { return true; }
  awaitable<Result<std::vector<std::string>>> FindLostCreate(GenerationRequest request,
                                                             int64_t sent_at_ms) override;
  awaitable<Result<TaskStatus>> Poll(std::string task_id) override;
  awaitable<Result<void>> Download(std::string task_id, TaskStatus status, ByteSink& sink) override;
  awaitable<Result<void>> Cancel(std::string task_id) override;

  // How many pages FindLostCreate reads back through the task list (newest first) at most.
  static constexpr int kMaxListPages = 20;

 private:
  // HttpAdapter
  http::Headers AuthHeaders() override;

  std::string TaskPath(const std::string& task_id) const;
  std::string api_key_;
};

}  // namespace reelq::providers::seedance
