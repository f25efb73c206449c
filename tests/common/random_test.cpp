// EqualJitter: the one retry-delay spread every reconnect and retry in reelq draws from
// (Redis reconnects, S3 parts, webhook deliveries, provider retries).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <set>

#include "reelq/common/random.h"

namespace reelq {
namespace {

using std::chrono::milliseconds;

TEST(EqualJitter, DrawsFromTheUpperHalfOfTheCapAndSpreadsOverIt) {
  std::mt19937_64 rng(42);
  std::set<int64_t> seen;
  int64_t lowest = 1'000'000;
  int64_t highest = 0;
  for (int i = 0; i < 5'000; ++i) {
    const auto delay = EqualJitter(milliseconds(1'000), rng).count();
    ASSERT_GE(delay, 500);
    ASSERT_LE(delay, 1'000);
    seen.insert(delay);
    lowest = std::min(lowest, delay);
    highest = std::max(highest, delay);
  }
  // Clients that failed together must not come back together: the draws cover the range.
  EXPECT_GT(seen.size(), 400u);
  EXPECT_LT(lowest, 520);
  EXPECT_GT(highest, 980);
}

TEST(EqualJitter, SmallAndZeroCapsStayWithinThemselves) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 200; ++i) {
    EXPECT_EQ(EqualJitter(milliseconds(0), rng).count(), 0);
    const auto one = EqualJitter(milliseconds(1), rng).count();
    EXPECT_TRUE(one == 0 || one == 1) << one;
    const auto three = EqualJitter(milliseconds(3), rng).count();
    EXPECT_GE(three, 1);
    EXPECT_LE(three, 3);
  }
  EXPECT_EQ(EqualJitter(milliseconds(-5), rng).count(), 0);
}

TEST(EqualJitter, GeneratorsFromNewRngDisagree) {
  // Two workers' connections (each Core has its own generator) must not draw the same
  // sequence, or jitter would keep them in lockstep.
  auto a = NewRng();
  auto b = NewRng();
  int same = 0;
  for (int i = 0; i < 50; ++i) {
    if (EqualJitter(milliseconds(2'000), a) == EqualJitter(milliseconds(2'000), b)) ++same;
  }
  EXPECT_LT(same, 10);
}

}  // namespace
}  // namespace reelq
