#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include "process.h"
#include "reelq/providers/catalogue.h"

namespace reelq::providers {
namespace {

const char* kModel = R"(
  - id: kling-3.0
    provider: kling
    upstream_model: kling-v3
    durations: [3, 5, 10, 15]
    max_clip_seconds: 15
    aspect_ratios: ["16:9", "9:16"]
    resolutions: ["720p", "1080p"]
    max_shots: 6
    latency: {min: 60, p50: 120, p95: 180, max: 300}
    price_per_second: 0.112
  - id: sora-2
    provider: sora
    upstream_model: sora-2
    durations: [4, 8, 12]
    max_clip_seconds: 12
    aspect_ratios: ["16:9"]
    resolutions: ["720p"]
)";

const char* kAccounts = R"(
  - id: kling-a
    provider: kling
    base_url: http://127.0.0.1:1/kling/
    api_key: {env: K_AK}
    secret_key: {file: /run/k_sk}
    requests_per_minute: 60
    max_concurrent: 5
  - id: sora-b
    provider: sora
    base_url: https://api.openai.com
    api_key: {env: OPENAI_API_KEY}
    max_concurrent: 3
    models: [sora-2]
)";

std::string Doc(const std::string& models = kModel, const std::string& accounts = kAccounts,
                const std::string& routing = "routing:\n  use_cases:\n    photorealism: sora-2\n") {
  return "models:" + models + "\naccounts:" + accounts + "\n" + routing;
}

Result<Catalogue> Parse(const std::string& yaml) { return ParseCatalogue(YAML::Load(yaml)); }

void ExpectError(const std::string& yaml, const std::string& message) {
  auto c = Parse(yaml);
  ASSERT_FALSE(c) << "expected: " << message;
  EXPECT_EQ(c.error().category, ErrorCategory::kInvalidRequest);
  EXPECT_EQ(c.error().message, message);
}

std::string Replace(std::string s, const std::string& from, const std::string& to) {
  auto at = s.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) s.replace(at, from.size(), to);
  return s;
}

TEST(Catalogue, ParsesTheShippedCatalogue) {
  auto root = YAML::LoadFile(testing::SourcePath("deploy/catalogue.yaml").string());
  auto c = ParseCatalogue(root);
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->models.size(), 4u);
  const ModelSpec* kling = c->FindModel("kling-3.0");
  ASSERT_NE(kling, nullptr);
  EXPECT_EQ(kling->max_shots, 6);
  EXPECT_TRUE(kling->SupportsDuration(15));
  EXPECT_EQ(c->use_case_first_choice.at("fast_social"), "seedance-2.0");
  const ModelSpec* veo = c->FindModel("veo-3.1");
  ASSERT_NE(veo, nullptr);
  EXPECT_EQ(veo->DurationsAt("1080p"), std::vector<int>{8});
  EXPECT_EQ(veo->DurationsAt("720p"), (std::vector<int>{4, 6, 8}));
}

TEST(Catalogue, ParsesModelsAccountsRouting) {
  auto c = Parse(Doc());
  ASSERT_TRUE(c) << c.error().message;
  ASSERT_EQ(c->models.size(), 2u);
  EXPECT_EQ(c->models[0].latency.p95_seconds, 180);
  EXPECT_EQ(c->models[0].price_per_second, 0.112);
  EXPECT_TRUE(c->models[1].audio);
  EXPECT_EQ(c->models[1].max_shots, 1);
  ASSERT_EQ(c->accounts.size(), 2u);
  EXPECT_EQ(c->accounts[0].base_url, "http://127.0.0.1:1/kling");  // trailing slash trimmed
  EXPECT_EQ(c->accounts[0].api_key.env, "K_AK");
  EXPECT_EQ(c->accounts[0].secret_key.file, "/run/k_sk");
  EXPECT_EQ(c->accounts[1].max_concurrent, 3);
  EXPECT_EQ(c->AccountsFor(c->models[1]).size(), 1u);
  EXPECT_EQ(c->AccountsFor(c->models[0]).size(), 1u);
  EXPECT_EQ(c->use_case_first_choice.at("photorealism"), "sora-2");
}

