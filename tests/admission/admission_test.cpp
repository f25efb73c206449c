#include "reelq/scheduler/admission.h"

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "test_catalogue.h"

namespace reelq::scheduler {
namespace {

using reelq::v1::JobSpec;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr int64_t kNowMs = 1'790'000'000'000;  // 2026-09-22

class AdmissionTest : public ::testing::Test {
 protected:
  AdmissionTest()
      : clock_(std::make_shared<ManualClock>(kNowMs)),
        admission_(reelq::testing::ShippedCatalogue(), AdmissionLimits{}, clock_) {}

  static JobSpec Prompt(std::string prompt, uint32_t seconds) {
    JobSpec spec;
    spec.set_prompt(std::move(prompt));
    spec.set_duration_seconds(seconds);
    return spec;
  }

  static JobSpec Shots(const std::vector<uint32_t>& durations, uint32_t total = 0) {
    JobSpec spec;
    for (size_t i = 0; i < durations.size(); ++i) {
      auto* shot = spec.add_shots();
      shot->set_prompt("shot " + std::to_string(i));
      shot->set_duration_seconds(durations[i]);
    }
    spec.set_duration_seconds(total);
    return spec;
  }

  // The refusal message; fails the test when the spec was admitted or refused otherwise.
  std::string Refusal(JobSpec spec) {
    auto r = admission_.Admit(spec);
    if (r.has_value()) {
      ADD_FAILURE() << "admitted, expected a refusal: " << spec.ShortDebugString();
      return {};
    }
    EXPECT_EQ(r.error().category, ErrorCategory::kInvalidRequest) << r.error().Describe();
    return r.error().message;
  }

  std::vector<std::string> Candidates(JobSpec& spec) {
    auto r = admission_.Admit(spec);
    if (!r.has_value()) {
      ADD_FAILURE() << "refused: " << r.error().message;
      return {};
    }
    return r->candidates;
  }

  std::shared_ptr<ManualClock> clock_;
  Admission admission_;
};

using Ids = std::vector<std::string>;

// --- Defaults ------------------------------------------------------------------------------

TEST_F(AdmissionTest, FillsDefaultsAndOrdersAutoByLatency) {
  JobSpec spec = Prompt("a lighthouse at dusk", 8);
  auto r = admission_.Admit(spec);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(spec.tenant(), "default");
  EXPECT_EQ(spec.aspect_ratio(), "16:9");
  EXPECT_EQ(spec.resolution(), "720p");
  ASSERT_TRUE(spec.has_audio());
  EXPECT_TRUE(spec.audio());
  EXPECT_EQ(spec.duration_seconds(), 8u);
  EXPECT_TRUE(r->auto_routed);
  EXPECT_FALSE(r->first_choice_preferred);
  // Catalogue p50: seedance 45, veo 75, kling 120, sora 180.
  EXPECT_EQ(r->candidates, (Ids{"seedance-2.0", "veo-3.1", "kling-3.0", "sora-2"}));
}

TEST_F(AdmissionTest, KeepsExplicitValues) {
  JobSpec spec = Prompt("x", 8);
  spec.set_tenant("studio-a");
  spec.set_aspect_ratio("9:16");
  spec.set_resolution("1080p");
  spec.set_audio(false);
  ASSERT_TRUE(admission_.Admit(spec).has_value());
  EXPECT_EQ(spec.tenant(), "studio-a");
  EXPECT_EQ(spec.aspect_ratio(), "9:16");
  EXPECT_EQ(spec.resolution(), "1080p");
  EXPECT_FALSE(spec.audio());
}

TEST_F(AdmissionTest, AutoListIsTheSameAsEmpty) {
  JobSpec spec = Prompt("x", 8);
  spec.add_models("auto");
  auto r = admission_.Admit(spec);
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->auto_routed);
  EXPECT_EQ(r->candidates.size(), 4u);
}

TEST_F(AdmissionTest, DurationDefaultsToTheSumOfTheShots) {
  JobSpec spec = Shots({3, 5});
  EXPECT_EQ(Candidates(spec), (Ids{"kling-3.0"}));
  EXPECT_EQ(spec.duration_seconds(), 8u);
}

TEST_F(AdmissionTest, ResolutionIsNormalisedToLowerCase) {
  JobSpec spec = Prompt("x", 8);
  spec.set_resolution("1080P");
  EXPECT_EQ(Candidates(spec), (Ids{"seedance-2.0", "veo-3.1", "kling-3.0"}));
  EXPECT_EQ(spec.resolution(), "1080p");
}

TEST_F(AdmissionTest, RefusedSpecIsLeftUntouched) {
  JobSpec spec = Prompt("x", 20);
  const JobSpec before = spec;
  Refusal(spec);
  auto r = admission_.Admit(spec);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(spec.SerializeAsString(), before.SerializeAsString());
}

// --- The acceptance list -----------------------------------------------------------

TEST_F(AdmissionTest, EmptyPromptIsRefused) {
  EXPECT_THAT(Refusal(Prompt("", 8)), StartsWith("prompt: empty"));
  EXPECT_THAT(Refusal(Prompt(" \n\t ", 8)), StartsWith("prompt: empty"));
}

TEST_F(AdmissionTest, UnknownModelIsRefused) {
  JobSpec spec = Prompt("x", 8);
  spec.add_models("sora-2");
  spec.add_models("kling-9");
  std::string m = Refusal(spec);
  EXPECT_THAT(m, StartsWith("models[1]: unknown model \"kling-9\""));
  EXPECT_THAT(m, HasSubstr("seedance-2.0"));
}

// A model with no account in reelq.yaml can never be dispatched: a job left with only such
// models would wait forever, saying nothing. It is refused naming the model; where other
// allowed models can run the job, only they are its candidates.
TEST(AdmissionAccountsTest, AModelWithNoAccountIsNoCandidate) {
  providers::Catalogue catalogue = reelq::testing::ShippedCatalogue();
  std::erase_if(catalogue.accounts, [](const auto& a) { return a.provider == "veo"; });
  Admission admission(catalogue, AdmissionLimits{}, std::make_shared<ManualClock>(kNowMs));
  JobSpec only_veo;
  only_veo.set_prompt("x");
  only_veo.set_duration_seconds(8);
  only_veo.add_models("veo-3.1");
  auto refused = admission.Admit(only_veo);
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().category, ErrorCategory::kInvalidRequest);
  EXPECT_THAT(refused.error().message, HasSubstr("veo-3.1"));
  EXPECT_THAT(refused.error().message, HasSubstr("has no account configured"));

