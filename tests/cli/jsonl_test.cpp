#include "jsonl.h"

#include <gtest/gtest.h>

#include <sstream>

namespace reelq::cli {
namespace {

TEST(ParseJobSpecJson, LowerCamelAndSnakeCaseGiveTheSameSpec) {
  auto camel = ParseJobSpecJson(
      R"({"tenant":"demo","prompt":"a fox","models":["kling-3.0"],"durationSeconds":5,)"
      R"("aspectRatio":"9:16","useCase":"USE_CASE_FAST_SOCIAL","labels":{"shot":"12"},)"
      R"("audio":false,"startDeadline":"2026-11-25T03:00:00Z"})");
  auto snake = ParseJobSpecJson(
      R"({"tenant":"demo","prompt":"a fox","models":["kling-3.0"],"duration_seconds":5,)"
      R"("aspect_ratio":"9:16","use_case":"USE_CASE_FAST_SOCIAL","labels":{"shot":"12"},)"
      R"("audio":false,"start_deadline":"2026-11-25T03:00:00Z"})");
  ASSERT_TRUE(camel.has_value()) << camel.error();
  ASSERT_TRUE(snake.has_value()) << snake.error();
  EXPECT_EQ(camel->SerializeAsString(), snake->SerializeAsString());
  EXPECT_EQ(camel->duration_seconds(), 5u);
  EXPECT_EQ(camel->aspect_ratio(), "9:16");
  EXPECT_EQ(camel->use_case(), v1::USE_CASE_FAST_SOCIAL);
  EXPECT_TRUE(camel->has_audio());
  EXPECT_FALSE(camel->audio());
  EXPECT_EQ(camel->labels().at("shot"), "12");
  EXPECT_GT(camel->start_deadline().seconds(), 0);
}

TEST(ParseJobSpecJson, ShortUseCaseNamesAreAccepted) {
  auto spec = ParseJobSpecJson(R"({"prompt":"x","useCase":"camera_direction"})");
  ASSERT_TRUE(spec.has_value()) << spec.error();
  EXPECT_EQ(spec->use_case(), v1::USE_CASE_CAMERA_DIRECTION);
  auto bad = ParseJobSpecJson(R"({"prompt":"x","useCase":"cinematic"})");
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().find("useCase"), std::string::npos) << bad.error();
}

// A shot's useCase takes the same short names as the job's (storyboard and compare files).
TEST(ParseJobSpecJson, ShortUseCaseNamesAreAcceptedInShots) {
  auto spec =
      ParseJobSpecJson(R"({"shots":[{"prompt":"wide","durationSeconds":4,"useCase":"fast_social"},)"
                       R"({"prompt":"close","durationSeconds":4,"use_case":"camera_direction"}]})");
  ASSERT_TRUE(spec.has_value()) << spec.error();
  ASSERT_EQ(spec->shots_size(), 2);
  EXPECT_EQ(spec->shots(0).use_case(), v1::USE_CASE_FAST_SOCIAL);
  EXPECT_EQ(spec->shots(1).use_case(), v1::USE_CASE_CAMERA_DIRECTION);
  auto file = ParseShotsFile(R"([{"prompt":"wide","durationSeconds":4,"useCase":"long_clip"}])");
  ASSERT_TRUE(file.has_value()) << file.error();
  EXPECT_EQ(file->shots(0).use_case(), v1::USE_CASE_LONG_CLIP);
  auto bad = ParseJobSpecJson(
      R"({"shots":[{"prompt":"a","durationSeconds":4},{"prompt":"b","useCase":"cinematic"}]})");
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().find("field shots[1].useCase"), std::string::npos) << bad.error();
}

TEST(ParseJobSpecJson, ShotsParse) {
  auto spec = ParseJobSpecJson(
      R"({"shots":[{"prompt":"wide","durationSeconds":4},{"prompt":"close","duration_seconds":6}]})");
  ASSERT_TRUE(spec.has_value()) << spec.error();
  ASSERT_EQ(spec->shots_size(), 2);
  EXPECT_EQ(spec->shots(1).duration_seconds(), 6u);
}

TEST(ParseJobSpecJson, UnknownFieldIsNamed) {
  auto spec = ParseJobSpecJson(R"({"prompt":"x","durationSecs":5})");
  ASSERT_FALSE(spec.has_value());
  EXPECT_NE(spec.error().find("unknown field"), std::string::npos) << spec.error();
  EXPECT_NE(spec.error().find("durationSecs"), std::string::npos) << spec.error();
}

