// The model catalogue and accounts: parsed strictly, so that a typo in the YAML is an error
// naming the entry and field at startup instead of a job that fails at 3 a.m.
#include "reelq/providers/catalogue.h"

#include "reelq/common/known_keys.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

namespace reelq::providers {
namespace {

// "noop" answers at once without any upstream (noop_provider.h): benchmarks and tests only.
const std::set<std::string, std::less<>> kProviders = {"kling", "sora", "veo", "seedance", "noop"};

// A default generation timeout never shorter than this: a catalogue scaled down for tests or
// benchmarks keeps a generous one unless it sets its own.
constexpr double kMinDefaultGenerationTimeout = 600;

// Thrown inside this file only, turned into a Result at ParseCatalogue's boundary.
struct ParseFailure {
  std::string message;
};

[[noreturn]] void Fail(const std::string& where, const std::string& what) {
  throw ParseFailure{where + ": " + what};
}

std::string Label(const char* list, size_t index, const YAML::Node& entry) {
  std::string label = std::string(list) + "[" + std::to_string(index) + "]";
  if (entry.IsMap() && entry["id"] && entry["id"].IsScalar()) {
    label += " (" + entry["id"].Scalar() + ")";
  }
  return label;
}

// Reads a whole number; yaml-cpp would accept "1.5" as int via truncation in some versions,
// so the text is checked by hand.
std::optional<long long> AsInteger(const YAML::Node& node) {
  if (!node.IsScalar()) return std::nullopt;
  const std::string& text = node.Scalar();
  if (text.empty()) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  long long value = std::strtoll(text.c_str(), &end, 10);
  if (errno != 0 || end != text.c_str() + text.size()) return std::nullopt;
  return value;
}

std::optional<double> AsNumber(const YAML::Node& node) {
  if (!node.IsScalar()) return std::nullopt;
  const std::string& text = node.Scalar();
  if (text.empty()) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  double value = std::strtod(text.c_str(), &end);
  if (errno != 0 || end != text.c_str() + text.size() || !std::isfinite(value)) {
    return std::nullopt;
  }
  return value;
}

// Fails on the first key of `map` that is not in `known` (the config's one rule, known_keys.h).
void RejectUnknownKeys(const YAML::Node& map, const std::string& where,
                       const std::set<std::string>& known) {
  std::vector<std::string> keys;
  for (const auto& kv : map) keys.push_back(kv.first.IsScalar() ? kv.first.Scalar() : "?");
  if (auto unknown = FindUnknownKey(keys, where, known)) throw ParseFailure{*unknown};
}

// USD per second as exact micro-dollars (0.112 -> 112000); at most $1000 a second.
int64_t PriceMicros(const std::string& where, double usd) {
  if (!(usd >= 0) || usd > 1000) Fail(where, "expected a price between 0 and 1000 USD per second");
  return std::llround(usd * 1'000'000);
}

class Entry {
 public:
  Entry(const YAML::Node& node, std::string label) : node_(node), label_(std::move(label)) {
    if (!node_.IsMap()) Fail(label_, "expected a mapping");
  }

  const std::string& label() const { return label_; }
  std::string Where(std::string_view field) const { return label_ + "." + std::string(field); }

  // nullopt when the field is absent or null (yaml-cpp's default Node is a defined null, so
  // it cannot stand for "absent").
  std::optional<YAML::Node> Get(std::string_view field, bool required) {
    seen_.insert(std::string(field));
    YAML::Node value = node_[std::string(field)];
    if (!value.IsDefined() || value.IsNull()) {
      if (required) Fail(Where(field), "missing (required)");
      return std::nullopt;
    }
    return value;
  }

  std::string String(std::string_view field, bool required = true) {
    auto got = Get(field, required);
    if (!got) return "";
    YAML::Node v = *got;
    if (!v.IsScalar() || v.Scalar().empty()) Fail(Where(field), "expected a non-empty string");
    return v.Scalar();
  }

