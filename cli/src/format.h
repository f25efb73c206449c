#pragma once

// Human and JSON output. Pure functions of their arguments, so tests can pin them down.

#include <optional>
#include <string>
#include <vector>

#include <google/protobuf/message.h>

#include "reelq/v1/jobs.pb.h"
#include "reelq/v1/models.pb.h"
#include "summary.h"

namespace reelq::cli {

std::string StateName(v1::JobState state);                  // "succeeded"
std::string PhaseName(v1::JobPhase phase);                  // "generating"; "" when unspecified
std::string ErrorCategoryName(v1::ErrorCategory category);  // "rate_limited"
// One line on what an error means and what RetryJob would do, for the categories whose name
// does not say it (create_outcome_unknown); "" for the others.
std::string ErrorCategoryMeaning(v1::ErrorCategory category);
std::string FormatTimestamp(const google::protobuf::Timestamp& ts);  // RFC 3339, "-" when unset

// 0.8s, 42s, 3m05s, 1h02m; "-" when unknown.
std::string FormatSeconds(std::optional<double> seconds);

// Columns padded to their widest cell, separated by two spaces; no trailing spaces.
std::string FormatTable(const std::vector<std::string>& headers,
                        const std::vector<std::vector<std::string>>& rows);

// "[#####.....] 37/50 succeeded 35 failed 2 running 8" (cancelled and pending when non-zero).
// `width` is the number of cells between the brackets.
std::string FormatProgressBar(const v1::BatchProgress& progress, int width = 30);

// A line for logs (non-TTY stderr): "batch B: 37/50 done, succeeded 35 failed 2 running 8 (1m10s)"
std::string FormatProgressLine(const v1::BatchProgress& progress, double elapsed_seconds);

// The per-model table printed when a batch is done.
std::string FormatBatchSummary(const std::vector<ModelSummary>& rows);

std::string FormatJobStatus(const v1::JobStatus& job);              // `reelq get`
std::string FormatJobList(const std::vector<v1::JobStatus>& jobs);  // `reelq list`
std::string FormatEvent(const v1::JobEvent& event);                 // one line of `reelq watch`
std::string FormatModels(const v1::ListModelsResponse& models);     // `reelq models`
std::string FormatStats(const v1::GetStatsResponse& stats);         // `reelq stats`

// Protobuf JSON mapping (lowerCamel names, enums by name, zero values printed).
std::string ToJson(const google::protobuf::Message& message, bool pretty);

}  // namespace reelq::cli