// A stuck upstream task is given up after the model's generation_timeout: stated, or 4 x the
// latency profile's max and never under 10 minutes by default, or never (0).
TEST(Catalogue, GenerationTimeoutIsStatedOrFollowsTheLatencyProfile) {
  auto c = Parse(Doc());
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->models[0].generation_timeout_seconds, 1200);  // 4 x 300 s
  EXPECT_EQ(c->models[1].generation_timeout_seconds, 1440);  // 4 x the default max of 360 s
  auto fast = Parse(Doc(Replace(kModel, "latency: {min: 60, p50: 120, p95: 180, max: 300}",
                                "latency: {min: 10, p50: 15, p95: 20, max: 30}")));
  ASSERT_TRUE(fast) << fast.error().message;
  EXPECT_EQ(fast->models[0].generation_timeout_seconds, 600);
  auto stated = Parse(Doc(Replace(kModel, "    price_per_second: 0.112\n",
                                  "    price_per_second: 0.112\n    generation_timeout: 90.5\n")));
  ASSERT_TRUE(stated) << stated.error().message;
  EXPECT_EQ(stated->models[0].generation_timeout_seconds, 90.5);
  auto never = Parse(Doc(Replace(kModel, "    price_per_second: 0.112\n",
                                 "    price_per_second: 0.112\n    generation_timeout: 0\n")));
  ASSERT_TRUE(never) << never.error().message;
  EXPECT_EQ(never->models[0].generation_timeout_seconds, 0);
  ExpectError(Doc(Replace(kModel, "    price_per_second: 0.112\n",
                          "    price_per_second: 0.112\n    generation_timeout: -1\n")),
              "models[0] (kling-3.0).generation_timeout: expected a non-negative number");
}

