#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "reelq/common/asio.h"
#include "reelq/common/byte_sink.h"
#include "reelq/common/error.h"

namespace reelq::providers {

struct ShotRequest {
  std::string prompt;
  int duration_seconds = 0;
};

// A generation as reelq asks for it, in provider-neutral terms; each adapter maps it to its
// own wire format.
struct GenerationRequest {
  std::string upstream_model;  // provider-side model id from the catalogue, e.g. "kling-v3"
  std::string prompt;
  std::string negative_prompt;
  std::vector<ShotRequest> shots;  // non-empty: one multi-shot generation (Kling 3.0)
  int duration_seconds = 0;
  std::string aspect_ratio = "16:9";
  std::string resolution = "720p";
  bool audio = true;
  // The job attempt id. Sent as the provider's client-chosen idempotency id where it has one
  // (Kling `external_task_id`), so a create whose answer was lost can be found again.
  std::string idempotency_id;
};

enum class TaskState { kQueued, kRunning, kSucceeded, kFailed, kCancelled };

struct TaskStatus {
  TaskState state = TaskState::kQueued;
  int progress_percent = -1;  // -1 when the provider gives none
  // When the provider suggests when to poll next (Sora `openai-poll-after-ms`).
  std::optional<std::chrono::milliseconds> poll_after;
  // Set when kSucceeded: where the clip is (may need the adapter's auth to fetch).
  std::string video_url;
  double clip_seconds = 0;
  // Set when kFailed: why, in reelq's categories (policy rejection carries the reason).
  std::optional<Error> error;
};

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
