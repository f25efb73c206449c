#pragma once

#include "reelq/providers/provider.h"
#include "src/http_adapter.h"

namespace reelq::providers::sora {

// OpenAI Videos API (sora-2, sora-2-pro). Auth: bearer API key.
//
// Cancel answers kInvalidRequest: the API has no cancel. DELETE /videos/{id} exists, but it
// deletes a video's stored assets; it is not documented to stop a running generation or to
// refund it, so using it as "cancel" would only risk deleting a clip we still need.
class SoraProvider final : public Provider, private HttpAdapter {
 public:
  SoraProvider(AccountSpec account, std::string api_key, http::ClientPtr client, ClockPtr clock,
               AdapterOptions options);

  // Provider
  std::string_view name() const override { return "sora"; }
  awaitable<Result<std::string>> Create(GenerationRequest request) override;
  bool CanFindLostCreate() const override { return true; }
  awaitable<Result<std::vector<std::string>>> FindLostCreate(GenerationRequest request,
                                                             int64_t sent_at_ms) override;
  awaitable<Result<TaskStatus>> Poll(std::string task_id) override;
  awaitable<Result<void>> Download(std::string task_id, TaskStatus status, ByteSink& sink) override;
  awaitable<Result<void>> Cancel(std::string task_id) override;

  // How many pages FindLostCreate reads back through the list (newest first) at most.
  static constexpr int kMaxListPages = 20;

 private:
  // HttpAdapter
  http::Headers AuthHeaders() override;

  // GET /videos/{id} with the poll hint header (openai-poll-after-ms).
  static Result<TaskStatus> ParsePollAnswer(const http::Response& response, int64_t now_ms);
  std::string ContentUrl(const std::string& task_id) const;  // /videos/{id}/content
  std::string api_key_;
};

}  // namespace reelq::providers::sora
