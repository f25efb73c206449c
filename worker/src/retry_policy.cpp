#include "reelq/worker/retry_policy.h"

#include <algorithm>
#include <cmath>

#include "reelq/common/random.h"

namespace reelq::worker {

namespace {

// Exponential from retry_backoff_initial, capped at retry_backoff_max, with equal jitter; never
// sooner than the error's retry_after.
int64_t Backoff(const Error& error, int attempt, const Settings& settings, std::mt19937_64& rng) {
  const double base = static_cast<double>(settings.retry_backoff_initial.count()) *
                      std::pow(2.0, std::max(0, attempt - 1));
  const double capped = std::min(base, static_cast<double>(settings.retry_backoff_max.count()));
  int64_t delay_ms =
      EqualJitter(std::chrono::milliseconds(static_cast<int64_t>(capped)), rng).count();
  if (error.retry_after.count() > delay_ms) delay_ms = error.retry_after.count();
  return delay_ms;
}

}  // namespace

RetryDecision DecideRetry(const Error& error, int attempt, int max_attempts,
                          const Settings& settings, std::mt19937_64& rng, bool at_create,
                          bool after_generation) {
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
      d.delay_ms = Backoff(error, attempt, settings, rng);
      d.account_fault = at_create && error.category == ErrorCategory::kRetryable;
      return d;
    }
    case ErrorCategory::kAuthFailed:
      if (at_create) {
        d.cooldown_ms = kAuthFailureCooldownMs;
        d.retry = attempt < max_attempts;
        d.delay_ms = kAuthFailureCooldownMs;
      } else if (after_generation) {
        // The clip is made and billed: a download or store refused as unauthorised (a key
        // rotated, S3 credentials expired, a directory's permissions) passes or is fixed, as a
        // refused poll does. The task is kept and fetched again, with backoff, within the
        // job's attempts; the account is not cooled (its creates are not refused).
        d.retry = attempt < max_attempts;
        d.delay_ms = Backoff(error, attempt, settings, rng);
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
