#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "reelq/common/utf8.h"
#include "seedance/seedance_wire.h"
#include "sora/sora_wire.h"
#include "src/wire_common.h"
#include "veo/veo_wire.h"

namespace reelq::providers {
namespace {

using Json = nlohmann::json;
using wire::Op;
constexpr int64_t kNow = 1'700'000'000'000;

GenerationRequest Basic(std::string model) {
  GenerationRequest r;
  r.upstream_model = std::move(model);
  r.prompt = "rainy street";
  r.negative_prompt = "text";
  r.duration_seconds = 8;
  r.aspect_ratio = "16:9";
  r.resolution = "720p";
  return r;
}

TEST(WireCommon, RetryAfterSecondsAndDates) {
  EXPECT_EQ(wire::ParseRetryAfter("7", kNow), std::chrono::seconds(7));
  EXPECT_EQ(wire::ParseRetryAfter(" 1.5 ", kNow), std::chrono::milliseconds(1500));
  // 2023-11-14T22:13:20Z is kNow; ten seconds later:
  EXPECT_EQ(wire::ParseRetryAfter("Tue, 14 Nov 2023 22:13:30 GMT", kNow), std::chrono::seconds(10));
  EXPECT_EQ(wire::ParseRetryAfter("Tue, 14 Nov 2000 22:13:30 GMT", kNow), std::chrono::seconds(0));
  EXPECT_FALSE(wire::ParseRetryAfter("soon", kNow));
  EXPECT_FALSE(wire::ParseRetryAfter("-3", kNow));
  EXPECT_FALSE(wire::ParseRetryAfter("", kNow));
}

TEST(WireCommon, JoinsAndEscapes) {
  EXPECT_EQ(wire::JoinUrl("http://h:1/kling/", "/v1/x"), "http://h:1/kling/v1/x");
  EXPECT_EQ(wire::EscapePathSegment("a/b c"), "a%2Fb%20c");
  EXPECT_EQ(wire::Snippet("a\nb", 10), "a b");
}

// A provider's message cut mid-character would put invalid UTF-8 into the job's record and its
// events, and no client could read that job (or a ListJobs page holding it) again.
TEST(WireCommon, SnippetsAreValidUtf8) {
  const std::string han = "\xe5\x86\x85";  // one 3-byte character
  std::string text;
  for (int i = 0; i < 150; ++i) text += han;  // 450 bytes
  for (size_t max : {299u, 300u, 301u, 302u}) {
    const std::string cut = wire::Snippet(text, max);
    EXPECT_TRUE(IsValidUtf8(cut)) << max;
    EXPECT_TRUE(cut.ends_with("...")) << max;
    EXPECT_LE(cut.size(), max + 3) << max;
    EXPECT_GE(cut.size(), max + 3 - 2) << max;  // at most a partial character dropped
  }
  // Bytes that are not UTF-8 (a gateway page in Latin-1) are shown, not passed on.
  EXPECT_EQ(wire::Snippet("caf\xe9 \xff", 100), "caf\\xe9 \\xff");
  EXPECT_EQ(wire::Snippet("caf\xc3\xa9\tok", 100), "caf\xc3\xa9 ok");
}

// --- Sora ---

TEST(SoraWire, BuildsBody) {
  auto body = sora::BuildCreateBody(Basic("sora-2"));
  ASSERT_TRUE(body);
  Json j = Json::parse(*body);
  EXPECT_EQ(
      j,
      Json::parse(R"({"model":"sora-2","prompt":"rainy street","seconds":"8","size":"1280x720"})"));
  auto portrait = Basic("sora-2");
  portrait.aspect_ratio = "9:16";
  EXPECT_EQ(Json::parse(*sora::BuildCreateBody(portrait))["size"], "720x1280");
  portrait.aspect_ratio = "1:1";
  EXPECT_EQ(sora::BuildCreateBody(portrait).error().category, ErrorCategory::kInvalidRequest);
}

TEST(SoraWire, ParsesPollWithHint) {
  auto s = sora::ParsePollResponse(200, R"({"id":"video_1","status":"in_progress","progress":42})",
                                   std::nullopt, std::string("2500"), kNow);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->state, TaskState::kRunning);
  EXPECT_EQ(s->progress_percent, 42);
  EXPECT_EQ(s->poll_after, std::chrono::milliseconds(2500));
  auto failed = sora::ParsePollResponse(
      200, R"({"status":"failed","error":{"code":"moderation_blocked","message":"nope"}})",
      std::nullopt, std::nullopt, kNow);
  ASSERT_TRUE(failed);
  EXPECT_EQ(failed->state, TaskState::kFailed);
  EXPECT_EQ(failed->error->category, ErrorCategory::kPolicyRejected);
  EXPECT_EQ(failed->error->provider_code, "moderation_blocked");
  auto missing = sora::ParsePollResponse(200, R"({"id":"v"})", std::nullopt, std::nullopt, kNow);
  EXPECT_EQ(missing.error().message, "sora poll: missing field 'status'");
  EXPECT_EQ(missing.error().category, ErrorCategory::kRetryable);
}

TEST(SoraWire, ClassifiesErrors) {
  struct Case {
    int http;
    const char* body;
    Op op;
    ErrorCategory expected;
  } cases[] = {
      {401, R"({"error":{"code":"invalid_api_key","message":"bad"}})", Op::kCreate,
       ErrorCategory::kAuthFailed},
      {403, R"({"error":{"message":"org not verified"}})", Op::kCreate, ErrorCategory::kAuthFailed},
      {429, R"({"error":{"code":"rate_limit_exceeded"}})", Op::kCreate,
       ErrorCategory::kRateLimited},
      {429, R"({"error":{"code":"insufficient_quota"}})", Op::kCreate, ErrorCategory::kAuthFailed},
      {404, R"({"error":{"code":"model_not_found"}})", Op::kCreate, ErrorCategory::kModelGone},
      {404, R"({"error":{"code":"not_found"}})", Op::kPoll, ErrorCategory::kNotFound},
      {400, R"({"error":{"code":"invalid_value","type":"invalid_request_error"}})", Op::kCreate,
       ErrorCategory::kInvalidRequest},
      {400, R"({"error":{"code":"moderation_blocked"}})", Op::kCreate,
       ErrorCategory::kPolicyRejected},
      {500, R"({"error":{"type":"server_error"}})", Op::kCreate, ErrorCategory::kRetryable},
      {503, "<html>", Op::kPoll, ErrorCategory::kRetryable},
  };
  for (const auto& c : cases) {
    Error e = sora::ClassifyError(c.op, c.http, c.body, std::nullopt, kNow);
    EXPECT_EQ(e.category, c.expected) << c.http << " " << c.body << " -> " << e.message;
  }
  Error limited = sora::ClassifyError(
      Op::kCreate, 429, R"({"error":{"code":"rate_limit_exceeded"}})", std::string("3"), kNow);
  EXPECT_EQ(limited.retry_after, std::chrono::seconds(3));
}

// --- Veo ---

TEST(VeoWire, BuildsBodyAndPaths) {
  auto body = veo::BuildCreateBody(Basic("veo-3.1-generate-preview"));
  ASSERT_TRUE(body);
  EXPECT_EQ(Json::parse(*body), Json::parse(R"({"instances":[{"prompt":"rainy street"}],
      "parameters":{"aspectRatio":"16:9","durationSeconds":8,"resolution":"720p","negativePrompt":"text"}})"));
  EXPECT_EQ(veo::CreatePath("veo-3.1-generate-preview"),
            "/v1beta/models/veo-3.1-generate-preview:predictLongRunning");
  EXPECT_EQ(*veo::OperationPath("models/m/operations/abc"), "/v1beta/models/m/operations/abc");
  EXPECT_FALSE(veo::OperationPath("../secrets"));
  EXPECT_FALSE(veo::OperationPath("a?b"));
}

TEST(VeoWire, ParsesOperations) {
  auto running =
      veo::ParsePollResponse(200, R"({"name":"models/m/operations/1"})", std::nullopt, kNow);
  ASSERT_TRUE(running);
  EXPECT_EQ(running->state, TaskState::kRunning);
  auto done =
      veo::ParsePollResponse(200, R"({"name":"n","done":true,"response":{"generateVideoResponse":
      {"generatedSamples":[{"video":{"uri":"https://g/v1beta/files/x:download?alt=media"}}]}}})",
                             std::nullopt, kNow);
  ASSERT_TRUE(done);
  EXPECT_EQ(done->state, TaskState::kSucceeded);
  EXPECT_EQ(done->video_url, "https://g/v1beta/files/x:download?alt=media");
  auto filtered = veo::ParsePollResponse(200, R"({"done":true,"response":{"generateVideoResponse":
      {"raiMediaFilteredCount":1,"raiMediaFilteredReasons":["celebrity likeness"]}}})",
                                         std::nullopt, kNow);
  ASSERT_TRUE(filtered);
  EXPECT_EQ(filtered->state, TaskState::kFailed);
  EXPECT_EQ(filtered->error->category, ErrorCategory::kPolicyRejected);
  EXPECT_NE(filtered->error->message.find("celebrity likeness"), std::string::npos);
  auto empty = veo::ParsePollResponse(
      200, R"({"done":true,"response":{"generateVideoResponse":{}}})", std::nullopt, kNow);
  EXPECT_EQ(empty->error->category, ErrorCategory::kPolicyRejected);
  auto failed = veo::ParsePollResponse(
      200, R"({"done":true,"error":{"code":13,"message":"internal"}})", std::nullopt, kNow);
  EXPECT_EQ(failed->error->category, ErrorCategory::kRetryable);
  EXPECT_EQ(failed->error->provider_code, "INTERNAL");
  auto bad = veo::ParsePollResponse(200, R"({"done":"yes"})", std::nullopt, kNow);
  EXPECT_EQ(bad.error().category, ErrorCategory::kRetryable);
  auto no_response = veo::ParsePollResponse(200, R"({"done":true})", std::nullopt, kNow);
  EXPECT_EQ(no_response.error().message, "veo poll: missing field 'response'");
}

