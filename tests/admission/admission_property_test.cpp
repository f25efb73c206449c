// Randomised checks of Admission against an independent statement of its contract: a fixed
// seed and a bounded number of cases, so the test is deterministic and quick. Every spec either
// gets kInvalidRequest naming a field, or is admitted with exactly the models that can make it,
// best first; admitting the normalised spec again changes nothing.
#include <algorithm>
#include <random>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include <google/protobuf/stubs/logging.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include "reelq/scheduler/admission.h"
#include "test_catalogue.h"

namespace reelq::scheduler {
namespace {

using reelq::v1::JobSpec;

class Generator {
 public:
  explicit Generator(uint32_t seed) : rng_(seed) {}

  template <class T>
  const T& Pick(const std::vector<T>& items) {
    return items[std::uniform_int_distribution<size_t>(0, items.size() - 1)(rng_)];
  }
  bool Chance(double p) { return std::bernoulli_distribution(p)(rng_); }
  int Int(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }

  std::string Text() {
    static const std::vector<std::string> pool = {"",
                                                  " ",
                                                  "a harbour at dawn",
                                                  "caf\xC3\xA9",
                                                  "\xF0\x9F\x8E\xAC",
                                                  "bad\xC3",
                                                  "\xED\xA0\x80",
                                                  "\xC0\x80",
                                                  std::string(2600, 'p'),
                                                  std::string(40000, 'q')};
    return Pick(pool);
  }

  JobSpec Spec() {
    JobSpec s;
    if (Chance(0.3))
      s.set_tenant(Pick<std::string>({"studio-a", "studio-b", "bad tenant", "x\xFF"}));
    // Mostly plausible values, so that both outcomes are common.
    if (Chance(0.75)) s.set_prompt(Chance(0.7) ? "a harbour at dawn" : Text());
    if (Chance(0.3)) {
      int n = Int(1, 8);
      for (int i = 0; i < n; ++i) {
        auto* shot = s.add_shots();
        shot->set_prompt(Chance(0.95) ? "shot" : Text());
        shot->set_duration_seconds(
            static_cast<uint32_t>(Chance(0.95) ? Int(1, 4) : Pick<int>({0, -1})));
      }
    }
    int models = Chance(0.5) ? 0 : Int(1, 3);
    for (int i = 0; i < models; ++i) {
      s.add_models(Pick<std::string>(
          {"auto", "kling-3.0", "sora-2", "veo-3.1", "seedance-2.0", "nope", ""}));
    }
    if (Chance(0.5)) s.set_use_case(static_cast<reelq::v1::UseCase>(Int(0, 9)));
    if (Chance(0.8)) {
      s.set_duration_seconds(
          static_cast<uint32_t>(Pick<int>({0, 3, 4, 5, 6, 8, 10, 12, 13, 15, 16, 20, -3, 5000})));
    }
    if (Chance(0.4)) s.set_aspect_ratio(Pick<std::string>({"16:9", "9:16", "1:1", "21:9", "4:5"}));
    if (Chance(0.4)) s.set_resolution(Pick<std::string>({"480p", "720p", "1080p", "4k", "1080P"}));
    if (Chance(0.3)) s.set_audio(Chance(0.5));
    if (Chance(0.2)) s.set_priority(Pick<int>({-101, -100, 0, 5, 100, 101}));
    if (Chance(0.1)) s.set_idempotency_key(Pick<std::string>({"k-1", "k-2", "has space"}));
    if (Chance(0.1)) s.set_batch_id(Pick<std::string>({"night-1", "night-2", "a/b", ".x"}));
    if (Chance(0.1)) (*s.mutable_labels())[Pick<std::string>({"scene", "take", "a b"})] = "12";
    return s;
  }

  std::string Bytes() {
    std::string out(static_cast<size_t>(Int(0, 64)), '\0');
    for (char& c : out) c = static_cast<char>(Int(0, 255));
    return out;
  }

