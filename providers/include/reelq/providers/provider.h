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

// Whether a failed call may still have reached the provider and been acted on (a create may
// have made, and billed, a task): the HTTP client marks a transport failure from the request's
// write on (timeout, reset, closed before the answer), and the adapters' classifier a
// gateway's 502/504. Refused or unresolvable connections, and every answer the provider gave
// itself (4xx, 429, other 5xx), made nothing.
inline bool MaybeDelivered(const Error& error) { return error.maybe_delivered; }

// One adapter per model family. Methods never throw for provider or transport faults: they
// return an Error classified by the adapter's one classification table.
class Provider {
 public:
  virtual ~Provider() = default;

  virtual std::string_view name() const = 0;  // "kling", "sora", "veo", "seedance"

  // Starts a generation; returns the upstream task id.
  virtual awaitable<Result<std::string>> Create(GenerationRequest request) = 0;

  // Lost creates. A create whose answer never reached us (the worker died, or the transport
  // failed after the request was written) may have made, and billed, an upstream task.
  // FindLostCreate looks for the tasks that `request` (sent again exactly as before, same
  // idempotency id) may have made when it was sent at `sent_at_ms` (wall clock, taken just
  // before the send). It returns candidate task ids, best match first; empty when the provider
  // has no such task. Only tasks created at or after sent_at_ms - kLostCreateClockSlack are
  // candidates. A list read back newest first that runs out of its page budget before reaching
  // that time answers kRetryable ("lookup incomplete"), never empty: the task may lie further
  // back, and an empty answer makes the caller create (and pay) again. Adapters whose API offers no
  // way to find a task answer kInvalidRequest and CanFindLostCreate() is false: the caller must
  // then assume the create may have happened.
  static constexpr int64_t kLostCreateClockSlackMs = 120'000;
  virtual bool CanFindLostCreate() const = 0;
  virtual awaitable<Result<std::vector<std::string>>> FindLostCreate(GenerationRequest request,
                                                                     int64_t sent_at_ms) = 0;

  virtual awaitable<Result<TaskStatus>> Poll(std::string task_id) = 0;

  // Streams the finished clip into `sink` without holding it whole.
  virtual awaitable<Result<void>> Download(std::string task_id, TaskStatus status,
                                           ByteSink& sink) = 0;

  // Cancels upstream where the API allows it; kInvalidRequest where it does not.
  virtual awaitable<Result<void>> Cancel(std::string task_id) = 0;
};
using ProviderPtr = std::shared_ptr<Provider>;

}  // namespace reelq::providers