TEST(VeoWire, ClassifiesStatuses) {
  struct Case {
    int http;
    const char* status;
    Op op;
    ErrorCategory expected;
  } cases[] = {
      {429, "RESOURCE_EXHAUSTED", Op::kCreate, ErrorCategory::kRateLimited},
      {403, "PERMISSION_DENIED", Op::kCreate, ErrorCategory::kAuthFailed},
      {401, "UNAUTHENTICATED", Op::kPoll, ErrorCategory::kAuthFailed},
      {400, "INVALID_ARGUMENT", Op::kCreate, ErrorCategory::kInvalidRequest},
      {404, "NOT_FOUND", Op::kCreate, ErrorCategory::kModelGone},
      {404, "NOT_FOUND", Op::kPoll, ErrorCategory::kNotFound},
      {503, "UNAVAILABLE", Op::kCreate, ErrorCategory::kRetryable},
      {500, "INTERNAL", Op::kPoll, ErrorCategory::kRetryable},
  };
  for (const auto& c : cases) {
    std::string body = std::string(R"({"error":{"code":)") + std::to_string(c.http) +
                       R"(,"message":"m","status":")" + c.status + R"("}})";
    Error e = veo::ClassifyError(c.op, c.http, body, std::nullopt, kNow);
    EXPECT_EQ(e.category, c.expected) << c.status;
    EXPECT_EQ(e.provider_code, c.status);
  }
  Error bad_key = veo::ClassifyError(
      Op::kCreate, 400,
      R"({"error":{"code":400,"status":"INVALID_ARGUMENT","details":[{"reason":"API_KEY_INVALID"}]}})",
      std::nullopt, kNow);
  EXPECT_EQ(bad_key.category, ErrorCategory::kAuthFailed);
}

