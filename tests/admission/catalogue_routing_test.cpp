// The shipped deploy/catalogue.yaml, read by the real parser, must route as the use-case table
// in shared/providers.md says, and must agree with the hand-built copy the other admission
// tests use (so that a change to the YAML is noticed here).
#include <algorithm>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include "process.h"
#include "reelq/scheduler/admission.h"
#include "test_catalogue.h"

namespace reelq::scheduler {
namespace {

using Ids = std::vector<std::string>;

providers::Catalogue LoadShipped() {
  const auto path = reelq::testing::SourcePath("deploy/catalogue.yaml");
  YAML::Node root = YAML::LoadFile(path.string());
  auto parsed = providers::ParseCatalogue(root);
  EXPECT_TRUE(parsed.has_value()) << (parsed ? "" : parsed.error().message);
  return parsed ? *parsed : providers::Catalogue{};
}

TEST(ShippedCatalogueTest, MatchesTheHandBuiltCopy) {
  const providers::Catalogue yaml = LoadShipped();
  const providers::Catalogue hand = reelq::testing::ShippedCatalogue();
  ASSERT_EQ(yaml.models.size(), hand.models.size());
  for (const auto& h : hand.models) {
    const providers::ModelSpec* y = yaml.FindModel(h.id);
    ASSERT_NE(y, nullptr) << h.id;
    EXPECT_EQ(y->durations, h.durations) << h.id;
    EXPECT_EQ(y->resolutions, h.resolutions) << h.id;
    EXPECT_EQ(y->aspect_ratios, h.aspect_ratios) << h.id;
    EXPECT_EQ(y->max_shots, h.max_shots) << h.id;
    EXPECT_EQ(y->audio, h.audio) << h.id;
    EXPECT_EQ(y->max_prompt_chars, h.max_prompt_chars) << h.id;
    EXPECT_EQ(y->max_shot_prompt_chars, h.max_shot_prompt_chars) << h.id;
    EXPECT_EQ(y->inputs.last_frame_needs_first, h.inputs.last_frame_needs_first) << h.id;
    EXPECT_EQ(y->inputs.first_frame, h.inputs.first_frame) << h.id;
    EXPECT_EQ(y->inputs.last_frame, h.inputs.last_frame) << h.id;
    EXPECT_EQ(y->inputs.reference_images, h.inputs.reference_images) << h.id;
    EXPECT_EQ(y->latency.p50_seconds, h.latency.p50_seconds) << h.id;
  }
  EXPECT_EQ(yaml.use_case_first_choice, hand.use_case_first_choice);
}

struct Row {
  reelq::v1::UseCase use_case;
  const char* first_choice;
};

TEST(ShippedCatalogueTest, RoutesEveryUseCaseOfTheProvidersTable) {
  // The catalogue's models with an account each (reelq.yaml's part): admission routes only to
  // models that some account can run.
  providers::Catalogue shipped = LoadShipped();
  shipped.accounts = reelq::testing::ShippedCatalogue().accounts;
  Admission admission(shipped);
  const std::vector<Row> table = {
      {reelq::v1::USE_CASE_PHOTOREALISM, "sora-2"},
      {reelq::v1::USE_CASE_MULTI_SHOT_NARRATIVE, "kling-3.0"},
      {reelq::v1::USE_CASE_CHARACTER_CONSISTENCY, "kling-3.0"},
      {reelq::v1::USE_CASE_LONG_CLIP, "kling-3.0"},
      {reelq::v1::USE_CASE_INTERCUT_LIVE_FOOTAGE, "sora-2"},
      {reelq::v1::USE_CASE_CAMERA_DIRECTION, "veo-3.1"},
      {reelq::v1::USE_CASE_FAST_SOCIAL, "seedance-2.0"},
  };
  for (const Row& row : table) {
    reelq::v1::JobSpec spec;
    spec.set_prompt("x");
    spec.set_duration_seconds(8);
    spec.set_use_case(row.use_case);
    auto r = admission.Admit(spec);
    ASSERT_TRUE(r.has_value()) << r.error().message;
    ASSERT_FALSE(r->candidates.empty());
    EXPECT_EQ(r->candidates.front(), row.first_choice) << UseCaseKey(row.use_case);
    EXPECT_EQ(r->candidates.size(), 4u);
  }
  reelq::v1::JobSpec fifteen;
  fifteen.set_prompt("x");
  fifteen.set_duration_seconds(15);
  auto r = admission.Admit(fifteen);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->candidates, (Ids{"seedance-2.0", "kling-3.0"}));
}

}  // namespace
}  // namespace reelq::scheduler
