#include "reelq/scheduler/admission.h"
#include "reelq/common/utf8.h"

#include <algorithm>
#include <cctype>
#include <set>
#include <string_view>
#include <utility>

#include <fmt/format.h>
#include <google/protobuf/util/time_util.h>

namespace reelq::scheduler {
namespace {

using reelq::v1::JobSpec;

// Catalogue::FindModel is defined in reelq_providers; this loop keeps admission (a header-only
// use of the catalogue types) buildable and testable without that library.
const providers::ModelSpec* FindModel(const providers::Catalogue& c, std::string_view id) {
  for (const auto& m : c.models) {
    if (m.id == id) return &m;
  }
  return nullptr;
}

std::unexpected<Error> Invalid(std::string message) {
  return MakeError(ErrorCategory::kInvalidRequest, std::move(message));
}

// A client value inside an error message (common/utf8.h: quoted, bounded, escaped).
std::string Quote(std::string_view value) { return QuoteForMessage(value); }

// "a", "a or b", "a, b or c".
std::string JoinOr(const std::vector<std::string>& items) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += (i + 1 == items.size()) ? " or " : ", ";
    out += items[i];
  }
  return out;
}

bool IsBlank(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
  });
}

bool IsIdChar(char c, std::string_view extra) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         extra.find(c) != std::string_view::npos;
}

// Identifiers that become parts of object keys and Redis keys. A leading dot is refused so that
// "." and ".." can never climb out of a filesystem store's root.
std::optional<std::string> CheckIdentifier(std::string_view field, std::string_view value,
                                           size_t max_bytes, std::string_view extra_chars,
                                           bool no_leading_dot) {
  if (value.size() > max_bytes) {
    return fmt::format("{}: {} bytes — at most {} allowed", field, value.size(), max_bytes);
  }
  for (size_t i = 0; i < value.size(); ++i) {
    if (!IsIdChar(value[i], extra_chars)) {
      return fmt::format("{}: {} has a character outside [A-Za-z0-9{}] at byte {}", field,
                         Quote(value), extra_chars, i);
    }
  }
  if (no_leading_dot && !value.empty() && value.front() == '.') {
    return fmt::format("{}: {} must not start with '.'", field, Quote(value));
  }
  return std::nullopt;
}

// A model id in a ListJobs filter that the catalogue does not name (a model since dropped).
constexpr size_t kMaxModelIdBytes = 128;