TEST(ParseJobSpecJson, WrongTypeNamesTheField) {
  for (const char* line :
       {R"({"prompt":"x","durationSeconds":"five"})", R"({"prompt":"x","durationSeconds":-3})",
        R"({"prompt":"x","models":"kling-3.0"})", R"({"prompt":"x","priority":1.5})"}) {
    auto spec = ParseJobSpecJson(line);
    ASSERT_FALSE(spec.has_value()) << line;
    const bool named = spec.error().find("duration_seconds") != std::string::npos ||
                       spec.error().find("models") != std::string::npos ||
                       spec.error().find("priority") != std::string::npos;
    EXPECT_TRUE(named) << line << " -> " << spec.error();
  }
  for (const char* line :
       {R"({"prompt":"x","audio":"yes"})", R"({"prompt":["x"]})", R"({"shots":{"prompt":"a"}})",
        R"({"labels":["a"]})", R"({"shots":[{"prompt":7}]})"}) {
    auto spec = ParseJobSpecJson(line);
    ASSERT_FALSE(spec.has_value()) << line;
    EXPECT_NE(spec.error().find("field "), std::string::npos) << line << " -> " << spec.error();
  }
  EXPECT_NE(ParseJobSpecJson(R"({"shots":[{"prompt":7}]})").error().find("shots[0].prompt"),
            std::string::npos);
  auto nested = ParseJobSpecJson(R"({"shots":[{"prompt":"a","durationSeconds":"x"}]})");
  ASSERT_FALSE(nested.has_value());
  EXPECT_NE(nested.error().find("duration_seconds"), std::string::npos) << nested.error();
}

TEST(ParseJobSpecJson, InvalidUtf8GivesTheBytePosition) {
  auto spec = ParseJobSpecJson("{\"prompt\":\"caf\xc3\"}");
  ASSERT_FALSE(spec.has_value());
  EXPECT_NE(spec.error().find("invalid UTF-8 at byte 15"), std::string::npos) << spec.error();
}

TEST(ParseJobSpecJson, NotJsonOrNotAnObject) {
  auto broken = ParseJobSpecJson(R"({"prompt": "x")");
  ASSERT_FALSE(broken.has_value());
  EXPECT_NE(broken.error().find("invalid JSON"), std::string::npos) << broken.error();
  EXPECT_NE(broken.error().find("column"), std::string::npos) << broken.error();
  auto array = ParseJobSpecJson(R"(["x"])");
  ASSERT_FALSE(array.has_value());
  EXPECT_NE(array.error().find("JSON object"), std::string::npos) << array.error();
  EXPECT_FALSE(ParseJobSpecJson(std::string(kMaxLineBytes + 1, ' ')).has_value());
}

TEST(ReadJsonl, KeepsLineNumbersAndSkipsBlankLines) {
  std::istringstream in(
      "{\"prompt\":\"one\"}\n"
      "\n"
      "{\"prompt\":\"two\",\"bogus\":true}\r\n"
      "   \n"
      "{\"prompt\":\"three\"}\r\n"
      "{\"prompt\":\"four\"");  // last line without newline, and broken
  const auto file = ReadJsonl(in);
  ASSERT_EQ(file.specs.size(), 2u);
  EXPECT_EQ(file.specs[0].line, 1u);
  EXPECT_EQ(file.specs[1].line, 5u);
  EXPECT_EQ(file.specs[1].spec.prompt(), "three");
  ASSERT_EQ(file.errors.size(), 2u);
  EXPECT_EQ(file.errors[0].line, 3u);
  EXPECT_NE(file.errors[0].message.find("bogus"), std::string::npos);
  EXPECT_EQ(file.errors[1].line, 6u);
  EXPECT_EQ(file.blank_lines, 2u);
}

TEST(ParseShotsFile, ArrayOrSpecObject) {
  auto array = ParseShotsFile(
      R"([{"prompt":"wide","durationSeconds":4},{"prompt":"close","durationSeconds":4}])");
  ASSERT_TRUE(array.has_value()) << array.error();
  EXPECT_EQ(array->shots_size(), 2);
  auto object =
      ParseShotsFile(R"({"models":["kling-3.0"],"shots":[{"prompt":"wide","durationSeconds":4}]})");
  ASSERT_TRUE(object.has_value()) << object.error();
  EXPECT_EQ(object->models(0), "kling-3.0");
  EXPECT_FALSE(object->chain());
  // `chain: true` in the file (the storyboard's YAML, converted to JSON) chains the shots.
  auto chained = ParseShotsFile(
      R"({"chain":true,"shots":[{"prompt":"a","durationSeconds":4},{"prompt":"b","durationSeconds":4}]})");
  ASSERT_TRUE(chained.has_value()) << chained.error();
  EXPECT_TRUE(chained->chain());
  EXPECT_FALSE(ParseShotsFile("[]").has_value());
  EXPECT_FALSE(ParseShotsFile(R"([{"prompt":"no length"}])").has_value());
  EXPECT_FALSE(ParseShotsFile(R"("shots")").has_value());
}

}  // namespace
}  // namespace reelq::cli

namespace reelq::cli {
namespace {

// An image inline in a line is base64, as protobuf's JSON form has it: the spec carries the
// image's bytes, not that text (the text fields around it stay plain).
TEST(ParseJobSpecJson, AnInlineImageIsItsBytes) {
  const std::string png("\x89PNG\r\n\x1a\n\x00\x00", 10);
  auto spec = ParseJobSpecJson(
      R"({"prompt":"from this frame","durationSeconds":5,"firstFrame":{"data":"iVBORw0KGgoAAA=="}})");
  ASSERT_TRUE(spec) << spec.error();
  EXPECT_EQ(spec->first_frame().data(), png);
  EXPECT_EQ(spec->prompt(), "from this frame");
}

}  // namespace
}  // namespace reelq::cli
