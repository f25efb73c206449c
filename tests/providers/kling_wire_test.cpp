#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "kling/kling_jwt.h"
#include "kling/kling_wire.h"

namespace reelq::providers::kling {
namespace {

using Json = nlohmann::json;
using wire::Op;
constexpr int64_t kNow = 1'700'000'000'000;

GenerationRequest Basic() {
  GenerationRequest r;
  r.upstream_model = "kling-v3";
  r.prompt = "a lighthouse";
  r.duration_seconds = 10;
  r.aspect_ratio = "9:16";
  r.resolution = "1080p";
  r.idempotency_id = "attempt-1";
  return r;
}

TEST(KlingWire, BuildsSingleShotBody) {
  auto r = Basic();
  r.negative_prompt = "blur";
  r.audio = false;
  auto body = BuildCreateBody(r);
  ASSERT_TRUE(body) << body.error().message;
  Json j = Json::parse(*body);
  EXPECT_EQ(j["model_name"], "kling-v3");
  EXPECT_EQ(j["prompt"], "a lighthouse");
  EXPECT_EQ(j["negative_prompt"], "blur");
  EXPECT_EQ(j["duration"], "10");  // a string on the wire
  EXPECT_EQ(j["aspect_ratio"], "9:16");
  EXPECT_EQ(j["mode"], "pro");
  EXPECT_EQ(j["sound"], "off");
  EXPECT_EQ(j["external_task_id"], "attempt-1");
  EXPECT_FALSE(j.contains("multi_shot"));
  r.resolution = "720p";
  EXPECT_EQ(Json::parse(*BuildCreateBody(r))["mode"], "std");
}

TEST(KlingWire, BuildsMultiShotBody) {
  auto r = Basic();
  r.duration_seconds = 15;
  for (int i = 0; i < 6; ++i) r.shots.push_back({"shot " + std::to_string(i), i < 3 ? 2 : 3});
  auto body = BuildCreateBody(r);
  ASSERT_TRUE(body) << body.error().message;
  Json j = Json::parse(*body);
  EXPECT_EQ(j["multi_shot"], true);
  EXPECT_EQ(j["shot_type"], "customize");
  ASSERT_EQ(j["multi_prompt"].size(), 6u);
  EXPECT_EQ(j["multi_prompt"][0]["index"], 1);
  EXPECT_EQ(j["multi_prompt"][5]["index"], 6);
  EXPECT_EQ(j["multi_prompt"][5]["duration"], "3");
  EXPECT_EQ(j["multi_prompt"][2]["prompt"], "shot 2");
  EXPECT_EQ(j["duration"], "15");
}

TEST(KlingWire, RejectsBadRequests) {
  auto r = Basic();
  r.resolution = "4k";
  EXPECT_EQ(BuildCreateBody(r).error().category, ErrorCategory::kInvalidRequest);
  r = Basic();
  for (int i = 0; i < 7; ++i) r.shots.push_back({"s", 1});
  r.duration_seconds = 7;
  EXPECT_NE(BuildCreateBody(r).error().message.find("7 shots"), std::string::npos);
  r = Basic();
  r.shots = {{"a", 4}, {"b", 4}};
  EXPECT_NE(BuildCreateBody(r).error().message.find("sum to 8 s, not the clip's 10 s"),
            std::string::npos);
  r.shots = {{"a", 0}, {"b", 10}};
  EXPECT_FALSE(BuildCreateBody(r));
  // multi_prompt[].prompt: at most 512 characters (counted as characters, not bytes).
  r.shots = {{"a", 5}, {std::string(513, 'b'), 5}};
  auto long_shot = BuildCreateBody(r);
  ASSERT_FALSE(long_shot);
  EXPECT_NE(long_shot.error().message.find("shot 2 prompt has 513 characters"), std::string::npos);
  std::string accents;
  for (int i = 0; i < 512; ++i) accents += "\xC3\xA9";
  r.shots = {{"a", 5}, {accents, 5}};
  EXPECT_TRUE(BuildCreateBody(r));
  r = Basic();
  r.prompt.clear();
  EXPECT_FALSE(BuildCreateBody(r));
}

TEST(KlingWire, ParsesCreateAndPoll) {
  auto id = ParseCreateResponse(
      200, R"({"code":0,"message":"SUCCEED","data":{"task_id":"870","task_status":"submitted"}})",
      std::nullopt, kNow);
  ASSERT_TRUE(id);
  EXPECT_EQ(*id, "870");

  auto queued = ParsePollResponse(200, R"({"code":0,"data":{"task_status":"submitted"}})",
                                  std::nullopt, kNow);
  ASSERT_TRUE(queued);
  EXPECT_EQ(queued->state, TaskState::kQueued);
  auto running = ParsePollResponse(200, R"({"code":0,"data":{"task_status":"processing"}})",
                                   std::nullopt, kNow);
  EXPECT_EQ(running->state, TaskState::kRunning);
  auto done = ParsePollResponse(
      200,
      R"({"code":0,"data":{"task_id":"870","task_status":"succeed","task_result":{"videos":[{"id":"v","url":"https://cdn/x.mp4","duration":"10"}]}}})",
      std::nullopt, kNow);
  ASSERT_TRUE(done);
  EXPECT_EQ(done->state, TaskState::kSucceeded);
  EXPECT_EQ(done->video_url, "https://cdn/x.mp4");
  EXPECT_EQ(done->clip_seconds, 10);

  auto policy = ParsePollResponse(
      200,
      R"({"code":0,"data":{"task_status":"failed","task_status_msg":"Failure to pass the risk control system"}})",
      std::nullopt, kNow);
  ASSERT_TRUE(policy);
  EXPECT_EQ(policy->state, TaskState::kFailed);
  EXPECT_EQ(policy->error->category, ErrorCategory::kPolicyRejected);
  EXPECT_NE(policy->error->message.find("risk control"), std::string::npos);
  auto transient = ParsePollResponse(
      200, R"({"code":0,"data":{"task_status":"failed","task_status_msg":"Internal error"}})",
      std::nullopt, kNow);
  EXPECT_EQ(transient->error->category, ErrorCategory::kRetryable);
}

TEST(KlingWire, MalformedAnswersNameTheField) {
  auto bad = ParsePollResponse(200, "{not json", std::nullopt, kNow);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().category, ErrorCategory::kRetryable);
  EXPECT_NE(bad.error().message.find("kling poll: malformed JSON"), std::string::npos);
  auto missing = ParsePollResponse(200, R"({"code":0,"data":{}})", std::nullopt, kNow);
  EXPECT_EQ(missing.error().message, "kling poll: missing field 'data.task_status'");
  auto no_url = ParsePollResponse(
      200, R"({"code":0,"data":{"task_status":"succeed","task_result":{"videos":[]}}})",
      std::nullopt, kNow);
  EXPECT_EQ(no_url.error().message, "kling poll: missing field 'data.task_result.videos'");
  auto no_id = ParseCreateResponse(200, R"({"code":0,"data":{"task_id":7}})", std::nullopt, kNow);
  EXPECT_EQ(no_id.error().category, ErrorCategory::kRetryable);
  EXPECT_NE(no_id.error().message.find("data.task_id"), std::string::npos);
}

struct Case {
  int http;
  int code;
  Op op;
  ErrorCategory expected;
};

TEST(KlingWire, ClassifiesEveryDocumentedCode) {
  const Case cases[] = {
      {401, 1000, Op::kCreate, ErrorCategory::kAuthFailed},
      {401, 1004, Op::kPoll, ErrorCategory::kAuthFailed},
      {429, 1100, Op::kCreate, ErrorCategory::kAuthFailed},
      {429, 1101, Op::kCreate, ErrorCategory::kAuthFailed},
      {429, 1102, Op::kCreate, ErrorCategory::kAuthFailed},
      {403, 1103, Op::kCreate, ErrorCategory::kAuthFailed},
      {400, 1200, Op::kCreate, ErrorCategory::kInvalidRequest},
      {400, 1201, Op::kCreate, ErrorCategory::kInvalidRequest},
      {404, 1203, Op::kCreate, ErrorCategory::kModelGone},
      {404, 1203, Op::kPoll, ErrorCategory::kNotFound},
      {404, 1202, Op::kFind, ErrorCategory::kNotFound},
      {400, 1300, Op::kCreate, ErrorCategory::kPolicyRejected},
      {400, 1301, Op::kCreate, ErrorCategory::kPolicyRejected},
      {429, 1302, Op::kCreate, ErrorCategory::kRateLimited},
      {429, 1303, Op::kCreate, ErrorCategory::kRateLimited},
      {429, 1304, Op::kCreate, ErrorCategory::kAuthFailed},
      {500, 5000, Op::kCreate, ErrorCategory::kRetryable},
      {503, 5001, Op::kPoll, ErrorCategory::kRetryable},
      {504, 5002, Op::kPoll, ErrorCategory::kRetryable},
      {502, 0, Op::kPoll, ErrorCategory::kRetryable},
  };
  for (const auto& c : cases) {
    std::string body = R"({"code":)" + std::to_string(c.code) + R"(,"message":"m"})";
    Error e = ClassifyError(c.op, c.http, body, std::nullopt, kNow);
    EXPECT_EQ(e.category, c.expected) << c.http << " " << c.code << " " << e.message;
    EXPECT_EQ(e.http_status, c.http);
    if (c.code) {
      EXPECT_EQ(e.provider_code, std::to_string(c.code));
    }
    EXPECT_FALSE(IsRetryable(e.category) && c.code >= 1100 && c.code <= 1102);
  }
}

TEST(KlingWire, RateLimitCarriesRetryAfter) {
  Error e = ClassifyError(Op::kCreate, 429, R"({"code":1302,"message":"too many"})",
                          std::string("7"), kNow);
  EXPECT_EQ(e.category, ErrorCategory::kRateLimited);
  EXPECT_EQ(e.retry_after, std::chrono::seconds(7));
  Error no_hint = ClassifyError(Op::kCreate, 429, R"({"code":1303})", std::nullopt, kNow);
  EXPECT_EQ(no_hint.retry_after, std::chrono::seconds(1));  // Kling's ">= 1 s" guidance
  // A non-zero code inside HTTP 200 is an error too.
  auto hidden = ParseCreateResponse(200, R"({"code":1301,"message":"risk"})", std::nullopt, kNow);
  ASSERT_FALSE(hidden);
  EXPECT_EQ(hidden.error().category, ErrorCategory::kPolicyRejected);
}

// 1302 (rate) and 1303 (concurrency) are both 429s to back off from, but only 1303 says the
// account runs more tasks than its resource pack allows: the queue learns a lower concurrency
// from it instead of halving the account's create rate.
TEST(KlingWire, AConcurrencyRefusalIsToldFromARateRefusal) {
  Error concurrency = ClassifyError(
      Op::kCreate, 429, R"({"code":1303,"message":"parallel task over resource pack limit"})",
      std::nullopt, kNow);
  EXPECT_EQ(concurrency.category, ErrorCategory::kRateLimited);
  EXPECT_TRUE(concurrency.over_concurrency);
  Error rate = ClassifyError(Op::kCreate, 429, R"({"code":1302})", std::nullopt, kNow);
  EXPECT_EQ(rate.category, ErrorCategory::kRateLimited);
  EXPECT_FALSE(rate.over_concurrency);
  auto create =
      ParseCreateResponse(429, R"({"code":1303,"message":"parallel task"})", std::nullopt, kNow);
  ASSERT_FALSE(create);
  EXPECT_TRUE(create.error().over_concurrency);
}

TEST(KlingJwt, SignsLikeTheSpecAndRenewsBeforeExpiry) {
  // RFC 7515 style check: header and payload decode to what Kling wants.
  std::string token = MakeJwt("ak", "sk", 1'700'000'000);
  auto first_dot = token.find('.');
  auto second_dot = token.find('.', first_dot + 1);
  ASSERT_NE(second_dot, std::string::npos);
  EXPECT_EQ(token.substr(0, first_dot), Base64Url(R"({"alg":"HS256","typ":"JWT"})"));
  EXPECT_EQ(token.find('='), std::string::npos);
  EXPECT_EQ(Base64Url("f"), "Zg");
  EXPECT_EQ(Base64Url("fo"), "Zm8");
  EXPECT_EQ(Base64Url("foo"), "Zm9v");
  EXPECT_EQ(Base64Url("\xfb\xff"), "-_8");
  // Known answer, computed independently with Python's hmac + base64 for the same input.
  EXPECT_EQ(token,
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
            "eyJleHAiOjE3MDAwMDE4MDAsImlzcyI6ImFrIiwibmJmIjoxNjk5OTk5OTk1fQ."
            "h2Ib2cfDM6pOpdPWBmbO7GDw67oBqBvAPTDCgWpgtek");

  auto clock = std::make_shared<ManualClock>(1'700'000'000'000);
  JwtSigner signer("ak", "sk", clock);
  std::string t1 = signer.Token();
  clock->Advance(std::chrono::seconds(60));
  EXPECT_EQ(signer.Token(), t1);  // cached
  clock->Advance(std::chrono::seconds(1800 - 300 - 60));
  std::string t2 = signer.Token();
  EXPECT_NE(t2, t1);  // renewed 5 minutes before expiry
  EXPECT_EQ(t2, MakeJwt("ak", "sk", 1'700'000'000 + 1800 - 300));
}

}  // namespace
}  // namespace reelq::providers::kling