// Proto3 uint32 fields carry a client's negative number as a huge value.
bool LooksNegative(uint32_t v) { return v >= 0x8000'0000u; }

bool SupportsDuration(const providers::ModelSpec& m, uint32_t seconds,
                      const std::string& resolution) {
  const auto& durations = m.DurationsAt(resolution);
  if (durations.empty()) {
    return seconds >= 1 && m.max_clip_seconds > 0 &&
           seconds <= static_cast<uint32_t>(m.max_clip_seconds);
  }
  return std::any_of(durations.begin(), durations.end(),
                     [&](int d) { return d > 0 && static_cast<uint32_t>(d) == seconds; });
}

// "4, 8 or 12 s", or "3 to 15 s" for a contiguous run; " at 1080p" where that resolution allows
// only some of them.
std::string DescribeDurations(const providers::ModelSpec& m, const std::string& resolution) {
  const auto& durations = m.DurationsAt(resolution);
  if (durations.empty()) {
    return m.max_clip_seconds > 0 ? fmt::format("up to {} s", m.max_clip_seconds)
                                  : std::string("no durations configured");
  }
  const std::string at =
      m.durations_by_resolution.contains(resolution) ? " at " + resolution : std::string();
  std::vector<int> d(durations.begin(), durations.end());
  std::sort(d.begin(), d.end());
  d.erase(std::unique(d.begin(), d.end()), d.end());
  if (d.size() >= 3 && d.back() - d.front() + 1 == static_cast<int>(d.size())) {
    return fmt::format("{} to {} s{}", d.front(), d.back(), at);
  }
  std::vector<std::string> parts;
  for (int v : d) parts.push_back(std::to_string(v));
  return JoinOr(parts) + " s" + at;
}

// One reason a model cannot make the job: the field, the job's value, the model's limit.
struct Failure {
  std::string field;
  std::string value;   // "20 s", "7 shots", "\"4k\""
  std::string reason;  // "makes 4, 8 or 12 s"
};

// The hard constraints of DESIGN.md (length, shots, audio, resolution, aspect ratio, prompt
// length), in a fixed order so that messages are stable.
std::vector<Failure> HardConstraintFailures(const providers::ModelSpec& m, const JobSpec& spec,
                                            uint32_t duration, bool audio,
                                            const std::string& resolution,
                                            const std::string& aspect) {
  std::vector<Failure> out;
  const int shots = spec.shots_size();
  if (shots > std::max(1, m.max_shots)) {
    out.push_back({"shots", fmt::format("{} shots", shots),
                   m.max_shots > 1
                       ? fmt::format("supports at most {} cuts in one generation", m.max_shots)
                       : std::string("makes one continuous shot only")});
  }
  if (!SupportsDuration(m, duration, resolution)) {
    out.push_back({"duration_seconds", fmt::format("{} s", duration),
                   "makes " + DescribeDurations(m, resolution)});
  }
  if (audio && !m.audio) {
    out.push_back({"audio", "on", "has no native audio (set audio: false)"});
  }
  if (std::find(m.resolutions.begin(), m.resolutions.end(), resolution) == m.resolutions.end()) {
    out.push_back({"resolution", Quote(resolution), "makes " + JoinOr(m.resolutions)});
  }
  if (std::find(m.aspect_ratios.begin(), m.aspect_ratios.end(), aspect) == m.aspect_ratios.end()) {
    out.push_back({"aspect_ratio", Quote(aspect), "makes " + JoinOr(m.aspect_ratios)});
  }
  // Input images: only to a model that takes that kind (catalogue `inputs:`).
  if (spec.has_first_frame() && !m.inputs.first_frame) {
    out.push_back({"first_frame", "an image", "takes no first-frame image"});
  }
  if (spec.has_last_frame() && !m.inputs.last_frame) {
    out.push_back({"last_frame", "an image", "takes no last-frame image"});
  } else if (spec.has_last_frame() && m.inputs.last_frame_needs_first && !spec.has_first_frame()) {
    out.push_back({"last_frame", "an image without a first_frame",
                   "takes a last-frame image only with a first-frame image"});
  }
  if (const int refs = spec.reference_images_size(); refs > m.inputs.reference_images) {
    out.push_back({"reference_images", fmt::format("{} images", refs),
                   m.inputs.reference_images == 0
                       ? std::string("takes no reference images")
                       : fmt::format("takes at most {}", m.inputs.reference_images)});
  }
  auto check = [&](std::string field, const std::string& text, int limit) {
    if (limit <= 0) return;
    size_t chars = CountCodePoints(text);
    if (chars > static_cast<size_t>(limit)) {
      out.push_back({std::move(field), fmt::format("{} characters", chars),
                     fmt::format("accepts at most {} characters", limit)});
    }
  };
  check("prompt", spec.prompt(), m.max_prompt_chars);
  const int shot_limit = m.max_shot_prompt_chars > 0 && m.max_prompt_chars > 0
                             ? std::min(m.max_shot_prompt_chars, m.max_prompt_chars)
                             : std::max(m.max_shot_prompt_chars, m.max_prompt_chars);
  for (int i = 0; i < shots; ++i) {
    check(fmt::format("shots[{}].prompt", i), spec.shots(i).prompt(), shot_limit);
  }
  check("negative_prompt", spec.negative_prompt(), m.max_prompt_chars);
  return out;
}

// The refusal when no considered model can make the job. When one field rules out every model,
// the message leads with that field; otherwise it names each model's first obstacle.
std::string NoModelMessage(const std::vector<std::pair<std::string, std::vector<Failure>>>& all) {
  for (const Failure& f : all.front().second) {
    std::vector<const Failure*> same;
    for (const auto& [model, failures] : all) {
      auto it = std::find_if(failures.begin(), failures.end(),
                             [&](const Failure& g) { return g.field == f.field; });
      if (it == failures.end()) break;
      same.push_back(&*it);
    }
    if (same.size() != all.size()) continue;
    if (all.size() == 1) {
      return fmt::format("{}: {} — {} {}", f.field, f.value, all.front().first, f.reason);
    }
    std::string out = fmt::format("{}: {} — no allowed model can make it (", f.field, f.value);
    for (size_t i = 0; i < all.size(); ++i) {
      if (i > 0) out += "; ";
      out += all[i].first + ": " + same[i]->reason;
    }
    return out + ")";
  }
  std::string out = "models: no allowed model can make this combination (";
  for (size_t i = 0; i < all.size(); ++i) {
    const Failure& f = all[i].second.front();
    if (i > 0) out += "; ";
    out += fmt::format("{}: {} {} — {}", all[i].first, f.field, f.value, f.reason);
  }
  return out + ")";
}

constexpr int64_t kMinTimestampSeconds = -62'135'596'800;  // 0001-01-01T00:00:00Z
constexpr int64_t kMaxTimestampSeconds = 253'402'300'799;  // 9999-12-31T23:59:59Z

std::optional<std::string> CheckTimestamp(std::string_view field,
                                          const google::protobuf::Timestamp& t) {
  if (t.seconds() < kMinTimestampSeconds || t.seconds() > kMaxTimestampSeconds || t.nanos() < 0 ||
      t.nanos() > 999'999'999) {
    return fmt::format("{}: not a valid timestamp (seconds {}, nanos {})", field, t.seconds(),
                       t.nanos());
  }
  return std::nullopt;
}

int64_t ToMs(const google::protobuf::Timestamp& t) {
  return t.seconds() * 1000 + t.nanos() / 1'000'000;
}

std::optional<std::string> CheckStrings(const JobSpec& spec) {
  auto bad = [](std::string_view field, std::string_view text) -> std::optional<std::string> {
    size_t at = FindInvalidUtf8(text);
    if (at == std::string_view::npos) return std::nullopt;
    return fmt::format("{}: invalid UTF-8 at byte {}", field, at);
  };
  if (auto e = bad("tenant", spec.tenant())) return e;
  if (auto e = bad("prompt", spec.prompt())) return e;
  if (auto e = bad("negative_prompt", spec.negative_prompt())) return e;
  for (int i = 0; i < spec.shots_size(); ++i) {
    if (auto e = bad(fmt::format("shots[{}].prompt", i), spec.shots(i).prompt())) return e;
    if (auto e = bad(fmt::format("shots[{}].model", i), spec.shots(i).model())) return e;
  }
  for (int i = 0; i < spec.models_size(); ++i) {
    if (auto e = bad(fmt::format("models[{}]", i), spec.models(i))) return e;
  }
  if (auto e = bad("aspect_ratio", spec.aspect_ratio())) return e;
  if (auto e = bad("resolution", spec.resolution())) return e;
  if (auto e = bad("idempotency_key", spec.idempotency_key())) return e;
  if (auto e = bad("batch_id", spec.batch_id())) return e;
  if (auto e = bad("webhook_url", spec.webhook_url())) return e;
  if (auto e = bad("webhook_events", spec.webhook_events())) return e;
  // Map order is unspecified; report the smallest offending key so the message is stable.
  std::optional<std::string> first;
  std::string first_key;
  for (const auto& [key, value] : spec.labels()) {
    std::optional<std::string> e;
    if (size_t at = FindInvalidUtf8(key); at != std::string_view::npos) {
      e = fmt::format("labels: invalid UTF-8 at byte {} of a key", at);
    } else if (size_t at2 = FindInvalidUtf8(value); at2 != std::string_view::npos) {
      e = fmt::format("labels[{}]: invalid UTF-8 at byte {}", Quote(key), at2);
    }
    if (e && (!first || key < first_key)) {
      first = e;
      first_key = key;
    }
  }
  return first;
}

std::optional<std::string> CheckLabels(const JobSpec& spec, const AdmissionLimits& limits) {
  if (static_cast<size_t>(spec.labels_size()) > limits.max_labels) {
    return fmt::format("labels: {} labels — at most {} allowed", spec.labels_size(),
                       limits.max_labels);
  }
  std::vector<std::string> keys;
  for (const auto& [key, value] : spec.labels()) keys.push_back(key);
  std::sort(keys.begin(), keys.end());
  for (const std::string& key : keys) {
    if (key.empty()) return std::string("labels: a key is empty");
    if (auto e = CheckIdentifier(fmt::format("labels[{}]", Quote(key)), key,
                                 limits.max_label_key_bytes, "._/-", false)) {
      return e;
    }
    const std::string& value = spec.labels().at(key);
    if (value.size() > limits.max_label_value_bytes) {
      return fmt::format("labels[{}]: value is {} bytes — at most {} allowed", Quote(key),
                         value.size(), limits.max_label_value_bytes);
    }
    for (char ch : value) {
      auto c = static_cast<unsigned char>(ch);
      if (c < 0x20 || c == 0x7F) {
        return fmt::format("labels[{}]: value has a control character", Quote(key));
      }
    }
  }
  return std::nullopt;
}

}  // namespace

