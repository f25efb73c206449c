#pragma once

// The provider-neutral request and status types, split out of provider.h so that code without
// Asio (the wire-format parsers and their fuzzers) can use them.
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "reelq/common/error.h"

namespace reelq::providers {

struct ShotRequest {
  std::string prompt;
  int duration_seconds = 0;
};

// An input image as the worker read it from the object store; the scheduler checked at submit
// that it is a PNG, JPEG or WebP of bounded size.
struct ImageInput {
  std::string bytes;
  std::string mime_type;  // "image/png", "image/jpeg", "image/webp"
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
  // Images, where the model takes them (catalogue `inputs:`); each adapter sends them in its
  // provider's own form.
  std::optional<ImageInput> first_frame;
  std::optional<ImageInput> last_frame;
  std::vector<ImageInput> reference_images;
  // Seedance: ask for the clip's last frame as an image URL (TaskStatus::last_frame_url).
  bool return_last_frame = false;
  // For the simulator's visible labels only (sent as x-reelq-job / x-reelq-shot headers, which
  // real providers ignore): the reelq job id and the shot's number (0: not a storyboard shot).
  std::string job_id;
  int shot_number = 0;
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
  // Seedance with return_last_frame: where the clip's last frame is (an image URL).
  std::string last_frame_url;
  // Set when kFailed: why, in reelq's categories (policy rejection carries the reason).
  std::optional<Error> error;
};

}  // namespace reelq::providers
