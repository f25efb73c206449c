// The four providers' error tables (providers/<name>/<name>_wire.cpp) through the one shared
// classifier (wire::Classify): every code shared/providers.md lists for a provider (§2 Kling,
// §4 Ark, and the §5 checklist for all four), the HTTP rule they share, and the typed
// maybe-delivered flag.
#include <gtest/gtest.h>

#include <functional>

#include "kling/kling_wire.h"
#include "reelq/providers/provider.h"
#include "seedance/seedance_wire.h"
#include "sora/sora_wire.h"
#include "src/wire_common.h"
#include "veo/veo_wire.h"

namespace reelq::providers {
namespace {

using wire::Op;
constexpr int64_t kNow = 1'700'000'000'000;
constexpr auto kAuth = ErrorCategory::kAuthFailed;
constexpr auto kRate = ErrorCategory::kRateLimited;
constexpr auto kRetry = ErrorCategory::kRetryable;
constexpr auto kPolicy = ErrorCategory::kPolicyRejected;
constexpr auto kInvalid = ErrorCategory::kInvalidRequest;
constexpr auto kGone = ErrorCategory::kModelGone;
constexpr auto kNotFound = ErrorCategory::kNotFound;

// Each provider's ClassifyError with its own envelope around a code (empty: no code at all).
struct ProviderTable {
  std::string name;
  std::function<std::string(const std::string& code)> body;
  Error Classify(Op op, int http_status, const std::string& code,
                 std::optional<std::string> retry_after = std::nullopt) const {
    const std::string b = body(code);
    if (name == "kling") return kling::ClassifyError(op, http_status, b, retry_after, kNow);
    if (name == "sora") return sora::ClassifyError(op, http_status, b, retry_after, kNow);
    if (name == "veo") return veo::ClassifyError(op, http_status, b, retry_after, kNow);
    return seedance::ClassifyError(op, http_status, b, retry_after, kNow);
  }
};

const std::vector<ProviderTable>& AllProviders() {
  static const std::vector<ProviderTable> providers = {
      {"kling",
       [](const std::string& code) {
         return R"({"code":)" + (code.empty() ? "0" : code) + R"(,"message":"m"})";
       }},
      {"sora",
       [](const std::string& code) {
         return code.empty() ? R"({"error":{"message":"m"}})"
                             : R"({"error":{"code":")" + code + R"(","message":"m"}})";
       }},
      {"veo",
       [](const std::string& code) {
         return code.empty() ? R"({"error":{"message":"m"}})"
                             : R"({"error":{"status":")" + code + R"(","message":"m"}})";
       }},
      {"seedance",
       [](const std::string& code) {
         return code.empty() ? R"({"error":{"message":"m"}})"
                             : R"({"error":{"code":")" + code + R"(","message":"m"}})";
       }},
  };
  return providers;
}

const ProviderTable& Table(const std::string& name) {
  for (const auto& p : AllProviders()) {
    if (p.name == name) return p;
  }
  throw std::invalid_argument(name);
}

struct CodeCase {
  int http;
  std::string code;
  ErrorCategory expected;
};

void ExpectTable(const std::string& provider, const std::vector<CodeCase>& cases) {
  const auto& table = Table(provider);
  for (const auto& c : cases) {
    SCOPED_TRACE(provider + " HTTP " + std::to_string(c.http) + " " + c.code);
    Error e = table.Classify(Op::kCreate, c.http, c.code, "3");
    EXPECT_EQ(e.category, c.expected) << e.message;
    EXPECT_EQ(e.provider_code, c.code);
    EXPECT_EQ(e.http_status, c.http);
    EXPECT_EQ(e.message.rfind(provider + " create", 0), 0u) << e.message;
    // Only a timeout answered by the server (504) may hide a request that went through.
    EXPECT_EQ(e.maybe_delivered, c.http == 502 || c.http == 504);
    // §5: only rate limits and transient faults are retried; a rate limit carries its wait.
    if (IsRetryable(e.category)) {
      EXPECT_EQ(e.retry_after, std::chrono::seconds(3));
    } else {
      EXPECT_EQ(e.retry_after.count(), 0);
    }
  }
}

// providers.md §2: every row of Kling's table, at both ends of each range, with the HTTP
// status Kling documents for it.
TEST(ErrorTables, KlingEveryDocumentedCode) {
  ExpectTable("kling", {
                           {401, "1000", kAuth},    {401, "1001", kAuth},    {401, "1002", kAuth},
                           {401, "1003", kAuth},    {401, "1004", kAuth},    {429, "1100", kAuth},
                           {429, "1101", kAuth},    {429, "1102", kAuth},    {403, "1103", kAuth},
                           {400, "1200", kInvalid}, {400, "1201", kInvalid}, {404, "1202", kGone},
                           {404, "1203", kGone},    {400, "1300", kPolicy},  {400, "1301", kPolicy},
                           {429, "1302", kRate},    {429, "1303", kRate},    {429, "1304", kAuth},
                           {500, "5000", kRetry},   {503, "5001", kRetry},   {504, "5002", kRetry},
                       });
  // A code Kling does not document falls back to the HTTP status.
  EXPECT_EQ(Table("kling").Classify(Op::kCreate, 429, "1399").category, kRate);
  EXPECT_EQ(Table("kling").Classify(Op::kCreate, 400, "7").category, kInvalid);
}

TEST(ErrorTables, KlingRateLimitWithoutAWaitBacksOffOneSecond) {
  Error e = Table("kling").Classify(Op::kCreate, 429, "1303");
  EXPECT_EQ(e.category, kRate);
  EXPECT_EQ(e.retry_after, std::chrono::seconds(1));
  // Inside an HTTP 200 envelope the code still decides.
  auto hidden =
      kling::ParsePollResponse(200, R"({"code":1302,"message":"slow down"})", std::nullopt, kNow);
  ASSERT_FALSE(hidden);
  EXPECT_EQ(hidden.error().category, kRate);
  EXPECT_EQ(hidden.error().retry_after, std::chrono::seconds(1));
}

// providers.md §4: every Ark code it names.
TEST(ErrorTables, SeedanceEveryDocumentedCode) {
  ExpectTable("seedance",
              {
                  {429, "RateLimitExceeded.EndpointRPMExceeded", kRate},
                  {429, "AccountRateLimitExceeded", kRate},
                  {429, "ModelAccountRpmRateLimitExceeded", kRate},
                  {429, "ServerOverloaded", kRate},
                  {429, "QuotaExceeded", kAuth},
                  {400, "InputTextSensitiveContentDetected", kPolicy},
                  {400, "InputImageSensitiveContentDetected", kPolicy},
                  {400, "InputImageSensitiveContentDetected.PrivacyInformation", kPolicy},
                  {400, "InputTextRiskDetection", kPolicy},
                  {400, "InputImageRiskDetection", kPolicy},
                  {401, "AuthenticationError", kAuth},
                  {403, "AccountOverdueError", kAuth},
                  {403, "AccessDenied", kAuth},
                  {404, "ModelNotOpen", kGone},
                  {404, "InvalidEndpointOrModel.NotFound", kGone},
                  {400, "InvalidParameter", kInvalid},
                  {400, "MissingParameter", kInvalid},
                  {500, "InternalServiceError", kRetry},
              });
  // After generation, in a failed task: output moderation is a policy rejection.
  for (std::string code : {"OutputVideoSensitiveContentDetected",
                           "OutputVideoSensitiveContentDetected.PolicyViolation",
                           "OutputAudioSensitiveContentDetected.Lyrics"}) {
    auto task = seedance::ParsePollResponse(
        200, R"({"status":"failed","error":{"code":")" + code + R"(","message":"m"}})",
        std::nullopt, kNow);
    ASSERT_TRUE(task) << code;
    EXPECT_EQ(task->error->category, kPolicy) << code;
    EXPECT_EQ(task->error->provider_code, code);
  }
}

// providers.md §1 and §5 for Sora: 429, 5xx, moderation, billing, an unverified org.
TEST(ErrorTables, SoraDocumentedCodes) {
  ExpectTable("sora", {
                          {429, "rate_limit_exceeded", kRate},
                          {429, "insufficient_quota", kAuth},
                          {429, "billing_hard_limit_reached", kAuth},
                          {401, "invalid_api_key", kAuth},
                          {400, "moderation_blocked", kPolicy},
                          {400, "content_policy_violation", kPolicy},
                          {404, "model_not_found", kGone},
                          {500, "server_error", kRetry},
                      });
  EXPECT_EQ(Table("sora").Classify(Op::kCreate, 403, "").category, kAuth);  // unverified org
  Error failed = sora::ClassifyJobError("moderation_blocked", "no");
  EXPECT_EQ(failed.category, kPolicy);
  EXPECT_EQ(sora::ClassifyJobError("", "").category, kRetry);
}

// providers.md §3 and §5 for Veo: google.rpc status names, and a bad key inside a 400.
TEST(ErrorTables, VeoDocumentedStatuses) {
  ExpectTable("veo", {
                         {429, "RESOURCE_EXHAUSTED", kRate},
                         {403, "PERMISSION_DENIED", kAuth},
                         {401, "UNAUTHENTICATED", kAuth},
                         {400, "INVALID_ARGUMENT", kInvalid},
                         {400, "FAILED_PRECONDITION", kInvalid},
                         {404, "NOT_FOUND", kGone},
                         {503, "UNAVAILABLE", kRetry},
                         {500, "INTERNAL", kRetry},
                         {504, "DEADLINE_EXCEEDED", kRetry},
                     });
  Error bad_key = veo::ClassifyError(
      Op::kCreate, 400,
      R"({"error":{"status":"INVALID_ARGUMENT","details":[{"reason":"API_KEY_EXPIRED"}]}})",
      std::nullopt, kNow);
  EXPECT_EQ(bad_key.category, kAuth);
  EXPECT_EQ(bad_key.provider_code, "API_KEY_EXPIRED");
  // An operation's error carries the numeric google.rpc code.
  EXPECT_EQ(veo::ClassifyOperationError(wire::Json::parse(R"({"code":8})")).category, kRate);
  EXPECT_EQ(veo::ClassifyOperationError(wire::Json::parse(R"({"code":5})")).category, kNotFound);
}

// The HTTP statuses every provider reads the same way when its body carries no code: before,
// the four disagreed about a 404.
TEST(ErrorTables, EveryProviderSharesTheHttpRule) {
  struct Case {
    int http;
    Op op;
    ErrorCategory expected;
  } cases[] = {
      {401, Op::kCreate, kAuth},       {403, Op::kPoll, kAuth},
      {429, Op::kCreate, kRate},       {429, Op::kFind, kRate},
      {404, Op::kCreate, kGone},       {410, Op::kCreate, kGone},
      {404, Op::kPoll, kNotFound},     {404, Op::kFind, kNotFound},
      {404, Op::kCancel, kNotFound},   {404, Op::kDownload, kNotFound},
      {410, Op::kDownload, kNotFound}, {400, Op::kCreate, kInvalid},
      {409, Op::kCreate, kInvalid},    {413, Op::kCreate, kInvalid},
      {422, Op::kCreate, kInvalid},    {408, Op::kPoll, kRetry},
      {500, Op::kCreate, kRetry},      {502, Op::kPoll, kRetry},
      {503, Op::kCreate, kRetry},      {504, Op::kCreate, kRetry},
  };
  for (const auto& p : AllProviders()) {
    for (const auto& c : cases) {
      SCOPED_TRACE(p.name + " " + std::string(wire::ToString(c.op)) + " HTTP " +
                   std::to_string(c.http));
      EXPECT_EQ(p.Classify(c.op, c.http, "").category, c.expected);
      EXPECT_EQ(wire::CategoryForHttpStatus(c.op, c.http), c.expected);
    }
  }
}

// The provider rows that differ from the shared rule: a download's 403 from a pre-signed URL
// (Kling, Seedance) is an expired result, where Sora and Veo download from the API with the key.
TEST(ErrorTables, DownloadForbiddenIsAnExpiredResultOnlyWherePreSigned) {
  EXPECT_EQ(Table("kling").Classify(Op::kDownload, 403, "").category, kNotFound);
  EXPECT_EQ(Table("seedance").Classify(Op::kDownload, 403, "").category, kNotFound);
  EXPECT_EQ(Table("sora").Classify(Op::kDownload, 403, "").category, kAuth);
  EXPECT_EQ(Table("veo").Classify(Op::kDownload, 403, "").category, kAuth);
  // Only on downloads: a create's 403 is still an auth failure.
  EXPECT_EQ(Table("kling").Classify(Op::kCreate, 403, "1103").category, kAuth);
  EXPECT_EQ(Table("seedance").Classify(Op::kCreate, 403, "AccessDenied").category, kAuth);
  // A Seedance cancel of a task that is no longer queued says so, whatever the code.
  Error running = Table("seedance").Classify(Op::kCancel, 409, "OperationDenied.TaskRunning");
  EXPECT_EQ(running.category, kInvalid);
  EXPECT_NE(running.message.find("only a queued task"), std::string::npos) << running.message;
}

TEST(ErrorTables, ACodeCannotMakeAServerFaultPermanentNorAMissingThingInvalid) {
  const std::pair<std::string, std::string> permanent[] = {
      {"kling", "1301"},
      {"sora", "moderation_blocked"},
      {"veo", "INVALID_ARGUMENT"},
      {"seedance", "InputTextSensitiveContentDetected"}};
  for (const auto& [provider, code] : permanent) {
    EXPECT_EQ(Table(provider).Classify(Op::kCreate, 500, code).category, kRetry) << provider;
  }
  // A rate limit inside a 5xx stays a rate limit (Ark's ServerOverloaded).
  EXPECT_EQ(Table("seedance").Classify(Op::kCreate, 503, "ServerOverloaded").category, kRate);
  // OpenAI files a missing video under invalid_request_error: it is still not found.
  Error missing = sora::ClassifyError(Op::kPoll, 404,
                                      R"({"error":{"type":"invalid_request_error","code":null}})",
                                      std::nullopt, kNow);
  EXPECT_EQ(missing.category, kNotFound);
  EXPECT_EQ(missing.provider_code, "invalid_request_error");
  // A model that is gone is gone only on create; afterwards it is the task that is missing.
  for (const auto& [provider, code] :
       std::vector<std::pair<std::string, std::string>>{{"kling", "1203"},
                                                        {"sora", "model_not_found"},
                                                        {"veo", "NOT_FOUND"},
                                                        {"seedance", "ModelNotOpen"}}) {
    EXPECT_EQ(Table(provider).Classify(Op::kCreate, 404, code).category, kGone) << provider;
    EXPECT_EQ(Table(provider).Classify(Op::kPoll, 404, code).category, kNotFound) << provider;
  }
}

// A create answered 2xx whose body cannot be read (malformed, cut off, no task id) went through:
// the task may exist and be billed, so the failure is marked maybe delivered (the worker looks
// for the task before creating again). An error the provider stated (Kling's code in a 200, any
// non-2xx) made nothing.
TEST(ErrorTables, AnUnreadableAcceptedCreateIsMaybeDelivered) {
  using Parse = std::function<Result<std::string>(int, std::string_view)>;
  const std::vector<std::pair<std::string, Parse>> parsers = {
      {"kling",
       [](int s, std::string_view b) { return kling::ParseCreateResponse(s, b, {}, kNow); }},
      {"sora", [](int s, std::string_view b) { return sora::ParseCreateResponse(s, b, {}, kNow); }},
      {"veo", [](int s, std::string_view b) { return veo::ParseCreateResponse(s, b, {}, kNow); }},
      {"seedance",
       [](int s, std::string_view b) { return seedance::ParseCreateResponse(s, b, {}, kNow); }},
  };
  for (const auto& [name, parse] : parsers) {
    SCOPED_TRACE(name);
    for (std::string_view body :
         {std::string_view("{}"), std::string_view("{\"id"), std::string_view("not json"),
          std::string_view(R"({"code":0})")}) {
      auto r = parse(200, body);
      ASSERT_FALSE(r) << body;
      EXPECT_TRUE(r.error().maybe_delivered) << body << ": " << r.error().message;
      EXPECT_EQ(r.error().category, kRetry) << body;
    }
    auto refused = parse(400, R"({"error":{"message":"bad"},"code":1201,"message":"bad"})");
    ASSERT_FALSE(refused);
    EXPECT_FALSE(refused.error().maybe_delivered) << refused.error().message;
  }
  auto kling_refused =
      kling::ParseCreateResponse(200, R"({"code":1201,"message":"bad value"})", {}, kNow);
  ASSERT_FALSE(kling_refused);
  EXPECT_FALSE(kling_refused.error().maybe_delivered);
  EXPECT_EQ(kling_refused.error().category, kInvalid);
}

// The typed flag: a gateway's 502/504 may have passed the request on before failing; every
// answer the provider gave itself made nothing.
TEST(ErrorTables, GatewayFailuresAreMarkedMaybeDelivered) {
  for (const auto& p : AllProviders()) {
    for (Op op : {Op::kCreate, Op::kPoll, Op::kFind, Op::kCancel, Op::kDownload}) {
      SCOPED_TRACE(p.name + " " + std::string(wire::ToString(op)));
      EXPECT_TRUE(p.Classify(op, 502, "").maybe_delivered);
      EXPECT_TRUE(p.Classify(op, 504, "").maybe_delivered);
      for (int status : {200, 400, 401, 403, 404, 409, 429, 500, 503}) {
        EXPECT_FALSE(p.Classify(op, status, "").maybe_delivered) << status;
      }
    }
  }
  // The flag, not a code string: provider_code stays the provider's own.
  Error gateway = Table("seedance").Classify(Op::kCreate, 504, "");
  EXPECT_TRUE(MaybeDelivered(gateway));
  EXPECT_EQ(gateway.provider_code, "");
  Error plain{.category = kRetry, .message = "x", .provider_code = "request_sent_no_answer"};
  EXPECT_FALSE(MaybeDelivered(plain)) << "a code string no longer means anything";
}

TEST(ErrorTables, MessagesNameProviderCallAndMeaningAndStayBounded) {
  Error e = Table("kling").Classify(Op::kCreate, 400, "1301");
  EXPECT_EQ(e.message, "kling create: content policy (HTTP 400 1301): m");
  Error plain = Table("veo").Classify(Op::kPoll, 503, "");
  EXPECT_EQ(plain.message, "veo poll (HTTP 503): m");
  const std::string huge(100'000, 'x');
  Error bounded = seedance::ClassifyError(
      Op::kCreate, 400, R"({"error":{"code":")" + huge + R"(","message":")" + huge + R"("}})",
      std::nullopt, kNow);
  EXPECT_LT(bounded.message.size(), 600u);
  EXPECT_LE(bounded.provider_code.size(), 110u);
}

TEST(ErrorTables, CodeRowsMatchByKind) {
  EXPECT_TRUE(wire::Matches(wire::Range(1000, 1004, kAuth, ""), "1000"));
  EXPECT_TRUE(wire::Matches(wire::Range(1000, 1004, kAuth, ""), "1004"));
  EXPECT_FALSE(wire::Matches(wire::Range(1000, 1004, kAuth, ""), "1005"));
  EXPECT_FALSE(wire::Matches(wire::Range(1000, 1004, kAuth, ""), "1001x"));
  EXPECT_TRUE(wire::Matches(wire::Prefix("RateLimitExceeded", kRate, ""), "RateLimitExceeded.X"));
  EXPECT_FALSE(wire::Matches(wire::Prefix("RateLimitExceeded", kRate, ""), "XRateLimitExceeded"));
  EXPECT_TRUE(wire::Matches(wire::Contains("Sensitive", kPolicy, ""), "InputSensitiveX"));
  EXPECT_TRUE(wire::Matches(wire::Exact("a", kPolicy, ""), "a"));
  EXPECT_FALSE(wire::Matches(wire::Exact("a", kPolicy, ""), "ab"));
  // No code never matches, whatever the row.
  EXPECT_FALSE(wire::Matches(wire::Contains("", kPolicy, ""), ""));
  EXPECT_FALSE(wire::Matches(wire::Prefix("", kPolicy, ""), ""));
}

}  // namespace
}  // namespace reelq::providers
