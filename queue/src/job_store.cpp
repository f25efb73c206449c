#include "reelq/queue/job_store.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <sstream>

#include <nlohmann/json.hpp>

#include "lua_scripts.h"

namespace reelq::queue {
namespace {

using redis::Reply;

const redis::Script& Scripts(std::string_view name) {
  static const auto* scripts = new std::map<std::string, redis::Script, std::less<>>{
      {"submit", redis::Script("submit", lua::k_submit)},
      {"dispatch", redis::Script("dispatch", lua::k_dispatch)},
      {"lease", redis::Script("lease", lua::k_lease)},
      {"heartbeat", redis::Script("heartbeat", lua::k_heartbeat)},
      {"phase", redis::Script("phase", lua::k_phase)},
      {"create_permit", redis::Script("create_permit", lua::k_create_permit)},
      {"complete", redis::Script("complete", lua::k_complete)},
      {"fail", redis::Script("fail", lua::k_fail)},
      {"handback", redis::Script("handback", lua::k_handback)},
      {"reap", redis::Script("reap", lua::k_reap)},
      {"cancel", redis::Script("cancel", lua::k_cancel)},
      {"retry", redis::Script("retry", lua::k_retry)},
      {"sync_config", redis::Script("sync_config", lua::k_sync_config)},
      {"get", redis::Script("get", lua::k_get)},
      {"list", redis::Script("list", lua::k_list)},
      {"stats", redis::Script("stats", lua::k_stats)},
      {"poll_token", redis::Script("poll_token", lua::k_poll_token)},
  };
  return scripts->find(name)->second;
}

int64_t ToInt(std::string_view s, int64_t fallback = 0) {
  int64_t v = fallback;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc()) return fallback;
  return v;
}

double ToDouble(const std::string& s, double fallback = 0) {
  try {
    size_t used = 0;
    double v = std::stod(s, &used);
    return used == 0 ? fallback : v;
  } catch (...) {
    return fallback;
  }
}

std::string Num(double v) {
  std::ostringstream out;
  out.precision(17);
  out << v;
  return out.str();
}

int64_t ReplyInt(const Reply& r) {
  if (r.type == Reply::Type::kInteger) return r.integer;
  return ToInt(r.str);
}

// Script error replies carry a keyword first ("LEASELOST", "NOTRUNNING CANCELLED", ...): the
// one place they become reelq errors.
Error ScriptError(std::string_view script, const std::string& message) {
  auto has = [&](std::string_view word) { return message.find(word) != std::string::npos; };
  if (has("LEASELOST")) return Error{ErrorCategory::kLeaseLost, "another worker holds the job"};
  if (has("NOTRUNNING CANCELLED")) return Error{ErrorCategory::kCancelled, "the job was cancelled"};
  if (has("NOTRUNNING")) {
    return Error{ErrorCategory::kLeaseLost, "the job is no longer running here (" + message + ")"};
  }
  if (has("NOTFOUND")) return Error{ErrorCategory::kNotFound, "no such job"};
  if (has("OWNED")) {
    return Error{ErrorCategory::kFailedPrecondition,
                 "the upstream task is owned by job " + message.substr(message.find("OWNED") + 6)};
  }
  if (has("TERMINAL") || has("NOTFINAL")) {
    return Error{ErrorCategory::kFailedPrecondition,
                 "the job is " + message.substr(message.find(' ') + 1)};
  }
  if (has("SCHEMA")) {
    return Error{ErrorCategory::kFailedPrecondition, "redis schema mismatch: " + message};
  }
  return Error{ErrorCategory::kInternal, "redis script " + std::string(script) + ": " + message};
}

std::map<std::string, std::string> FlatToMap(const Reply& flat) {
  std::map<std::string, std::string> out;
  for (size_t i = 0; i + 1 < flat.elements.size(); i += 2) {
    out[flat.elements[i].str] = flat.elements[i + 1].str;
  }
  return out;
}

std::string Field(const std::map<std::string, std::string>& m, const std::string& key) {
  auto it = m.find(key);
  return it == m.end() ? std::string() : it->second;
}

std::vector<TransitionRecord> ParseHistory(const std::string& text) {
  std::vector<TransitionRecord> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::vector<std::string> parts;
    size_t start = 0;
    for (int i = 0; i < 4; ++i) {
      size_t bar = line.find('|', start);
      if (bar == std::string::npos) break;
      parts.push_back(line.substr(start, bar - start));
      start = bar + 1;
    }
    if (parts.size() < 4) continue;  // a corrupt line harms no other line
    out.push_back(TransitionRecord{static_cast<int>(ToInt(parts[0])), parts[1], parts[2],
                                   ToInt(parts[3]), line.substr(start)});
  }
  return out;
}