  JobSpec either;
  either.set_prompt("x");
  either.set_duration_seconds(8);
  either.add_models("veo-3.1");
  either.add_models("kling-3.0");
  auto admitted = admission.Admit(either);
  ASSERT_TRUE(admitted.has_value()) << admitted.error().message;
  EXPECT_EQ(admitted->candidates, (std::vector<std::string>{"kling-3.0"}));

  JobSpec any;
  any.set_prompt("x");
  any.set_duration_seconds(8);
  auto routed = admission.Admit(any);
  ASSERT_TRUE(routed.has_value()) << routed.error().message;
  EXPECT_EQ(std::count(routed->candidates.begin(), routed->candidates.end(), "veo-3.1"), 0);
  EXPECT_FALSE(routed->candidates.empty());
}

TEST_F(AdmissionTest, ZeroDurationIsRefused) {
  EXPECT_THAT(Refusal(Prompt("x", 0)), StartsWith("duration_seconds: required"));
}

TEST_F(AdmissionTest, NegativeDurationIsRefused) {
  // A client's -5 in a uint32 field arrives as 2^32 - 5.
  EXPECT_THAT(Refusal(Prompt("x", static_cast<uint32_t>(-5))),
              StartsWith("duration_seconds: -5 is negative"));
}

TEST_F(AdmissionTest, DurationNoModelCanMakeIsRefusedWithEachModelsLimit) {
  std::string m = Refusal(Prompt("x", 20));
  EXPECT_THAT(m, StartsWith("duration_seconds: 20 s — no allowed model can make it ("));
  EXPECT_THAT(m, HasSubstr("kling-3.0: makes 3 to 15 s"));
  EXPECT_THAT(m, HasSubstr("sora-2: makes 4, 8 or 12 s"));
  EXPECT_THAT(m, HasSubstr("veo-3.1: makes 4, 6 or 8 s"));
  EXPECT_THAT(m, HasSubstr("seedance-2.0: makes 4 to 15 s"));
}

// A resolution that allows only some of a model's durations (the catalogue's
// durations_by_resolution: Veo makes 1080p at 8 s only) is refused at submit, naming it, instead
// of failing at the worker; under auto such a job goes to a model that can make it.
TEST_F(AdmissionTest, AResolutionsOwnDurationsAreCheckedAtSubmit) {
  auto spec = Prompt("x", 6);
  spec.add_models("veo-3.1");
  spec.set_resolution("1080p");
  EXPECT_THAT(Refusal(spec), HasSubstr("veo-3.1 makes 8 s at 1080p"));
  spec.set_duration_seconds(8);
  EXPECT_EQ(Candidates(spec), (Ids{"veo-3.1"}));
  spec.set_resolution("720p");
  spec.set_duration_seconds(6);
  EXPECT_EQ(Candidates(spec), (Ids{"veo-3.1"}));
  auto any = Prompt("x", 6);
  any.set_resolution("1080p");
  const auto candidates = Candidates(any);
  EXPECT_FALSE(candidates.empty());
  EXPECT_EQ(std::find(candidates.begin(), candidates.end(), "veo-3.1"), candidates.end());
}

