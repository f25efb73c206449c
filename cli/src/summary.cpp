#include "summary.h"

#include <map>

#include <google/protobuf/util/time_util.h>

namespace reelq::cli {
namespace {

using google::protobuf::Timestamp;

bool IsSet(const Timestamp& ts) { return ts.seconds() != 0 || ts.nanos() != 0; }

double Seconds(const Timestamp& ts) { return ts.seconds() + ts.nanos() / 1e9; }

}  // namespace

std::optional<double> ModelSummary::MeanSeconds() const {
  if (timed == 0) return std::nullopt;
  return total_seconds / static_cast<double>(timed);
}

std::optional<double> ModelSummary::MeanGenerationSeconds() const {
  if (generated == 0) return std::nullopt;
  return generation_seconds / static_cast<double>(generated);
}

bool IsTerminal(v1::JobState state) {
  return state == v1::JOB_STATE_SUCCEEDED || state == v1::JOB_STATE_FAILED ||
         state == v1::JOB_STATE_CANCELLED;
}

std::optional<double> TimeToTerminal(const v1::JobStatus& job) {
  if (!IsTerminal(job.state())) return std::nullopt;
  std::optional<double> start;
  if (job.has_created_at() && IsSet(job.created_at())) {
    start = Seconds(job.created_at());
  } else if (job.transitions_size() > 0 && IsSet(job.transitions(0).at())) {
    start = Seconds(job.transitions(0).at());
  }
  std::optional<double> end;
  for (const auto& t : job.transitions()) {
    if (IsTerminal(t.state()) && IsSet(t.at())) {
      end = Seconds(t.at());
      break;
    }
  }
  if (!end && job.has_updated_at() && IsSet(job.updated_at())) end = Seconds(job.updated_at());
  if (!start || !end || *end < *start) return std::nullopt;
  return *end - *start;
}

std::optional<double> GenerationTime(const v1::JobStatus& job) {
  if (job.state() != v1::JOB_STATE_SUCCEEDED) return std::nullopt;
  const auto& ts = job.transitions();
  // The last attempt's start: its SUBMITTING phase, or failing that the last entry to RUNNING.
  int start = -1;
  for (int i = ts.size() - 1; i >= 0 && start < 0; --i) {
    if (ts[i].state() == v1::JOB_STATE_RUNNING && ts[i].phase() == v1::JOB_PHASE_SUBMITTING)
      start = i;
  }
  for (int i = ts.size() - 1; i >= 0 && start < 0; --i) {
    if (ts[i].state() == v1::JOB_STATE_RUNNING) {
      start = i;
      while (start > 0 && ts[start - 1].state() == v1::JOB_STATE_RUNNING) --start;
    }
  }
  if (start < 0 || !IsSet(ts[start].at())) return std::nullopt;
  for (int i = start + 1; i < ts.size(); ++i) {
    const bool end = ts[i].phase() == v1::JOB_PHASE_TRANSFERRING || IsTerminal(ts[i].state());
    if (end && IsSet(ts[i].at())) {
      const double seconds = Seconds(ts[i].at()) - Seconds(ts[start].at());
      if (seconds < 0) return std::nullopt;
      return seconds;
    }
  }
  return std::nullopt;
}

std::vector<ModelSummary> SummarizeByModel(const std::vector<v1::JobStatus>& jobs) {
  std::map<std::string, ModelSummary> by_model;
  ModelSummary total;
  total.model = "total";
  for (const auto& job : jobs) {
    const std::string model = job.model().empty() ? "(not routed)" : job.model();
    ModelSummary& row = by_model[model];
    row.model = model;
    for (ModelSummary* s : {&row, &total}) {
      ++s->jobs;
      switch (job.state()) {
        case v1::JOB_STATE_SUCCEEDED:
          ++s->succeeded;
          break;
        case v1::JOB_STATE_FAILED:
          ++s->failed;
          break;
        case v1::JOB_STATE_CANCELLED:
          ++s->cancelled;
          break;
        default:
          ++s->unfinished;
          break;
      }
      if (auto t = TimeToTerminal(job)) {
        s->total_seconds += *t;
        ++s->timed;
      }
      if (auto g = GenerationTime(job)) {
        s->generation_seconds += *g;
        ++s->generated;
      }
    }
  }
  std::vector<ModelSummary> rows;
  for (auto& [name, row] : by_model) rows.push_back(row);
  rows.push_back(total);
  return rows;
}

}  // namespace reelq::cli
