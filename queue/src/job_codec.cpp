// The one place where the job record's members meet their Redis hash field names (and the
// scripts in queue/lua use the same names). Every read of a job goes through Decode here.
#include <algorithm>
#include <array>
#include <charconv>
#include <map>

#include <nlohmann/json.hpp>

#include "job_codec.h"
#include "reelq/common/utf8.h"
#include "reelq/queue/job_record.h"

namespace reelq::queue {
namespace {

constexpr std::array<std::pair<JobState, std::string_view>, 6> kStateNames{{
    {JobState::kPending, "PENDING"},
    {JobState::kDispatched, "DISPATCHED"},
    {JobState::kRunning, "RUNNING"},
    {JobState::kSucceeded, "SUCCEEDED"},
    {JobState::kFailed, "FAILED"},
    {JobState::kCancelled, "CANCELLED"},
}};

constexpr std::array<std::pair<JobPhase, std::string_view>, 4> kPhaseNames{{
    {JobPhase::kNone, ""},
    {JobPhase::kSubmitting, "SUBMITTING"},
    {JobPhase::kGenerating, "GENERATING"},
    {JobPhase::kTransferring, "TRANSFERRING"},
}};

std::vector<std::string> SplitCommas(std::string_view text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string_view::npos) comma = text.size();
    if (comma > start) out.emplace_back(text.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

// "state|phase|at|detail" (detail last: it may hold '|').
std::optional<TransitionRecord> ParseHistoryEntry(int seq, const std::string& text) {
  auto split = SplitLeading<3>(text, '|');
  if (!split) return std::nullopt;
  const auto& parts = split->fields;
  auto state = JobStateFromString(parts[0]);
  auto phase = JobPhaseFromString(parts[1]);
  if (!state || !phase) return std::nullopt;
  return TransitionRecord{seq, *state, *phase, ToInt(parts[2]),
                          ValidUtf8(text.substr(split->rest))};
}

std::optional<AttemptError> ParseAttemptError(const std::string& text) {
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return std::nullopt;
  AttemptError err;
  err.attempt = j.value("attempt", 0);
  err.category_name = j.value("category", "");
  err.category = ErrorCategoryFromString(err.category_name);
  err.message = j.value("message", "");
  err.code = j.value("code", "");
  err.model = j.value("model", "");
  err.account = j.value("account", "");
  err.at_ms = j.value("at", int64_t{0});
  return err;
}

Error Corrupt(const std::string& id, std::string_view field, const std::string& value) {
  return Error{ErrorCategory::kInternal, "job " + id + ": corrupt record, field '" +
                                             std::string(field) + "' holds '" + value + "'"};
}

}  // namespace

std::string_view ToString(JobState state) {
  for (const auto& [s, name] : kStateNames) {
    if (s == state) return name;
  }
  return "";
}

std::optional<JobState> JobStateFromString(std::string_view text) {
  for (const auto& [s, name] : kStateNames) {
    if (name == text) return s;
  }
  return std::nullopt;
}

bool IsTerminal(JobState state) {
  return state == JobState::kSucceeded || state == JobState::kFailed ||
         state == JobState::kCancelled;
}

std::string_view ToString(JobPhase phase) {
  for (const auto& [p, name] : kPhaseNames) {
    if (p == phase) return name;
  }
  return "";
}

std::optional<JobPhase> JobPhaseFromString(std::string_view text) {
  for (const auto& [p, name] : kPhaseNames) {
    if (name == text) return p;
  }
  return std::nullopt;
}

std::optional<ErrorCategory> ErrorCategoryFromString(std::string_view text) {
  // Every category up to kInternal, the last one; a category added before it is found too.
  for (int c = 0; c <= static_cast<int>(ErrorCategory::kInternal); ++c) {
    const auto category = static_cast<ErrorCategory>(c);
    if (ToString(category) == text) return category;
  }
  return std::nullopt;
}

Result<JobRecord> JobRecord::Decode(std::string id, const Fields& fields) {
  JobRecord job;
  job.id = std::move(id);
  std::map<int, TransitionRecord> history;
  std::map<int, AttemptError> errors;
  bool has_state = false, has_attempt = false, has_updated = false, has_max_attempts = false;
  for (const auto& [name, value] : fields) {
    if (name.size() > 2 && name[1] == ':' && (name[0] == 'h' || name[0] == 'e')) {
      const int seq = static_cast<int>(ToInt(std::string_view(name).substr(2), -1));
      if (seq < 0) continue;  // a corrupt entry harms no other entry
      if (name[0] == 'h') {
        if (auto t = ParseHistoryEntry(seq, value)) history[seq] = std::move(*t);
      } else if (auto e = ParseAttemptError(value)) {
        errors[seq] = std::move(*e);
      }
      continue;
    }
    if (name == field::kState) {
      auto state = JobStateFromString(value);
      if (!state) return std::unexpected(Corrupt(job.id, name, value));
      job.state = *state;
      has_state = true;
    } else if (name == field::kPhase) {
      auto phase = JobPhaseFromString(value);
      if (!phase) return std::unexpected(Corrupt(job.id, name, value));
      job.phase = *phase;
    } else if (name == field::kSpec) {
      job.spec_bytes = value;
    } else if (name == field::kTenant) {
      job.tenant = value;
    } else if (name == field::kBatch) {
      job.batch = value;
    } else if (name == field::kIdempotencyKey) {
      job.idempotency_key = value;
    } else if (name == field::kModels) {
      job.candidate_models = SplitCommas(value);
    } else if (name == field::kPreferFirst) {
      job.prefer_first = value == "1";
    } else if (name == field::kPriority) {
      job.priority = static_cast<int>(ToInt(value));
    } else if (name == field::kStartDeadline) {
      job.start_deadline_ms = ToInt(value);
    } else if (name == field::kFinishDeadline) {
      job.finish_deadline_ms = ToInt(value);
    } else if (name == field::kModel) {
      job.model = value;
    } else if (name == field::kAccount) {
      job.account = value;
    } else if (name == field::kUpstream) {
      job.upstream = value;
    } else if (name == field::kWorker) {
      job.worker = value;
    } else if (name == field::kToken) {
      job.token = value;
    } else if (name == field::kAttempt) {
      job.attempt = static_cast<int>(ToInt(value));
      has_attempt = true;
    } else if (name == field::kMaxAttempts) {
      job.max_attempts = static_cast<int>(ToInt(value));
      has_max_attempts = true;
    } else if (name == field::kOutputKey) {
      job.output_key = value;
    } else if (name == field::kOutputUrl) {
      job.output_url = value;
    } else if (name == field::kSidecarKey) {
      job.sidecar_key = value;
    } else if (name == field::kSha256) {
      job.sha256 = value;
    } else if (name == field::kClipSeconds) {
      job.clip_seconds = ToDouble(value);
    } else if (name == field::kOutputs) {
      std::vector<std::string_view> parts;
      for (size_t at = 0;;) {
        const size_t sep = value.find('\x1f', at);
        parts.push_back(std::string_view(value).substr(at, sep - at));
        if (sep == std::string::npos) break;
        at = sep + 1;
      }
      if (parts.size() != 5) return std::unexpected(Corrupt(job.id, name, value));
      job.output_key = parts[0];
      job.sidecar_key = parts[1];
      job.sha256 = parts[2];
      job.clip_seconds = ToDouble(std::string(parts[3]));
      job.output_url = parts[4];
    } else if (name == field::kErrorCategory) {
      job.error_category_name = value;
      job.error_category = ErrorCategoryFromString(value);
    } else if (name == field::kErrorMessage) {
      job.error_message = ValidUtf8(value);
    } else if (name == field::kErrorCode) {
      job.error_code = ValidUtf8(value);
    } else if (name == field::kCreated) {
      job.created_ms = ToInt(value);
    } else if (name == field::kUpdated) {
      job.updated_ms = ToInt(value);
      has_updated = true;
    } else if (name == field::kGenerated) {
      job.generated_ms = ToInt(value);
    } else if (name == field::kKind) {
      job.kind = value;
    } else if (name == field::kChildren) {
      job.children = SplitCommas(value);
    } else if (name == field::kChildrenOk) {
      job.children_ok = static_cast<int>(ToInt(value));
    } else if (name == field::kParent) {
      job.parent = value;
    } else if (name == field::kChildIndex) {
      job.child_index = static_cast<int>(ToInt(value));
    } else if (name == field::kSheetKey) {
      job.sheet_key = value;
    } else if (name == field::kPicked) {
      job.picked = value;
    } else if (name == field::kChain) {
      job.chain = value == "1";
    } else if (name == field::kChainFrame) {
      job.chain_frame = value;
    } else if (name == field::kLastFrame) {
      job.last_frame_key = value;
    } else if (name == field::kHold) {
      job.reserved_micros = ToInt(value);
    } else if (name == field::kCost) {
      job.cost_micros = ToInt(value);
    } else if (name == field::kProviderCharge) {
      job.provider_charge_micros = ToInt(value);
    } else if (name == field::kBill) {
      job.billed = value == "1";
    } else if (name == field::kWebhook) {
      job.webhook = value;
    } else if (name == field::kWaiting) {
      job.waiting = ValidUtf8(value);
    } else if (name == field::kWaitNeed) {
      job.waiting_need_micros = ToInt(value);
    }
  }
  if (!has_state) return std::unexpected(Corrupt(job.id, field::kState, "(missing)"));
  // Only a PENDING job waits (a record that left PENDING some other way may keep the fields).
  if (job.state != JobState::kPending || job.waiting.empty()) {
    job.waiting.clear();
    job.waiting_need_micros = 0;
  }
  // What submit.lua leaves out of a new job (AppendNewJobs): its first attempt, its attempts
  // when the default, its update time (= created) and its first history entry, "submitted" at
  // created.
  if (!has_attempt) job.attempt = 1;
  if (!has_max_attempts) job.max_attempts = kDefaultMaxAttempts;
  if (!has_updated) job.updated_ms = job.created_ms;
  if (job.created_ms != 0 && !history.contains(1)) {
    history[1] =
        TransitionRecord{1, JobState::kPending, JobPhase::kNone, job.created_ms, "submitted"};
  }
  for (auto& [seq, t] : history) job.history.push_back(std::move(t));
  for (auto& [seq, e] : errors) job.errors.push_back(std::move(e));
  return job;
}

namespace {

// A new job's named fields for submit.lua, in the order they are sent: the call-only ones
// (`id`, `score`, `budget`: not stored) first, then the stored ones. Only what differs from
// the decoder's default is stored: every field counts in the bytes a queued job holds in Redis
// and in what submit.lua's HSET costs (issue 11), and a hash stays in Redis's compact encoding
// only while it is small. `id` names the job in the call; the key holds it, not a field.
// Left out, and supplied by every reader (JobRecord::Decode; common.lua's read_job,
// read_record and queue_score): attempt 1, phase none, updated = created, the first history
// entry "submitted" at created, seq 1, `score` (JobStore::PendingScore of priority, start
// deadline and created), `max_attempts` kDefaultMaxAttempts, `secs` 0 and `res` ''. submit.lua adds
// `state` PENDING and `created`.
template <class Add>
void ForEachNewJobField(const NewJob& job, const std::string& score, Add&& add) {
  add(field::kId, job.id, false);
  add(field::kScore, score, true);
  if (job.batch_budget_micros != 0) add("budget", std::to_string(job.batch_budget_micros), true);
  add(field::kTenant, job.tenant, true);
  std::string models;
  for (const auto& m : job.candidate_models) {
    if (!models.empty()) models += ',';
    models += m;
  }
  add(field::kModels, std::move(models), true);
  if (job.max_attempts != kDefaultMaxAttempts) {
    add(field::kMaxAttempts, std::to_string(job.max_attempts), true);
  }
  add(field::kSpec, job.spec_bytes, false);
  if (job.billed_seconds != 0) add(field::kBilledSeconds, std::to_string(job.billed_seconds), true);
  if (!job.resolution.empty()) add(field::kResolution, job.resolution, true);
  if (!job.batch.empty()) add(field::kBatch, job.batch, true);
  if (!job.idempotency_key.empty()) add(field::kIdempotencyKey, job.idempotency_key, false);
  if (job.start_deadline_ms != 0) {
    add(field::kStartDeadline, std::to_string(job.start_deadline_ms), true);
  }
  if (job.finish_deadline_ms != 0) {
    add(field::kFinishDeadline, std::to_string(job.finish_deadline_ms), true);
  }
  if (job.priority != 0) add(field::kPriority, std::to_string(job.priority), true);
  if (job.prefer_first) add(field::kPreferFirst, "1", true);
  if (job.bill) add(field::kBill, "1", true);
  if (!job.webhook.empty()) add(field::kWebhook, job.webhook, true);
  if (!job.kind.empty()) {
    std::string children;
    for (const auto& c : job.children) {
      if (!children.empty()) children += ',';
      children += c;
    }
    add(field::kKind, job.kind, false);
    add(field::kChildren, std::move(children), false);
    add(field::kChildCount, std::to_string(job.children.size()), false);
    if (job.chain) add(field::kChain, "1", false);
  }
  if (!job.parent.empty()) {
    add(field::kParent, job.parent, false);
    add(field::kChildIndex, std::to_string(job.child_index), false);
  }
}

}  // namespace

void AppendNewJobs(std::vector<std::string>& args, const std::vector<NewJob>& jobs, int64_t now) {
  // The call's fields: a field every job of the call holds with the same value (the tenant,
  // batch, models and settings of a SubmitBatch chunk) is sent once for the call, not once per
  // job; each argument costs Redis ~1,000 instructions to parse, hand to Lua and free. A job's
  // content (spec, idempotency key, group fields) is never shared.
  std::vector<std::string> scores;
  scores.reserve(jobs.size());
  for (const auto& job : jobs) {
    scores.push_back(
        FormatNumber(JobStore::PendingScore(job.priority, job.start_deadline_ms, now)));
  }
  std::vector<std::pair<const char*, std::string>> shared;
  ForEachNewJobField(jobs.front(), scores.front(),
                     [&](const char* name, auto&& value, bool shareable) {
                       if (shareable)
                         shared.emplace_back(name, std::forward<decltype(value)>(value));
                     });
  std::vector<bool> in_every(shared.size());
  for (size_t j = 1; j < jobs.size() && !shared.empty(); ++j) {
    std::fill(in_every.begin(), in_every.end(), false);
    ForEachNewJobField(jobs[j], scores[j], [&](const char* name, const auto& value, bool) {
      for (size_t k = 0; k < shared.size(); ++k) {
        if (std::string_view(shared[k].first) == name) in_every[k] = shared[k].second == value;
      }
    });
    size_t kept = 0;
    for (size_t k = 0; k < shared.size(); ++k) {
      if (!in_every[k]) continue;
      if (k != kept) shared[kept] = std::move(shared[k]);
      ++kept;
    }
    shared.resize(kept);
    in_every.resize(kept);
  }
  args.push_back(std::to_string(shared.size()));
  for (auto& [name, value] : shared) {
    args.emplace_back(name);
    args.push_back(value);
  }
  for (size_t j = 0; j < jobs.size(); ++j) {
    const size_t header = args.size();
    args.emplace_back();
    ForEachNewJobField(jobs[j], scores[j], [&](const char* name, auto&& value, bool) {
      for (const auto& s : shared) {
        if (std::string_view(s.first) == name) return;
      }
      args.emplace_back(name);
      args.emplace_back(std::forward<decltype(value)>(value));
    });
    args[header] = std::to_string((args.size() - header - 1) / 2);
  }
}

Result<LeasedJob> DecodeLeasedJob(const Fields& fields) {
  LeasedJob job;
  job.max_attempts = kDefaultMaxAttempts;  // a record that states none (AppendNewJobs)
  for (const auto& [name, value] : fields) {
    if (name == field::kId) {
      job.id = value;
    } else if (name == field::kToken) {
      job.token = value;
    } else if (name == field::kSpec) {
      job.spec_bytes = value;
    } else if (name == field::kModel) {
      job.model = value;
    } else if (name == field::kAccount) {
      job.account = value;
    } else if (name == field::kAttempt) {
      job.attempt = static_cast<int>(ToInt(value, 1));
    } else if (name == field::kMaxAttempts) {
      // A lease entry (common_lease.lua) names every field: '' is a record that states none.
      if (!value.empty()) job.max_attempts = static_cast<int>(ToInt(value, 1));
    } else if (name == field::kUpstream) {
      job.upstream = value;
    } else if (name == field::kTenant) {
      job.tenant = value;
    } else if (name == field::kBatch) {
      job.batch = value;
    } else if (name == field::kFinishDeadline) {
      job.finish_deadline_ms = ToInt(value);
    } else if (name == field::kCreated) {
      job.created_ms = ToInt(value);
    } else if (name == field::kCreateIntent) {
      job.create_intent = value;
    } else if (name == field::kKind) {
      job.kind = value;
    } else if (name == field::kParent) {
      job.parent = value;
    } else if (name == field::kChildIndex) {
      job.child_index = static_cast<int>(ToInt(value));
    } else if (name == field::kChainFrame) {
      job.chain_frame = value;
    }
  }
  if (job.id.empty() || job.token.empty()) {
    return std::unexpected(
        Error{ErrorCategory::kInternal, "lease: a leased job came back without its id or token"});
  }
  // "<sent_ms>:<attempt>"; an intent of an earlier attempt cannot survive (fail.lua clears
  // it), but one that names another attempt is ignored rather than trusted.
  if (const auto colon = job.create_intent.find(':');
      colon != std::string::npos &&
      ToInt(std::string_view(job.create_intent).substr(colon + 1)) == job.attempt) {
    job.create_intent_ms = ToInt(std::string_view(job.create_intent).substr(0, colon));
  }
  return job;
}

Result<LeasedJob> DecodeLeasedEntry(std::string_view entry) {
  // common_lease.lua's leased_entry: these names in this order, then `spec` to the end (or, "J1",
  // the same values as a JSON array). An entry of another layout does not line up: refused.
  static constexpr std::array<const char*, 16> kNames{
      field::kId,      field::kToken,          field::kModel,      field::kAccount,
      field::kAttempt, field::kMaxAttempts,    field::kUpstream,   field::kTenant,
      field::kBatch,   field::kFinishDeadline, field::kCreated,    field::kCreateIntent,
      field::kKind,    field::kParent,         field::kChildIndex, field::kChainFrame};
  constexpr char kSep = '\x1f';
  auto refuse = [&](std::string_view what) -> Result<LeasedJob> {
    return std::unexpected(
        Error{ErrorCategory::kInternal,
              "lease: a leased job's entry is not in the layout this worker reads (" +
                  std::string(what) + "; entry starts " + std::string(entry.substr(0, 40)) + ")"});
  };
  auto next = [&](std::string_view& rest, std::string_view& out) {
    const auto at = rest.find(kSep);
    if (at == std::string_view::npos) return false;
    out = rest.substr(0, at);
    rest.remove_prefix(at + 1);
    return true;
  };
  std::string_view rest = entry;
  std::string_view part;
  Fields fields;
  fields.reserve(kNames.size() + 1);
  if (entry.starts_with("J1")) {
    // A job one of whose values holds the separator: its values as a JSON array, then the spec.
    const auto at = entry.find(kSep);
    if (at == std::string_view::npos) return refuse("no spec after the JSON values");
    const auto values = nlohmann::json::parse(entry.substr(2, at - 2), nullptr, false);
    if (!values.is_array() || values.size() != kNames.size()) {
      return refuse("expected a JSON array of " + std::to_string(kNames.size()) + " values");
    }
    for (size_t i = 0; i < kNames.size(); ++i) {
      if (!values[i].is_string()) return refuse(std::string("expected a string for ") + kNames[i]);
      fields.emplace_back(kNames[i], values[i].get<std::string>());
    }
    fields.emplace_back(field::kSpec, std::string(entry.substr(at + 1)));
    return DecodeLeasedJob(fields);
  }
  if (!next(rest, part) || part != "L1") return refuse("no L1 tag");
  for (const char* name : kNames) {
    std::string_view value;
    if (!next(rest, part) || part != name || !next(rest, value)) {
      return refuse(std::string("expected field ") + name);
    }
    fields.emplace_back(name, std::string(value));
  }
  if (!next(rest, part) || part != field::kSpec) return refuse("expected field spec last");
  fields.emplace_back(field::kSpec, std::string(rest));
  return DecodeLeasedJob(fields);
}

// An empty field is left out (the scripts read a missing name as ''): every name a script call
// carries is one more argument for Redis to parse and Lua to file, per job.
Fields EncodePhaseChange(const PhaseChange& change) {
  Fields fields{
      {field::kId, change.job_id},
      {field::kToken, change.token},
      {field::kPhase, std::string(ToString(change.phase))},
  };
  if (!change.upstream.empty()) fields.emplace_back(field::kUpstream, change.upstream);
  if (!change.detail.empty()) fields.emplace_back("detail", change.detail);
  return fields;
}

Fields EncodeCompletion(const CompleteRequest& done) {
  Fields fields{
      {field::kId, done.job_id},
      {field::kToken, done.token},
      {field::kOutputKey, done.output_key},
      {field::kClipSeconds, FormatNumber(done.clip_seconds)},
      {"generation_ms", std::to_string(done.generation_ms)},
  };
  if (!done.sidecar_key.empty()) fields.emplace_back(field::kSidecarKey, done.sidecar_key);
  if (!done.sha256.empty()) fields.emplace_back(field::kSha256, done.sha256);
  if (!done.output_url.empty()) fields.emplace_back(field::kOutputUrl, done.output_url);
  // -1: no charge of the provider's own; complete.lua settles at the model's price.
  if (done.charge_micros >= 0) fields.emplace_back("charge", std::to_string(done.charge_micros));
  if (!done.sheet_key.empty()) fields.emplace_back(field::kSheetKey, done.sheet_key);
  if (!done.last_frame_key.empty()) fields.emplace_back(field::kLastFrame, done.last_frame_key);
  return fields;
}

std::string FormatNumber(double v) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  return ec == std::errc() ? std::string(buf, end) : std::string("0");
}

void AppendFields(std::vector<std::string>& args, const Fields& fields) {
  args.push_back(std::to_string(fields.size()));
  for (const auto& [name, value] : fields) {
    args.push_back(name);
    args.push_back(value);
  }
}

int64_t ToInt(std::string_view s, int64_t fallback) {
  int64_t v = fallback;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc()) return fallback;
  return v;
}

double ToDouble(const std::string& s, double fallback) {
  try {
    size_t used = 0;
    double v = std::stod(s, &used);
    return used == 0 ? fallback : v;
  } catch (...) {
    return fallback;
  }
}

}  // namespace reelq::queue