JobRecord ToRecord(std::string id, const Reply& row) {
  JobRecord job;
  job.id = std::move(id);
  if (row.elements.size() < 3) return job;
  job.fields = FlatToMap(row.elements[0]);
  const auto& f = job.fields;
  job.spec_bytes = Field(f, "spec");
  job.tenant = Field(f, "tenant");
  job.batch = Field(f, "batch");
  job.state = Field(f, "state");
  job.phase = Field(f, "phase");
  job.model = Field(f, "model");
  job.account = Field(f, "account");
  job.upstream = Field(f, "upstream");
  job.worker = Field(f, "worker");
  job.attempt = static_cast<int>(ToInt(Field(f, "attempt")));
  job.max_attempts = static_cast<int>(ToInt(Field(f, "max_attempts")));
  job.output_key = Field(f, "output_key");
  job.output_url = Field(f, "output_url");
  job.sidecar_key = Field(f, "sidecar_key");
  job.sha256 = Field(f, "sha256");
  job.clip_seconds = ToDouble(Field(f, "clip_seconds"));
  job.error_category = Field(f, "err_cat");
  job.error_message = Field(f, "err_msg");
  job.error_code = Field(f, "err_code");
  job.created_ms = ToInt(Field(f, "created"));
  job.updated_ms = ToInt(Field(f, "updated"));
  job.history = ParseHistory(row.elements[1].str);
  for (const auto& e : row.elements[2].elements) {
    auto j = nlohmann::json::parse(e.str, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object()) continue;
    AttemptError err;
    err.attempt = j.value("attempt", 0);
    err.category = j.value("category", "");
    err.message = j.value("message", "");
    err.code = j.value("code", "");
    err.model = j.value("model", "");
    err.account = j.value("account", "");
    err.at_ms = j.value("at", int64_t{0});
    job.errors.push_back(std::move(err));
  }
  return job;
}

}  // namespace

bool IsTerminal(std::string_view state) {
  return state == kSucceeded || state == kFailed || state == kCancelled;
}

int64_t BatchCounts::Count(std::string_view state) const {
  auto it = by_state.find(std::string(state));
  return it == by_state.end() ? 0 : it->second;
}

bool BatchCounts::Done() const {
  return total > 0 && Count(kSucceeded) + Count(kFailed) + Count(kCancelled) >= total;
}

int64_t Stats::Pending() const {
  int64_t n = delayed;
  for (const auto& [tenant, count] : tenant_pending) n += count;
  return n;
}

JobStore::JobStore(redis::ConnectionPtr connection, std::string prefix, ClockPtr clock)
    : connection_(std::move(connection)), p_(prefix + ":{q}"), clock_(std::move(clock)) {}

double JobStore::PendingScore(int priority, int64_t start_deadline_ms, int64_t created_ms) {
  // Priority in steps of 2^44 ms (~550 years) dominates; then a deadline (earlier first), then
  // age. Jobs without a deadline sort after any deadline within the next ~280 years.
  const int clamped = std::clamp(priority, -100, 100);
  const double base = static_cast<double>(100 - clamped) * 17592186044416.0;
  const int64_t when = start_deadline_ms > 0 ? start_deadline_ms : created_ms + (int64_t{1} << 43);
  return base + static_cast<double>(when);
}

