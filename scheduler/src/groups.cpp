#include "reelq/scheduler/groups.h"
#include "reelq/common/utf8.h"

#include <algorithm>
#include <optional>
#include <set>

#include <fmt/format.h>

namespace reelq::scheduler {
namespace {

auto Invalid(std::string message) { return MakeError(ErrorCategory::kInvalidRequest, message); }
Error InvalidError(std::string message) { return Error{ErrorCategory::kInvalidRequest, message}; }

bool StartsWith(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

// Whether a refusal of the whole shot list is one that splitting it into shots can cure: no
// model makes that many cuts or that length in one generation.
// A refusal of the whole list that one job per shot may not meet: too many shots or seconds for
// one generation, or a shot's prompt over the multi-shot limit (Kling's 512 characters a shot
// against 2500 for a clip's). Each shot is then admitted alone, which names what still fails.
bool SplitCures(const Error& error) {
  return StartsWith(error.message, "shots:") || StartsWith(error.message, "shots[") ||
         StartsWith(error.message, "duration_seconds:") ||
         StartsWith(error.message, "models: no allowed model");
}

std::string KnownModels(const providers::Catalogue& catalogue) {
  std::vector<std::string> ids;
  for (const auto& m : catalogue.models) ids.push_back(m.id);
  std::sort(ids.begin(), ids.end());
  std::string out;
  for (const auto& id : ids) out += (out.empty() ? "" : ", ") + id;
  return out;
}

// A child's refusal, renamed to the field of the request it came from: what the shot set
// (prompt, duration, its own model or use case) is named under shots[i].
Error ShotError(const Error& child, int index, bool own_model, bool own_use_case) {
  const std::string shot = fmt::format("shots[{}]", index);
  const std::string& m = child.message;
  for (std::string_view field : {"prompt", "duration_seconds"}) {
    if (StartsWith(m, field)) return InvalidError(shot + "." + m);
  }
  if (own_model && StartsWith(m, "models[0]")) return InvalidError(shot + ".model" + m.substr(9));
  if (own_use_case && StartsWith(m, "use_case")) return InvalidError(shot + "." + m);
  // The request's image, refused for the model(s) of the shot that carries it ("last_frame: an
  // image — sora-2 takes no last-frame image"): named with the shot.
  const bool model_refuses = m.find(" takes ") != std::string::npos ||
                             m.find("no allowed model can make it") != std::string::npos;
  for (std::string_view field : {"first_frame: ", "last_frame: ", "reference_images: "}) {
    if (model_refuses && StartsWith(m, field)) return InvalidError(shot + ": " + m);
  }
  if (StartsWith(m, "models:")) return InvalidError(shot + ": " + m);
  return child;
}

// The shortest clip longer than `seconds` that one of the models `spec` allows makes; 0 when
// none does.
uint32_t ShortestLongerClip(const providers::Catalogue& catalogue, const v1::JobSpec& spec,
                            uint32_t seconds) {
  const bool is_auto =
      spec.models_size() == 0 || (spec.models_size() == 1 && spec.models(0) == Admission::kAuto);
  std::string resolution =
      spec.resolution().empty() ? std::string(Admission::kDefaultResolution) : spec.resolution();
  for (char& c : resolution) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  uint32_t best = 0;
  for (const auto& m : catalogue.models) {
    if (!is_auto &&
        std::find(spec.models().begin(), spec.models().end(), m.id) == spec.models().end()) {
      continue;
    }
    for (int d : m.DurationsAt(resolution)) {
      const auto length = static_cast<uint32_t>(d);
      if (d > 0 && length > seconds && (best == 0 || length < best)) best = length;
    }
  }
  return best;
}

// A child's spec: the parent's settings (tenant, format, audio, priority, labels, deadlines)
// with one prompt and one length; it belongs to no batch (the parent does: its money counts
// against the parent's batch budget, queue/lua/submit.lua), carries no idempotency key (the
// parent's covers the group) and no webhook (the group's end is the one delivered).
v1::JobSpec ChildSpec(const v1::JobSpec& parent) {
  v1::JobSpec child = parent;
  child.clear_shots();
  child.clear_prompt();
  child.clear_idempotency_key();
  child.clear_batch_id();
  child.clear_webhook_url();
  child.clear_webhook_events();
  child.set_storyboard(false);
  child.set_compare(false);
  return child;
}

// The parent carries the normalised settings its children were admitted with.
void NormaliseParent(v1::JobSpec& parent, const v1::JobSpec& first_child, uint32_t duration) {
  parent.set_tenant(first_child.tenant());
  parent.set_aspect_ratio(first_child.aspect_ratio());
  parent.set_resolution(first_child.resolution());
  parent.set_audio(first_child.audio());
  parent.set_duration_seconds(duration);
}

// A chain's shot after the first is admitted as carrying a first-frame image (a stand-in for
// the previous shot's last frame, which exists only once that shot has run): a model that
// takes none is refused by name, and under `auto` not chosen.
constexpr std::string_view kChainFrameStandIn = "chain-frame-stand-in.png";

// A refusal of a chained shot's stand-in first frame, named as the chain's.
std::optional<Error> ChainFrameError(const Error& child, int index) {
  const std::string& m = child.message;
  if (StartsWith(m, "first_frame: ")) {
    // "first_frame: an image — sora-2 takes no first-frame image"
    const auto dash = m.find("— ");
    const std::string why = dash == std::string::npos ? m.substr(13) : m.substr(dash + 4);
    return InvalidError(fmt::format(
        "chain: shots[{}] starts from the last frame of shots[{}], but {}", index, index - 1, why));
  }
  if (StartsWith(m, "models:") && m.find("first_frame") != std::string::npos) {
    return InvalidError(fmt::format(
        "chain: shots[{}] starts from the last frame of shots[{}], but {}", index, index - 1, m));
  }
  return std::nullopt;
}

Result<SubmissionPlan> PlanStoryboard(const Admission& admission, v1::JobSpec& spec) {
  const auto& catalogue = admission.catalogue();
  if (spec.shots_size() == 0) return Invalid("shots: a storyboard needs at least one shot");
  if (spec.chain() && spec.shots_size() < 2) {
    return Invalid(
        fmt::format("chain: a chain needs at least two shots, got {}", spec.shots_size()));
  }
  if (!spec.prompt().empty()) {
    return Invalid("prompt: a storyboard takes its prompts from shots; leave prompt empty");
  }
  if (static_cast<size_t>(spec.shots_size()) > admission.limits().max_shots) {
    return Invalid(fmt::format("shots: {} shots — at most {} allowed", spec.shots_size(),
                               admission.limits().max_shots));
  }
  bool per_shot = false;
  for (int i = 0; i < spec.shots_size(); ++i) {
    const auto& shot = spec.shots(i);
    if (shot.duration_seconds() == 0) {
      return Invalid(fmt::format("shots[{}].duration_seconds: must be at least 1 s", i));
    }
    if (!shot.model().empty()) {
      per_shot = true;
      if (shot.model() == Admission::kAuto) continue;
      if (catalogue.FindModel(shot.model()) == nullptr) {
        return Invalid(fmt::format("shots[{}].model: unknown model {} (known: {}; or auto)", i,
                                   QuoteForMessage(shot.model()), KnownModels(catalogue)));
      }
    }
    if (shot.use_case() != v1::USE_CASE_UNSPECIFIED) per_shot = true;
  }
  SubmissionPlan plan;
  // A chain is always one job per shot: each starts from the last frame of the one before.
  if (!per_shot && !spec.chain()) {
    // One generation where one model can make the whole list (Kling's native multi-shot).
    v1::JobSpec whole = spec;
    auto admitted = admission.Admit(whole);
    if (admitted) {
      spec = std::move(whole);
      plan.admitted = std::move(*admitted);
      return plan;
    }
    if (!SplitCures(admitted.error())) return std::unexpected(admitted.error());
  }
  uint32_t total = 0;
  for (int i = 0; i < spec.shots_size(); ++i) {
    const auto& shot = spec.shots(i);
    v1::JobSpec child = ChildSpec(spec);
    child.set_prompt(shot.prompt());
    child.set_duration_seconds(shot.duration_seconds());
    const bool own_model = !shot.model().empty();
    const bool own_use_case = shot.use_case() != v1::USE_CASE_UNSPECIFIED;
    if (own_model) {
      child.clear_models();
      child.add_models(shot.model());
    }
    if (own_use_case) child.set_use_case(shot.use_case());
    // The group's first frame starts shot 0 only, its last frame ends the last shot only
    // (groups_api.cpp stores them so): a shot is admitted with what it will carry, so that a
    // model taking no such image is refused only for the shot that would get one.
    if (i > 0) child.clear_first_frame();
    if (i + 1 < spec.shots_size()) child.clear_last_frame();
    const bool stand_in = spec.chain() && i > 0;
    if (stand_in) {
      const std::string tenant =
          child.tenant().empty() ? std::string(Admission::kDefaultTenant) : child.tenant();
      child.mutable_first_frame()->set_key(fmt::format("inputs/{}/{}", tenant, kChainFrameStandIn));
    }
    auto admitted = admission.Admit(child);
    if (!admitted && StartsWith(admitted.error().message, "duration_seconds:")) {
      // A shot shorter than any allowed model makes is generated at the shortest length one of
      // them makes above it and cut to length by the join (the parent keeps the shot's length).
      if (const uint32_t longer = ShortestLongerClip(catalogue, child, shot.duration_seconds());
          longer > 0) {
        v1::JobSpec retried = child;
        retried.set_duration_seconds(longer);
        if (auto again = admission.Admit(retried)) {
          child = std::move(retried);
          admitted = std::move(again);
        }
      }
    }
    if (!admitted && stand_in) {
      if (auto chain_error = ChainFrameError(admitted.error(), i)) {
        return std::unexpected(*chain_error);
      }
    }
    if (!admitted) return std::unexpected(ShotError(admitted.error(), i, own_model, own_use_case));
    if (stand_in) child.clear_first_frame();
    // On a chained shot, `chain` says that its last frame starts the next shot.
    child.set_chain(spec.chain() && i + 1 < spec.shots_size());
    total += shot.duration_seconds();
    plan.children.push_back({std::move(child), std::move(*admitted)});
  }
  if (spec.duration_seconds() != 0 && spec.duration_seconds() != total) {
    return Invalid(fmt::format("shots: durations sum to {} s but duration_seconds is {}", total,
                               spec.duration_seconds()));
  }
  plan.kind = "storyboard";
  spec.set_storyboard(true);
  NormaliseParent(spec, plan.children.front().spec, total);
  return plan;
}

Result<SubmissionPlan> PlanCompare(const Admission& admission, v1::JobSpec& spec) {
  const auto& catalogue = admission.catalogue();
  if (spec.shots_size() > 0) return Invalid("shots: a compare takes one prompt, not shots");
  if (spec.models_size() < 2) {
    return Invalid(
        fmt::format("models: a compare needs at least two models, got {}", spec.models_size()));
  }
  if (static_cast<size_t>(spec.models_size()) > admission.limits().max_models) {
    return Invalid(fmt::format("models: {} entries — at most {} allowed", spec.models_size(),
                               admission.limits().max_models));
  }
  std::set<std::string> seen;
  for (int i = 0; i < spec.models_size(); ++i) {
    const std::string& id = spec.models(i);
    if (id == Admission::kAuto || catalogue.FindModel(id) == nullptr) {
      return Invalid(
          fmt::format("models[{}]: unknown model {} (known: {}; a compare names "
                      "each model, not auto)",
                      i, QuoteForMessage(id), KnownModels(catalogue)));
    }
    if (!seen.insert(id).second) {
      return Invalid(fmt::format("models[{}]: {} is listed twice", i, QuoteForMessage(id)));
    }
  }
  SubmissionPlan plan;
  for (int i = 0; i < spec.models_size(); ++i) {
    v1::JobSpec child = ChildSpec(spec);
    child.set_prompt(spec.prompt());
    child.clear_models();
    child.add_models(spec.models(i));
    auto admitted = admission.Admit(child);
    if (!admitted) {
      const std::string& m = admitted.error().message;
      if (StartsWith(m, "models[0]")) {
        return Invalid(fmt::format("models[{}]{}", i, m.substr(9)));
      }
      return std::unexpected(admitted.error());
    }
    plan.children.push_back({std::move(child), std::move(*admitted)});
  }
  plan.kind = "compare";
  NormaliseParent(spec, plan.children.front().spec, plan.children.front().spec.duration_seconds());
  return plan;
}

}  // namespace

Result<SubmissionPlan> PlanSubmission(const Admission& admission, v1::JobSpec& spec) {
  if (spec.compare() && spec.storyboard()) {
    return Invalid("compare: a request is a compare or a storyboard, not both");
  }
  if (spec.chain() && spec.compare()) {
    return Invalid("chain: a chain is a storyboard's shots run in order, not a compare");
  }
  if (spec.chain() && spec.shots_size() == 0) {
    return Invalid(
        "chain: a chain needs a storyboard's shots (at least two), each starting from the "
        "last frame of the one before");
  }
  if (spec.chain()) spec.set_storyboard(true);
  // A group's children are admitted without its batch id and idempotency key (ChildSpec): the
  // parent's, which it is stored under, are checked here as a plain job's are.
  const bool group = spec.compare() || spec.storyboard() || spec.shots_size() > 0;
  if (group) {
    if (auto checked = admission.CheckBatchAndKey(spec); !checked) {
      return std::unexpected(checked.error());
    }
  }
  if (spec.compare()) return PlanCompare(admission, spec);
  if (spec.storyboard() || spec.shots_size() > 0) {
    bool per_shot = false;
    for (const auto& shot : spec.shots()) {
      per_shot = per_shot || !shot.model().empty() || shot.use_case() != v1::USE_CASE_UNSPECIFIED;
    }
    // Per-shot models or use cases make a storyboard; a plain shot list stays one generation
    // (refused when no model can make it whole, as before: splitting it into paid generations
    // is asked for with `storyboard`).
    if (spec.storyboard() || per_shot) return PlanStoryboard(admission, spec);
  }
  auto admitted = admission.Admit(spec);
  if (!admitted) return std::unexpected(admitted.error());
  SubmissionPlan plan;
  plan.admitted = std::move(*admitted);
  return plan;
}

}  // namespace reelq::scheduler
