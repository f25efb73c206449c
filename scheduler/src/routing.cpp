#include "reelq/scheduler/routing.h"

#include <algorithm>
#include <cmath>

namespace reelq::scheduler {

double ExpectedFinishSeconds(const ModelLoad& load) {
  if (load.total_slots <= 0) return std::numeric_limits<double>::infinity();
  const double latency = std::max(0.0, load.latency_seconds);
  const double ahead = std::max(0, load.waiting - std::max(0, load.free_slots) + 1);
  return ahead * latency / load.total_slots + latency;
}

std::optional<size_t> ChooseModel(std::span<const ModelLoad> loads,
                                  double preference_margin_seconds) {
  std::optional<size_t> best;
  double best_score = std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < loads.size(); ++i) {
    const double finish = ExpectedFinishSeconds(loads[i]);
    if (!std::isfinite(finish)) continue;
    const double score = finish + (i > 0 ? preference_margin_seconds : 0.0);
    // Strictly better only (with a little slack for rounding): ties go to the earlier,
    // preferred candidate.
    if (!best || score < best_score - 1e-9 * std::max(1.0, std::abs(best_score))) {
      best = i;
      best_score = score;
    }
  }
  return best;
}

std::optional<size_t> ChooseModel(const std::vector<std::string>& candidates,
                                  const std::map<std::string, ModelLoad, std::less<>>& live,
                                  double preference_margin_seconds) {
  std::vector<ModelLoad> loads;
  loads.reserve(candidates.size());
  for (const std::string& id : candidates) {
    auto it = live.find(id);
    loads.push_back(it == live.end() ? ModelLoad{} : it->second);
  }
  return ChooseModel(std::span<const ModelLoad>(loads), preference_margin_seconds);
}

LatencyEstimator::LatencyEstimator(const providers::Catalogue& catalogue, double weight)
    : weight_(std::isfinite(weight) ? std::clamp(weight, 1e-6, 1.0) : kDefaultWeight) {
  for (const auto& m : catalogue.models) {
    models_[m.id] = Entry{.profile = m.latency, .estimate = m.latency.p50_seconds};
  }
}

std::optional<double> LatencyEstimator::Observe(std::string_view model, double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return std::nullopt;
  std::lock_guard lock(mutex_);
  auto it = models_.find(model);
  if (it == models_.end()) return std::nullopt;
  Entry& e = it->second;
  const double lo = std::max(0.0, e.profile.min_seconds / 2);
  const double hi = std::max(lo, e.profile.max_seconds * 2);
  const double sample = std::clamp(seconds, lo, hi);
  e.estimate = (1 - weight_) * e.estimate + weight_ * sample;
  return e.estimate;
}

std::optional<double> LatencyEstimator::Estimate(std::string_view model) const {
  std::lock_guard lock(mutex_);
  auto it = models_.find(model);
  if (it == models_.end()) return std::nullopt;
  return it->second.estimate;
}

std::map<std::string, double> LatencyEstimator::Snapshot() const {
  std::lock_guard lock(mutex_);
  std::map<std::string, double> out;
  for (const auto& [id, e] : models_) out[id] = e.estimate;
  return out;
}

}  // namespace reelq::scheduler