std::string UseCaseKey(reelq::v1::UseCase use_case) {
  if (use_case == reelq::v1::USE_CASE_UNSPECIFIED || !reelq::v1::UseCase_IsValid(use_case)) {
    return {};
  }
  std::string name = reelq::v1::UseCase_Name(use_case);
  constexpr std::string_view kPrefix = "USE_CASE_";
  if (name.starts_with(kPrefix)) name.erase(0, kPrefix.size());
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return name;
}

Admission::Admission(const providers::Catalogue& catalogue, AdmissionLimits limits, ClockPtr clock)
    : catalogue_(catalogue),
      limits_(limits),
      clock_(clock ? std::move(clock) : std::make_shared<SystemClock>()) {
  std::vector<const providers::ModelSpec*> models;
  for (const auto& m : catalogue_.models) models.push_back(&m);
  std::stable_sort(models.begin(), models.end(), [](const auto* a, const auto* b) {
    if (a->latency.p50_seconds != b->latency.p50_seconds) {
      return a->latency.p50_seconds < b->latency.p50_seconds;
    }
    return a->id < b->id;
  });
  for (const auto* m : models) by_latency_.push_back(m->id);
}

std::string Admission::ReservedTenantMessage(std::string_view field) {
  return fmt::format(
      "{}: \"{}\" is reserved (the object store keeps every tenant's input images under "
      "{}/); choose another name",
      field, kReservedTenant, kReservedTenant);
}

