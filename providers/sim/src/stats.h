#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config.h"
#include "images.h"

namespace reelq::sim {

struct Counters {
  int64_t creates = 0;                       // accepted creates (a paid generation upstream)
  int64_t creates_rejected_rate_limit = 0;   // 429 over the key's RPM
  int64_t creates_rejected_concurrency = 0;  // 429 over the key's concurrent-task cap
  int64_t creates_failed_injected = 0;       // 5xx injected at create (fault rate)
  int64_t policy_rejections = 0;             // at create (sync) or decided for the task (async)
  int64_t task_failures_injected = 0;        // accepted tasks that will fail transiently
  int64_t invalid_requests = 0;              // 400 for a malformed request
  int64_t auth_failures = 0;                 // 401/403
  int64_t model_not_found = 0;
  int64_t polls = 0;
  int64_t downloads = 0;
  int64_t cancels = 0;
  int64_t create_answers_held = 0;  // creates answered late or never (hold_create knob)
  int64_t lists = 0;                // list-endpoint calls

  nlohmann::json ToJson() const;
};

// One accepted create: tests use the list to prove nothing was paid for twice.
struct CreateRecord {
  std::string provider;
  std::string key;
  std::string model;
  std::string task_id;
  std::string external_id;  // Kling external_task_id, empty otherwise
  std::string prompt_sha256;
  std::vector<int> shot_durations;  // Kling multi_prompt durations; empty when not multi-shot
  int duration_s = 0;
  std::string ratio;
  std::string outcome;  // succeed | transient_failure | policy_failure
  int64_t created_at_ms = 0;
  std::vector<ReceivedImage> images;  // every input image of the generation
  std::string label;                  // the text drawn on the clip (empty: unlabelled)
};

class Stats {
 public:
  using Field = int64_t Counters::*;
  // Bumps the provider total, and the per-key / per-model counters when given.
  void Bump(Provider p, const std::string& key, const std::string& model, Field field);
  void RecordCreate(CreateRecord record) { creates_.push_back(std::move(record)); }
  void Reset();

  // `in_flight(provider, key)` and `queued(provider, key)` come from the task store.
  template <class InFlight, class Queued>
  nlohmann::json ToJson(const SimConfig& config, InFlight in_flight, Queued queued) const;

 private:
  struct ProviderStats {
    Counters total;
    std::map<std::string, Counters> keys;
    std::map<std::string, Counters> models;
  };
  std::map<Provider, ProviderStats> providers_;
  std::vector<CreateRecord> creates_;
};

inline nlohmann::json ImagesJson(const std::vector<ReceivedImage>& images) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& i : images) {
    out.push_back(
        {{"role", i.role}, {"sha256", i.sha256}, {"mime_type", i.mime_type}, {"bytes", i.bytes}});
  }
  return out;
}

template <class InFlight, class Queued>
nlohmann::json Stats::ToJson(const SimConfig& config, InFlight in_flight, Queued queued) const {
  nlohmann::json doc = {{"providers", nlohmann::json::object()},
                        {"creates", nlohmann::json::array()}};
  for (Provider p : kAllProviders) {
    auto it = providers_.find(p);
    const ProviderStats empty;
    const ProviderStats& ps = it == providers_.end() ? empty : it->second;
    nlohmann::json section = ps.total.ToJson();
    section["keys"] = nlohmann::json::object();
    section["models"] = nlohmann::json::object();
    // Every configured key and model appears, even with zero counts.
    std::map<std::string, Counters> keys = ps.keys;
    for (const auto& k : config.provider(p).keys) keys.try_emplace(k.key);
    for (const auto& [k, c] : keys) {
      nlohmann::json kj = c.ToJson();
      kj["in_flight"] = in_flight(p, k);
      kj["queued"] = queued(p, k);
      section["keys"][k] = kj;
    }
    std::map<std::string, Counters> models = ps.models;
    for (const auto& m : config.provider(p).models) models.try_emplace(m.id);
    for (const auto& [m, c] : models) section["models"][m] = c.ToJson();
    doc["providers"][std::string(ProviderName(p))] = section;
  }
  for (const auto& r : creates_) {
    doc["creates"].push_back(
        {{"provider", r.provider},
         {"key", r.key},
         {"model", r.model},
         {"task_id", r.task_id},
         {"external_id",
          r.external_id.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.external_id)},
         {"prompt_sha256", r.prompt_sha256},
         {"multi_prompt_durations", r.shot_durations},
         {"duration_s", r.duration_s},
         {"ratio", r.ratio},
         {"outcome", r.outcome},
         {"created_at_ms", r.created_at_ms},
         {"images", ImagesJson(r.images)},
         {"label", r.label}});
  }
  return doc;
}

}  // namespace reelq::sim
