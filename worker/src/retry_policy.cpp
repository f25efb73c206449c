#include "reelq/worker/retry_policy.h"

#include <algorithm>
#include <cmath>

#include "reelq/common/random.h"

namespace reelq::worker {

RetryDecision DecideRetry(const Error& error, int attempt, int max_attempts,
                          const Settings& settings, std::mt19937_64& rng, bool at_create) {
  RetryDecision d;
  switch (error.category) {
    case ErrorCategory::kRateLimited: {
      d.retry = true;
      d.count_attempt = false;
      const int64_t fallback = error.over_concurrency ? kConcurrencyRefusalCooldownMs
                                                      : settings.rate_limit_cooldown.count();
      d.cooldown_ms = error.retry_after.count() > 0 ? error.retry_after.count() : fallback;
      d.delay_ms = d.cooldown_ms;
      return d;
    }
    case ErrorCategory::kRetryable:
    // The upstream task vanished before it finished: make it again. One that had finished
    // (its clip not yet stored) is not made again: fail.lua ends that job as result_expired.
    case ErrorCategory::kNotFound:
    case ErrorCategory::kInternal: {
      d.retry = attempt < max_attempts;
      const double base = static_cast<double>(settings.retry_backoff_initial.count()) *
                          std::pow(2.0, std::max(0, attempt - 1));
      const double capped = std::min(base, static_cast<double>(settings.retry_backoff_max.count()));
      d.delay_ms =
          EqualJitter(std::chrono::milliseconds(static_cast<int64_t>(capped)), rng).count();
      if (error.retry_after.count() > d.delay_ms) d.delay_ms = error.retry_after.count();
      d.account_fault = at_create && error.category == ErrorCategory::kRetryable;
      return d;
    }
    case ErrorCategory::kAuthFailed:
      if (at_create) {
        d.cooldown_ms = kAuthFailureCooldownMs;
        d.retry = attempt < max_attempts;
        d.delay_ms = kAuthFailureCooldownMs;
      }
      return d;
    case ErrorCategory::kPolicyRejected:
    case ErrorCategory::kInvalidRequest:
    case ErrorCategory::kModelGone:
    case ErrorCategory::kDeadlineExceeded:
    case ErrorCategory::kFailedPrecondition:
    case ErrorCategory::kCreateOutcomeUnknown:
    case ErrorCategory::kCancelled:
    case ErrorCategory::kLeaseLost:
      return d;
  }
  return d;
}

}  // namespace reelq::worker
