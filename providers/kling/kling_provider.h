#pragma once

#include "kling/kling_jwt.h"
#include "reelq/providers/provider.h"
#include "src/http_adapter.h"

namespace reelq::providers::kling {

// Kling text2video (kling-v3 multi-shot included). Auth: a JWT signed with the account's
// secret key, renewed before it expires. Kling has no cancel API.
class KlingProvider final : public Provider, private HttpAdapter {
 public:
  KlingProvider(AccountSpec account, std::string access_key, std::string secret_key,
                http::ClientPtr client, ClockPtr clock, AdapterOptions options);

  // Provider
  std::string_view name() const override { return "kling"; }
  awaitable<Result<std::string>> Create(GenerationRequest request) override;
  bool CanFindLostCreate() const override { return true; }
  awaitable<Result<std::vector<std::string>>> FindLostCreate(GenerationRequest request,
                                                             int64_t sent_at_ms) override;
  awaitable<Result<TaskStatus>> Poll(std::string task_id) override;
  awaitable<Result<void>> Download(std::string task_id, TaskStatus status, ByteSink& sink) override;
  awaitable<Result<void>> Cancel(std::string task_id) override;

  // GET /v1/videos/{text2video|image2video}/{external_task_id}: the task this idempotency id
  // made, if any (an image2video one carries kImage2VideoIdPrefix).
  awaitable<Result<std::optional<std::string>>> FindByIdempotencyId(std::string idempotency_id,
                                                                    bool image2video = false);

 private:
  // HttpAdapter
  http::Headers AuthHeaders() override;

  JwtSigner signer_;
};

}  // namespace reelq::providers::kling
