#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "reelq/common/clock.h"
#include "reelq/common/error.h"
#include "reelq/common/utf8.h"
#include "reelq/providers/catalogue.h"
#include "reelq/v1/jobs.pb.h"

namespace reelq::scheduler {

// Bounds on what a client may submit. The defaults suit a studio pipeline; every one of them
// is a config key of the scheduler section (max_prompt_bytes is `scheduler.max_prompt_bytes`).
struct AdmissionLimits {
  size_t max_prompt_bytes = 100'000;  // prompt, negative prompt, and all shot prompts together
  int32_t min_priority = -100;
  int32_t max_priority = 100;
  uint32_t max_duration_seconds = 3600;  // sanity bound before any model is asked
  size_t max_shots = 64;                 // sanity bound; models allow far fewer
  size_t max_models = 16;                // entries in JobSpec.models
  size_t max_labels = 32;
  size_t max_label_key_bytes = 63;
  size_t max_label_value_bytes = 256;
  size_t max_tenant_bytes = 64;
  size_t max_batch_id_bytes = 128;
  size_t max_idempotency_key_bytes = 128;
  size_t max_image_bytes = 10 << 20;  // each input image (`scheduler.max_image_bytes`)
  size_t max_reference_images = 16;   // sanity bound; models allow fewer
};

// Why one model cannot make a job: the JobSpec field that rules it out, and the model's own
// limit in words ("makes 4, 8 or 12 s").
struct ModelRejection {
  std::string model;
  std::string field;
  std::string reason;
};

struct AdmittedJob {
  // Model ids that can make the job, best first: an explicit single model; an explicit list in
  // the given order; for `auto` the use case's first choice, then the others by catalogue
  // latency (p50). Never empty.
  std::vector<std::string> candidates;
  // True when the order states a preference and more than one model can make the job: a use
  // case put its first choice first, or an explicit list of several models can use its first
  // entry. Dispatch then keeps the job on candidates[0] unless another candidate's expected
  // finish is earlier by more than scheduler.preference_margin_seconds (choose() in
  // queue/lua/dispatch.lua).
  bool first_choice_preferred = false;
  bool auto_routed = false;  // models was empty or ["auto"]
  // Models that were considered and ruled out, with the reason; for logs and the API.
  std::vector<ModelRejection> rejected;
};

// Validates a submitted JobSpec and fills in its defaults. A plain class with no I/O, so the
// gRPC service, the batch path and tests share it. Thread-safe (Admit is const and keeps no
// state).
//
// Every refusal is ErrorCategory::kInvalidRequest with a message that starts with the field
// ("duration_seconds: 20 s — no allowed model can make it (kling-3.0: makes 3 to 15 s; ...)"),
// which the gRPC edge turns into INVALID_ARGUMENT.
class Admission {
 public:
  // The catalogue is copied: a config reload builds a new Admission. `clock` decides whether a
  // deadline is already in the past (SystemClock when null).
  Admission(const providers::Catalogue& catalogue, AdmissionLimits limits = {},
            ClockPtr clock = nullptr);

  // Checks every field, then normalises `spec` in place: tenant "default" when empty, aspect
  // ratio "16:9", resolution "720p", audio on when unset, duration_seconds = the sum of the
  // shot durations when 0 with shots. `spec` is normalised only when the result is a value.
  Result<AdmittedJob> Admit(reelq::v1::JobSpec& spec) const;
  // A batch id as Admit checks it (kInvalidRequest naming batch_id), for the calls that name a
  // batch before any of its items is admitted (a batch webhook claims the id).
  Result<void> CheckBatchId(std::string_view batch_id) const;
  // A request's batch_id and idempotency_key as Admit checks them (kInvalidRequest naming the
  // field): for a group (storyboard, chain, compare), whose children are admitted without them
  // (they name the parent only), so the parent's are checked here.
  Result<void> CheckBatchAndKey(const reelq::v1::JobSpec& spec) const;
  // ListJobs' filters as Admit checks the same fields (each may be empty: not filtered), so a
  // value that could name another of the queue's Redis keys ("b:ids") is refused, naming it.
  Result<void> CheckListFilter(std::string_view tenant, std::string_view batch_id,
                               std::string_view model) const;

  const AdmissionLimits& limits() const { return limits_; }
  const providers::Catalogue& catalogue() const { return catalogue_; }

  static constexpr std::string_view kDefaultTenant = "default";
  // Not a tenant's name: the object store keeps every tenant's input images under
  // inputs/<tenant>/, so a tenant so named would own them all.
  static constexpr std::string_view kReservedTenant = "inputs";
  // "<field>: "inputs" is reserved ...", the refusal of that name wherever a tenant is named.
  static std::string ReservedTenantMessage(std::string_view field);
  static constexpr std::string_view kDefaultAspectRatio = "16:9";
  static constexpr std::string_view kDefaultResolution = "720p";
  static constexpr std::string_view kAuto = "auto";

 private:
  providers::Catalogue catalogue_;
  AdmissionLimits limits_;
  ClockPtr clock_;
  // Model ids ordered by catalogue latency p50 (then id), the `auto` order before a use case
  // moves its first choice to the front.
  std::vector<std::string> by_latency_;
};

// The routing-table key of a use case: USE_CASE_MULTI_SHOT_NARRATIVE -> "multi_shot_narrative"
// (Catalogue::use_case_first_choice is keyed by it). Empty for UNSPECIFIED and unknown values.
std::string UseCaseKey(reelq::v1::UseCase use_case);

// The input images of a spec (first_frame, last_frame, reference_images), before any model is
// considered: each has bytes or a key; bytes are a PNG, JPEG or WebP (by content) of at most
// max_image_bytes; a key is one of `tenant`'s objects (under inputs/<tenant>/ or <tenant>/).
// The refusal names the field ("first_frame.data: ..."). image_admission.cpp.
std::optional<std::string> CheckImageInputs(const reelq::v1::JobSpec& spec,
                                            const std::string& tenant,
                                            const AdmissionLimits& limits);

// UTF-8 is checked by the one validator in common/ (FindInvalidUtf8, CountCodePoints).

}  // namespace reelq::scheduler
