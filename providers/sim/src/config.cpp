#include "config.h"

#include <fmt/format.h>
#include <cmath>
#include <set>

#include <yaml-cpp/yaml.h>

#include "reelq/common/known_keys.h"

namespace reelq::sim {
namespace {

using nlohmann::json;

std::unexpected<Error> Invalid(const std::string& path, const std::string& what) {
  return MakeError(ErrorCategory::kInvalidRequest, fmt::format("config {}: {}", path, what));
}

// The config's one rule for keys (known_keys.h): "config faults.polcy: unknown key; did you
// mean policy?".
Result<void> CheckKnown(const json& obj, const std::string& path,
                        const std::set<std::string>& known) {
  if (!obj.is_object()) return Invalid(path, "expected a mapping");
  std::vector<std::string> keys;
  for (const auto& [k, v] : obj.items()) keys.push_back(k);
  if (auto unknown = FindUnknownKey(keys, path, known)) {
    return MakeError(ErrorCategory::kInvalidRequest, "config " + *unknown);
  }
  return {};
}

Result<double> Number(const json& v, const std::string& path, double lo, double hi) {
  if (!v.is_number()) return Invalid(path, "expected a number");
  double d = v.get<double>();
  if (!std::isfinite(d) || d < lo || d > hi) {
    return Invalid(path, fmt::format("must be between {} and {}", lo, hi));
  }
  return d;
}

Result<int64_t> Integer(const json& v, const std::string& path, int64_t lo, int64_t hi) {
  if (!v.is_number_integer()) return Invalid(path, "expected an integer");
  int64_t i = v.get<int64_t>();
  if (i < lo || i > hi) return Invalid(path, fmt::format("must be between {} and {}", lo, hi));
  return i;
}

Result<std::string> String(const json& v, const std::string& path) {
  if (!v.is_string() || v.get<std::string>().empty()) {
    return Invalid(path, "expected a non-empty string");
  }
  return v.get<std::string>();
}

Result<void> ApplyFaults(FaultRates& f, const json& doc, const std::string& path) {
  if (auto ok = CheckKnown(doc, path, {"create_failure", "task_failure", "policy"}); !ok) {
    return ok;
  }
  struct Field {
    const char* name;
    double* dst;
  };
  for (Field field : {Field{"create_failure", &f.create_failure},
                      Field{"task_failure", &f.task_failure}, Field{"policy", &f.policy}}) {
    if (!doc.contains(field.name)) continue;
    auto v = Number(doc[field.name], path + "." + field.name, 0, 1);
    if (!v) return std::unexpected(v.error());
    *field.dst = *v;
  }
  return {};
}

Result<KeyConfig> ParseKey(Provider p, const json& doc, const std::string& path,
                           const KeyConfig* existing) {
  const bool kling = p == Provider::kKling;
  std::set<std::string> known = {"rpm", "max_concurrent"};
  known.insert(kling ? "access_key" : "key");
  if (kling) known.insert("secret_key");
  if (auto ok = CheckKnown(doc, path, known); !ok) return std::unexpected(ok.error());
  KeyConfig key = existing ? *existing : KeyConfig{};
  const char* id_field = kling ? "access_key" : "key";
  if (!doc.contains(id_field)) return Invalid(path + "." + id_field, "is required");
  auto id = String(doc[id_field], path + "." + id_field);
  if (!id) return std::unexpected(id.error());
  key.key = *id;
  if (kling) {
    if (doc.contains("secret_key")) {
      auto s = String(doc["secret_key"], path + ".secret_key");
      if (!s) return std::unexpected(s.error());
      key.secret = *s;
    } else if (key.secret.empty()) {
      return Invalid(path + ".secret_key", "is required for a Kling key");
    }
  }
  if (doc.contains("rpm")) {
    auto v = Integer(doc["rpm"], path + ".rpm", 0, 10'000'000);
    if (!v) return std::unexpected(v.error());
    key.rpm = static_cast<int>(*v);
  }
  if (doc.contains("max_concurrent")) {
    auto v = Integer(doc["max_concurrent"], path + ".max_concurrent", 0, 1'000'000);
    if (!v) return std::unexpected(v.error());
    key.max_concurrent = static_cast<int>(*v);
  }
  return key;
}

Result<ModelConfig> ParseModel(const json& doc, const std::string& path,
                               const ModelConfig* existing) {
  if (auto ok = CheckKnown(doc, path, {"id", "latency"}); !ok) return std::unexpected(ok.error());
  ModelConfig model = existing ? *existing : ModelConfig{};
  if (!doc.contains("id")) return Invalid(path + ".id", "is required");
  auto id = String(doc["id"], path + ".id");
  if (!id) return std::unexpected(id.error());
  model.id = *id;
  if (doc.contains("latency")) {
    const json& l = doc["latency"];
    const std::string lp = path + ".latency";
    if (auto ok = CheckKnown(l, lp, {"min", "p50", "p95", "max"}); !ok) {
      return std::unexpected(ok.error());
    }
    for (const char* f : {"min", "p50", "p95", "max"}) {
      if (!l.contains(f)) return Invalid(lp + "." + f, "is required");
    }
    LatencyProfile prof;
    double* dst[] = {&prof.min_s, &prof.p50_s, &prof.p95_s, &prof.max_s};
    const char* names[] = {"min", "p50", "p95", "max"};
    for (int i = 0; i < 4; ++i) {
      auto v = Number(l[names[i]], lp + "." + names[i], 0, 86400);
      if (!v) return std::unexpected(v.error());
      *dst[i] = *v;
    }
    if (!(prof.min_s <= prof.p50_s && prof.p50_s <= prof.p95_s && prof.p95_s <= prof.max_s)) {
      return Invalid(lp, "needs min <= p50 <= p95 <= max");
    }
    if (prof.p50_s <= 0) return Invalid(lp + ".p50", "must be > 0");
    model.latency = prof;
  } else if (!existing) {
    return Invalid(path + ".latency", "is required for a new model");
  }
  return model;
}

Result<void> ApplyProvider(Provider p, ProviderConfig& pc, const json& doc, const std::string& path,
                           bool replace_lists) {
  if (auto ok =
          CheckKnown(doc, path, {"keys", "models", "faults", "retention_seconds", "hold_create"});
      !ok) {
    return ok;
  }
  if (doc.contains("hold_create")) {
    const json& h = doc["hold_create"];
    const std::string hp = path + ".hold_create";
    if (!h.is_object()) return Invalid(hp, "expected an object {count, delay_ms, drop}");
    if (auto ok = CheckKnown(h, hp, {"count", "delay_ms", "drop"}); !ok) return ok;
    HoldCreate hold = pc.hold_create;
    if (h.contains("count")) {
      auto v = Integer(h["count"], hp + ".count", 0, 1'000'000);
      if (!v) return std::unexpected(v.error());
      hold.count = static_cast<int>(*v);
    }
    if (h.contains("delay_ms")) {
      auto v = Integer(h["delay_ms"], hp + ".delay_ms", 0, 600'000);
      if (!v) return std::unexpected(v.error());
      hold.delay_ms = *v;
    }
    if (h.contains("drop")) {
      if (!h["drop"].is_boolean()) return Invalid(hp + ".drop", "expected true or false");
      hold.drop = h["drop"].get<bool>();
    }
    pc.hold_create = hold;
  }
  if (doc.contains("retention_seconds")) {
    auto v = Integer(doc["retention_seconds"], path + ".retention_seconds", 0, 400LL * 86400);
    if (!v) return std::unexpected(v.error());
    pc.retention_s = *v;
  }
  if (doc.contains("faults")) {
    FaultRates f = pc.faults.value_or(FaultRates{});
    if (auto ok = ApplyFaults(f, doc["faults"], path + ".faults"); !ok) return ok;
    pc.faults = f;
  }
  if (doc.contains("keys")) {
    if (!doc["keys"].is_array()) return Invalid(path + ".keys", "expected a list");
    std::vector<KeyConfig> keys = replace_lists ? std::vector<KeyConfig>{} : pc.keys;
    for (size_t i = 0; i < doc["keys"].size(); ++i) {
      const json& k = doc["keys"][i];
      const std::string kp = fmt::format("{}.keys[{}]", path, i);
      const char* id_field = p == Provider::kKling ? "access_key" : "key";
      KeyConfig* existing = nullptr;
      if (k.is_object() && k.contains(id_field) && k[id_field].is_string()) {
        for (auto& have : keys) {
          if (have.key == k[id_field].get<std::string>()) existing = &have;
        }
      }
      auto parsed = ParseKey(p, k, kp, existing);
      if (!parsed) return std::unexpected(parsed.error());
      if (existing) {
        *existing = *parsed;
      } else {
        keys.push_back(*parsed);
      }
    }
    pc.keys = std::move(keys);
  }
  if (doc.contains("models")) {
    if (!doc["models"].is_array()) return Invalid(path + ".models", "expected a list");
    std::vector<ModelConfig> models = replace_lists ? std::vector<ModelConfig>{} : pc.models;
    for (size_t i = 0; i < doc["models"].size(); ++i) {
      const json& m = doc["models"][i];
      ModelConfig* existing = nullptr;
      if (m.is_object() && m.contains("id") && m["id"].is_string()) {
        for (auto& have : models) {
          if (have.id == m["id"].get<std::string>()) existing = &have;
        }
      }
      auto parsed = ParseModel(m, fmt::format("{}.models[{}]", path, i), existing);
      if (!parsed) return std::unexpected(parsed.error());
      if (existing) {
        *existing = *parsed;
      } else {
        models.push_back(*parsed);
      }
    }
    pc.models = std::move(models);
  }
  return {};
}

// YAML scalars become JSON numbers/bools only when written plain; quoted scalars stay strings.
json YamlToJson(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: {
      json obj = json::object();
      for (const auto& kv : node) obj[kv.first.as<std::string>()] = YamlToJson(kv.second);
      return obj;
    }
    case YAML::NodeType::Sequence: {
      json arr = json::array();
      for (const auto& item : node) arr.push_back(YamlToJson(item));
      return arr;
    }
    case YAML::NodeType::Scalar: {
      const std::string s = node.Scalar();
      if (node.Tag() == "!") return s;
      if (s == "true" || s == "True") return true;
      if (s == "false" || s == "False") return false;
      try {
        size_t used = 0;
        long long i = std::stoll(s, &used);
        if (used == s.size()) return i;
      } catch (...) {
      }
      try {
        size_t used = 0;
        double d = std::stod(s, &used);
        if (used == s.size()) return d;
      } catch (...) {
      }
      return s;
    }
    default:
      return nullptr;
  }
}

}  // namespace

std::string_view ProviderName(Provider provider) {
  switch (provider) {
    case Provider::kKling:
      return "kling";
    case Provider::kSora:
      return "sora";
    case Provider::kVeo:
      return "veo";
    case Provider::kSeedance:
      return "seedance";
  }
  return "?";
}

std::optional<Provider> ParseProvider(std::string_view name) {
  for (Provider p : kAllProviders) {
    if (ProviderName(p) == name) return p;
  }
  return std::nullopt;
}

const FaultRates& SimConfig::FaultsFor(Provider p) const {
  const auto& pc = provider(p);
  return pc.faults ? *pc.faults : faults;
}

SimConfig DefaultConfig() {
  SimConfig c;
  auto keys = [](std::string a, std::string b, std::string sa = {}, std::string sb = {}) {
    return std::vector<KeyConfig>{{.key = std::move(a), .secret = std::move(sa)},
                                  {.key = std::move(b), .secret = std::move(sb)}};
  };
  c.providers[Provider::kKling] = {
      .keys = keys("sim-kling-ak-a", "sim-kling-ak-b", "sim-kling-sk-a", "sim-kling-sk-b"),
      .models = {{"kling-v3", {60, 120, 180, 300}}},
      .retention_s = 30LL * 86400};
  c.providers[Provider::kSora] = {
      .keys = keys("sim-sora-key-a", "sim-sora-key-b"),
      .models = {{"sora-2", {90, 180, 280, 360}}, {"sora-2-pro", {90, 180, 280, 360}}},
      .retention_s = 86400};
  c.providers[Provider::kVeo] = {.keys = keys("sim-veo-key-a", "sim-veo-key-b"),
                                 .models = {{"veo-3.1-generate-preview", {11, 75, 240, 360}},
                                            {"veo-3.1-fast-generate-preview", {11, 75, 240, 360}},
                                            {"veo-3.1-generate-001", {11, 75, 240, 360}}},
                                 .retention_s = 2 * 86400};
  c.providers[Provider::kSeedance] = {.keys = keys("sim-seedance-key-a", "sim-seedance-key-b"),
                                      .models = {{"dreamina-seedance-2-0-260128", {20, 45, 60, 90}},
                                                 {"doubao-seedance-2-0-260128", {20, 45, 60, 90}}},
                                      .retention_s = 86400};
  return c;
}

Result<void> ApplyConfig(SimConfig& config, const json& doc, bool replace_lists) {
  if (auto ok = CheckKnown(
          doc, "", {"latency_scale", "clip_labels", "seed", "media_dir", "faults", "providers"});
      !ok) {
    return ok;
  }
  SimConfig next = config;  // all-or-nothing: a bad field changes nothing
  if (doc.contains("latency_scale")) {
    auto v = Number(doc["latency_scale"], "latency_scale", 0, 1000);
    if (!v) return std::unexpected(v.error());
    next.latency_scale = *v;
  }
  if (doc.contains("clip_labels")) {
    if (!doc["clip_labels"].is_boolean()) {
      return MakeError(ErrorCategory::kInvalidRequest,
                       "config clip_labels: expected true or false");
    }
    next.clip_labels = doc["clip_labels"].get<bool>();
  }
  if (doc.contains("seed")) {
    auto v = Integer(doc["seed"], "seed", 0, INT64_MAX);
    if (!v) return std::unexpected(v.error());
    next.seed = static_cast<uint64_t>(*v);
  }
  if (doc.contains("media_dir")) {
    auto v = String(doc["media_dir"], "media_dir");
    if (!v) return std::unexpected(v.error());
    next.media_dir = *v;
  }
  if (doc.contains("faults")) {
    if (auto ok = ApplyFaults(next.faults, doc["faults"], "faults"); !ok) return ok;
  }
  if (doc.contains("providers")) {
    const json& ps = doc["providers"];
    if (!ps.is_object()) return Invalid("providers", "expected a mapping");
    for (const auto& [name, section] : ps.items()) {
      auto p = ParseProvider(name);
      if (!p) return Invalid("providers." + name, "unknown provider (kling, sora, veo, seedance)");
      if (auto ok =
              ApplyProvider(*p, next.provider(*p), section, "providers." + name, replace_lists);
          !ok) {
        return ok;
      }
    }
  }
  config = std::move(next);
  return {};
}

Result<SimConfig> LoadConfigFile(const std::string& path) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const std::exception& e) {
    return MakeError(ErrorCategory::kInvalidRequest,
                     fmt::format("config file {}: {}", path, e.what()));
  }
  SimConfig config = DefaultConfig();
  if (root.IsNull()) return config;
  if (auto ok = ApplyConfig(config, YamlToJson(root), /*replace_lists=*/true); !ok) {
    Error e = ok.error();
    e.message = path + ": " + e.message;
    return std::unexpected(e);
  }
  return config;
}