TEST(SoraWire, ParsesTheVideoListAndMatchesTheRequest) {
  auto request = Basic("sora-2");
  const auto body = *sora::BuildCreateBody(request);
  auto page = sora::ParseListResponse(200,
                                      R"({"object":"list","data":[
        {"id":"video_2","model":"sora-2-2025-10-06","prompt":"rainy street","seconds":"8",
         "size":"1280x720","created_at":1760000100,"status":"queued"},
        {"id":"video_1","model":"sora-2","prompt":"rainy street!","seconds":"8",
         "size":"1280x720","created_at":1760000000,"status":"completed"}],
        "has_more":true,"first_id":"video_2","last_id":"video_1"})",
                                      std::nullopt, 0);
  ASSERT_TRUE(page) << page.error().Describe();
  ASSERT_EQ(page->videos.size(), 2u);
  EXPECT_TRUE(page->has_more);
  EXPECT_EQ(page->last_id, "video_1");
  EXPECT_EQ(page->videos[0].created_at_s, 1760000100);
  EXPECT_TRUE(sora::MatchesCreate(page->videos[0], body));   // a snapshot of the same model
  EXPECT_FALSE(sora::MatchesCreate(page->videos[1], body));  // another prompt
  auto pro = page->videos[0];
  pro.model = "sora-2-pro";
  EXPECT_FALSE(sora::MatchesCreate(pro, body));
  EXPECT_FALSE(sora::ParseListResponse(200, R"({"object":"list"})", std::nullopt, 0));
}