  int PositiveInt(std::string_view field, bool required, int fallback) {
    auto got = Get(field, required);
    if (!got) return fallback;
    YAML::Node v = *got;
    auto n = AsInteger(v);
    if (!n || *n <= 0 || *n > std::numeric_limits<int>::max()) {
      Fail(Where(field), "expected a positive integer");
    }
    return static_cast<int>(*n);
  }

  int NonNegativeInt(std::string_view field, int fallback) {
    auto got = Get(field, false);
    if (!got) return fallback;
    YAML::Node v = *got;
    auto n = AsInteger(v);
    if (!n || *n < 0 || *n > std::numeric_limits<int>::max()) {
      Fail(Where(field), "expected a non-negative integer");
    }
    return static_cast<int>(*n);
  }

  double NonNegativeNumber(std::string_view field, double fallback, bool positive = false) {
    auto got = Get(field, false);
    if (!got) return fallback;
    YAML::Node v = *got;
    auto n = AsNumber(v);
    if (!n || *n < 0 || (positive && *n == 0)) {
      Fail(Where(field),
           positive ? "expected a positive number" : "expected a non-negative number");
    }
    return *n;
  }

  bool Bool(std::string_view field, bool fallback) {
    auto got = Get(field, false);
    if (!got) return fallback;
    YAML::Node v = *got;
    bool out = false;
    if (!v.IsScalar() || !YAML::convert<bool>::decode(v, out)) {
      Fail(Where(field), "expected true or false");
    }
    return out;
  }

  std::vector<std::string> StringList(std::string_view field, bool required) {
    auto got = Get(field, required);
    std::vector<std::string> out;
    if (!got) return out;
    YAML::Node v = *got;
    if (!v.IsSequence() || (required && v.size() == 0)) {
      Fail(Where(field), "expected a non-empty list of strings");
    }
    std::set<std::string> unique;
    for (const auto& item : v) {
      if (!item.IsScalar() || item.Scalar().empty()) {
        Fail(Where(field), "expected a non-empty list of strings");
      }
      if (!unique.insert(item.Scalar()).second) {
        Fail(Where(field), "'" + item.Scalar() + "' is listed twice");
      }
      out.push_back(item.Scalar());
    }
    return out;
  }

  // Every key must be one we read: a misspelt optional field would otherwise vanish silently.
  void RejectUnknownFields() const { RejectUnknownKeys(node_, label_, seen_); }

