#include "sidecar.h"

#include <nlohmann/json.hpp>

namespace reelq::worker {

std::string SidecarJson(const SidecarFacts& f) {
  nlohmann::json sidecar = {
      {"job_id", f.job.id},
      {"tenant", f.job.tenant},
      {"batch_id", f.job.batch},
      {"prompt", f.spec.prompt()},
      {"model", f.job.model},
      {"upstream_model", f.model.upstream_model},
      {"provider", f.model.provider},
      {"account", f.job.account},
      {"upstream_id", f.upstream},
      {"attempt", f.job.attempt},
      {"worker", f.worker_id},
      {"duration_seconds", f.spec.duration_seconds()},
      {"clip_seconds", f.clip_seconds},
      {"aspect_ratio", f.spec.aspect_ratio()},
      {"resolution", f.spec.resolution()},
      {"object_key", f.clip_key},
      {"size_bytes", f.size_bytes},
      {"sha256", f.sha256},
      {"timings_ms",
       {{"created", f.job.created_ms},
        {"leased", f.leased_ms},
        {"generated", f.generated_ms},
        {"stored", f.stored_ms}}},
  };
  if (f.spec.shots_size() > 0) {
    nlohmann::json shots = nlohmann::json::array();
    for (const auto& s : f.spec.shots()) {
      shots.push_back({{"prompt", s.prompt()}, {"duration_seconds", s.duration_seconds()}});
    }
    sidecar["shots"] = shots;
  }
  if (!f.job.parent.empty()) {
    sidecar["parent_job_id"] = f.job.parent;
    sidecar["index"] = f.job.child_index;
  }
  nlohmann::json labels = nlohmann::json::object();
  for (const auto& [k, v] : f.spec.labels()) labels[k] = v;
  sidecar["labels"] = labels;
  return sidecar.dump(2) + "\n";
}

}  // namespace reelq::worker
