#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "reelq/common/asio.h"
#include "reelq/common/byte_sink.h"
#include "reelq/common/error.h"
#include "reelq/providers/generation.h"

namespace reelq::providers {

// One adapter per model family. Methods never throw for provider or transport faults: they
// return an Error classified by the adapter's one classification table.
class Provider {
 public:
  virtual ~Provider() = default;

  virtual std::string_view name() const = 0;  // "kling", "sora", "veo", "seedance"

  // Starts a generation; returns the upstream task id.
  virtual awaitable<Result<std::string>> Create(GenerationRequest request) = 0;

  // Finds a task created earlier with this idempotency id. Returns std::nullopt when the
  // provider has no such task, or when the provider has no idempotency ids (then the caller
  // must not assume anything was created).
  virtual awaitable<Result<std::optional<std::string>>> FindByIdempotencyId(
      std::string idempotency_id) = 0;
  virtual bool SupportsIdempotencyId() const = 0;

  virtual awaitable<Result<TaskStatus>> Poll(std::string task_id) = 0;

  // Streams the finished clip into `sink` without holding it whole.
  virtual awaitable<Result<void>> Download(std::string task_id, TaskStatus status,
                                           ByteSink& sink) = 0;

  // Cancels upstream where the API allows it; kInvalidRequest where it does not.
  virtual awaitable<Result<void>> Cancel(std::string task_id) = 0;
};
using ProviderPtr = std::shared_ptr<Provider>;

}  // namespace reelq::providers