awaitable<Result<Reply>> JobStore::Run(const redis::Script& script, std::vector<std::string> args) {
  args.insert(args.begin(), p_);
  // (A named vector: g++ 12 miscompiles braced lists inside co_await expressions.)
  std::vector<std::string> keys{p_ + ":meta"};
  auto reply = co_await script.Call(*connection_, std::move(keys), std::move(args));
  if (!reply) co_return std::unexpected(reply.error());
  if (reply->IsError()) co_return std::unexpected(ScriptError(script.name(), reply->str));
  co_return std::move(*reply);
}

awaitable<Result<void>> JobStore::CheckSchema() {
  std::vector<std::string> command{"HGET", p_ + ":meta", "schema"};
  auto r = co_await connection_->Command(std::move(command));
  if (!r) co_return std::unexpected(r.error());
  if (!r->IsNil() && r->str != std::to_string(kSchemaVersion)) {
    co_return MakeError(ErrorCategory::kFailedPrecondition,
                        "redis holds reelq schema version " + r->str + " under '" + p_ +
                            "', this build speaks " + std::to_string(kSchemaVersion));
  }
  co_return Result<void>{};
}

awaitable<Result<void>> JobStore::SyncSettings(const QueueSettings& settings) {
  std::vector<std::string> args{std::to_string(kSchemaVersion), Num(settings.default_weight),
                                std::to_string(settings.models.size())};
  for (const auto& m : settings.models) {
    std::string accounts;
    for (const auto& a : m.accounts) accounts += (accounts.empty() ? "" : ",") + a;
    args.insert(args.end(), {m.id, accounts, Num(m.latency_seed_seconds),
                             Num(m.latency_min_seconds), Num(m.latency_max_seconds)});
  }
  args.push_back(std::to_string(settings.accounts.size()));
  for (const auto& a : settings.accounts) {
    args.insert(args.end(),
                {a.id, a.provider, Num(a.requests_per_minute), std::to_string(a.max_concurrent),
                 std::to_string(a.daily_cap), Num(a.polls_per_minute)});
  }
  args.push_back(std::to_string(settings.tenant_weights.size()));
  for (const auto& [tenant, weight] : settings.tenant_weights) {
    args.insert(args.end(), {tenant, Num(weight)});
  }
  auto r = co_await Run(Scripts("sync_config"), std::move(args));
  if (!r) co_return std::unexpected(r.error());
  co_return Result<void>{};
}

awaitable<Result<SubmitOutcome>> JobStore::Submit(const NewJob& job, int64_t idempotency_ttl_s) {
  const int64_t now = clock_->NowMs();
  std::string models;
  for (const auto& m : job.candidate_models) models += (models.empty() ? "" : ",") + m;
  std::vector<std::string> command{std::to_string(now),
                                   job.id,
                                   job.tenant,
                                   job.batch,
                                   job.idempotency_key,
                                   std::to_string(std::max<int64_t>(1, idempotency_ttl_s)),
                                   Num(PendingScore(job.priority, job.start_deadline_ms, now)),
                                   models,
                                   std::to_string(job.max_attempts),
                                   job.spec_bytes,
                                   std::to_string(job.start_deadline_ms),
                                   std::to_string(job.finish_deadline_ms),
                                   std::to_string(job.priority),
                                   job.prefer_first ? "1" : "0"};
  auto r = co_await Run(Scripts("submit"), std::move(command));
  if (!r) co_return std::unexpected(r.error());
  if (r->elements.size() != 2) {
    co_return MakeError(ErrorCategory::kInternal, "submit: unexpected reply shape");
  }
  co_return SubmitOutcome{r->elements[0].str, ReplyInt(r->elements[1]) == 1};
}