 private:
  std::mt19937 rng_;
};

// Catalogue::FindModel lives in reelq_providers, which this test does not link.
const providers::ModelSpec* Find(const providers::Catalogue& c, const std::string& id) {
  for (const auto& m : c.models) {
    if (m.id == id) return &m;
  }
  return nullptr;
}

// What the catalogue says a model can make, written apart from admission.cpp.
bool CanMake(const providers::ModelSpec& m, const JobSpec& s) {
  auto has = [](const auto& list, const auto& v) {
    return std::find(list.begin(), list.end(), v) != list.end();
  };
  if (!has(m.durations, static_cast<int>(s.duration_seconds()))) return false;
  // durations_by_resolution (Veo: 8 s only at 1080p).
  if (auto at = m.durations_by_resolution.find(s.resolution());
      at != m.durations_by_resolution.end() &&
      !has(at->second, static_cast<int>(s.duration_seconds()))) {
    return false;
  }
  if (s.shots_size() > m.max_shots) return false;
  if (!has(m.resolutions, s.resolution()) || !has(m.aspect_ratios, s.aspect_ratio())) return false;
  if (s.audio() && !m.audio) return false;
  auto over = [&](const std::string& t, int limit) {
    return limit > 0 && CountCodePoints(t) > static_cast<size_t>(limit);
  };
  if (over(s.prompt(), m.max_prompt_chars) || over(s.negative_prompt(), m.max_prompt_chars)) {
    return false;
  }
  // A shot's prompt meets the shot limit (Kling: 512) as well as the clip's.
  for (const auto& shot : s.shots()) {
    if (over(shot.prompt(), m.max_prompt_chars) || over(shot.prompt(), m.max_shot_prompt_chars)) {
      return false;
    }
  }
  return true;
}

const std::regex kFieldPrefix(
    R"(^(tenant|prompt|negative_prompt|shots|shots\[\d+\]\.(prompt|duration_seconds)|models|)"
    R"(models\[\d+\]|use_case|duration_seconds|aspect_ratio|resolution|audio|priority|)"
    R"(idempotency_key|batch_id|labels|labels\[".*"\]|start_deadline|finish_deadline): )");

// Compared field by field: serialising would log about the invalid UTF-8 some cases carry.
bool Same(const JobSpec& a, const JobSpec& b) {
  return google::protobuf::util::MessageDifferencer::Equals(a, b);
}

void CheckOne(const Admission& admission, const providers::Catalogue& catalogue, JobSpec spec) {
  const JobSpec original = spec;
  auto r = admission.Admit(spec);
  if (!r.has_value()) {
    EXPECT_EQ(r.error().category, ErrorCategory::kInvalidRequest);
    EXPECT_TRUE(std::regex_search(r.error().message, kFieldPrefix))
        << "message does not start with a field: " << r.error().message;
    EXPECT_TRUE(Same(spec, original)) << "refused spec changed";
    return;
  }
  const auto& c = r->candidates;
  ASSERT_FALSE(c.empty());
  EXPECT_EQ(std::set<std::string>(c.begin(), c.end()).size(), c.size()) << "duplicates";
  EXPECT_FALSE(spec.tenant().empty());
  EXPECT_TRUE(spec.has_audio());
  EXPECT_GT(spec.duration_seconds(), 0u);
  EXPECT_TRUE(IsValidUtf8(spec.prompt()));
  for (const auto& id : c) {
    const providers::ModelSpec* m = Find(catalogue, id);
    ASSERT_NE(m, nullptr) << id;
    EXPECT_TRUE(CanMake(*m, spec)) << id << " cannot make " << spec.ShortDebugString();
  }
  if (r->auto_routed) {  // complete: every model that can make it is offered
    size_t able = 0;
    for (const auto& m : catalogue.models) able += CanMake(m, spec) ? 1 : 0;
    EXPECT_EQ(c.size(), able) << spec.ShortDebugString();
  } else {  // an explicit list keeps its order
    std::vector<std::string> listed(spec.models().begin(), spec.models().end());
    std::vector<std::string> kept;
    for (const auto& id : listed) {
      if (std::find(c.begin(), c.end(), id) != c.end()) kept.push_back(id);
    }
    EXPECT_EQ(kept, c);
  }
  // Idempotent: a stored, normalised spec is admitted the same way again.
  JobSpec again = spec;
  auto r2 = admission.Admit(again);
  ASSERT_TRUE(r2.has_value()) << r2.error().message;
  EXPECT_EQ(r2->candidates, c);
  EXPECT_TRUE(Same(again, spec));
}

TEST(AdmissionPropertyTest, RandomSpecsKeepTheContract) {
  const providers::Catalogue catalogue = reelq::testing::ShippedCatalogue();
  Admission admission(catalogue);
  Generator gen(20261125);
  int admitted = 0;
  // The loop stops at the first failing case rather than printing thousands.
  for (int i = 0; i < 4000 && !::testing::Test::HasFailure(); ++i) {
    JobSpec spec = gen.Spec();
    JobSpec probe = spec;
    admitted += admission.Admit(probe).has_value() ? 1 : 0;
    CheckOne(admission, catalogue, spec);
  }
  // The generator must reach both outcomes, or the test checks little.
  EXPECT_GT(admitted, 200);
  EXPECT_LT(admitted, 3800);
  RecordProperty("admitted", admitted);
}

TEST(AdmissionPropertyTest, ArbitraryBytesNeverCrash) {
  const providers::Catalogue catalogue = reelq::testing::ShippedCatalogue();
  Admission admission(catalogue);
  Generator gen(7);
  // Protobuf itself refuses invalid UTF-8 in proto3 strings when parsing, and logs each one.
  google::protobuf::LogSilencer quiet;
  for (int i = 0; i < 20000 && !::testing::Test::HasFailure(); ++i) {
    JobSpec spec;
    if (!spec.ParseFromString(gen.Bytes())) continue;
    CheckOne(admission, catalogue, spec);
  }
}

}  // namespace
}  // namespace reelq::scheduler