// --- Seedance ---

TEST(SeedanceWire, BuildsBody) {
  auto body = seedance::BuildCreateBody(Basic("dreamina-seedance-2-0-260128"));
  ASSERT_TRUE(body);
  EXPECT_EQ(Json::parse(*body), Json::parse(R"({"model":"dreamina-seedance-2-0-260128",
      "content":[{"type":"text","text":"rainy street"}],"duration":8,"ratio":"16:9",
      "resolution":"720p","generate_audio":true})"));
}

TEST(SeedanceWire, SendsASeedDerivedFromTheAttemptId) {
  auto request = Basic("dreamina-seedance-2-0-260128");
  request.idempotency_id = "job-1-1";
  auto body = seedance::BuildCreateBody(request);
  ASSERT_TRUE(body);
  const auto seed = Json::parse(*body)["seed"].get<int64_t>();
  EXPECT_EQ(seed, seedance::DerivedSeed("job-1-1"));
  EXPECT_GE(seed, 0);
  EXPECT_LT(seed, int64_t{1} << 31);
  EXPECT_NE(seedance::DerivedSeed("job-1-1"), seedance::DerivedSeed("job-1-2"));
}

TEST(SeedanceWire, ParsesTheTaskListAndMatchesOnSeed) {
  auto request = Basic("dreamina-seedance-2-0-260128");
  request.idempotency_id = "job-1-1";
  const auto body = *seedance::BuildCreateBody(request);
  const auto seed = seedance::DerivedSeed("job-1-1");
  auto page = seedance::ParseListResponse(
      200,
      R"({"items":[{"id":"cgt-2","model":"dreamina-seedance-2-0-260128","seed":)" +
          std::to_string(seed) +
          R"(,"duration":8,"ratio":"16:9","resolution":"720p","created_at":1765510475},
          {"id":"cgt-1","model":"dreamina-seedance-2-0-260128","seed":7,"duration":8,
           "ratio":"16:9","resolution":"720p","created_at":1765510470}],"total":2})",
      std::nullopt, 0);
  ASSERT_TRUE(page) << page.error().Describe();
  ASSERT_EQ(page->items.size(), 2u);
  EXPECT_EQ(page->total, 2);
  EXPECT_TRUE(seedance::MatchesCreate(page->items[0], body));
  EXPECT_FALSE(seedance::MatchesCreate(page->items[1], body));
  auto other = page->items[0];
  other.duration = 5;
  EXPECT_FALSE(seedance::MatchesCreate(other, body));
  EXPECT_FALSE(seedance::ParseListResponse(200, R"({"total":0})", std::nullopt, 0));
  EXPECT_EQ(seedance::ParseListResponse(401, R"({"error":{"code":"AuthenticationError"}})",
                                        std::nullopt, 0)
                .error()
                .category,
            ErrorCategory::kAuthFailed);
}