awaitable<Result<DispatchOutcome>> JobStore::Dispatch(int max_jobs, int scan_depth,
                                                      double default_weight, std::string policy,
                                                      double preference_margin_s) {
  std::vector<std::string> command{std::to_string(clock_->NowMs()),
                                   std::to_string(max_jobs),
                                   std::to_string(scan_depth),
                                   Num(default_weight),
                                   std::move(policy),
                                   Num(preference_margin_s)};
  auto r = co_await Run(Scripts("dispatch"), std::move(command));
  if (!r) co_return std::unexpected(r.error());
  DispatchOutcome out;
  if (r->elements.size() >= 3) {
    out.dispatched = static_cast<int>(ReplyInt(r->elements[0]));
    out.expired = static_cast<int>(ReplyInt(r->elements[1]));
    out.wait_ms = ReplyInt(r->elements[2]);
  }
  co_return out;
}

awaitable<Result<std::chrono::milliseconds>> JobStore::TakePollToken(std::string account,
                                                                     double polls_per_minute) {
  if (!(polls_per_minute > 0)) co_return std::chrono::milliseconds(0);
  std::vector<std::string> command{std::to_string(clock_->NowMs()), std::move(account),
                                   Num(polls_per_minute)};
  auto r = co_await Run(Scripts("poll_token"), std::move(command));
  if (!r) co_return std::unexpected(r.error());
  co_return std::chrono::milliseconds(std::max<int64_t>(0, ReplyInt(*r)));
}

awaitable<Result<ReapOutcome>> JobStore::Reap(int max) {
  std::vector<std::string> command{std::to_string(clock_->NowMs()), std::to_string(max)};
  auto r = co_await Run(Scripts("reap"), std::move(command));
  if (!r) co_return std::unexpected(r.error());
  ReapOutcome out;
  if (r->elements.size() >= 2) {
    out.expired_leases = static_cast<int>(ReplyInt(r->elements[0]));
    out.requeued_retries = static_cast<int>(ReplyInt(r->elements[1]));
  }
  co_return out;
}

awaitable<Result<std::vector<LeasedJob>>> JobStore::Lease(std::string worker, int max,
                                                          std::chrono::milliseconds lease) {
  std::vector<std::string> command{std::to_string(clock_->NowMs()), worker, std::to_string(max),
                                   std::to_string(lease.count())};
  auto r = co_await Run(Scripts("lease"), std::move(command));
  if (!r) co_return std::unexpected(r.error());
  std::vector<LeasedJob> out;
  const auto& e = r->elements;
  constexpr size_t kWidth = 13;
  for (size_t i = 0; i + kWidth <= e.size(); i += kWidth) {
    LeasedJob job;
    job.id = e[i].str;
    job.token =
        e[i + 1].type == Reply::Type::kInteger ? std::to_string(e[i + 1].integer) : e[i + 1].str;
    job.spec_bytes = e[i + 2].str;
    job.model = e[i + 3].str;
    job.account = e[i + 4].str;
    job.attempt = static_cast<int>(ToInt(e[i + 5].str, 1));
    job.max_attempts = static_cast<int>(ToInt(e[i + 6].str, 1));
    job.upstream = e[i + 7].str;
    job.tenant = e[i + 8].str;
    job.batch = e[i + 9].str;
    job.finish_deadline_ms = ToInt(e[i + 10].str);
    job.created_ms = ToInt(e[i + 11].str);
    // "<sent_ms>:<attempt>"; an intent of an earlier attempt cannot survive (fail.lua clears
    // it), but one that names another attempt is ignored rather than trusted.
    const std::string& intent = e[i + 12].str;
    if (const auto colon = intent.find(':');
        colon != std::string::npos && ToInt(intent.substr(colon + 1)) == job.attempt) {
      job.create_intent_ms = ToInt(intent.substr(0, colon));
    }
    out.push_back(std::move(job));
  }
  co_return out;
}

awaitable<Result<void>> JobStore::WaitForWork(redis::Connection& blocking,
                                              std::chrono::milliseconds timeout) {
  const double seconds = std::max(0.01, timeout.count() / 1000.0);
  std::vector<std::string> command{"BLPOP", p_ + ":wake", Num(seconds)};
  auto r = co_await blocking.Command(std::move(command), timeout + std::chrono::milliseconds(2000));
  if (!r) co_return std::unexpected(r.error());
  co_return Result<void>{};
}

