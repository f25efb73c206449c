#pragma once

#include <cstddef>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "reelq/providers/catalogue.h"

// Speed-aware routing (DESIGN.md, Scheduling): pick, among the models a job allows, the one with
// the earliest expected finish. Plain arithmetic with no I/O, kept simple enough to port to the
// Redis Lua dispatch script unchanged:
//
//   slots_i   = capacity of model i: max concurrent tasks summed over its non-cooling accounts
//   free_i    = slots free right now on accounts that also hold a create token
//   waiting_i = jobs already waiting for model i (ahead of this one)
//   L_i       = the model's latency estimate in seconds (LatencyEstimator)
//
//   slots_i <= 0            -> finish_i = +inf                  (cannot run at all)
//   ahead_i  = max(0, waiting_i - free_i + 1)                   (slot releases this job needs)
//   wait_i   = ahead_i * L_i / slots_i                          (slots release at slots_i / L_i
//                                                                per second on average)
//   finish_i = wait_i + L_i
//   score_i  = finish_i + (i > 0 ? preference_margin : 0)
//
// ChooseModel returns the index with the lowest score; on equal scores the earlier candidate
// (the use-case preference) wins. preference_margin is 0 for plain "earliest finish"; a request
// that states a first choice (AdmittedJob::first_choice_preferred) gives that model a margin in
// seconds, so that a faster but lesser model takes the job only when the first choice is that
// much later. Dispatch (queue/lua/dispatch.lua) applies the same rule with
// scheduler.preference_margin_seconds.
namespace reelq::scheduler {

// Live load of one model, as the dispatcher sees it when it routes a job.
struct ModelLoad {
  int free_slots = 0;
  int total_slots = 0;
  int waiting = 0;
  double latency_seconds = 0;
};

// Expected seconds until a job routed to this model now has its clip (queue wait + generation),
// by the formula above; +inf when the model has no capacity at all.
double ExpectedFinishSeconds(const ModelLoad& load);

// `loads[i]` is candidate i's load, candidates in preference order. Returns the index to route
// to, or nullopt when there are no candidates or none has any capacity (every finish is
// +inf). When no candidate has a free slot it still returns the earliest expected finish: the
// dispatcher decides whether to hold the job.
std::optional<size_t> ChooseModel(std::span<const ModelLoad> loads,
                                  double preference_margin_seconds = 0);

// The same, by model id: candidates (ordered) looked up in `live`; an id missing from `live`
// counts as having no capacity.
std::optional<size_t> ChooseModel(const std::vector<std::string>& candidates,
                                  const std::map<std::string, ModelLoad, std::less<>>& live,
                                  double preference_margin_seconds = 0);

// A per-model moving estimate of generation latency (seconds from create to a finished clip),
// seeded from the catalogue's p50 and fed by completions. Thread-safe.
//
// Why an EWMA and not a windowed median: one number of state per model, updated in O(1), that
// the lead can keep in Redis (one hash field per model, shared by every scheduler) and update
// from Lua with the same two lines; a window median needs the window stored and sorted. The
// median's robustness to outliers is bought back by clamping each sample to
// [profile.min / 2, profile.max * 2] before it enters the average, so a single stuck task of an
// hour moves the estimate by at most weight * (2 * max - estimate).
//
//   estimate <- (1 - weight) * estimate + weight * clamp(sample)
//
// With the default weight 0.2 a step change in a provider's speed shows up within ~10
// completions (0.8^10 ~ 0.1 of the old value left).
class LatencyEstimator {
 public:
  static constexpr double kDefaultWeight = 0.2;

  // Seeds every catalogue model with its p50. `weight` in (0, 1]; out-of-range values are
  // clamped into it.
  explicit LatencyEstimator(const providers::Catalogue& catalogue, double weight = kDefaultWeight);

  // Feeds one completion. Ignored for an unknown model or a non-finite or negative sample.
  // Returns the new estimate (or nullopt when ignored).
  std::optional<double> Observe(std::string_view model, double seconds);

  // The current estimate; nullopt for a model the catalogue does not have.
  std::optional<double> Estimate(std::string_view model) const;

  // Every model's estimate, e.g. for ListModels and the metrics gauge.
  std::map<std::string, double> Snapshot() const;

  double weight() const { return weight_; }

 private:
  struct Entry {
    providers::LatencyProfile profile;
    double estimate = 0;
  };
  double weight_;
  mutable std::mutex mutex_;
  std::map<std::string, Entry, std::less<>> models_;
};

}  // namespace reelq::scheduler
