#include "format.h"

#include "bytes_json.h"
#include "money.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <sstream>

#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>
#include <nlohmann/json.hpp>

namespace reelq::cli {
namespace {

std::string LowerSuffix(const std::string& name, std::string_view prefix) {
  std::string out = name.starts_with(prefix) ? name.substr(prefix.size()) : name;
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string Count(uint64_t n) { return std::to_string(n); }

}  // namespace

std::string StateName(v1::JobState state) {
  return LowerSuffix(v1::JobState_Name(state), "JOB_STATE_");
}

std::string PhaseName(v1::JobPhase phase) {
  if (phase == v1::JOB_PHASE_UNSPECIFIED) return "";
  return LowerSuffix(v1::JobPhase_Name(phase), "JOB_PHASE_");
}

std::string ErrorCategoryName(v1::ErrorCategory category) {
  return LowerSuffix(v1::ErrorCategory_Name(category), "ERROR_CATEGORY_");
}

std::string ErrorCategoryMeaning(v1::ErrorCategory category) {
  if (category == v1::ERROR_CATEGORY_CREATE_OUTCOME_UNKNOWN) {
    return "a create may have started (and billed) a generation that the provider cannot look "
           "up, so reelq did not create again; `reelq retry` (RetryJob) starts, and pays for, a "
           "new generation";
  }
  return "";
}

std::string FormatTimestamp(const google::protobuf::Timestamp& ts) {
  if (ts.seconds() == 0 && ts.nanos() == 0) return "-";
  return google::protobuf::util::TimeUtil::ToString(ts);
}

std::string FormatSeconds(std::optional<double> seconds) {
  if (!seconds || !std::isfinite(*seconds) || *seconds < 0) return "-";
  char buf[32];
  const double s = *seconds;
  if (s < 10) {
    std::snprintf(buf, sizeof buf, "%.1fs", s);
  } else if (s < 60) {
    std::snprintf(buf, sizeof buf, "%.0fs", s);
  } else if (s < 3600) {
    const auto total = static_cast<long>(std::lround(s));
    std::snprintf(buf, sizeof buf, "%ldm%02lds", total / 60, total % 60);
  } else {
    const auto minutes = static_cast<long>(std::lround(s / 60));
    std::snprintf(buf, sizeof buf, "%ldh%02ldm", minutes / 60, minutes % 60);
  }
  return buf;
}

std::string FormatTable(const std::vector<std::string>& headers,
                        const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths(headers.size(), 0);
  auto measure = [&](const std::vector<std::string>& row) {
    for (size_t i = 0; i < row.size() && i < widths.size(); ++i)
      widths[i] = std::max(widths[i], row[i].size());
  };
  measure(headers);
  for (const auto& row : rows) measure(row);
  std::string out;
  auto emit = [&](const std::vector<std::string>& row) {
    std::string line;
    for (size_t i = 0; i < widths.size(); ++i) {
      const std::string cell = i < row.size() ? row[i] : "";
      line += cell;
      if (i + 1 < widths.size()) line += std::string(widths[i] - cell.size() + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  };
  emit(headers);
  for (const auto& row : rows) emit(row);
  return out;
}

std::string FormatProgressBar(const v1::BatchProgress& progress, int width) {
  width = std::max(width, 1);
  const uint64_t done = uint64_t{progress.succeeded()} + progress.failed() + progress.cancelled();
  const uint64_t total = progress.total();
  int filled = 0;
  if (total > 0) {
    filled = static_cast<int>(std::min<uint64_t>(done, total) * width / total);
  }
  std::string out = "[" + std::string(filled, '#') + std::string(width - filled, '.') + "] ";
  out += Count(done) + "/" + Count(total);
  out += " succeeded " + Count(progress.succeeded());
  out += " failed " + Count(progress.failed());
  if (progress.cancelled() > 0) out += " cancelled " + Count(progress.cancelled());
  out += " running " + Count(progress.running());
  if (progress.pending() > 0) out += " pending " + Count(progress.pending());
  return out;
}

std::string FormatProgressLine(const v1::BatchProgress& progress, double elapsed_seconds) {
  const uint64_t done = uint64_t{progress.succeeded()} + progress.failed() + progress.cancelled();
  std::string out = "batch " + progress.batch_id() + ": " + Count(done) + "/" +
                    Count(progress.total()) + " done, succeeded " + Count(progress.succeeded()) +
                    " failed " + Count(progress.failed());
  if (progress.cancelled() > 0) out += " cancelled " + Count(progress.cancelled());
  out += " running " + Count(progress.running()) + " pending " + Count(progress.pending());
  out += " (" + FormatSeconds(elapsed_seconds) + ")";
  return out;
}

std::string FormatBatchSummary(const std::vector<ModelSummary>& rows) {
  std::vector<std::vector<std::string>> cells;
  bool any_unfinished = false;
  for (const auto& row : rows) any_unfinished = any_unfinished || row.unfinished > 0;
  for (const auto& row : rows) {
    std::vector<std::string> line = {row.model, Count(row.jobs), Count(row.succeeded),
                                     Count(row.failed), Count(row.cancelled)};
    if (any_unfinished) line.push_back(Count(row.unfinished));
    line.push_back(FormatSeconds(row.MeanSeconds()));
    line.push_back(FormatSeconds(row.MeanGenerationSeconds()));
    cells.push_back(std::move(line));
  }
  std::vector<std::string> headers = {"MODEL", "JOBS", "SUCCEEDED", "FAILED", "CANCELLED"};
  if (any_unfinished) headers.push_back("UNFINISHED");
  headers.push_back("MEAN TIME");
  headers.push_back("MEAN GENERATION");
  return FormatTable(headers, cells);
}

std::string FormatJobStatus(const v1::JobStatus& job) {
  std::ostringstream out;
  const auto& spec = job.spec();
  std::string state = StateName(job.state());
  if (!PhaseName(job.phase()).empty()) state += " (" + PhaseName(job.phase()) + ")";
  out << "job        " << job.job_id() << "\n";
  out << "state      " << state << "\n";
  if (!spec.tenant().empty()) out << "tenant     " << spec.tenant() << "\n";
  if (!spec.batch_id().empty()) out << "batch      " << spec.batch_id() << "\n";
  out << "model      " << (job.model().empty() ? "-" : job.model());
  if (!job.account().empty()) out << " (account " << job.account() << ")";
  out << "\n";
  out << "attempt    " << job.attempt() << "/" << job.max_attempts() << "\n";
  if (!spec.prompt().empty()) {
    std::string prompt = spec.prompt();
    if (prompt.size() > 200) prompt = prompt.substr(0, 197) + "...";
    out << "prompt     " << prompt << "\n";
  }
  for (int i = 0; i < spec.shots_size(); ++i) {
    out << "shot " << i + 1 << "     " << spec.shots(i).duration_seconds() << "s "
        << spec.shots(i).prompt() << "\n";
  }
  out << "clip       " << spec.duration_seconds() << "s "
      << (spec.aspect_ratio().empty() ? "16:9" : spec.aspect_ratio()) << " "
      << (spec.resolution().empty() ? "720p" : spec.resolution()) << "\n";
  if (job.waiting() == "funds") {
    out << "waiting    for funds: the wallet's available balance must reach "
        << FormatUsd(job.waiting_need_micros())
        << " (an admin tops it up: reelq admin top-up TENANT USD)\n";
  } else if (!job.waiting().empty()) {
    out << "waiting    for " << job.waiting() << "\n";
  }
  if (!job.upstream_task_id().empty()) out << "upstream   " << job.upstream_task_id() << "\n";
  if (!job.worker().empty()) out << "worker     " << job.worker() << "\n";
  if (!job.output_url().empty()) {
    out << "output     " << job.output_url() << "\n";
  } else if (!job.output_key().empty()) {
    out << "output     " << job.output_key() << "\n";
  }
  if (!job.sha256().empty()) out << "sha256     " << job.sha256() << "\n";
  if (job.has_error() && job.error().category() != v1::ERROR_CATEGORY_UNSPECIFIED) {
    out << "error      " << ErrorCategoryName(job.error().category()) << ": "
        << job.error().message();
    if (!job.error().provider_code().empty()) out << " [" << job.error().provider_code() << "]";
    out << "\n";
    const std::string meaning = ErrorCategoryMeaning(job.error().category());
    if (!meaning.empty()) out << "meaning    " << meaning << "\n";
  }
  if (!spec.webhook_url().empty()) out << "webhook    " << spec.webhook_url() << "\n";
  if (const auto& w = job.webhook(); !w.delivery_id().empty()) {
    out << "delivery   " << w.event_type() << " " << w.state() << ", " << w.attempts()
        << " attempt(s)";
    if (w.last_status() != 0) out << ", last HTTP " << w.last_status();
    if (!w.last_error().empty()) out << ", last error: " << w.last_error();
    if (w.has_next_attempt_at()) out << ", next " << FormatTimestamp(w.next_attempt_at());
    out << "\n";
  }
  out << "created    " << FormatTimestamp(job.created_at()) << "\n";
  out << "updated    " << FormatTimestamp(job.updated_at()) << "\n";
  if (job.transitions_size() > 0) {
    out << "history\n";
    for (const auto& t : job.transitions()) {
      out << "  " << FormatTimestamp(t.at()) << "  " << StateName(t.state());
      if (!PhaseName(t.phase()).empty()) out << "/" << PhaseName(t.phase());
      if (!t.detail().empty()) out << "  " << t.detail();
      out << "\n";
    }
  }
  return out.str();
}

std::string FormatJobList(const std::vector<v1::JobStatus>& jobs) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& job : jobs) {
    std::string state = StateName(job.state());
    if (!PhaseName(job.phase()).empty()) state += "/" + PhaseName(job.phase());
    std::string prompt = job.spec().prompt();
    if (prompt.empty() && job.spec().shots_size() > 0)
      prompt = std::to_string(job.spec().shots_size()) + " shots";
    if (prompt.size() > 48) prompt = prompt.substr(0, 45) + "...";
    rows.push_back({job.job_id(), state, job.model().empty() ? "-" : job.model(),
                    job.spec().tenant(), job.spec().batch_id(), FormatTimestamp(job.created_at()),
                    prompt});
  }
  return FormatTable({"JOB", "STATE", "MODEL", "TENANT", "BATCH", "CREATED", "PROMPT"}, rows);
}

std::string FormatEvent(const v1::JobEvent& event) {
  std::string line =
      FormatTimestamp(event.at()) + "  " + event.job_id() + "  " + StateName(event.state());
  if (!event.parent_job_id().empty()) {
    line += "  [#" + std::to_string(event.child_index()) + " of " + event.parent_job_id() + "]";
  }
  if (!PhaseName(event.phase()).empty()) line += "/" + PhaseName(event.phase());
  if (!event.model().empty()) line += "  model=" + event.model();
  if (event.attempt() > 0) line += "  attempt=" + std::to_string(event.attempt());
  if (event.has_error() && event.error().category() != v1::ERROR_CATEGORY_UNSPECIFIED) {
    line +=
        "  error=" + ErrorCategoryName(event.error().category()) + ": " + event.error().message();
  }
  if (!event.detail().empty()) line += "  " + event.detail();
  if (event.has_batch()) line += "  [" + FormatProgressBar(event.batch(), 10) + "]";
  return line;
}

std::string ToJson(const google::protobuf::Message& message, bool pretty) {
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  std::string out;
  const auto status = google::protobuf::util::MessageToJsonString(message, &out, options);
  if (!status.ok()) return "{\"error\":\"cannot print as JSON\"}";
  // The spec's text fields are `bytes` on the wire (base64 in protobuf's JSON); print them as
  // the text they are.
  auto doc = nlohmann::ordered_json::parse(out, nullptr, false);
  if (doc.is_discarded()) return out;
  BytesBase64ToText(doc, *message.GetDescriptor());
  return pretty ? doc.dump(1) : doc.dump();
}

}  // namespace reelq::cli