awaitable<Result<std::vector<LeaseLoss>>> JobStore::Heartbeat(std::string worker,
                                                              std::vector<HeldLease> leases,
                                                              std::chrono::milliseconds lease) {
  std::vector<std::string> args{std::to_string(clock_->NowMs()), std::to_string(lease.count()),
                                worker};
  for (auto& l : leases) {
    args.push_back(std::move(l.job_id));
    args.push_back(std::move(l.token));
  }
  auto r = co_await Run(Scripts("heartbeat"), std::move(args));
  if (!r) co_return std::unexpected(r.error());
  std::vector<LeaseLoss> out;
  for (size_t i = 0; i + 1 < r->elements.size(); i += 2) {
    out.push_back(LeaseLoss{r->elements[i].str, r->elements[i + 1].str});
  }
  co_return out;
}

awaitable<Result<void>> JobStore::SetPhase(std::string job_id, std::string token, std::string phase,
                                           std::string upstream, std::string detail) {
  std::vector<std::string> command{
      std::to_string(clock_->NowMs()), job_id, token, phase, upstream, detail};
  auto r = co_await Run(Scripts("phase"), std::move(command));
  if (!r) co_return std::unexpected(r.error());
  co_return Result<void>{};
}

awaitable<Result<std::chrono::milliseconds>> JobStore::TakeCreatePermit(
    std::string job_id, std::string token, std::chrono::milliseconds guard, int64_t sent_ms,
    int attempt) {
  std::vector<std::string> command{std::to_string(sent_ms), job_id, token,
                                   std::to_string(guard.count()),
                                   std::to_string(sent_ms) + ":" + std::to_string(attempt)};
  auto r = co_await Run(Scripts("create_permit"), std::move(command));
  if (!r) co_return std::unexpected(r.error());
  co_return std::chrono::milliseconds(r->integer);
}

awaitable<Result<void>> JobStore::Complete(CompleteRequest req) {
  std::vector<std::string> command{std::to_string(clock_->NowMs()),
                                   req.job_id,
                                   req.token,
                                   req.output_key,
                                   req.sidecar_key,
                                   req.sha256,
                                   Num(req.clip_seconds),
                                   std::to_string(req.generation_ms),
                                   req.output_url};
  auto r = co_await Run(Scripts("complete"), std::move(command));
  if (!r) co_return std::unexpected(r.error());
  co_return Result<void>{};
}

awaitable<Result<FailOutcome>> JobStore::Fail(FailRequest req) {
  std::vector<std::string> command{std::to_string(clock_->NowMs()),
                                   req.job_id,
                                   req.token,
                                   req.category,
                                   req.message,
                                   req.code,
                                   req.retry ? "1" : "0",
                                   std::to_string(req.retry_at_ms),
                                   req.count_attempt ? "1" : "0",
                                   std::to_string(req.cooldown_ms)};
  auto r = co_await Run(Scripts("fail"), std::move(command));
  if (!r) co_return std::unexpected(r.error());
  co_return r->str == "RETRY" ? FailOutcome::kRetrying : FailOutcome::kFailed;
}

awaitable<Result<void>> JobStore::HandBack(std::string job_id, std::string token,
                                           std::string reason) {
  std::vector<std::string> command{std::to_string(clock_->NowMs()), job_id, token, reason};
  auto r = co_await Run(Scripts("handback"), std::move(command));
  if (!r) co_return std::unexpected(r.error());
  co_return Result<void>{};
}

awaitable<Result<CancelOutcome>> JobStore::Cancel(std::string job_id) {
  std::vector<std::string> command{std::to_string(clock_->NowMs()), job_id};
  auto r = co_await Run(Scripts("cancel"), std::move(command));
  if (!r) co_return std::unexpected(r.error());
  CancelOutcome out;
  if (r->elements.size() >= 3) {
    out.previous_state = r->elements[0].str;
    out.upstream = r->elements[1].str;
    out.account = r->elements[2].str;
  }
  co_return out;
}