 private:
  YAML::Node node_;
  std::string label_;
  std::set<std::string> seen_;
};

std::string ProviderField(Entry& e) {
  std::string provider = e.String("provider");
  if (!kProviders.contains(provider)) {
    Fail(e.Where("provider"),
         "unknown provider '" + provider + "' (expected kling, sora, veo or seedance)");
  }
  return provider;
}

LatencyProfile ParseLatency(Entry& model) {
  LatencyProfile latency;
  auto node = model.Get("latency", false);
  if (!node) return latency;
  Entry e(*node, model.Where("latency"));
  latency.min_seconds = e.NonNegativeNumber("min", latency.min_seconds);
  latency.p50_seconds = e.NonNegativeNumber("p50", latency.p50_seconds);
  latency.p95_seconds = e.NonNegativeNumber("p95", latency.p95_seconds);
  latency.max_seconds = e.NonNegativeNumber("max", latency.max_seconds);
  e.RejectUnknownFields();
  if (!(latency.min_seconds <= latency.p50_seconds && latency.p50_seconds <= latency.p95_seconds &&
        latency.p95_seconds <= latency.max_seconds)) {
    Fail(model.Where("latency"), "expected min <= p50 <= p95 <= max");
  }
  return latency;
}

ImageInputs ParseInputs(Entry& model) {
  ImageInputs inputs;
  auto node = model.Get("inputs", false);
  if (!node) return inputs;
  Entry e(*node, model.Where("inputs"));
  inputs.first_frame = e.Bool("first_frame", false);
  inputs.last_frame = e.Bool("last_frame", false);
  inputs.reference_images = e.NonNegativeInt("reference_images", 0);
  inputs.last_frame_needs_first = e.Bool("last_frame_needs_first", false);
  e.RejectUnknownFields();
  if (inputs.last_frame_needs_first && !(inputs.first_frame && inputs.last_frame)) {
    Fail(model.Where("inputs"),
         "last_frame_needs_first: needs first_frame and last_frame both true");
  }
  if (inputs.reference_images > 16) {
    Fail(model.Where("inputs"), "reference_images: at most 16");
  }
  return inputs;
}

ModelSpec ParseModel(const YAML::Node& node, size_t index) {
  Entry e(node, Label("models", index, node));
  ModelSpec m;
  m.id = e.String("id");
  m.provider = ProviderField(e);
  m.upstream_model = e.String("upstream_model");
  YAML::Node durations = *e.Get("durations", true);
  if (!durations.IsSequence() || durations.size() == 0) {
    Fail(e.Where("durations"), "expected a non-empty list of whole seconds");
  }
  for (const auto& d : durations) {
    auto n = AsInteger(d);
    if (!n || *n <= 0 || *n > 3600) {
      Fail(e.Where("durations"), "expected a non-empty list of whole seconds");
    }
    m.durations.push_back(static_cast<int>(*n));
  }
  std::sort(m.durations.begin(), m.durations.end());
  if (std::adjacent_find(m.durations.begin(), m.durations.end()) != m.durations.end()) {
    Fail(e.Where("durations"), "a duration is listed twice");
  }
  m.max_clip_seconds = e.PositiveInt("max_clip_seconds", true, 0);
  if (m.durations.back() > m.max_clip_seconds) {
    Fail(e.Where("durations"), std::to_string(m.durations.back()) + " exceeds max_clip_seconds (" +
                                   std::to_string(m.max_clip_seconds) + ")");
  }
  m.aspect_ratios = e.StringList("aspect_ratios", true);
  m.resolutions = e.StringList("resolutions", true);
  m.max_shots = e.PositiveInt("max_shots", false, 1);
  m.audio = e.Bool("audio", true);
  m.latency = ParseLatency(e);
  m.generation_timeout_seconds = e.NonNegativeNumber(
      "generation_timeout", std::max(4 * m.latency.max_seconds, kMinDefaultGenerationTimeout));
  m.price_per_second = e.NonNegativeNumber("price_per_second", 0);
  m.price_micros_per_second = PriceMicros(e.Where("price_per_second"), m.price_per_second);
  if (auto by_res = e.Get("price_per_second_by_resolution", false)) {
    const std::string where = e.Where("price_per_second_by_resolution");
    if (!by_res->IsMap()) Fail(where, "expected a mapping of resolution to USD per second");
    for (const auto& kv : *by_res) {
      const std::string res = kv.first.Scalar();
      if (std::find(m.resolutions.begin(), m.resolutions.end(), res) == m.resolutions.end()) {
        Fail(where + "." + res, "not one of this model's resolutions");
      }
      auto price = AsNumber(kv.second);
      if (!price || *price < 0) Fail(where + "." + res, "expected a non-negative number (USD)");
      m.price_micros_by_resolution[res] = PriceMicros(where + "." + res, *price);
    }
  }
  if (auto by_res = e.Get("durations_by_resolution", false)) {
    const std::string where = e.Where("durations_by_resolution");
    if (!by_res->IsMap()) Fail(where, "expected a mapping of resolution to a list of seconds");
    for (const auto& kv : *by_res) {
      const std::string res = kv.first.Scalar();
      if (std::find(m.resolutions.begin(), m.resolutions.end(), res) == m.resolutions.end()) {
        Fail(where + "." + res, "not one of this model's resolutions");
      }
      if (!kv.second.IsSequence() || kv.second.size() == 0) {
        Fail(where + "." + res, "expected a non-empty list of durations");
      }
      std::vector<int> allowed;
      for (const auto& d : kv.second) {
        auto n = AsInteger(d);
        if (!n || std::find(m.durations.begin(), m.durations.end(), *n) == m.durations.end()) {
          Fail(where + "." + res, "expected durations from this model's `durations`");
        }
        allowed.push_back(static_cast<int>(*n));
      }
      std::sort(allowed.begin(), allowed.end());
      m.durations_by_resolution[res] = std::move(allowed);
    }
  }
  m.max_prompt_chars = e.NonNegativeInt("max_prompt_chars", 0);
  m.max_shot_prompt_chars = e.NonNegativeInt("max_shot_prompt_chars", 0);
  m.inputs = ParseInputs(e);
  e.RejectUnknownFields();
  return m;
}

SecretRef ParseSecret(Entry& account, std::string_view field, bool required) {
  SecretRef ref;
  auto got = account.Get(field, required);
  if (!got) return ref;
  YAML::Node node = *got;
  if (node.IsScalar()) {
    // Never accept the key itself in the YAML: config files end up in repositories.
    Fail(account.Where(field), "expected {env: VARIABLE} or {file: PATH}, not an inline value");
  }
  Entry e(node, account.Where(field));
  ref.env = e.String("env", false);
  ref.file = e.String("file", false);
  e.RejectUnknownFields();
  if (ref.env.empty() == ref.file.empty()) {
    Fail(account.Where(field), "expected exactly one of env or file");
  }
  return ref;
}

AccountSpec ParseAccount(const YAML::Node& node, size_t index) {
  Entry e(node, Label("accounts", index, node));
  AccountSpec a;
  a.id = e.String("id");
  a.provider = ProviderField(e);
  // The noop provider makes no call: it needs no URL and no key.
  const bool calls_upstream = a.provider != "noop";
  a.base_url = e.String("base_url", calls_upstream);
  if (calls_upstream && !a.base_url.starts_with("http://") && !a.base_url.starts_with("https://")) {
    Fail(e.Where("base_url"), "expected an http:// or https:// URL");
  }
  while (a.base_url.ends_with('/')) a.base_url.pop_back();
  a.api_key = ParseSecret(e, "api_key", calls_upstream);
  a.secret_key = ParseSecret(e, "secret_key", a.provider == "kling");
  if (a.provider != "kling" && !a.secret_key.empty()) {
    Fail(e.Where("secret_key"), "only Kling accounts have a secret key");
  }
  a.requests_per_minute = e.NonNegativeNumber("requests_per_minute", a.requests_per_minute, true);
  a.polls_per_minute = e.NonNegativeNumber("polls_per_minute", a.polls_per_minute);
  a.max_concurrent = e.PositiveInt("max_concurrent", false, a.max_concurrent);
  a.daily_cap = e.NonNegativeInt("daily_cap", a.daily_cap);
  a.models = e.StringList("models", false);
  if (auto billing = e.Get("billing", false)) {
    Entry b(*billing, e.Where("billing"));
    a.bills_policy_rejections = b.Bool("policy_rejections", false);
    a.bills_failed_tasks = b.Bool("failed_tasks", false);
    b.RejectUnknownFields();
  }
  e.RejectUnknownFields();
  return a;
}

Catalogue Parse(const YAML::Node& root) {
  if (!root.IsMap()) Fail("catalogue", "expected a mapping at the document root");
  Catalogue catalogue;
  YAML::Node models = root["models"];
  if (!models || !models.IsSequence() || models.size() == 0) {
    Fail("models", "expected a non-empty list of models");
  }
  std::set<std::string> model_ids;
  for (size_t i = 0; i < models.size(); ++i) {
    ModelSpec m = ParseModel(models[i], i);
    if (!model_ids.insert(m.id).second) {
      Fail(Label("models", i, models[i]) + ".id", "duplicate model id '" + m.id + "'");
    }
    catalogue.models.push_back(std::move(m));
  }

  YAML::Node accounts = root["accounts"];
  if (accounts && !accounts.IsNull()) {
    if (!accounts.IsSequence()) Fail("accounts", "expected a list of accounts");
    std::set<std::string> account_ids;
    for (size_t i = 0; i < accounts.size(); ++i) {
      AccountSpec a = ParseAccount(accounts[i], i);
      std::string label = Label("accounts", i, accounts[i]);
      if (!account_ids.insert(a.id).second) {
        Fail(label + ".id", "duplicate account id '" + a.id + "'");
      }
      for (const auto& model_id : a.models) {
        const ModelSpec* m = catalogue.FindModel(model_id);
        if (!m) Fail(label + ".models", "unknown model '" + model_id + "'");
        if (m->provider != a.provider) {
          Fail(label + ".models", "model '" + model_id + "' belongs to provider '" + m->provider +
                                      "', not '" + a.provider + "'");
        }
      }
      catalogue.accounts.push_back(std::move(a));
    }
  }

  YAML::Node routing = root["routing"];
  if (routing && !routing.IsNull()) {
    if (!routing.IsMap()) Fail("routing", "expected a mapping");
    RejectUnknownKeys(routing, "routing", {"use_cases"});
    YAML::Node use_cases = routing["use_cases"];
    if (use_cases && !use_cases.IsNull()) {
      if (!use_cases.IsMap()) Fail("routing.use_cases", "expected a mapping of use case to model");
      for (const auto& kv : use_cases) {
        std::string use_case = kv.first.IsScalar() ? kv.first.Scalar() : "?";
        std::string where = "routing.use_cases." + use_case;
        if (!kv.second.IsScalar()) Fail(where, "expected a model id");
        if (!model_ids.contains(kv.second.Scalar())) {
          Fail(where, "unknown model '" + kv.second.Scalar() + "'");
        }
        catalogue.use_case_first_choice[use_case] = kv.second.Scalar();
      }
    }
  }
  return catalogue;
}

std::string Trim(std::string s) {
  auto not_space = [](unsigned char c) { return !std::isspace(c); };
  s.erase(s.begin(), std::find_if(s.begin(), s.end(), not_space));
  s.erase(std::find_if(s.rbegin(), s.rend(), not_space).base(), s.end());
  return s;
}

}  // namespace

bool ModelSpec::SupportsDuration(int seconds) const {
  return std::find(durations.begin(), durations.end(), seconds) != durations.end();
}

Result<std::string> SecretRef::Resolve() const {
  // Messages name where the secret should be, never any part of its value.
  if (!env.empty()) {
    const char* value = std::getenv(env.c_str());
    if (value == nullptr) {
      return MakeError(ErrorCategory::kAuthFailed, "environment variable " + env + " is not set");
    }
    std::string secret = Trim(value);
    if (secret.empty()) {
      return MakeError(ErrorCategory::kAuthFailed, "environment variable " + env + " is empty");
    }
    return secret;
  }
  if (!file.empty()) {
    std::ifstream in(file, std::ios::binary);
    if (!in) return MakeError(ErrorCategory::kAuthFailed, "cannot read key file " + file);
    std::ostringstream content;
    content << in.rdbuf();
    std::string secret = Trim(content.str());
    if (secret.empty())
      return MakeError(ErrorCategory::kAuthFailed, "key file " + file + " is empty");
    return secret;
  }
  return MakeError(ErrorCategory::kAuthFailed, "no key configured (expected env or file)");
}

const ModelSpec* Catalogue::FindModel(std::string_view id) const {
  for (const auto& m : models) {
    if (m.id == id) return &m;
  }
  return nullptr;
}

std::vector<const AccountSpec*> Catalogue::AccountsFor(const ModelSpec& model) const {
  std::vector<const AccountSpec*> out;
  for (const auto& a : accounts) {
    if (a.provider != model.provider) continue;
    if (!a.models.empty() &&
        std::find(a.models.begin(), a.models.end(), model.id) == a.models.end()) {
      continue;
    }
    out.push_back(&a);
  }
  return out;
}

Result<Catalogue> ParseCatalogue(const YAML::Node& root) {
  try {
    return Parse(root);
  } catch (const ParseFailure& failure) {
    return MakeError(ErrorCategory::kInvalidRequest, failure.message);
  } catch (const YAML::Exception& e) {
    return MakeError(ErrorCategory::kInvalidRequest, std::string("catalogue: ") + e.what());
  }
}

}  // namespace reelq::providers
