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
  // The account's provider failed a create with a server error: its breaker cools it for a
  // time that doubles with each such failure in a row (fail.lua).
  bool account_fault = false;
};

// An account whose provider refuses a create as unauthorised (a key revoked, a quota or an
// account overdue) refuses every later one too: it cools this long, fleet-wide, so the rest of
// the batch goes to other accounts and models instead of failing there one job after another.
// The job refused goes back to wait out the cooldown, spending an attempt: a pack topped up or
// a key fixed within its attempts loses nothing (the refusal was not billed), and a key that
// stays wrong fails it after max_attempts cooldowns.
inline constexpr int64_t kAuthFailureCooldownMs = 300'000;

// A create refused for concurrency (Error::over_concurrency, Kling's 1303) teaches the account a
// lower concurrency (fail.lua), which keeps dispatch within it: the account only backs off as
// long as the provider asks (Kling: at least 1 s), not rate_limit_cooldown, which would stop it
// for 30 s at each probe of a grown concurrency while its free slots sit idle.
inline constexpr int64_t kConcurrencyRefusalCooldownMs = 1'000;

// What to do after an attempt failed with `error`. Content-policy, invalid-request, auth and
// model-gone failures never retry (auth: but see `at_create` and `after_generation`); transient
// ones back off exponentially with jitter until the attempts are spent; rate limits wait out
// Retry-After (or the configured cooldown) and keep the job waiting rather than failing it.
// `at_create`: the provider answered the create call itself (it made nothing), so a server error
// or an auth refusal says something about the account, not only this job.
// `after_generation`: the upstream task has finished and is kept (what failed is its download,
// the store or the sidecar): an auth refusal there is retried like a transient failure, since
// the clip is already paid for and a retry fetches it from the same task.
RetryDecision DecideRetry(const Error& error, int attempt, int max_attempts,
                          const Settings& settings, std::mt19937_64& rng, bool at_create = false,
                          bool after_generation = false);

}  // namespace reelq::worker
