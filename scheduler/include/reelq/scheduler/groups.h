#pragma once

// Groups of issue 13: a storyboard (a shot list that no one generation can make, joined from
// one child job per shot) and a compare (one prompt, one take per model, then a contact sheet).
#include <string>
#include <vector>

#include "reelq/common/error.h"
#include "reelq/scheduler/admission.h"
#include "reelq/v1/jobs.pb.h"

namespace reelq::scheduler {

struct PlannedChild {
  v1::JobSpec spec;  // admitted and normalised
  AdmittedJob admitted;
};

// What one submitted JobSpec becomes: a plain job (`kind` empty, `admitted` set), or a group's
// parent (`kind` "storyboard" or "compare") with its children in order.
struct SubmissionPlan {
  std::string kind;
  AdmittedJob admitted;
  std::vector<PlannedChild> children;
};

// Admits `spec` and normalises it in place (the parent's spec for a group). A storyboard
// (`storyboard`, or a shot naming its own model or use case) stays one generation (Kling's
// native multi-shot) when one allowed model can make it whole and no shot names its own model
// or use case; otherwise each shot becomes a child job admitted on its own. A shot list without
// either is one generation, as before. Errors are kInvalidRequest naming the field
// ("shots[2].model: unknown model ...").
Result<SubmissionPlan> PlanSubmission(const Admission& admission, v1::JobSpec& spec);

}  // namespace reelq::scheduler