TEST(SeedanceWire, ParsesTasks) {
  auto ok = seedance::ParsePollResponse(
      200,
      R"({"id":"cgt-1","status":"succeeded","content":{"video_url":"https://x/v.mp4"},"duration":5})",
      std::nullopt, kNow);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->state, TaskState::kSucceeded);
  EXPECT_EQ(ok->video_url, "https://x/v.mp4");
  EXPECT_EQ(ok->clip_seconds, 5);
  auto policy = seedance::ParsePollResponse(
      200,
      R"({"status":"failed","error":{"code":"OutputVideoSensitiveContentDetected","message":"m"}})",
      std::nullopt, kNow);
  EXPECT_EQ(policy->error->category, ErrorCategory::kPolicyRejected);
  auto cancelled =
      seedance::ParsePollResponse(200, R"({"status":"cancelled"})", std::nullopt, kNow);
  EXPECT_EQ(cancelled->state, TaskState::kCancelled);
  auto missing = seedance::ParsePollResponse(200, R"({"status":"succeeded","content":{}})",
                                             std::nullopt, kNow);
  EXPECT_EQ(missing.error().message, "seedance poll: missing field 'content.video_url'");
}

TEST(SeedanceWire, ClassifiesCodes) {
  struct Case {
    int http;
    const char* code;
    ErrorCategory expected;
  } cases[] = {
      {429, "RateLimitExceeded.EndpointRPMExceeded", ErrorCategory::kRateLimited},
      {429, "AccountRateLimitExceeded", ErrorCategory::kRateLimited},
      {429, "ServerOverloaded", ErrorCategory::kRateLimited},
      {429, "QuotaExceeded", ErrorCategory::kAuthFailed},
      {403, "AccountOverdueError", ErrorCategory::kAuthFailed},
      {401, "AuthenticationError", ErrorCategory::kAuthFailed},
      {400, "InputTextSensitiveContentDetected", ErrorCategory::kPolicyRejected},
      {400, "InputImageSensitiveContentDetected.PrivacyInformation",
       ErrorCategory::kPolicyRejected},
      {400, "InputTextRiskDetection", ErrorCategory::kPolicyRejected},
      {404, "ModelNotOpen", ErrorCategory::kModelGone},
      {404, "InvalidEndpointOrModel.NotFound", ErrorCategory::kModelGone},
      {400, "InvalidParameter", ErrorCategory::kInvalidRequest},
      {500, "InternalServiceError", ErrorCategory::kRetryable},
      {502, "", ErrorCategory::kRetryable},
  };
  for (const auto& c : cases) {
    std::string body = std::string(R"({"error":{"code":")") + c.code + R"(","message":"m"}})";
    Error e = seedance::ClassifyError(Op::kCreate, c.http, body, std::string("4"), kNow);
    EXPECT_EQ(e.category, c.expected) << c.code;
    if (IsRetryable(e.category)) {
      EXPECT_EQ(e.retry_after, std::chrono::seconds(4)) << c.code;
    }
  }
  auto running = seedance::ParseCancelResponse(
      409, R"({"error":{"code":"OperationDenied.TaskRunning","message":"running"}})", std::nullopt,
      kNow);
  ASSERT_FALSE(running);
  EXPECT_EQ(running.error().category, ErrorCategory::kInvalidRequest);
  EXPECT_TRUE(seedance::ParseCancelResponse(200, "{}", std::nullopt, kNow));
}

}  // namespace
}  // namespace reelq::providers