awaitable<Result<void>> JobStore::Retry(std::string job_id) {
  std::vector<std::string> command{std::to_string(clock_->NowMs()), job_id};
  auto r = co_await Run(Scripts("retry"), std::move(command));
  if (!r) co_return std::unexpected(r.error());
  co_return Result<void>{};
}

awaitable<Result<JobRecord>> JobStore::Get(std::string job_id) {
  std::vector<std::string> command{job_id};
  auto r = co_await Run(Scripts("get"), std::move(command));
  if (!r) co_return std::unexpected(r.error());
  if (r->elements.empty() || r->elements[0].elements.empty() ||
      r->elements[0].elements[0].elements.empty()) {
    co_return MakeError(ErrorCategory::kNotFound, "no job with id '" + job_id + "'");
  }
  co_return ToRecord(job_id, r->elements[0]);
}

awaitable<Result<ListPage>> JobStore::List(ListFilter filter) {
  const int size = std::clamp(filter.page_size, 1, 1000);
  std::vector<std::string> command{filter.batch,
                                   std::to_string(filter.offset),
                                   std::to_string(size),
                                   filter.state,
                                   filter.model,
                                   filter.tenant,
                                   "20000"};
  auto r = co_await Run(Scripts("list"), std::move(command));
  if (!r) co_return std::unexpected(r.error());
  ListPage page;
  if (r->elements.empty()) co_return page;
  page.next_offset = ReplyInt(r->elements[0]);
  std::vector<std::string> ids;
  for (size_t i = 1; i < r->elements.size(); ++i) ids.push_back(r->elements[i].str);
  if (ids.empty()) co_return page;
  auto rows = co_await Run(Scripts("get"), ids);
  if (!rows) co_return std::unexpected(rows.error());
  for (size_t i = 0; i < ids.size() && i < rows->elements.size(); ++i) {
    if (rows->elements[i].elements.empty() || rows->elements[i].elements[0].elements.empty()) {
      continue;  // removed between the two reads
    }
    page.jobs.push_back(ToRecord(ids[i], rows->elements[i]));
  }
  co_return page;
}

awaitable<Result<BatchCounts>> JobStore::GetBatch(std::string batch_id) {
  std::vector<std::string> command{"HGETALL", p_ + ":batch:" + batch_id};
  auto r = co_await connection_->Command(std::move(command));
  if (!r) co_return std::unexpected(r.error());
  BatchCounts counts;
  for (const auto& [k, v] : FlatToMap(*r)) {
    if (k == "total") {
      counts.total = ToInt(v);
    } else {
      counts.by_state[k] = ToInt(v);
    }
  }
  if (counts.total == 0) {
    co_return MakeError(ErrorCategory::kNotFound, "no batch with id '" + batch_id + "'");
  }
  co_return counts;
}

awaitable<Result<Stats>> JobStore::GetStats() {
  std::vector<std::string> command{std::to_string(clock_->NowMs())};
  auto r = co_await Run(Scripts("stats"), std::move(command));
  if (!r) co_return std::unexpected(r.error());
  Stats stats;
  if (r->elements.size() < 4) co_return stats;
  // Rows in the order stats.lua writes them; counters clamped at zero (depth counters miss
  // jobs that were in flight before they existed, and such jobs decrement them when they end).
  auto number = [](const Reply& row, size_t i) {
    return i < row.elements.size() ? ToDouble(row.elements[i].str) : 0.0;
  };
  auto count = [&](const Reply& row, size_t i) {
    return std::max<int64_t>(0, std::llround(number(row, i)));
  };
  for (const auto& a : r->elements[0].elements) {
    if (a.elements.size() < 11) continue;
    stats.accounts.push_back({.id = a.elements[0].str,
                              .provider = a.elements[1].str,
                              .requests_per_minute = number(a, 2),
                              .effective_requests_per_minute = number(a, 3),
                              .max_concurrent = count(a, 4),
                              .in_flight = count(a, 5),
                              .daily_cap = count(a, 6),
                              .used_today = count(a, 7),
                              .cooldown_until_ms = count(a, 8),
                              .rate_limited_total = count(a, 9),
                              .polls_per_minute = number(a, 10)});
  }
  for (const auto& m : r->elements[1].elements) {
    if (m.elements.size() < 7) continue;
    stats.models.push_back({.id = m.elements[0].str,
                            .latency_estimate_seconds = std::max(0.0, number(m, 1)),
                            .succeeded = count(m, 2),
                            .failed = count(m, 3),
                            .queue_depth = count(m, 4),
                            .dispatched = count(m, 5),
                            .in_flight = count(m, 6)});
  }
  for (const auto& t : r->elements[2].elements) {
    if (t.elements.size() >= 2)
      stats.tenant_pending.emplace_back(t.elements[0].str, ReplyInt(t.elements[1]));
  }
  const auto& totals = r->elements[3].elements;
  if (totals.size() >= 4) {
    stats.ready = ReplyInt(totals[0]);
    stats.leased = ReplyInt(totals[1]);
    stats.delayed = ReplyInt(totals[2]);
    stats.workers = ReplyInt(totals[3]);
  }
  co_return stats;
}