Result<void> Admission::CheckBatchId(std::string_view batch_id) const {
  if (auto e = CheckIdentifier("batch_id", batch_id, limits_.max_batch_id_bytes, "._-", true)) {
    return Invalid(*e);
  }
  return {};
}

Result<void> Admission::CheckBatchAndKey(const JobSpec& spec) const {
  for (auto [field, value] :
       {std::pair<std::string_view, std::string_view>{"batch_id", spec.batch_id()},
        {"idempotency_key", spec.idempotency_key()}}) {
    if (size_t at = FindInvalidUtf8(value); at != std::string_view::npos) {
      return Invalid(fmt::format("{}: invalid UTF-8 at byte {}", field, at));
    }
  }
  if (auto checked = CheckBatchId(spec.batch_id()); !checked) return checked;
  if (auto e = CheckIdentifier("idempotency_key", spec.idempotency_key(),
                               limits_.max_idempotency_key_bytes, "._:/=+-", false)) {
    return Invalid(*e);
  }
  return {};
}

Result<void> Admission::CheckListFilter(std::string_view tenant, std::string_view batch_id,
                                        std::string_view model) const {
  if (auto e = CheckIdentifier("tenant", tenant, limits_.max_tenant_bytes, "._-", true)) {
    return Invalid(*e);
  }
  if (auto checked = CheckBatchId(batch_id); !checked) return checked;
  // Not only the catalogue's models: jobs of a model since dropped from it can still be listed.
  if (catalogue_.FindModel(model) != nullptr) return {};
  if (auto e = CheckIdentifier("model", model, kMaxModelIdBytes, "._-", true)) return Invalid(*e);
  return {};
}

