#pragma once

#include <cstdint>
#include <random>

#include "reelq/common/error.h"
#include "reelq/worker/settings.h"

namespace reelq::worker {

struct RetryDecision {
  bool retry = false;
  bool count_attempt = true;  // rate limits are not the job's fault and spend no attempt
  int64_t delay_ms = 0;
  int64_t cooldown_ms = 0;  // > 0: the account cools down fleet-wide
};

// What to do after an attempt failed with `error`. Content-policy, invalid-request, auth and
// model-gone failures never retry; transient ones back off exponentially with jitter until the
// attempts are spent; rate limits wait out Retry-After (or the configured cooldown) and keep
// the job waiting rather than failing it.
RetryDecision DecideRetry(const Error& error, int attempt, int max_attempts,
                          const Settings& settings, std::mt19937_64& rng);

}  // namespace reelq::worker
