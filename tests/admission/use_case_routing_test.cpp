// `auto` routing order for every row of the use-case table in shared/providers.md.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "reelq/scheduler/admission.h"
#include "test_catalogue.h"

namespace reelq::scheduler {
namespace {

using reelq::v1::UseCase;
using Ids = std::vector<std::string>;

struct Row {
  UseCase use_case;
  const char* key;
  const char* first_choice;
};

class UseCaseRoutingTest : public ::testing::TestWithParam<Row> {
 protected:
  Admission admission_{reelq::testing::ShippedCatalogue()};
};

// Catalogue p50 order: seedance-2.0 45 s, veo-3.1 75 s, kling-3.0 120 s, sora-2 180 s.
const Ids kByLatency = {"seedance-2.0", "veo-3.1", "kling-3.0", "sora-2"};

TEST_P(UseCaseRoutingTest, FirstChoiceFirstThenTheOthersByLatency) {
  const Row& row = GetParam();
  EXPECT_EQ(UseCaseKey(row.use_case), row.key);

  reelq::v1::JobSpec spec;
  spec.set_prompt("a harbour at dawn");
  spec.set_duration_seconds(8);  // every model can make 8 s
  spec.set_use_case(row.use_case);
  auto r = admission_.Admit(spec);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  Ids expected = {row.first_choice};
  for (const auto& id : kByLatency) {
    if (id != row.first_choice) expected.push_back(id);
  }
  EXPECT_EQ(r->candidates, expected);
  EXPECT_TRUE(r->first_choice_preferred);
  EXPECT_TRUE(r->auto_routed);
}

INSTANTIATE_TEST_SUITE_P(
    ProvidersTable, UseCaseRoutingTest,
    ::testing::Values(
        Row{reelq::v1::USE_CASE_PHOTOREALISM, "photorealism", "sora-2"},
        Row{reelq::v1::USE_CASE_MULTI_SHOT_NARRATIVE, "multi_shot_narrative", "kling-3.0"},
        Row{reelq::v1::USE_CASE_CHARACTER_CONSISTENCY, "character_consistency", "kling-3.0"},
        Row{reelq::v1::USE_CASE_LONG_CLIP, "long_clip", "kling-3.0"},
        Row{reelq::v1::USE_CASE_INTERCUT_LIVE_FOOTAGE, "intercut_live_footage", "sora-2"},
        Row{reelq::v1::USE_CASE_CAMERA_DIRECTION, "camera_direction", "veo-3.1"},
        Row{reelq::v1::USE_CASE_FAST_SOCIAL, "fast_social", "seedance-2.0"}),
    [](const auto& info) { return std::string(info.param.key); });

TEST(UseCaseRouting, LongClipOfFifteenSecondsGoesToKlingThenSeedance) {
  Admission admission(reelq::testing::ShippedCatalogue());
  reelq::v1::JobSpec spec;
  spec.set_prompt("one long take");
  spec.set_duration_seconds(15);
  spec.set_use_case(reelq::v1::USE_CASE_LONG_CLIP);
  auto r = admission.Admit(spec);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->candidates, (Ids{"kling-3.0", "seedance-2.0"}));
  EXPECT_TRUE(r->first_choice_preferred);
}

TEST(UseCaseRouting, FirstChoiceThatCannotMakeTheClipFallsBack) {
  Admission admission(reelq::testing::ShippedCatalogue());
  reelq::v1::JobSpec spec;
  spec.set_prompt("photoreal, but longer than sora-2 can make");
  spec.set_duration_seconds(14);
  spec.set_use_case(reelq::v1::USE_CASE_PHOTOREALISM);
  auto r = admission.Admit(spec);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->candidates, (Ids{"seedance-2.0", "kling-3.0"}));
  EXPECT_FALSE(r->first_choice_preferred);
}

TEST(UseCaseRouting, MultiShotNarrativeWithShotsIsKlingOnly) {
  Admission admission(reelq::testing::ShippedCatalogue());
  reelq::v1::JobSpec spec;
  for (uint32_t d : {3u, 4u, 3u}) {
    auto* shot = spec.add_shots();
    shot->set_prompt("shot");
    shot->set_duration_seconds(d);
  }
  spec.set_use_case(reelq::v1::USE_CASE_MULTI_SHOT_NARRATIVE);
  auto r = admission.Admit(spec);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->candidates, (Ids{"kling-3.0"}));
}

TEST(UseCaseRouting, ExplicitListIgnoresTheUseCaseOrder) {
  Admission admission(reelq::testing::ShippedCatalogue());
  reelq::v1::JobSpec spec;
  spec.set_prompt("x");
  spec.set_duration_seconds(8);
  spec.set_use_case(reelq::v1::USE_CASE_PHOTOREALISM);
  spec.add_models("veo-3.1");
  spec.add_models("sora-2");
  auto r = admission.Admit(spec);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->candidates, (Ids{"veo-3.1", "sora-2"}));
  // The first listed model is the request's stated choice (dispatch gives it the margin).
  EXPECT_TRUE(r->first_choice_preferred);
}

TEST(UseCaseRouting, ExplicitListPrefersItsFirstModelOnlyWhenItCanMakeTheJob) {
  Admission admission(reelq::testing::ShippedCatalogue());
  reelq::v1::JobSpec spec;
  spec.set_prompt("x");
  spec.set_duration_seconds(15);  // sora-2 makes at most 12 s
  spec.add_models("sora-2");
  spec.add_models("kling-3.0");
  spec.add_models("seedance-2.0");
  auto r = admission.Admit(spec);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->candidates, (Ids{"kling-3.0", "seedance-2.0"}));
  EXPECT_FALSE(r->first_choice_preferred);
  // One model: nothing to prefer between.
  spec.clear_models();
  spec.add_models("kling-3.0");
  r = admission.Admit(spec);
  ASSERT_TRUE(r.has_value());
  EXPECT_FALSE(r->first_choice_preferred);
}

TEST(UseCaseRouting, UnspecifiedAndUnroutedUseCasesKeyToNothing) {
  EXPECT_EQ(UseCaseKey(reelq::v1::USE_CASE_UNSPECIFIED), "");
  EXPECT_EQ(UseCaseKey(static_cast<UseCase>(42)), "");
}

}  // namespace
}  // namespace reelq::scheduler