TEST(Catalogue, RejectsEveryKindOfBadEntry) {
  ExpectError("models: []", "models: expected a non-empty list of models");
  ExpectError(Doc(Replace(kModel, "provider: sora", "provider: runway")),
              "models[1] (sora-2).provider: unknown provider 'runway' (expected kling, sora, veo "
              "or seedance)");
  ExpectError(Doc(Replace(kModel, "id: sora-2", "id: kling-3.0")),
              "models[1] (kling-3.0).id: duplicate model id 'kling-3.0'");
  ExpectError(Doc(Replace(kModel, "    upstream_model: sora-2\n", "")),
              "models[1] (sora-2).upstream_model: missing (required)");
  ExpectError(Doc(Replace(kModel, "durations: [4, 8, 12]", "durations: [4, 8.5]")),
              "models[1] (sora-2).durations: expected a non-empty list of whole seconds");
  ExpectError(Doc(Replace(kModel, "durations: [4, 8, 12]", "durations: [4, 20]")),
              "models[1] (sora-2).durations: 20 exceeds max_clip_seconds (12)");
  ExpectError(Doc(Replace(kModel, "durations: [4, 8, 12]",
                          "durations: [4, 8, 12]\n    durations_by_resolution: {4k: [8]}")),
              "models[1] (sora-2).durations_by_resolution.4k: not one of this model's resolutions");
  ExpectError(Doc(Replace(kModel, "durations: [4, 8, 12]",
                          "durations: [4, 8, 12]\n    durations_by_resolution: {720p: [6]}")),
              "models[1] (sora-2).durations_by_resolution.720p: expected durations from this "
              "model's `durations`");
  ExpectError(Doc(Replace(kModel, "max_clip_seconds: 12", "max_clip_seconds: -12")),
              "models[1] (sora-2).max_clip_seconds: expected a positive integer");
  ExpectError(Doc(Replace(kModel, "price_per_second: 0.112", "price_per_second: -1")),
              "models[0] (kling-3.0).price_per_second: expected a non-negative number");
  ExpectError(Doc(Replace(kModel, "p95: 180", "p95: 100")),
              "models[0] (kling-3.0).latency: expected min <= p50 <= p95 <= max");
  ExpectError(Doc(Replace(kModel, "aspect_ratios: [\"16:9\"]", "aspect_ratios: \"16:9\"")),
              "models[1] (sora-2).aspect_ratios: expected a non-empty list of strings");
  ExpectError(Doc(Replace(kModel, "max_shots: 6", "max_shot: 6")),
              "models[0] (kling-3.0).max_shot: unknown key; did you mean max_shots?");
  ExpectError(Doc(Replace(kModel, "max_shots: 6", "max_shots: 6\n    max_shot_prompt_chars: -5")),
              "models[0] (kling-3.0).max_shot_prompt_chars: expected a non-negative integer");
  ExpectError(Doc(Replace(kModel, "max_clip_seconds: 12",
                          "max_clip_seconds: 12\n    inputs: {last_frame: true, "
                          "last_frame_needs_first: true}")),
              "models[1] (sora-2).inputs: last_frame_needs_first: needs first_frame and "
              "last_frame both true");
  ExpectError(Doc(kModel, Replace(kAccounts, "max_concurrent: 3", "max_concurrent: 0")),
              "accounts[1] (sora-b).max_concurrent: expected a positive integer");
  ExpectError(Doc(kModel, Replace(kAccounts, "max_concurrent: 3", "max_concurrent: lots")),
              "accounts[1] (sora-b).max_concurrent: expected a positive integer");
  ExpectError(Doc(kModel, Replace(kAccounts, "id: sora-b", "id: kling-a")),
              "accounts[1] (kling-a).id: duplicate account id 'kling-a'");
  ExpectError(Doc(kModel, Replace(kAccounts, "    secret_key: {file: /run/k_sk}\n", "")),
              "accounts[0] (kling-a).secret_key: missing (required)");
  ExpectError(Doc(kModel, Replace(kAccounts, "api_key: {env: OPENAI_API_KEY}", "api_key: sk-123")),
              "accounts[1] (sora-b).api_key: expected {env: VARIABLE} or {file: PATH}, not an "
              "inline value");
  ExpectError(Doc(kModel, Replace(kAccounts, "{env: OPENAI_API_KEY}", "{env: A, file: /b}")),
              "accounts[1] (sora-b).api_key: expected exactly one of env or file");
  ExpectError(Doc(kModel, Replace(kAccounts, "base_url: https://api.openai.com", "base_url: api")),
              "accounts[1] (sora-b).base_url: expected an http:// or https:// URL");
  ExpectError(Doc(kModel, Replace(kAccounts, "models: [sora-2]", "models: [kling-3.0]")),
              "accounts[1] (sora-b).models: model 'kling-3.0' belongs to provider 'kling', not "
              "'sora'");
  ExpectError(Doc(kModel, Replace(kAccounts, "models: [sora-2]", "models: [sora-9]")),
              "accounts[1] (sora-b).models: unknown model 'sora-9'");
  ExpectError(Doc(kModel, Replace(kAccounts, "requests_per_minute: 60", "requests_per_minute: -5")),
              "accounts[0] (kling-a).requests_per_minute: expected a positive number");
  ExpectError(Doc(kModel, kAccounts, "routing:\n  use_cases:\n    photorealism: sora-9\n"),
              "routing.use_cases.photorealism: unknown model 'sora-9'");
  ExpectError(Doc(kModel, kAccounts, "routing:\n  usecases: {}\n"),
              "routing.usecases: unknown key; did you mean use_cases?");
  ExpectError(Doc(kModel, "\n  - just a string\n"), "accounts[0]: expected a mapping");
}

TEST(SecretRef, ResolvesFromEnvAndFileWithoutLeaking) {
  ::setenv("REELQ_TEST_SECRET", "  s3cr3t-value \n", 1);
  SecretRef env{.env = "REELQ_TEST_SECRET"};
  EXPECT_EQ(*env.Resolve(), "s3cr3t-value");
  ::setenv("REELQ_TEST_EMPTY", "  ", 1);
  auto empty = SecretRef{.env = "REELQ_TEST_EMPTY"}.Resolve();
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().category, ErrorCategory::kAuthFailed);
  EXPECT_EQ(empty.error().message, "environment variable REELQ_TEST_EMPTY is empty");
  auto unset = SecretRef{.env = "REELQ_TEST_UNSET_XYZ"}.Resolve();
  EXPECT_EQ(unset.error().message, "environment variable REELQ_TEST_UNSET_XYZ is not set");

  testing::TempDir dir;
  auto path = dir.path() / "key";
  std::ofstream(path) << "file-secret\n";
  EXPECT_EQ(*SecretRef{.file = path.string()}.Resolve(), "file-secret");
  auto missing = SecretRef{.file = (dir.path() / "nope").string()}.Resolve();
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("nope"), std::string::npos);
  EXPECT_EQ(missing.error().message.find("file-secret"), std::string::npos);
}

}  // namespace
}  // namespace reelq::providers