json ConfigToJson(const SimConfig& config) {
  auto faults = [](const FaultRates& f) {
    return json{{"create_failure", f.create_failure},
                {"task_failure", f.task_failure},
                {"policy", f.policy}};
  };
  json doc = {{"latency_scale", config.latency_scale},
              {"clip_labels", config.clip_labels},
              {"seed", config.seed},
              {"media_dir", config.media_dir},
              {"faults", faults(config.faults)},
              {"providers", json::object()}};
  for (const auto& [p, pc] : config.providers) {
    json keys = json::array();
    for (const auto& k : pc.keys) {
      json entry = {{"rpm", k.rpm}, {"max_concurrent", k.max_concurrent}};
      entry[p == Provider::kKling ? "access_key" : "key"] = k.key;
      keys.push_back(entry);  // secrets are never echoed
    }
    json models = json::array();
    for (const auto& m : pc.models) {
      models.push_back({{"id", m.id},
                        {"latency",
                         {{"min", m.latency.min_s},
                          {"p50", m.latency.p50_s},
                          {"p95", m.latency.p95_s},
                          {"max", m.latency.max_s}}}});
    }
    json section = {{"keys", keys},
                    {"models", models},
                    {"retention_seconds", pc.retention_s},
                    {"hold_create",
                     {{"count", pc.hold_create.count},
                      {"delay_ms", pc.hold_create.delay_ms},
                      {"drop", pc.hold_create.drop}}}};
    if (pc.faults) section["faults"] = faults(*pc.faults);
    doc["providers"][std::string(ProviderName(p))] = section;
  }
  return doc;
}

}  // namespace reelq::sim