TEST_F(AdmissionTest, PromptOver100KBIsRefused) {
  EXPECT_THAT(Refusal(Prompt(std::string(100'001, 'a'), 8)),
              StartsWith("prompt: 100001 bytes — over the 100000-byte limit"));
  // At the limit it passes the size check; the models with a character limit (kling-3.0 2500,
  // sora-2 32000) drop out, veo-3.1 and seedance-2.0 have none.
  JobSpec at_limit = Prompt(std::string(100'000, 'a'), 8);
  EXPECT_EQ(Candidates(at_limit), (Ids{"seedance-2.0", "veo-3.1"}));
}

TEST_F(AdmissionTest, InvalidUtf8InThePromptIsRefused) {
  EXPECT_THAT(Refusal(Prompt("caf\xC3", 8)), StartsWith("prompt: invalid UTF-8 at byte 3"));
}

TEST_F(AdmissionTest, UnknownEnumValueIsRefused) {
  // What a newer client sends: use_case = 42 (field 5, varint). Proto3 keeps the number.
  JobSpec spec;
  ASSERT_TRUE(spec.ParseFromString(std::string("\x12\x01x\x28\x2a\x30\x08", 7)));
  ASSERT_EQ(static_cast<int>(spec.use_case()), 42);
  EXPECT_THAT(Refusal(spec), StartsWith("use_case: unknown value 42"));
}

TEST_F(AdmissionTest, FifteenSecondsUnderAutoGetsOnlyModelsThatMakeIt) {
  JobSpec spec = Prompt("x", 15);
  auto r = admission_.Admit(spec);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->candidates, (Ids{"seedance-2.0", "kling-3.0"}));
  ASSERT_EQ(r->rejected.size(), 2u);
  for (const auto& rej : r->rejected) EXPECT_EQ(rej.field, "duration_seconds") << rej.model;
}

TEST_F(AdmissionTest, SixShotFifteenSecondKlingRequestIsAdmitted) {
  JobSpec spec = Shots({2, 2, 2, 3, 3, 3}, 15);
  spec.add_models("kling-3.0");
  EXPECT_EQ(Candidates(spec), (Ids{"kling-3.0"}));
}

TEST_F(AdmissionTest, SevenShotsAreRefusedWithTheReason) {
  JobSpec spec = Shots({2, 2, 2, 2, 2, 2, 3}, 15);
  spec.add_models("kling-3.0");
  EXPECT_EQ(Refusal(spec), "shots: 7 shots — kling-3.0 supports at most 6 cuts in one generation");

  JobSpec any = Shots({2, 2, 2, 2, 2, 2, 3}, 15);
  std::string m = Refusal(any);
  EXPECT_THAT(m, StartsWith("shots: 7 shots — no allowed model can make it ("));
  EXPECT_THAT(m, HasSubstr("sora-2: makes one continuous shot only"));
}

TEST_F(AdmissionTest, ShotsNotSummingToTheClipAreRefused) {
  EXPECT_EQ(Refusal(Shots({5, 5, 4}, 15)),
            "shots: durations sum to 14 s but duration_seconds is 15");
}

// --- Prompt and shots ----------------------------------------------------------------------

TEST_F(AdmissionTest, PromptAndShotsTogetherAreRefused) {
  JobSpec spec = Shots({4, 4});
  spec.set_prompt("also a prompt");
  EXPECT_THAT(Refusal(spec), StartsWith("prompt: set both prompt and shots"));
}

TEST_F(AdmissionTest, ConfiguredPromptLimitApplies) {
  Admission small(reelq::testing::ShippedCatalogue(), AdmissionLimits{.max_prompt_bytes = 10},
                  clock_);
  JobSpec ok = Prompt("0123456789", 8);
  EXPECT_TRUE(small.Admit(ok).has_value());
  JobSpec big = Prompt("0123456789A", 8);
  auto r = small.Admit(big);
  ASSERT_FALSE(r.has_value());
  EXPECT_THAT(r.error().message, StartsWith("prompt: 11 bytes — over the 10-byte limit"));

  JobSpec neg = Prompt("ok", 8);
  neg.set_negative_prompt("0123456789A");
  r = small.Admit(neg);
  ASSERT_FALSE(r.has_value());
  EXPECT_THAT(r.error().message, StartsWith("negative_prompt: 11 bytes"));

  JobSpec shots = Shots({4, 4});
  shots.mutable_shots(0)->set_prompt("012345");
  shots.mutable_shots(1)->set_prompt("012345");
  r = small.Admit(shots);
  ASSERT_FALSE(r.has_value());
  EXPECT_THAT(r.error().message, StartsWith("shots: prompts total 12 bytes"));
}

TEST_F(AdmissionTest, ShotChecks) {
  JobSpec zero = Shots({4, 0, 4});
  EXPECT_THAT(Refusal(zero), StartsWith("shots[1].duration_seconds: must be at least 1 s"));
  JobSpec negative = Shots({4, static_cast<uint32_t>(-1)});
  EXPECT_THAT(Refusal(negative), StartsWith("shots[1].duration_seconds: -1 is out of range"));
  JobSpec empty = Shots({4, 4});
  empty.mutable_shots(0)->set_prompt("  ");
  EXPECT_THAT(Refusal(empty), StartsWith("shots[0].prompt: empty"));
  JobSpec many = Shots(std::vector<uint32_t>(65, 1));
  EXPECT_THAT(Refusal(many), StartsWith("shots: 65 shots — at most 64 allowed"));
}

TEST_F(AdmissionTest, OneShotWorksOnEveryModel) {
  JobSpec spec = Shots({8});
  EXPECT_EQ(Candidates(spec).size(), 4u);
}

TEST_F(AdmissionTest, DurationOverTheSanityBoundIsRefused) {
  EXPECT_THAT(Refusal(Prompt("x", 4000)), StartsWith("duration_seconds: 4000 s — over the"));
}

// --- Models --------------------------------------------------------------------------------

TEST_F(AdmissionTest, ExplicitListKeepsItsOrderAndDropsModelsThatCannotMakeIt) {
  JobSpec spec = Prompt("x", 8);
  for (const char* m : {"sora-2", "kling-3.0", "veo-3.1"}) spec.add_models(m);
  auto r = admission_.Admit(spec);
  ASSERT_TRUE(r.has_value());
  EXPECT_FALSE(r->auto_routed);
  EXPECT_EQ(r->candidates, (Ids{"sora-2", "kling-3.0", "veo-3.1"}));

  JobSpec longer = Prompt("x", 12);
  for (const char* m : {"veo-3.1", "sora-2", "kling-3.0"}) longer.add_models(m);
  r = admission_.Admit(longer);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->candidates, (Ids{"sora-2", "kling-3.0"}));
  ASSERT_EQ(r->rejected.size(), 1u);
  EXPECT_EQ(r->rejected[0].model, "veo-3.1");
  EXPECT_EQ(r->rejected[0].field, "duration_seconds");
}

TEST_F(AdmissionTest, ExplicitSingleModelThatCannotMakeItIsRefused) {
  JobSpec spec = Prompt("x", 10);
  spec.add_models("sora-2");
  EXPECT_EQ(Refusal(spec), "duration_seconds: 10 s — sora-2 makes 4, 8 or 12 s");
}

TEST_F(AdmissionTest, DuplicateModelIsRefused) {
  JobSpec spec = Prompt("x", 8);
  spec.add_models("sora-2");
  spec.add_models("veo-3.1");
  spec.add_models("sora-2");
  EXPECT_THAT(Refusal(spec), StartsWith("models[2]: \"sora-2\" is listed twice"));
}

TEST_F(AdmissionTest, AutoMixedWithIdsIsRefused) {
  JobSpec spec = Prompt("x", 8);
  spec.add_models("sora-2");
  spec.add_models("auto");
  EXPECT_THAT(Refusal(spec), StartsWith("models[1]: \"auto\" cannot be combined"));
}

TEST_F(AdmissionTest, EmptyModelIdIsRefused) {
  JobSpec spec = Prompt("x", 8);
  spec.add_models("");
  EXPECT_THAT(Refusal(spec), StartsWith("models[0]: empty model id"));
}

TEST_F(AdmissionTest, DifferentObstaclesPerModelAreEachNamed) {
  JobSpec spec = Prompt("x", 12);
  spec.set_resolution("1080p");
  spec.add_models("sora-2");
  spec.add_models("veo-3.1");
  std::string m = Refusal(spec);
  EXPECT_THAT(m, StartsWith("models: no allowed model can make this combination ("));
  EXPECT_THAT(m, HasSubstr("sora-2: resolution \"1080p\" — makes 720p"));
  EXPECT_THAT(m, HasSubstr("veo-3.1: duration_seconds 12 s — makes 8 s at 1080p"));
}

// --- Hard constraints other than length and shots -----------------------------------------

TEST_F(AdmissionTest, AudioNeedsAModelWithAudio) {
  providers::Catalogue c = reelq::testing::ShippedCatalogue();
  c.models[1].audio = false;  // a silent sora-2
  Admission admission(c, {}, clock_);
  JobSpec spec = Prompt("x", 8);
  spec.add_models("sora-2");
  auto r = admission.Admit(spec);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().message, "audio: on — sora-2 has no native audio (set audio: false)");
  spec.set_audio(false);
  EXPECT_TRUE(admission.Admit(spec).has_value());
}

TEST_F(AdmissionTest, ResolutionNoModelMakesIsRefused) {
  JobSpec spec = Prompt("x", 8);
  spec.set_resolution("4k");
  std::string m = Refusal(spec);
  EXPECT_THAT(m, StartsWith("resolution: \"4k\" — no allowed model can make it ("));
  EXPECT_THAT(m, HasSubstr("sora-2: makes 720p)"));
}

TEST_F(AdmissionTest, AspectRatioFiltersModels) {
  JobSpec wide = Prompt("x", 8);
  wide.set_aspect_ratio("21:9");
  EXPECT_EQ(Candidates(wide), (Ids{"seedance-2.0"}));
  JobSpec odd = Prompt("x", 8);
  odd.set_aspect_ratio("4:5");
  EXPECT_THAT(Refusal(odd), StartsWith("aspect_ratio: \"4:5\" — no allowed model can make it"));
}

TEST_F(AdmissionTest, PerModelPromptLengthCountsCharacters) {
  JobSpec spec = Prompt(std::string(3000, 'a'), 8);
  spec.add_models("kling-3.0");
  EXPECT_EQ(Refusal(spec), "prompt: 3000 characters — kling-3.0 accepts at most 2500 characters");

  JobSpec any = Prompt(std::string(3000, 'a'), 8);
  EXPECT_EQ(Candidates(any), (Ids{"seedance-2.0", "veo-3.1", "sora-2"}));

  std::string accents;
  for (int i = 0; i < 2500; ++i) accents += "\xC3\xA9";  // 5000 bytes, 2500 characters
  JobSpec fits = Prompt(accents, 8);
  fits.add_models("kling-3.0");
  EXPECT_EQ(Candidates(fits), (Ids{"kling-3.0"}));

  // A shot's own prompt has Kling's multi_prompt limit, 512 characters, under the clip's 2500:
  // refused at submit, not by the provider once the job ran (and its wallet hold was taken).
  JobSpec shot = Shots({4, 4});
  shot.mutable_shots(1)->set_prompt(std::string(513, 'b'));
  shot.add_models("kling-3.0");
  EXPECT_EQ(Refusal(shot),
            "shots[1].prompt: 513 characters — kling-3.0 accepts at most 512 characters");
  std::string shot_accents;
  for (int i = 0; i < 512; ++i) shot_accents += "\xC3\xA9";  // 1024 bytes, 512 characters
  shot.mutable_shots(1)->set_prompt(shot_accents);
  EXPECT_EQ(Candidates(shot), (Ids{"kling-3.0"}));
}

// --- Enumerations and priority -------------------------------------------------------------

TEST_F(AdmissionTest, PriorityRange) {
  for (int p : {-100, 0, 100}) {
    JobSpec spec = Prompt("x", 8);
    spec.set_priority(p);
    EXPECT_TRUE(admission_.Admit(spec).has_value()) << p;
  }
  JobSpec high = Prompt("x", 8);
  high.set_priority(101);
  EXPECT_EQ(Refusal(high), "priority: 101 is outside -100..100");
  JobSpec low = Prompt("x", 8);
  low.set_priority(-101);
  EXPECT_EQ(Refusal(low), "priority: -101 is outside -100..100");
}

// --- Identifiers and labels ----------------------------------------------------------------

TEST_F(AdmissionTest, TenantCharsetAndLength) {
  JobSpec ok = Prompt("x", 8);
  ok.set_tenant("Studio_A-1.prod");
  EXPECT_TRUE(admission_.Admit(ok).has_value());
  for (const std::string& bad : std::vector<std::string>{"studio a", "studio/a", "..", ".hidden",
                                                         "{q}", std::string(65, 't')}) {
    JobSpec spec = Prompt("x", 8);
    spec.set_tenant(bad);
    EXPECT_THAT(Refusal(spec), StartsWith("tenant: ")) << bad;
  }
  // Input images live under inputs/<tenant>/: a tenant named "inputs" would own every one.
  JobSpec reserved = Prompt("x", 8);
  reserved.set_tenant("inputs");
  EXPECT_EQ(Refusal(reserved),
            "tenant: \"inputs\" is reserved (the object store keeps every tenant's input images "
            "under inputs/); choose another name");
}

TEST_F(AdmissionTest, BatchIdCharsetAndLength) {
  JobSpec ok = Prompt("x", 8);
  ok.set_batch_id("night-2026-11-25.v2");
  EXPECT_TRUE(admission_.Admit(ok).has_value());
  for (const std::string& bad :
       std::vector<std::string>{"a/b", "..", "a b", std::string(129, 'b')}) {
    JobSpec spec = Prompt("x", 8);
    spec.set_batch_id(bad);
    EXPECT_THAT(Refusal(spec), StartsWith("batch_id: ")) << bad;
  }
}

TEST_F(AdmissionTest, IdempotencyKeyCharsetAndLength) {
  JobSpec ok = Prompt("x", 8);
  ok.set_idempotency_key("run-7:shot/12=b64+x_y.z");
  EXPECT_TRUE(admission_.Admit(ok).has_value());
  for (const std::string& bad :
       std::vector<std::string>{"with space", "brace{", std::string(129, 'k')}) {
    JobSpec spec = Prompt("x", 8);
    spec.set_idempotency_key(bad);
    EXPECT_THAT(Refusal(spec), StartsWith("idempotency_key: ")) << bad;
  }
}

TEST_F(AdmissionTest, Labels) {
  JobSpec ok = Prompt("x", 8);
  (*ok.mutable_labels())["scene"] = "12 — harbour";
  (*ok.mutable_labels())["app.kubernetes.io/part-of"] = "night";
  EXPECT_TRUE(admission_.Admit(ok).has_value());

  JobSpec many = Prompt("x", 8);
  for (int i = 0; i < 33; ++i) (*many.mutable_labels())["k" + std::to_string(i)] = "v";
  EXPECT_EQ(Refusal(many), "labels: 33 labels — at most 32 allowed");

  JobSpec empty_key = Prompt("x", 8);
  (*empty_key.mutable_labels())[""] = "v";
  EXPECT_EQ(Refusal(empty_key), "labels: a key is empty");

  JobSpec long_key = Prompt("x", 8);
  (*long_key.mutable_labels())[std::string(64, 'k')] = "v";
  EXPECT_THAT(Refusal(long_key), HasSubstr("64 bytes — at most 63 allowed"));

  JobSpec bad_key = Prompt("x", 8);
  (*bad_key.mutable_labels())["a b"] = "v";
  EXPECT_THAT(Refusal(bad_key), StartsWith("labels[\"a b\"]: "));

  JobSpec long_value = Prompt("x", 8);
  (*long_value.mutable_labels())["k"] = std::string(257, 'v');
  EXPECT_EQ(Refusal(long_value), "labels[\"k\"]: value is 257 bytes — at most 256 allowed");

  JobSpec control = Prompt("x", 8);
  (*control.mutable_labels())["k"] = "line\nbreak";
  EXPECT_EQ(Refusal(control), "labels[\"k\"]: value has a control character");
}

// --- UTF-8 in every string field -----------------------------------------------------------

struct Utf8Case {
  const char* field;
  void (*set)(JobSpec&, const std::string&);
};

class InvalidUtf8FieldTest : public AdmissionTest,
                             public ::testing::WithParamInterface<Utf8Case> {};

TEST_P(InvalidUtf8FieldTest, IsRefusedNamingTheField) {
  JobSpec spec = Prompt("x", 8);
  GetParam().set(spec, "ok\xED\xA0\x80");  // a UTF-16 surrogate encoded as UTF-8
  EXPECT_THAT(Refusal(spec), StartsWith(std::string(GetParam().field) + ": invalid UTF-8"));
}

INSTANTIATE_TEST_SUITE_P(
    AllFields, InvalidUtf8FieldTest,
    ::testing::Values(
        Utf8Case{"prompt", [](JobSpec& s, const std::string& v) { s.set_prompt(v); }},
        Utf8Case{"negative_prompt",
                 [](JobSpec& s, const std::string& v) { s.set_negative_prompt(v); }},
        Utf8Case{"shots[1].prompt",
                 [](JobSpec& s, const std::string& v) {
                   s.clear_prompt();
                   s.add_shots()->set_prompt("fine");
                   s.add_shots()->set_prompt(v);
                 }},
        Utf8Case{"tenant", [](JobSpec& s, const std::string& v) { s.set_tenant(v); }},
        Utf8Case{"models[0]", [](JobSpec& s, const std::string& v) { s.add_models(v); }},
        Utf8Case{"aspect_ratio", [](JobSpec& s, const std::string& v) { s.set_aspect_ratio(v); }},
        Utf8Case{"resolution", [](JobSpec& s, const std::string& v) { s.set_resolution(v); }},
        Utf8Case{"idempotency_key",
                 [](JobSpec& s, const std::string& v) { s.set_idempotency_key(v); }},
        Utf8Case{"batch_id", [](JobSpec& s, const std::string& v) { s.set_batch_id(v); }},
        Utf8Case{"labels",
                 [](JobSpec& s, const std::string& v) { (*s.mutable_labels())[v] = "v"; }},
        Utf8Case{"labels[\"scene\"]",
                 [](JobSpec& s, const std::string& v) { (*s.mutable_labels())["scene"] = v; }}),
    [](const auto& info) {
      std::string name;
      for (const char* p = info.param.field; *p; ++p) {
        if (std::isalnum(static_cast<unsigned char>(*p))) name += *p;
      }
      return name + std::to_string(info.index);
    });

// --- Deadlines -----------------------------------------------------------------------------

google::protobuf::Timestamp At(int64_t ms) {
  google::protobuf::Timestamp t;
  t.set_seconds(ms / 1000);
  t.set_nanos(static_cast<int32_t>(ms % 1000) * 1'000'000);
  return t;
}

TEST_F(AdmissionTest, DeadlinesInTheFutureAreAccepted) {
  JobSpec spec = Prompt("x", 8);
  *spec.mutable_start_deadline() = At(kNowMs + 60'000);
  *spec.mutable_finish_deadline() = At(kNowMs + 3'600'000);
  EXPECT_TRUE(admission_.Admit(spec).has_value());
}

TEST_F(AdmissionTest, FinishBeforeStartIsRefused) {
  JobSpec spec = Prompt("x", 8);
  *spec.mutable_start_deadline() = At(kNowMs + 3'600'000);
  *spec.mutable_finish_deadline() = At(kNowMs + 60'000);
  EXPECT_THAT(Refusal(spec), StartsWith("finish_deadline: 2026-"));
  EXPECT_THAT(Refusal(spec), HasSubstr("is before start_deadline"));
}

TEST_F(AdmissionTest, DeadlineAlreadyPastIsRefused) {
  JobSpec finish = Prompt("x", 8);
  *finish.mutable_finish_deadline() = At(kNowMs - 1);
  EXPECT_THAT(Refusal(finish), StartsWith("finish_deadline: "));
  EXPECT_THAT(Refusal(finish), HasSubstr("has already passed"));

  JobSpec start = Prompt("x", 8);
  *start.mutable_start_deadline() = At(kNowMs);
  EXPECT_THAT(Refusal(start), StartsWith("start_deadline: "));

  // The same deadline is fine while it is still ahead of the clock.
  clock_->Set(kNowMs - 10'000);
  EXPECT_TRUE(admission_.Admit(finish).has_value());
}

TEST_F(AdmissionTest, MalformedTimestampIsRefused) {
  JobSpec spec = Prompt("x", 8);
  spec.mutable_finish_deadline()->set_seconds(kNowMs / 1000 + 60);
  spec.mutable_finish_deadline()->set_nanos(-1);
  EXPECT_THAT(Refusal(spec), StartsWith("finish_deadline: not a valid timestamp"));
}

}  // namespace
}  // namespace reelq::scheduler

// --- Input images (issue 13) ----------------------------------------------------------------
namespace reelq::scheduler {
namespace {

using reelq::v1::JobSpec;
using ::testing::HasSubstr;
using ::testing::StartsWith;

class ImageAdmissionTest : public ::testing::Test {
 protected:
  ImageAdmissionTest() : admission_(reelq::testing::ShippedCatalogue(), Limits()) {}
  static AdmissionLimits Limits() {
    AdmissionLimits limits;
    limits.max_image_bytes = 1024;
    return limits;
  }
  static JobSpec Spec(const std::string& model, uint32_t seconds) {
    JobSpec spec;
    spec.set_prompt("a still comes alive");
    spec.set_duration_seconds(seconds);
    if (!model.empty()) spec.add_models(model);
    return spec;
  }
  static std::string Png() { return std::string("\x89PNG\r\n\x1a\n", 8) + "rest of the image"; }
  std::string Refusal(JobSpec spec) {
    auto r = admission_.Admit(spec);
    EXPECT_FALSE(r.has_value());
    return r ? "" : r.error().message;
  }
  Admission admission_;
};

TEST_F(ImageAdmissionTest, ImagesAreCheckedByContentAndSize) {
  JobSpec gif = Spec("veo-3.1", 8);
  gif.mutable_first_frame()->set_data("GIF89a....");
  EXPECT_THAT(Refusal(gif), StartsWith("first_frame.data: not an image — expected a PNG"));
  JobSpec big = Spec("veo-3.1", 8);
  big.add_reference_images()->set_data(Png() + std::string(2000, 'x'));
  EXPECT_THAT(Refusal(big), StartsWith("reference_images[0].data: 2025 bytes — over the 1024"));
  JobSpec empty = Spec("veo-3.1", 8);
  empty.mutable_last_frame();
  EXPECT_THAT(Refusal(empty), StartsWith("last_frame: empty"));
  for (const std::string& image :
       {Png(), std::string("\xff\xd8\xff\xe0", 4), std::string("RIFF\0\0\0\0WEBPVP8 ", 16)}) {
    JobSpec ok = Spec("veo-3.1", 8);
    ok.mutable_first_frame()->set_data(image);
    EXPECT_TRUE(admission_.Admit(ok).has_value()) << image;
  }
}

TEST_F(ImageAdmissionTest, KeysMustBeTheTenantsOwn) {
  JobSpec other = Spec("veo-3.1", 8);
  other.set_tenant("studio-a");
  other.mutable_first_frame()->set_key("inputs/studio-b/x.png");
  EXPECT_THAT(Refusal(other), StartsWith("first_frame.key: \"inputs/studio-b/x.png\" is not one "
                                         "of tenant studio-a's objects"));
  JobSpec climbing = Spec("veo-3.1", 8);
  climbing.mutable_first_frame()->set_key("inputs/default/../../etc/passwd");
  EXPECT_THAT(Refusal(climbing), StartsWith("first_frame.key: "));
  for (const char* key : {"inputs/default/abc.png", "default/batch-1/job.png"}) {
    JobSpec own = Spec("veo-3.1", 8);
    own.mutable_first_frame()->set_key(key);
    EXPECT_TRUE(admission_.Admit(own).has_value()) << key;
  }
}

TEST_F(ImageAdmissionTest, AModelThatCannotTakeTheInputIsRefusedOrNotChosen) {
  JobSpec sora = Spec("sora-2", 8);
  sora.mutable_last_frame()->set_data(Png());
  EXPECT_EQ(Refusal(sora), "last_frame: an image — sora-2 takes no last-frame image");
  JobSpec kling = Spec("kling-3.0", 5);
  kling.add_reference_images()->set_data(Png());
  EXPECT_EQ(Refusal(kling), "reference_images: 1 images — kling-3.0 takes no reference images");
  JobSpec veo = Spec("veo-3.1", 8);
  for (int i = 0; i < 4; ++i) veo.add_reference_images()->set_data(Png());
  EXPECT_EQ(Refusal(veo), "reference_images: 4 images — veo-3.1 takes at most 3");

  // Under auto the first choice for photorealism (sora-2) takes no last frame, and seedance-2.0
  // takes one only with a first frame: neither is chosen.
  JobSpec routed = Spec("", 8);
  routed.set_use_case(v1::USE_CASE_PHOTOREALISM);
  routed.mutable_last_frame()->set_data(Png());
  auto admitted = admission_.Admit(routed);
  ASSERT_TRUE(admitted.has_value()) << admitted.error().message;
  EXPECT_EQ(std::find(admitted->candidates.begin(), admitted->candidates.end(), "sora-2"),
            admitted->candidates.end());
  EXPECT_EQ(admitted->candidates.size(), 2u);
  // Seedance takes a last frame only with a first frame: refused when named, passed over by
  // routing (kling-3.0 takes image_tail alone), and taken with both.
  JobSpec tail_only = Spec("seedance-2.0", 8);
  tail_only.mutable_last_frame()->set_data(Png());
  EXPECT_EQ(Refusal(tail_only),
            "last_frame: an image without a first_frame — seedance-2.0 takes a last-frame image "
            "only with a first-frame image");
  JobSpec tail_routed = Spec("", 8);
  tail_routed.set_use_case(v1::USE_CASE_FAST_SOCIAL);
  tail_routed.mutable_last_frame()->set_data(Png());
  admitted = admission_.Admit(tail_routed);
  ASSERT_TRUE(admitted.has_value()) << admitted.error().message;
  EXPECT_EQ(std::find(admitted->candidates.begin(), admitted->candidates.end(), "seedance-2.0"),
            admitted->candidates.end());
  JobSpec both = Spec("seedance-2.0", 8);
  both.mutable_first_frame()->set_data(Png());
  both.mutable_last_frame()->set_data(Png());
  EXPECT_TRUE(admission_.Admit(both).has_value());
  // Four reference images: only seedance-2.0 takes that many.
  JobSpec many = Spec("", 8);
  for (int i = 0; i < 4; ++i) many.add_reference_images()->set_data(Png());
  admitted = admission_.Admit(many);
  ASSERT_TRUE(admitted.has_value()) << admitted.error().message;
  EXPECT_EQ(admitted->candidates, std::vector<std::string>{"seedance-2.0"});
}

}  // namespace
}  // namespace reelq::scheduler
