#pragma once

// Per-model summary of a finished batch, computed from the jobs' recorded transitions.

#include <optional>
#include <string>
#include <vector>

#include "reelq/v1/jobs.pb.h"

namespace reelq::cli {

struct ModelSummary {
  std::string model;  // "(not routed)" for jobs that never got a model; "total" for the sum row
  size_t jobs = 0;
  size_t succeeded = 0;
  size_t failed = 0;
  size_t cancelled = 0;
  size_t unfinished = 0;     // not terminal (only when the summary is taken early)
  double total_seconds = 0;  // sum over jobs with a known submit -> terminal time
  size_t timed = 0;
  double generation_seconds = 0;  // sum over succeeded jobs with a known generation time
  size_t generated = 0;

  std::optional<double> MeanSeconds() const;
  std::optional<double> MeanGenerationSeconds() const;
};

bool IsTerminal(v1::JobState state);

// Submit -> terminal: from created_at (or the first transition) to the first terminal transition.
std::optional<double> TimeToTerminal(const v1::JobStatus& job);

// Generation time of the attempt that succeeded: from its RUNNING/SUBMITTING transition (the
// create call) to TRANSFERRING (the clip is ready upstream), or to the terminal transition when
// no TRANSFERRING was recorded.
std::optional<double> GenerationTime(const v1::JobStatus& job);

// One row per model (sorted by model id), then a "total" row.
std::vector<ModelSummary> SummarizeByModel(const std::vector<v1::JobStatus>& jobs);

}  // namespace reelq::cli
