#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "reelq/common/error.h"

namespace reelq::providers {

// Generation latency of one clip, as a distribution: the simulator draws from it and the
// scheduler seeds its moving estimate with the median.
struct LatencyProfile {
  double min_seconds = 30;
  double p50_seconds = 120;
  double p95_seconds = 240;
  double max_seconds = 360;
};

// Which images a model takes as input besides the prompt (`inputs:` in the catalogue; a model
// without the entry takes none).
struct ImageInputs {
  bool first_frame = false;  // Kling image, Sora input_reference, Veo image, Seedance first_frame
  bool last_frame = false;   // Kling image_tail, Veo lastFrame, Seedance last_frame
  int reference_images = 0;  // at most this many (Veo referenceImages, Seedance reference_image)
  // Seedance: a last frame is taken only together with a first frame (content[] roles).
  bool last_frame_needs_first = false;
};

struct ModelSpec {
  std::string id;              // reelq's name: "kling-3.0", "sora-2", "veo-3.1", "seedance-2.0"
  std::string provider;        // adapter family: "kling", "sora", "veo", "seedance"
  std::string upstream_model;  // the provider's model id: "kling-v3", "sora-2", ...
  std::vector<int> durations;  // the exact durations (seconds) one generation can make
  // Where a resolution allows only some of them (Veo: 8 s at 1080p), `durations_by_resolution`.
  std::map<std::string, std::vector<int>> durations_by_resolution;
  int max_clip_seconds = 0;
  std::vector<std::string> aspect_ratios;
  std::vector<std::string> resolutions;
  int max_shots = 1;  // > 1: native multi-shot with up to this many cuts in one generation
  bool audio = true;
  LatencyProfile latency;
  // An upstream task still unfinished this long after its create (or after a worker took it
  // over) is given up: cancelled upstream where the provider can, and its job failed as
  // deadline_exceeded with code "generation_timeout", not retried (a stuck task that finishes
  // later may still be billed, and a retry would pay again). `generation_timeout` in seconds;
  // when absent 4 x latency.max, at least 10 minutes; 0: never.
  double generation_timeout_seconds = 0;
  double price_per_second = 0;  // USD
  // The same price exactly, in micro-dollars per second (what the wallet charges), and per
  // resolution where the provider charges so (`price_per_second_by_resolution`).
  int64_t price_micros_per_second = 0;
  std::map<std::string, int64_t> price_micros_by_resolution;
  int max_prompt_chars = 0;  // 0: no model-specific limit
  // A shot's own prompt, where it is shorter than the clip's (Kling multi_prompt: 512); 0: the
  // same as max_prompt_chars.
  int max_shot_prompt_chars = 0;
  ImageInputs inputs;

  bool SupportsDuration(int seconds) const;
  // The durations one generation can make at `resolution` (all of them when it has no list).
  // Inline: admission, which reads the catalogue's types without the providers library, uses it.
  const std::vector<int>& DurationsAt(const std::string& resolution) const {
    auto at = durations_by_resolution.find(resolution);
    return at == durations_by_resolution.end() ? durations : at->second;
  }
  // USD per second at `resolution`: its own price where the provider charges so, else
  // price_per_second (what the wallet charges, as a double).
  double PricePerSecondAt(const std::string& resolution) const {
    auto at = price_micros_by_resolution.find(resolution);
    return at == price_micros_by_resolution.end() ? price_per_second
                                                  : static_cast<double>(at->second) / 1e6;
  }
};

// Where an API key comes from: an environment variable or a mounted file; never the YAML.
struct SecretRef {
  std::string env;   // variable name
  std::string file;  // path; the file's content with surrounding white space trimmed
  bool empty() const { return env.empty() && file.empty(); }
  // The secret, or kAuthFailed naming the variable or file that is missing or empty.
  Result<std::string> Resolve() const;
};

struct AccountSpec {
  std::string id;        // "kling-main"
  std::string provider;  // "kling", "sora", "veo", "seedance"
  std::string base_url;  // e.g. https://api-singapore.klingai.com (a simulator URL in tests)
  SecretRef api_key;     // Sora, Veo, Seedance; Kling: the access key
  SecretRef secret_key;  // Kling only: signs the JWT
  double requests_per_minute = 60;  // create calls
  double polls_per_minute = 0;      // 0: polls are not counted by this provider
  int max_concurrent = 5;           // upstream tasks in flight
  int daily_cap = 0;                // creates per UTC day; 0: none
  std::vector<std::string> models;  // model ids (reelq names) this account may run; empty: all
                                    // of its provider
  // `billing:` whether the provider bills a created task that then failed by content policy
  // / in any other way; such failures are otherwise refunded to the tenant's wallet.
  bool bills_policy_rejections = false;
  bool bills_failed_tasks = false;
};

struct Catalogue {
  std::vector<ModelSpec> models;
  std::vector<AccountSpec> accounts;
  // use case name (e.g. "photorealism") -> model id, for `auto` routing.
  std::map<std::string, std::string> use_case_first_choice;

  const ModelSpec* FindModel(std::string_view id) const;
  std::vector<const AccountSpec*> AccountsFor(const ModelSpec& model) const;
};

// Parses `models:`, `accounts:` and `routing:` from the root of a reelq config document.
// Every malformed entry is an kInvalidRequest error naming the entry and the field
// ("models[2].durations: expected a list of whole seconds").
Result<Catalogue> ParseCatalogue(const YAML::Node& root);

}  // namespace reelq::providers
