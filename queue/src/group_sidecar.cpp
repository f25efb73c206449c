#include "reelq/queue/group_sidecar.h"

#include "reelq/v1/jobs.pb.h"

namespace reelq::queue {

nlohmann::json GroupChildEntry(const JobRecord& child, const PriceOf& price) {
  v1::JobSpec spec;
  (void)spec.ParseFromString(child.spec_bytes);
  // The resolution the child was priced at (job_api.cpp: 720p when the spec names none).
  const std::string resolution = spec.resolution().empty() ? "720p" : spec.resolution();
  int64_t started = 0, finished = 0;
  for (const auto& t : child.history) {
    if (t.state == JobState::kRunning) started = t.at_ms;  // the attempt that ended it
    if (t.state == JobState::kSucceeded) finished = t.at_ms;
  }
  // A child that never ran (cancelled while it waited) has no model yet: its only candidate
  // (a compare's take) names it.
  const std::string& model = !child.model.empty() || child.candidate_models.empty()
                                 ? child.model
                                 : child.candidate_models.front();
  nlohmann::json entry = {
      {"index", child.child_index},
      {"job_id", child.id},
      {"state", std::string(ToString(child.state))},
      {"prompt", spec.prompt()},
      {"duration_seconds", spec.duration_seconds()},
      {"model", model},
      {"account", child.account},
      {"upstream_id", child.upstream},
      {"attempt", child.attempt},
      {"object_key", child.output_key},
      {"sidecar_key", child.sidecar_key},
      {"sha256", child.sha256},
      {"clip_seconds", child.clip_seconds},
      {"timings_ms", {{"created", child.created_ms}, {"started", started}, {"finished", finished}}},
  };
  if (started > 0 && finished >= started) entry["seconds"] = (finished - started) / 1000.0;
  // A compare's take that failed (or was cancelled) is on the sheet as a gray tile: why it has
  // no clip.
  if (child.state != JobState::kSucceeded && !child.error_message.empty()) {
    entry["error"] = {{"category", child.error_category_name},
                      {"message", child.error_message},
                      {"provider_code", child.error_code}};
  }
  // A chain: the frame the shot started from and the one it handed to the next shot.
  if (!child.chain_frame.empty()) entry["first_frame_key"] = child.chain_frame;
  if (!child.last_frame_key.empty()) entry["last_frame_key"] = child.last_frame_key;
  // What was charged, once settled; before that (or never billed), the price it would be.
  if (child.cost_micros > 0) {
    entry["cost_usd_estimate"] = static_cast<double>(child.cost_micros) / 1e6;
  } else if (const double per_second = price ? price(child.model, resolution) : 0; per_second > 0) {
    entry["cost_usd_estimate"] = per_second * child.clip_seconds;
  }
  return entry;
}

nlohmann::json CompareSidecar(const JobRecord& group, const std::vector<JobRecord>& takes,
                              const PriceOf& price, const std::string& grid_key,
                              const std::string& sheet_key, const std::string& picked) {
  v1::JobSpec spec;
  (void)spec.ParseFromString(group.spec_bytes);
  nlohmann::json list = nlohmann::json::array();
  double cost = 0;
  int failed = 0;
  for (const auto& take : takes) {
    if (take.state != JobState::kSucceeded) ++failed;
    auto entry = GroupChildEntry(take, price);
    if (entry.contains("cost_usd_estimate")) cost += entry["cost_usd_estimate"].get<double>();
    list.push_back(std::move(entry));
  }
  nlohmann::json labels = nlohmann::json::object();
  for (const auto& [k, v] : spec.labels()) labels[k] = v;
  return {
      {"job_id", group.id},
      {"kind", "compare"},
      {"tenant", group.tenant},
      {"batch_id", group.batch},
      {"prompt", spec.prompt()},
      {"duration_seconds", spec.duration_seconds()},
      {"aspect_ratio", spec.aspect_ratio()},
      {"resolution", spec.resolution()},
      {"grid_key", grid_key},
      {"sheet_key", sheet_key},
      {"takes", list},
      {"takes_failed", failed},
      {"cost_usd_estimate", cost},
      {"picked", picked.empty() ? nlohmann::json(nullptr) : nlohmann::json(picked)},
      {"labels", labels},
  };
}

}  // namespace reelq::queue