Result<AdmittedJob> Admission::Admit(JobSpec& spec) const {
  // Encoding first, so that no later message quotes broken bytes.
  if (auto e = CheckStrings(spec)) return Invalid(*e);

  std::string tenant = spec.tenant().empty() ? std::string(kDefaultTenant) : spec.tenant();
  if (auto e = CheckIdentifier("tenant", tenant, limits_.max_tenant_bytes, "._-", true)) {
    return Invalid(*e);
  }
  if (tenant == kReservedTenant) return Invalid(ReservedTenantMessage("tenant"));
  if (auto checked = CheckBatchAndKey(spec); !checked) return std::unexpected(checked.error());
  if (auto e = CheckLabels(spec, limits_)) return Invalid(*e);
  if (auto e = CheckImageInputs(spec, tenant, limits_)) return Invalid(*e);

  if (!reelq::v1::UseCase_IsValid(spec.use_case())) {
    return Invalid(fmt::format("use_case: unknown value {}", static_cast<int>(spec.use_case())));
  }
  if (spec.priority() < limits_.min_priority || spec.priority() > limits_.max_priority) {
    return Invalid(fmt::format("priority: {} is outside {}..{}", spec.priority(),
                               limits_.min_priority, limits_.max_priority));
  }

  // Prompt or shots, and the clip length.
  const bool has_prompt = !spec.prompt().empty();
  const int shots = spec.shots_size();
  if (has_prompt && shots > 0) {
    return Invalid("prompt: set both prompt and shots; send one (each shot carries its prompt)");
  }
  if (shots == 0 && IsBlank(spec.prompt())) {
    return Invalid("prompt: empty — send a prompt, or shots");
  }
  if (spec.prompt().size() > limits_.max_prompt_bytes) {
    return Invalid(fmt::format("prompt: {} bytes — over the {}-byte limit", spec.prompt().size(),
                               limits_.max_prompt_bytes));
  }
  if (spec.negative_prompt().size() > limits_.max_prompt_bytes) {
    return Invalid(fmt::format("negative_prompt: {} bytes — over the {}-byte limit",
                               spec.negative_prompt().size(), limits_.max_prompt_bytes));
  }
  if (static_cast<size_t>(shots) > limits_.max_shots) {
    return Invalid(fmt::format("shots: {} shots — at most {} allowed", shots, limits_.max_shots));
  }
  uint32_t duration = spec.duration_seconds();
  if (LooksNegative(duration)) {
    return Invalid(fmt::format("duration_seconds: {} is negative or out of range",
                               static_cast<int32_t>(duration)));
  }
  if (duration > limits_.max_duration_seconds) {
    return Invalid(fmt::format("duration_seconds: {} s — over the {} s limit", duration,
                               limits_.max_duration_seconds));
  }
  if (shots > 0) {
    uint64_t sum = 0;
    size_t prompt_bytes = 0;
    for (int i = 0; i < shots; ++i) {
      const auto& shot = spec.shots(i);
      if (IsBlank(shot.prompt())) return Invalid(fmt::format("shots[{}].prompt: empty", i));
      prompt_bytes += shot.prompt().size();
      const uint32_t d = shot.duration_seconds();
      if (d == 0)
        return Invalid(fmt::format("shots[{}].duration_seconds: must be at least 1 s", i));
      if (LooksNegative(d) || d > limits_.max_duration_seconds) {
        return Invalid(fmt::format("shots[{}].duration_seconds: {} is out of range", i,
                                   static_cast<int32_t>(d)));
      }
      sum += d;
    }
    if (prompt_bytes > limits_.max_prompt_bytes) {
      return Invalid(fmt::format("shots: prompts total {} bytes — over the {}-byte limit",
                                 prompt_bytes, limits_.max_prompt_bytes));
    }
    if (duration == 0) {
      if (sum > limits_.max_duration_seconds) {
        return Invalid(fmt::format("shots: durations sum to {} s — over the {} s limit", sum,
                                   limits_.max_duration_seconds));
      }
      duration = static_cast<uint32_t>(sum);
    } else if (sum != duration) {
      return Invalid(
          fmt::format("shots: durations sum to {} s but duration_seconds is {}", sum, duration));
    }
  } else if (duration == 0) {
    return Invalid("duration_seconds: required — the clip length in whole seconds (at least 1)");
  }

  // Deadlines.
  const int64_t now = clock_->NowMs();
  if (spec.has_start_deadline()) {
    if (auto e = CheckTimestamp("start_deadline", spec.start_deadline())) return Invalid(*e);
    if (ToMs(spec.start_deadline()) <= now) {
      return Invalid(
          fmt::format("start_deadline: {} has already passed",
                      google::protobuf::util::TimeUtil::ToString(spec.start_deadline())));
    }
  }
  if (spec.has_finish_deadline()) {
    if (auto e = CheckTimestamp("finish_deadline", spec.finish_deadline())) return Invalid(*e);
    if (ToMs(spec.finish_deadline()) <= now) {
      return Invalid(
          fmt::format("finish_deadline: {} has already passed",
                      google::protobuf::util::TimeUtil::ToString(spec.finish_deadline())));
    }
    if (spec.has_start_deadline() && ToMs(spec.finish_deadline()) < ToMs(spec.start_deadline())) {
      return Invalid(
          fmt::format("finish_deadline: {} is before start_deadline {}",
                      google::protobuf::util::TimeUtil::ToString(spec.finish_deadline()),
                      google::protobuf::util::TimeUtil::ToString(spec.start_deadline())));
    }
  }

  // Output format, with defaults.
  const std::string aspect =
      spec.aspect_ratio().empty() ? std::string(kDefaultAspectRatio) : spec.aspect_ratio();
  std::string resolution =
      spec.resolution().empty() ? std::string(kDefaultResolution) : spec.resolution();
  for (char& c : resolution) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const bool audio = spec.has_audio() ? spec.audio() : true;

  // Which models the request allows, in preference order.
  AdmittedJob admitted;
  std::vector<std::string> allowed;
  std::string first_choice;
  const bool is_auto =
      spec.models_size() == 0 || (spec.models_size() == 1 && spec.models(0) == kAuto);
  if (is_auto) {
    admitted.auto_routed = true;
    allowed = by_latency_;
    const std::string key = UseCaseKey(spec.use_case());
    if (auto it = catalogue_.use_case_first_choice.find(key);
        !key.empty() && it != catalogue_.use_case_first_choice.end()) {
      auto pos = std::find(allowed.begin(), allowed.end(), it->second);
      if (pos != allowed.end()) {
        std::rotate(allowed.begin(), pos, pos + 1);
        first_choice = it->second;
      }
    }
    if (allowed.empty()) return Invalid("models: the catalogue has no models");
  } else {
    if (static_cast<size_t>(spec.models_size()) > limits_.max_models) {
      return Invalid(fmt::format("models: {} entries — at most {} allowed", spec.models_size(),
                                 limits_.max_models));
    }
    std::set<std::string_view> seen;
    for (int i = 0; i < spec.models_size(); ++i) {
      const std::string& id = spec.models(i);
      if (id == kAuto) {
        return Invalid(fmt::format(
            "models[{}]: \"auto\" cannot be combined with model ids — send [\"auto\"] alone, "
            "or only ids",
            i));
      }
      if (id.empty()) return Invalid(fmt::format("models[{}]: empty model id", i));
      if (!FindModel(catalogue_, id)) {
        std::vector<std::string> known = by_latency_;
        std::sort(known.begin(), known.end());
        std::string list;
        for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
        return Invalid(
            fmt::format("models[{}]: unknown model {} (known: {}; or auto)", i, Quote(id), list));
      }
      if (!seen.insert(id).second) {
        return Invalid(fmt::format("models[{}]: {} is listed twice", i, Quote(id)));
      }
      allowed.push_back(id);
    }
  }

  // Hard constraints.
  std::vector<std::pair<std::string, std::vector<Failure>>> failures;
  for (const std::string& id : allowed) {
    const providers::ModelSpec* m = FindModel(catalogue_, id);
    auto why = HardConstraintFailures(*m, spec, duration, audio, resolution, aspect);
    // A model in the catalogue with no account in reelq.yaml can never be dispatched: a job
    // left with only such models would wait in the queue forever, saying nothing.
    if (why.empty() && catalogue_.AccountsFor(*m).empty()) {
      why.push_back({.field = "models",
                     .value = Quote(id),
                     .reason = "has no account configured (accounts: in reelq.yaml, provider " +
                               Quote(m->provider) + ")"});
    }
    if (why.empty()) {
      admitted.candidates.push_back(id);
    } else {
      const Failure& f = why.front();
      admitted.rejected.push_back({id, f.field, f.value + " — " + f.reason});
      failures.emplace_back(id, std::move(why));
    }
  }
  if (admitted.candidates.empty()) return Invalid(NoModelMessage(failures));
  // The request states a first choice: the use case's (under `auto`), or the first model of an
  // explicit list of several, as long as that model can make the job.
  if (!is_auto && spec.models_size() > 1) first_choice = spec.models(0);
  admitted.first_choice_preferred = !first_choice.empty() && admitted.candidates.size() > 1 &&
                                    admitted.candidates.front() == first_choice;

  // Normalise only now that the job is admitted.
  spec.set_tenant(tenant);
  spec.set_aspect_ratio(aspect);
  spec.set_resolution(resolution);
  spec.set_audio(audio);
  spec.set_duration_seconds(duration);
  return admitted;
}

}  // namespace reelq::scheduler
