#include "parse.h"
#include "reelq/common/utf8.h"

#include <gtest/gtest.h>

#include <google/protobuf/util/time_util.h>

namespace reelq::cli {
namespace {

using std::chrono::milliseconds;
using TimeUtil = google::protobuf::util::TimeUtil;

TEST(ParseDuration, AcceptsUnitsAndCombinations) {
  EXPECT_EQ(ParseDuration("90").value(), milliseconds(90'000));
  EXPECT_EQ(ParseDuration("90s").value(), milliseconds(90'000));
  EXPECT_EQ(ParseDuration("1500ms").value(), milliseconds(1'500));
  EXPECT_EQ(ParseDuration("30m").value(), milliseconds(1'800'000));
  EXPECT_EQ(ParseDuration("2h").value(), milliseconds(7'200'000));
  EXPECT_EQ(ParseDuration("1d").value(), milliseconds(86'400'000));
  EXPECT_EQ(ParseDuration("1h30m").value(), milliseconds(5'400'000));
}

TEST(ParseDuration, RejectsGarbageWithAMessage) {
  for (const char* bad :
       {"", "s", "-5s", "5x", "1.5h", "h1", " 5s", "5s ", "99999999999999999999"}) {
    auto parsed = ParseDuration(bad);
    ASSERT_FALSE(parsed.has_value()) << bad;
    EXPECT_FALSE(parsed.error().empty());
  }
  EXPECT_NE(ParseDuration("5x").error().find("'5x'"), std::string::npos);
  EXPECT_NE(ParseDuration("1000000000d").error().find("too long"), std::string::npos);
}

TEST(ParseDeadline, RelativeIsAddedToNow) {
  const auto now = std::chrono::system_clock::time_point(std::chrono::seconds(1'700'000'000));
  auto at = ParseDeadline("+30m", now);
  ASSERT_TRUE(at.has_value()) << at.error();
  EXPECT_EQ(at->seconds(), 1'700'000'000 + 1800);
  EXPECT_EQ(at->nanos(), 0);
  EXPECT_EQ(ParseDeadline("+1h30m", now)->seconds(), 1'700'000'000 + 5400);
}

TEST(ParseDeadline, AbsoluteRfc3339WithZoneOrOffset) {
  const auto now = std::chrono::system_clock::now();
  auto utc = ParseDeadline("2026-11-25T03:00:00Z", now);
  ASSERT_TRUE(utc.has_value()) << utc.error();
  EXPECT_EQ(TimeUtil::ToString(*utc), "2026-11-25T03:00:00Z");
  auto offset = ParseDeadline("2026-11-25T04:00:00+01:00", now);
  ASSERT_TRUE(offset.has_value()) << offset.error();
  EXPECT_EQ(offset->seconds(), utc->seconds());
}

TEST(ParseDeadline, RejectsGarbage) {
  const auto now = std::chrono::system_clock::now();
  for (const char* bad : {"", "+", "+0s", "+x", "tomorrow", "2026-11-25", "2026-13-01T00:00:00Z"}) {
    auto parsed = ParseDeadline(bad, now);
    EXPECT_FALSE(parsed.has_value()) << bad;
  }
}

TEST(ParseClipSeconds, WholeSecondsInRange) {
  EXPECT_EQ(ParseClipSeconds("8").value(), 8u);
  EXPECT_EQ(ParseClipSeconds("15s").value(), 15u);
  for (const char* bad : {"", "0", "-4", "4.5", "abc", "3601", "8 s"})
    EXPECT_FALSE(ParseClipSeconds(bad).has_value()) << bad;
}

TEST(ParseFlags, AspectResolutionAudioLabelPriority) {
  EXPECT_EQ(ParseAspectRatio("9:16").value(), "9:16");
  for (const char* bad : {"16x9", "16:", ":9", "0:1", "a:b", "16:9:1"})
    EXPECT_FALSE(ParseAspectRatio(bad).has_value()) << bad;
  EXPECT_EQ(ParseResolution("1080P").value(), "1080p");
  EXPECT_EQ(ParseResolution("4K").value(), "4k");
  EXPECT_FALSE(ParseResolution("hd").has_value());
  EXPECT_FALSE(ParseResolution("p").has_value());
  EXPECT_TRUE(ParseOnOff("on").value());
  EXPECT_FALSE(ParseOnOff("OFF").value());
  EXPECT_FALSE(ParseOnOff("maybe").has_value());
  auto label = ParseLabel("shot=12=b");
  ASSERT_TRUE(label.has_value());
  EXPECT_EQ(label->first, "shot");
  EXPECT_EQ(label->second, "12=b");
  EXPECT_FALSE(ParseLabel("=v").has_value());
  EXPECT_FALSE(ParseLabel("novalue").has_value());
  EXPECT_EQ(ParseInt32("-5").value(), -5);
  EXPECT_EQ(ParseInt32("+7").value(), 7);
  EXPECT_FALSE(ParseInt32("3000000000").has_value());
  EXPECT_FALSE(ParseInt32("1e3").has_value());
}

TEST(ParseEnums, UseCaseAndStateAcceptSeveralSpellings) {
  EXPECT_EQ(ParseUseCase("fast_social").value(), v1::USE_CASE_FAST_SOCIAL);
  EXPECT_EQ(ParseUseCase("multi-shot-narrative").value(), v1::USE_CASE_MULTI_SHOT_NARRATIVE);
  EXPECT_EQ(ParseUseCase("USE_CASE_PHOTOREALISM").value(), v1::USE_CASE_PHOTOREALISM);
  EXPECT_FALSE(ParseUseCase("unspecified").has_value());
  auto bad = ParseUseCase("cinema");
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().find("camera_direction"), std::string::npos);  // lists the choices
  EXPECT_EQ(ParseJobState("succeeded").value(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(ParseJobState("JOB_STATE_FAILED").value(), v1::JOB_STATE_FAILED);
  EXPECT_FALSE(ParseJobState("done").has_value());
}

// The CLI checks text with common's one validator (reelq/common/utf8.h), the scheduler's too.
TEST(IsValidUtf8, FindsTheFirstBadByte) {
  EXPECT_TRUE(IsValidUtf8("plain ascii"));
  EXPECT_TRUE(IsValidUtf8("caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x8e\xac"));
  EXPECT_EQ(FindInvalidUtf8("ab\xff"), 2u);
  EXPECT_EQ(FindInvalidUtf8("x\xc3"), 1u);        // truncated sequence
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));      // UTF-16 surrogate
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // past U+10FFFF
}

}  // namespace
}  // namespace reelq::cli
