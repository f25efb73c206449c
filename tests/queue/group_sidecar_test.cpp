// What a group's sidecar says each child cost (queue/group_sidecar.h): what the wallet settled
// for it once it did, else the catalogue's price at the child's resolution for its clip; a
// compare's total is the sum of its takes'.
#include <gtest/gtest.h>

#include "reelq/queue/group_sidecar.h"
#include "reelq/v1/jobs.pb.h"

namespace reelq::queue {
namespace {

JobRecord Take(const std::string& id, const std::string& resolution, double clip_seconds,
               int64_t cost_micros) {
  v1::JobSpec spec;
  spec.set_prompt("a lighthouse at dusk");
  spec.set_duration_seconds(5);
  spec.set_resolution(resolution);
  JobRecord take;
  take.id = id;
  take.state = JobState::kSucceeded;
  take.model = "veo-3.1";
  take.clip_seconds = clip_seconds;
  take.cost_micros = cost_micros;
  (void)spec.SerializeToString(&take.spec_bytes);
  return take;
}

// $0.10/s, $0.30/s at 1080p (price_per_second_by_resolution).
double Price(const std::string& model, const std::string& resolution) {
  if (model != "veo-3.1") return 0;
  return resolution == "1080p" ? 0.30 : 0.10;
}

TEST(GroupSidecar, ACostIsWhatWasChargedOnceSettledElseThePriceAtTheChildsResolution) {
  // Settled: the wallet charged $0.56 (not 5 s x $0.10, nor 5 s x $0.30).
  const auto settled = GroupChildEntry(Take("c1", "1080p", 5, 560'000), Price);
  EXPECT_DOUBLE_EQ(settled["cost_usd_estimate"].get<double>(), 0.56) << settled.dump();
  // Not settled yet: 4 s at the 1080p price, not the base price.
  const auto unsettled = GroupChildEntry(Take("c2", "1080p", 4, 0), Price);
  EXPECT_DOUBLE_EQ(unsettled["cost_usd_estimate"].get<double>(), 1.2) << unsettled.dump();
  // No resolution named: priced at 720p, the default, at the base price.
  const auto plain = GroupChildEntry(Take("c3", "", 4, 0), Price);
  EXPECT_DOUBLE_EQ(plain["cost_usd_estimate"].get<double>(), 0.4) << plain.dump();

  JobRecord group;
  group.id = "cmp";
  v1::JobSpec spec;
  spec.set_prompt("a lighthouse at dusk");
  (void)spec.SerializeToString(&group.spec_bytes);
  const auto sidecar =
      CompareSidecar(group, {Take("c1", "1080p", 5, 560'000), Take("c2", "1080p", 4, 0)}, Price,
                     "grid.mp4", "sheet.png", "");
  EXPECT_DOUBLE_EQ(sidecar["cost_usd_estimate"].get<double>(), 0.56 + 1.2) << sidecar.dump();
}

}  // namespace
}  // namespace reelq::queue
