#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "reelq/common/error.h"

namespace reelq::sim {

enum class Provider { kKling, kSora, kVeo, kSeedance };
inline constexpr std::array<Provider, 4> kAllProviders = {Provider::kKling, Provider::kSora,
                                                          Provider::kVeo, Provider::kSeedance};
std::string_view ProviderName(Provider provider);
std::optional<Provider> ParseProvider(std::string_view name);

// Seconds of generation time; the draw is lognormal through p50/p95, clamped to [min, max].
struct LatencyProfile {
  double min_s = 0;
  double p50_s = 0;
  double p95_s = 0;
  double max_s = 0;
};

struct ModelConfig {
  std::string id;
  LatencyProfile latency;
};

// An accepted API key and its hidden limits. For Kling `key` is the access key and `secret`
// the secret key that signs the JWT; the other providers use `key` only.
struct KeyConfig {
  std::string key;
  std::string secret;
  int rpm = 6000;           // accepted create calls per sliding minute
  int max_concurrent = 64;  // tasks holding a slot (create until finished)
};

// Probabilities in [0, 1] drawn from the seeded RNG, per create call.
struct FaultRates {
  double create_failure = 0;  // create answers a 5xx in the provider's shape
  double task_failure = 0;    // accepted task ends failed with a retryable server reason
  double policy = 0;          // content-policy rejection (sync or async per provider)
};

// A test knob for the "create outcome unknown" window: the next `count` accepted creates are
// recorded (the task exists and is counted) but their answer is held for `delay_ms`, and with
// `drop` the connection is then closed without any answer (a lost create answer).
struct HoldCreate {
  int count = 0;
  int64_t delay_ms = 0;
  bool drop = false;
};

struct ProviderConfig {
  std::vector<KeyConfig> keys;
  std::vector<ModelConfig> models;
  std::optional<FaultRates> faults;  // overrides the global rates when set
  int64_t retention_s = 0;           // finished results answer not-found after this
  HoldCreate hold_create;
};

struct SimConfig {
  double latency_scale = 1.0;
  // Draw each clip's model, shot number and short job id on it (ffmpeg drawtext, one small
  // render per create); false: one cached unlabelled clip per (duration, ratio, audio).
  bool clip_labels = true;
  uint64_t seed = 1;
  std::string media_dir;  // empty: a fresh temp dir
  FaultRates faults;
  std::map<Provider, ProviderConfig> providers;

  const ProviderConfig& provider(Provider p) const { return providers.at(p); }
  ProviderConfig& provider(Provider p) { return providers.at(p); }
  const FaultRates& FaultsFor(Provider p) const;
};

// The built-in keys, models and latency profiles (tests and the demo rely on these values).
SimConfig DefaultConfig();

// Applies a config document on top of `config`. With `replace_lists` (the YAML file) a
// provider's `keys` / `models` replace the defaults; without it (the control endpoint) they
// are merged by key / model id. Errors name the offending field.
Result<void> ApplyConfig(SimConfig& config, const nlohmann::json& doc, bool replace_lists);

// Reads a YAML file and applies it on top of the defaults.
Result<SimConfig> LoadConfigFile(const std::string& path);

nlohmann::json ConfigToJson(const SimConfig& config);

}  // namespace reelq::sim
