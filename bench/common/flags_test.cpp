// The benches' numeric flags: all of the text or a clear refusal naming the flag.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "bench_util.h"

namespace reelq::bench {
namespace {

std::string RefusalOf(auto parse) {
  try {
    parse();
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

TEST(BenchFlagsTest, AWholeNumberIsTakenWhole) {
  EXPECT_EQ(IntFlag("--jobs", "5000"), 5000);
  EXPECT_EQ(IntFlag("--jobs", "-3"), -3);
}

TEST(BenchFlagsTest, ANumberWithTrailingTextIsRefusedNamingTheFlag) {
  // std::stoi read "10x" as 10: a window of 10 jobs instead of an error.
  EXPECT_EQ(RefusalOf([] { IntFlag("--deep-window", "10x"); }),
            "--deep-window: '10x' is not a whole number");
  EXPECT_EQ(RefusalOf([] { IntFlag("--queued", "abc"); }), "--queued: 'abc' is not a whole number");
  EXPECT_EQ(RefusalOf([] { IntFlag("--queued", ""); }), "--queued: '' is not a whole number");
  EXPECT_EQ(RefusalOf([] { IntFlag("--queued", "99999999999"); }),
            "--queued: '99999999999' is not a whole number");
  EXPECT_EQ(RefusalOf([] { IntFlag("--queued", "2.5"); }), "--queued: '2.5' is not a whole number");
}

TEST(BenchFlagsTest, ADecimalIsTakenWholeAndGarbageIsRefused) {
  EXPECT_DOUBLE_EQ(NumberFlag("--scale", "0.01"), 0.01);
  EXPECT_DOUBLE_EQ(NumberFlag("--soak-rate", "400"), 400);
  EXPECT_EQ(RefusalOf([] { NumberFlag("--soak-rate", "1.5q"); }),
            "--soak-rate: '1.5q' is not a number");
  EXPECT_EQ(RefusalOf([] { NumberFlag("--scale", "nan"); }), "--scale: 'nan' is not a number");
  EXPECT_EQ(RefusalOf([] { NumberFlag("--scale", "inf"); }), "--scale: 'inf' is not a number");
  EXPECT_EQ(RefusalOf([] { NumberFlag("--scale", ""); }), "--scale: '' is not a number");
}

}  // namespace
}  // namespace reelq::bench
