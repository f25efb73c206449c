// common's one UTF-8 validator (reelq/common/utf8.h), as admission and the CLI use it.
#include <string>

#include <gtest/gtest.h>

#include "reelq/common/utf8.h"

namespace reelq::scheduler {
namespace {

constexpr size_t kValid = std::string_view::npos;

size_t Find(const char* bytes, size_t n) { return FindInvalidUtf8(std::string_view(bytes, n)); }

TEST(Utf8Test, AcceptsWellFormedText) {
  EXPECT_EQ(FindInvalidUtf8(""), kValid);
  EXPECT_EQ(FindInvalidUtf8("plain ASCII \x01\x7f"), kValid);
  EXPECT_EQ(FindInvalidUtf8("caf\xC3\xA9"), kValid);               // U+00E9
  EXPECT_EQ(FindInvalidUtf8("\xC2\x80"), kValid);                  // U+0080, smallest 2-byte
  EXPECT_EQ(FindInvalidUtf8("\xE0\xA0\x80"), kValid);              // U+0800, smallest 3-byte
  EXPECT_EQ(FindInvalidUtf8("\xED\x9F\xBF"), kValid);              // U+D7FF, below surrogates
  EXPECT_EQ(FindInvalidUtf8("\xEE\x80\x80"), kValid);              // U+E000, above them
  EXPECT_EQ(FindInvalidUtf8("\xEF\xBF\xBF"), kValid);              // U+FFFF
  EXPECT_EQ(FindInvalidUtf8("\xF0\x90\x80\x80"), kValid);          // U+10000
  EXPECT_EQ(FindInvalidUtf8("\xF0\x9F\x8E\xAC clapper"), kValid);  // U+1F3AC
  EXPECT_EQ(FindInvalidUtf8("\xF4\x8F\xBF\xBF"), kValid);          // U+10FFFF, the last
  EXPECT_EQ(Find("a\0b", 3), kValid);                              // NUL is a code point
}

TEST(Utf8Test, RejectsOverlongForms) {
  EXPECT_EQ(FindInvalidUtf8("\xC0\x80"), 0u);          // U+0000 in two bytes
  EXPECT_EQ(FindInvalidUtf8("ab\xC1\xBF"), 2u);        // U+007F in two bytes
  EXPECT_EQ(FindInvalidUtf8("\xE0\x80\x80"), 0u);      // U+0000 in three bytes
  EXPECT_EQ(FindInvalidUtf8("\xE0\x9F\xBF"), 0u);      // U+07FF in three bytes
  EXPECT_EQ(FindInvalidUtf8("\xF0\x80\x80\x80"), 0u);  // U+0000 in four bytes
  EXPECT_EQ(FindInvalidUtf8("\xF0\x8F\xBF\xBF"), 0u);  // U+FFFF in four bytes
}

TEST(Utf8Test, RejectsSurrogates) {
  EXPECT_EQ(FindInvalidUtf8("\xED\xA0\x80"), 0u);              // U+D800
  EXPECT_EQ(FindInvalidUtf8("x\xED\xBF\xBF"), 1u);             // U+DFFF
  EXPECT_EQ(FindInvalidUtf8("\xED\xA0\xBD\xED\xB2\xA9"), 0u);  // CESU-8 pair
}

TEST(Utf8Test, RejectsCodePointsAboveTheUnicodeRange) {
  EXPECT_EQ(FindInvalidUtf8("\xF4\x90\x80\x80"), 0u);  // U+110000
  EXPECT_EQ(FindInvalidUtf8("\xF5\x80\x80\x80"), 0u);
  EXPECT_EQ(FindInvalidUtf8("\xF8\x88\x80\x80\x80"), 0u);  // old 5-byte form
  EXPECT_EQ(FindInvalidUtf8("\xFE"), 0u);
  EXPECT_EQ(FindInvalidUtf8("\xFF"), 0u);
}

TEST(Utf8Test, RejectsBrokenSequences) {
  EXPECT_EQ(FindInvalidUtf8("\x80"), 0u);  // a lone continuation byte
  EXPECT_EQ(FindInvalidUtf8("ok\xBF"), 2u);
  EXPECT_EQ(FindInvalidUtf8("caf\xC3"), 3u);  // truncated at the end
  EXPECT_EQ(FindInvalidUtf8("\xE2\x82"), 0u);
  EXPECT_EQ(FindInvalidUtf8("\xF0\x9F\x8E"), 0u);
  EXPECT_EQ(FindInvalidUtf8("\xC3("), 0u);  // continuation missing
  EXPECT_EQ(FindInvalidUtf8("\xE2\x28\xA1"), 0u);
  EXPECT_EQ(FindInvalidUtf8("\xF0\x9F\x8E("), 0u);
}

TEST(Utf8Test, CountsCodePoints) {
  EXPECT_EQ(CountCodePoints(""), 0u);
  EXPECT_EQ(CountCodePoints("abc"), 3u);
  EXPECT_EQ(CountCodePoints("caf\xC3\xA9"), 4u);
  EXPECT_EQ(CountCodePoints("\xF0\x9F\x8E\xAC\xE2\x82\xAC"), 2u);
}

// A client's value in an error message is always valid UTF-8 and bounded: invalid bytes and
// control characters are escaped, a long value is cut on a code point boundary.
TEST(Utf8Test, QuotedValuesAreValidUtf8AndBounded) {
  EXPECT_EQ(QuoteForMessage("veo\xFE"), "\"veo\\xfe\"");
  EXPECT_EQ(QuoteForMessage("caf\xC3\xA9 \"x\"\n"), "\"caf\xC3\xA9 \\\"x\\\"\\x0a\"");
  EXPECT_EQ(QuoteForMessage("\xC3("), "\"\\xc3(\"");
  const std::string long_value = std::string(63, 'a') + "\xC3\xA9" + std::string(100, 'b');
  const std::string cut = QuoteForMessage(long_value);
  EXPECT_EQ(cut, "\"" + std::string(63, 'a') + "\"\xE2\x80\xA6");
  for (const std::string& v : {std::string("\xFF\xFE"), std::string(5000, '\x80'), long_value}) {
    EXPECT_TRUE(IsValidUtf8(QuoteForMessage(v))) << QuoteForMessage(v);
    EXPECT_LT(QuoteForMessage(v).size(), 300u);
  }
  EXPECT_EQ(IdForMessage("job-20261207-abc"), "job-20261207-abc");
  EXPECT_EQ(IdForMessage("has space"), "\"has space\"");
  EXPECT_EQ(IdForMessage(std::string(200, 'x')).size(), 64u + 2 + 3);
}

}  // namespace
}  // namespace reelq::scheduler
