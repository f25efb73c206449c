// Issue 5, retries: what DecideRetry (worker/src/retry_policy.cpp) does for every error category,
// checked against providers.md §5 (retry 429 and 5xx; never auth, quota/balance or content
// policy). Also the backoff: exponential growth capped at the maximum, jitter within its bounds
// and not constant, Retry-After honoured as a floor, attempts exhausted -> no retry.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <set>
#include <string>

#include "kling/kling_wire.h"
#include "reelq/common/error.h"
#include "reelq/worker/retry_policy.h"
#include "reelq/worker/settings.h"
#include "seedance/seedance_wire.h"

namespace reelq::worker {
namespace {

using std::chrono::milliseconds;

Settings TestSettings() {
  Settings s;
  s.retry_backoff_initial = milliseconds(100);
  s.retry_backoff_max = milliseconds(1'000);
  s.rate_limit_cooldown = milliseconds(30'000);
  return s;
}

Error Make(ErrorCategory c, milliseconds retry_after = milliseconds(0)) {
  return Error{.category = c, .message = "test", .retry_after = retry_after};
}

// What each category must do on a first attempt of five. Every category is listed: the last
// check below fails when one is added to common/ without a decision here.
struct Expected {
  bool retry;
  bool count_attempt;
  bool cooldown;
};
const std::map<ErrorCategory, Expected>& Table() {
  static const std::map<ErrorCategory, Expected> table = {
      // Transient: try again, spending an attempt.
      {ErrorCategory::kRetryable, {true, true, false}},
      // 429: not the job's fault: no attempt spent, the account cools down fleet-wide.
      {ErrorCategory::kRateLimited, {true, false, true}},
      // "change the prompt": never retried.
      {ErrorCategory::kPolicyRejected, {false, true, false}},
      {ErrorCategory::kInvalidRequest, {false, true, false}},
      // Key, permission, billing, quota pack: retrying cannot help (a create refused so waits
      // out the account's cooldown, and a finished task's download or store is retried: below).
      {ErrorCategory::kAuthFailed, {false, true, false}},
      {ErrorCategory::kModelGone, {false, true, false}},
      // The upstream task vanished (its result expired): make it again, spending an attempt.
      {ErrorCategory::kNotFound, {true, true, false}},
      {ErrorCategory::kDeadlineExceeded, {false, true, false}},
      {ErrorCategory::kCancelled, {false, true, false}},
      {ErrorCategory::kLeaseLost, {false, true, false}},
      {ErrorCategory::kFailedPrecondition, {false, true, false}},
      // A create whose answer was lost and cannot be looked up: creating again could pay twice.
      {ErrorCategory::kCreateOutcomeUnknown, {false, true, false}},
      // Our own unexpected state: a bounded number of tries, like a transient failure.
      {ErrorCategory::kInternal, {true, true, false}},
  };
  return table;
}

TEST(RetryPolicy, EveryCategoryOnAFirstAttempt) {
  const Settings s = TestSettings();
  std::mt19937_64 rng(7);
  for (const auto& [category, want] : Table()) {
    SCOPED_TRACE(std::string(ToString(category)));
    const auto d = DecideRetry(Make(category), 1, 5, s, rng);
    EXPECT_EQ(d.retry, want.retry);
    EXPECT_EQ(d.cooldown_ms > 0, want.cooldown);
    if (d.retry) {
      EXPECT_EQ(d.count_attempt, want.count_attempt);
      EXPECT_GT(d.delay_ms, 0) << "a retry never comes back at once";
    }
  }
  // The table covers every category: the one after the last is not a category.
  EXPECT_EQ(ToString(static_cast<ErrorCategory>(Table().size())), "unknown")
      << "a new ErrorCategory needs a retry decision (and a row above)";
}

TEST(RetryPolicy, NonRetryableCategoriesNeverRetryWhateverTheAttemptOrRetryAfter) {
  const Settings s = TestSettings();
  std::mt19937_64 rng(7);
  for (const auto& [category, want] : Table()) {
    if (want.retry) continue;
    SCOPED_TRACE(std::string(ToString(category)));
    for (int attempt : {1, 2, 5}) {
      const auto d = DecideRetry(Make(category, milliseconds(2'000)), attempt, 5, s, rng);
      EXPECT_FALSE(d.retry);
      EXPECT_EQ(d.cooldown_ms, 0) << "a non-retryable error must not cool the account down";
    }
  }
}

// The provider's own answer to a create says something about the account: a server error trips
// its breaker (fail.lua doubles the cooldown with each one in a row), an auth refusal (a key
// revoked, a quota spent) cools it for minutes, so the rest of a batch goes elsewhere. The same
// errors elsewhere (a poll, a download) leave the account alone.
TEST(RetryPolicy, ACreateRefusedWithAServerOrAuthErrorCoolsTheAccount) {
  const Settings s = TestSettings();
  std::mt19937_64 rng(7);
  const auto server = DecideRetry(Make(ErrorCategory::kRetryable), 1, 5, s, rng, true);
  EXPECT_TRUE(server.retry);
  EXPECT_TRUE(server.account_fault);
  EXPECT_FALSE(DecideRetry(Make(ErrorCategory::kRetryable), 1, 5, s, rng).account_fault);
  EXPECT_FALSE(DecideRetry(Make(ErrorCategory::kInternal), 1, 5, s, rng, true).account_fault);

  // A create refused as unauthorised (a pack spent, a key revoked) waits out the account's
  // cooldown and tries again, spending an attempt: a pack topped up within the job's attempts
  // loses nothing, and one never fixed fails it after its last attempt.
  const auto auth = DecideRetry(Make(ErrorCategory::kAuthFailed), 1, 5, s, rng, true);
  EXPECT_TRUE(auth.retry);
  EXPECT_TRUE(auth.count_attempt);
  EXPECT_EQ(auth.cooldown_ms, kAuthFailureCooldownMs);
  EXPECT_EQ(auth.delay_ms, kAuthFailureCooldownMs);
  EXPECT_FALSE(DecideRetry(Make(ErrorCategory::kAuthFailed), 5, 5, s, rng, true).retry);
  EXPECT_EQ(DecideRetry(Make(ErrorCategory::kAuthFailed), 1, 5, s, rng).cooldown_ms, 0);

  // After the generation (a download or store refused as unauthorised), the finished task is
  // kept and fetched again with backoff, within the job's attempts, and the account is left
  // alone: its creates are not refused.
  const auto after = DecideRetry(Make(ErrorCategory::kAuthFailed), 1, 5, s, rng, false, true);
  EXPECT_TRUE(after.retry);
  EXPECT_TRUE(after.count_attempt);
  EXPECT_EQ(after.cooldown_ms, 0);
  EXPECT_GT(after.delay_ms, 0);
  EXPECT_FALSE(DecideRetry(Make(ErrorCategory::kAuthFailed), 5, 5, s, rng, false, true).retry);
  for (auto c : {ErrorCategory::kPolicyRejected, ErrorCategory::kInvalidRequest}) {
    const auto d = DecideRetry(Make(c), 1, 5, s, rng, true);
    EXPECT_EQ(d.cooldown_ms, 0) << ToString(c) << ": the job's fault, not the account's";
    EXPECT_FALSE(d.account_fault);
  }
}

TEST(RetryPolicy, AttemptsExhaustedMeansNoRetry) {
  const Settings s = TestSettings();
  std::mt19937_64 rng(7);
  for (auto category :
       {ErrorCategory::kRetryable, ErrorCategory::kNotFound, ErrorCategory::kInternal}) {
    SCOPED_TRACE(std::string(ToString(category)));
    for (int attempt = 1; attempt < 5; ++attempt) {
      EXPECT_TRUE(DecideRetry(Make(category), attempt, 5, s, rng).retry) << attempt;
    }
    EXPECT_FALSE(DecideRetry(Make(category), 5, 5, s, rng).retry);
    EXPECT_FALSE(DecideRetry(Make(category), 6, 5, s, rng).retry);
    EXPECT_FALSE(DecideRetry(Make(category), 1, 1, s, rng).retry) << "max_attempts 1: one try";
    // A peer's Retry-After does not buy an attempt back.
    EXPECT_FALSE(DecideRetry(Make(category, milliseconds(500)), 5, 5, s, rng).retry);
  }
}

TEST(RetryPolicy, BackoffGrowsExponentiallyWithEqualJitterCappedAtTheMax) {
  const Settings s = TestSettings();  // 100 ms initial, 1 s max
  std::mt19937_64 rng(12345);
  constexpr int kDraws = 4000;
  double previous_mean = 0;
  for (int attempt = 1; attempt <= 12; ++attempt) {
    SCOPED_TRACE("attempt " + std::to_string(attempt));
    const double cap = std::min(100.0 * std::pow(2.0, attempt - 1), 1000.0);
    int64_t lo = INT64_MAX, hi = 0;
    double sum = 0;
    std::set<int64_t> distinct;
    for (int i = 0; i < kDraws; ++i) {
      const auto d = DecideRetry(Make(ErrorCategory::kRetryable), attempt, 100, s, rng);
      ASSERT_TRUE(d.retry);
      ASSERT_TRUE(d.count_attempt);
      ASSERT_EQ(d.cooldown_ms, 0);
      lo = std::min(lo, d.delay_ms);
      hi = std::max(hi, d.delay_ms);
      sum += static_cast<double>(d.delay_ms);
      distinct.insert(d.delay_ms);
    }
    const double mean = sum / kDraws;
    // Equal jitter: uniformly in [cap/2, cap] (truncated to whole milliseconds).
    EXPECT_GE(lo, static_cast<int64_t>(cap / 2) - 1);
    EXPECT_LE(hi, static_cast<int64_t>(cap));
    // Spread over the range, not constant: both ends are reached within 5 % of the range, and
    // the mean sits near the middle (3/4 of the cap; the standard error is < 0.5 % here).
    EXPECT_LE(lo, static_cast<int64_t>(cap * 0.525));
    EXPECT_GE(hi, static_cast<int64_t>(cap * 0.975));
    EXPECT_NEAR(mean, cap * 0.75, cap * 0.02);
    EXPECT_GT(distinct.size(), std::min<size_t>(20, static_cast<size_t>(cap / 2)));
    // Grows until the cap, then stays there.
    if (cap < 1000.0) {
      EXPECT_GT(mean, previous_mean * 1.8);
    } else {
      EXPECT_NEAR(mean, 750.0, 20.0);
    }
    previous_mean = mean;
  }
  // Far past the cap (and past where 2^n would overflow an integer) it still stays there.
  for (int attempt : {40, 70, 99}) {
    const auto d = DecideRetry(Make(ErrorCategory::kRetryable), attempt, 100, s, rng);
    EXPECT_TRUE(d.retry);
    EXPECT_GE(d.delay_ms, 499);
    EXPECT_LE(d.delay_ms, 1000);
  }
}

TEST(RetryPolicy, JitterComesFromTheInjectedRngSoASeedRepeats) {
  const Settings s = TestSettings();
  std::mt19937_64 a(99), b(99), c(100);
  std::vector<int64_t> da, db, dc;
  for (int i = 0; i < 50; ++i) {
    da.push_back(DecideRetry(Make(ErrorCategory::kRetryable), 4, 10, s, a).delay_ms);
    db.push_back(DecideRetry(Make(ErrorCategory::kRetryable), 4, 10, s, b).delay_ms);
    dc.push_back(DecideRetry(Make(ErrorCategory::kRetryable), 4, 10, s, c).delay_ms);
  }
  EXPECT_EQ(da, db);
  EXPECT_NE(da, dc);
}

TEST(RetryPolicy, RetryAfterIsAFloorForTransientErrors) {
  const Settings s = TestSettings();
  std::mt19937_64 rng(3);
  for (int i = 0; i < 500; ++i) {
    // Longer than any backoff (even past the cap): the peer's word wins.
    auto d = DecideRetry(Make(ErrorCategory::kRetryable, milliseconds(5'000)), 1, 5, s, rng);
    EXPECT_TRUE(d.retry);
    EXPECT_EQ(d.delay_ms, 5'000);
    // Shorter than the backoff: the backoff stands (still at least the Retry-After).
    d = DecideRetry(Make(ErrorCategory::kRetryable, milliseconds(10)), 3, 5, s, rng);
    EXPECT_GE(d.delay_ms, 199);
    EXPECT_LE(d.delay_ms, 400);
    // In the middle of the jitter range: never below it.
    d = DecideRetry(Make(ErrorCategory::kRetryable, milliseconds(350)), 3, 5, s, rng);
    EXPECT_GE(d.delay_ms, 350);
    EXPECT_LE(d.delay_ms, 400);
  }
}

TEST(RetryPolicy, RateLimitWaitsOutRetryAfterCoolsTheAccountAndSpendsNoAttempt) {
  const Settings s = TestSettings();
  std::mt19937_64 rng(5);
  // With Retry-After: exactly that (it is a floor, and the account's cooldown).
  auto d = DecideRetry(Make(ErrorCategory::kRateLimited, milliseconds(7'000)), 1, 5, s, rng);
  EXPECT_TRUE(d.retry);
  EXPECT_FALSE(d.count_attempt);
  EXPECT_EQ(d.cooldown_ms, 7'000);
  EXPECT_GE(d.delay_ms, 7'000);
  // Without: the configured cooldown, not the (much shorter) transient backoff.
  d = DecideRetry(Make(ErrorCategory::kRateLimited), 1, 5, s, rng);
  EXPECT_TRUE(d.retry);
  EXPECT_FALSE(d.count_attempt);
  EXPECT_EQ(d.cooldown_ms, 30'000);
  EXPECT_GE(d.delay_ms, 30'000);
  // A refusal for concurrency (Kling's 1303) backs off as the provider asks, else 1 s: the
  // account's learned concurrency keeps dispatch within it, so a 30 s stop would only idle it.
  Error concurrency = Make(ErrorCategory::kRateLimited);
  concurrency.over_concurrency = true;
  d = DecideRetry(concurrency, 1, 5, s, rng);
  EXPECT_TRUE(d.retry);
  EXPECT_FALSE(d.count_attempt);
  EXPECT_EQ(d.cooldown_ms, 1'000);
  EXPECT_EQ(d.delay_ms, 1'000);
  concurrency.retry_after = milliseconds(4'000);
  EXPECT_EQ(DecideRetry(concurrency, 1, 5, s, rng).cooldown_ms, 4'000);
  // On the last attempt too: a 429 spends nothing, so the job still waits instead of failing
  // (quotas are the scheduler's to respect; a 429 says it was wrong, not the job).
  d = DecideRetry(Make(ErrorCategory::kRateLimited, milliseconds(1'000)), 5, 5, s, rng);
  EXPECT_TRUE(d.retry);
  EXPECT_FALSE(d.count_attempt);
}

// The adapters' own classification of providers.md §5's examples, through the policy: the
// decision a real upstream answer leads to.
TEST(RetryPolicy, ProviderAnswersFromTheChecklist) {
  namespace wire = providers::wire;
  const Settings s = TestSettings();
  std::mt19937_64 rng(11);
  struct Case {
    const char* what;
    Error error;
    bool retry;
    bool count_attempt;
  };
  auto kling = [](int http, int code) {
    const std::string body =
        R"({"code":)" + std::to_string(code) + R"(,"message":"m","request_id":"r"})";
    return providers::kling::ClassifyError(wire::Op::kCreate, http, body, "2", 0);
  };
  auto ark = [](int http, const std::string& code) {
    const std::string body = R"({"error":{"code":")" + code + R"(","message":"m"}})";
    return providers::seedance::ClassifyError(wire::Op::kCreate, http, body, "2", 0);
  };
  const Case cases[] = {
      {"kling 1302 rate limit", kling(429, 1302), true, false},
      {"kling 1303 concurrency", kling(429, 1303), true, false},
      {"kling 5xx", kling(500, 5000), true, true},
      {"kling 1000 auth", kling(401, 1000), false, true},
      {"kling 1101 arrears", kling(429, 1101), false, true},
      {"kling 1102 resource pack depleted", kling(429, 1102), false, true},
      {"kling 1301 content policy", kling(400, 1301), false, true},
      {"ark RateLimitExceeded", ark(429, "RateLimitExceeded.EndpointRPMExceeded"), true, false},
      {"ark ServerOverloaded", ark(429, "ServerOverloaded"), true, false},
      {"ark 503", ark(503, "InternalServiceError"), true, true},
      {"ark QuotaExceeded", ark(429, "QuotaExceeded"), false, true},
      {"ark 401", ark(401, "AuthenticationError"), false, true},
      {"ark 403 AccessDenied", ark(403, "AccessDenied"), false, true},
      {"ark AccountOverdueError", ark(403, "AccountOverdueError"), false, true},
      {"ark input policy", ark(400, "InputTextSensitiveContentDetected"), false, true},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    const auto d = DecideRetry(c.error, 1, 5, s, rng);
    EXPECT_EQ(d.retry, c.retry) << c.error.Describe();
    if (d.retry) {
      EXPECT_EQ(d.count_attempt, c.count_attempt) << c.error.Describe();
      // Retry-After "2" is a floor.
      EXPECT_GE(d.delay_ms, 2'000) << c.error.Describe();
    }
  }
}

}  // namespace
}  // namespace reelq::worker
