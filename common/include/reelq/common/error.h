#pragma once

#include <chrono>
#include <expected>
#include <string>
#include <string_view>

namespace reelq {

// What the caller should do next. Every dependency's errors are mapped into this vocabulary in
// exactly one place (one function per provider, per store, per transport).
enum class ErrorCategory {
  kRetryable,       // transient: try again (with backoff)
  kRateLimited,     // upstream quota: try again after `retry_after`
  kPolicyRejected,  // content policy: change the prompt or input; never retried
  kInvalidRequest,  // can never succeed as sent
  kAuthFailed,      // key, permission, billing or quota-pack problem; never retried
  kModelGone,       // the model id was retired upstream; never retried
  kNotFound,        // the thing asked for does not exist
  kDeadlineExceeded,
  kCancelled,           // we stopped on purpose (cancel, lost lease, shutdown): not a failure
  kLeaseLost,           // another worker owns the job now: stop touching it
  kFailedPrecondition,  // valid, but the job's current state forbids it (cancel a finished job)
  // A create may have started (and billed) an upstream generation whose answer was lost and
  // that the provider's API cannot look up; never retried (that could pay twice).
  kCreateOutcomeUnknown,
  kInternal,  // a bug or an unexpected state
};

std::string_view ToString(ErrorCategory category);

// True for categories where the same request may succeed later.
constexpr bool IsRetryable(ErrorCategory c) {
  return c == ErrorCategory::kRetryable || c == ErrorCategory::kRateLimited;
}

struct Error {
  ErrorCategory category = ErrorCategory::kInternal;
  std::string message;
  // For kRateLimited (and kRetryable when the peer said so): how long to wait.
  std::chrono::milliseconds retry_after{0};
  // The upstream's own code ("1301", "moderation_blocked", "SlowDown"...), when there is one.
  std::string provider_code;
  // The HTTP status that carried the error, when there was one.
  int http_status = 0;
  // The request may have reached the peer and been acted on although no usable answer came
  // back: a transport failure from the write on (timeout, reset, closed), or a gateway's 502/504.
  // A create with this set may have made (and billed) an upstream task.
  bool maybe_delivered = false;
  // A rate-limit refusal that names concurrency, not rate (Kling's 1303: too many of the
  // account's tasks running at once). The account's real concurrency is lower than configured,
  // so the queue learns a lower one instead of slowing the account's create rate.
  bool over_concurrency = false;

  std::string Describe() const;  // "rate_limited: <message> (code 1302)"
};

template <class T>
using Result = std::expected<T, Error>;

inline std::unexpected<Error> MakeError(ErrorCategory category, std::string message) {
  return std::unexpected(Error{.category = category, .message = std::move(message)});
}

}  // namespace reelq