namespace {

// One stream entry [id, [k, v, ...]] as an Event; nullopt for a malformed entry.
std::optional<Event> ToEvent(const redis::Reply& entry) {
  if (entry.elements.size() < 2) return std::nullopt;
  Event ev;
  ev.stream_id = entry.elements[0].str;
  const auto fields = FlatToMap(entry.elements[1]);
  ev.job_id = Field(fields, "j");
  ev.seq = static_cast<int>(ToInt(Field(fields, "q")));
  ev.state = Field(fields, "s");
  ev.phase = Field(fields, "p");
  ev.at_ms = ToInt(Field(fields, "t"));
  ev.batch = Field(fields, "b");
  ev.detail = Field(fields, "d");
  ev.tenant = Field(fields, "n");
  return ev;
}

}  // namespace

awaitable<Result<std::vector<Event>>> JobStore::ReadEvents(redis::Connection& blocking,
                                                           std::string after_id,
                                                           std::chrono::milliseconds block,
                                                           int count) {
  std::vector<std::string> command{"XREAD",
                                   "COUNT",
                                   std::to_string(count),
                                   "BLOCK",
                                   std::to_string(block.count()),
                                   "STREAMS",
                                   p_ + ":events",
                                   after_id};
  auto r = co_await blocking.Command(std::move(command), block + std::chrono::milliseconds(2000));
  if (!r) co_return std::unexpected(r.error());
  std::vector<Event> out;
  if (r->IsNil() || r->elements.empty()) co_return out;
  // [[stream, [[id, [k, v, ...]], ...]]]
  const auto& stream = r->elements[0];
  if (stream.elements.size() < 2) co_return out;
  for (const auto& entry : stream.elements[1].elements) {
    if (auto ev = ToEvent(entry)) out.push_back(std::move(*ev));
  }
  co_return out;
}

awaitable<Result<std::vector<Event>>> JobStore::ReadEventRange(std::string start, int count) {
  std::vector<std::string> command{"XRANGE", p_ + ":events", std::move(start),
                                   "+",      "COUNT",        std::to_string(count)};
  auto r = co_await connection_->Command(std::move(command));
  if (!r) co_return std::unexpected(r.error());
  std::vector<Event> out;
  for (const auto& entry : r->elements) {
    if (auto ev = ToEvent(entry)) out.push_back(std::move(*ev));
  }
  co_return out;
}

awaitable<Result<std::string>> JobStore::LastEventId() {
  std::vector<std::string> command{"XREVRANGE", p_ + ":events", "+", "-", "COUNT", "1"};
  auto r = co_await connection_->Command(std::move(command));
  if (!r) co_return std::unexpected(r.error());
  if (r->elements.empty() || r->elements[0].elements.empty()) co_return std::string("0-0");
  co_return r->elements[0].elements[0].str;
}

}  // namespace reelq::queue
