#pragma once

#include "reelq/providers/provider.h"
#include "src/http_adapter.h"

namespace reelq::providers::veo {

// Gemini API Veo: a long-running operation per generation. Auth: x-goog-api-key. The task id
// is the operation name ("models/veo-3.1-generate-preview/operations/abc").
// Cancel answers kInvalidRequest: the Gemini API documents no cancel for these operations.
class VeoProvider final : public Provider, private HttpAdapter {
 public:
  VeoProvider(AccountSpec account, std::string api_key, http::ClientPtr client, ClockPtr clock,
              AdapterOptions options);

  // Provider
  std::string_view name() const override { return "veo"; }
  awaitable<Result<std::string>> Create(GenerationRequest request) override;
  bool CanFindLostCreate() const override { return false; }
  awaitable<Result<std::vector<std::string>>> FindLostCreate(GenerationRequest request,
                                                             int64_t sent_at_ms) override;
  awaitable<Result<TaskStatus>> Poll(std::string task_id) override;
  awaitable<Result<void>> Download(std::string task_id, TaskStatus status, ByteSink& sink) override;
  awaitable<Result<void>> Cancel(std::string task_id) override;

  static constexpr int kMaxDownloadRedirects = 5;

 private:
  // HttpAdapter
  http::Headers AuthHeaders() override;

  std::string api_key_;
};

}  // namespace reelq::providers::veo
