#include "reelq/queue/job_store.h"
#include "reelq/common/utf8.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <sstream>

#include <nlohmann/json.hpp>

#include "job_codec.h"
#include "lua_library.h"
#include "lua_scripts.h"
#include "reelq/queue/wallet_store.h"
#include "script_replies.h"

namespace reelq::queue {
namespace {

using detail::PerJobOutcomes;
using detail::ReplyInt;
using detail::ScriptError;
using redis::Reply;

std::string Num(double v) { return FormatNumber(v); }

// submit.lua's refusal of one job ("LIMIT <name> <limit>", "BUDGET <budget> <committed>
// <needed>", "WALLET <available> <needed>"), as the error the client reads.
Error SubmitRefusal(const std::string& text, const NewJob& job) {
  std::istringstream in(text);
  std::string word;
  in >> word;
  auto dollars = [](int64_t micros) { return FormatMicros(micros); };
  if (word == "LIMIT") {
    std::string name;
    int64_t limit = 0;
    in >> name >> limit;
    return Error{ErrorCategory::kRateLimited,
                 "limit " + name + ": tenant '" + job.tenant + "' may have at most " +
                     std::to_string(limit) +
                     (name == "max_queued" ? " jobs queued (not yet running)"
                                           : " jobs in flight (submitted and not ended)") +
                     "; wait for some to finish or ask an admin to raise it"};
  }
  if (word == "BUDGET") {
    int64_t budget = 0, committed = 0, needed = 0;
    in >> budget >> committed >> needed;
    return Error{ErrorCategory::kRateLimited, "budget: batch '" + job.batch + "' has a budget of " +
                                                  dollars(budget) + ", " + dollars(committed) +
                                                  " is committed and this job may cost up to " +
                                                  dollars(needed)};
  }
  if (word == "WALLET") {
    int64_t available = 0, needed = 0;
    in >> available >> needed;
    return Error{ErrorCategory::kRateLimited,
                 "wallet: tenant '" + job.tenant + "' has " + dollars(available) +
                     " available, this job needs up to " + dollars(needed) +
                     " (its duration at the highest price of its allowed models); top up the "
                     "wallet"};
  }
  return Error{ErrorCategory::kInternal, "submit: unexpected refusal '" + text + "'"};
}

std::map<std::string, std::string> FlatToMap(const Reply& flat) {
  std::map<std::string, std::string> out;
  for (size_t i = 0; i + 1 < flat.elements.size(); i += 2) {
    out[flat.elements[i].str] = flat.elements[i + 1].str;
  }
  return out;
}

Fields ToFields(const Reply& flat) {
  Fields out;
  out.reserve(flat.elements.size() / 2);
  for (size_t i = 0; i + 1 < flat.elements.size(); i += 2) {
    out.emplace_back(flat.elements[i].str, flat.elements[i + 1].type == Reply::Type::kInteger
                                               ? std::to_string(flat.elements[i + 1].integer)
                                               : flat.elements[i + 1].str);
  }
  return out;
}

}  // namespace

int64_t BatchCounts::Count(JobState state) const {
  auto it = by_state.find(state);
  return it == by_state.end() ? 0 : it->second;
}

bool BatchCounts::Done() const {
  return total > 0 &&
         Count(JobState::kSucceeded) + Count(JobState::kFailed) + Count(JobState::kCancelled) >=
             total;
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

awaitable<Result<Reply>> JobStore::Run(const redis::Function& script,
                                       std::vector<std::string> args) {
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
  if (!r->IsNil()) {
    const int64_t stored = ToInt(r->str);
    if (stored < kOldestReadableSchema || stored > kSchemaVersion) {
      co_return MakeError(ErrorCategory::kFailedPrecondition, SchemaMismatch(r->str));
    }
  }
  co_return Result<void>{};
}

awaitable<std::string> JobStore::AdviseOnRedisSettings() {
  std::vector<std::string> command{"CONFIG", "GET", "hash-max-listpack-value"};
  auto r = co_await connection_->Command(std::move(command));
  if (!r || r->IsError() || r->elements.size() < 2) co_return "";
  const int64_t value = ToInt(r->elements[1].str);
  if (value >= kCompactHashValueBytes) co_return "";
  co_return "redis hash-max-listpack-value is " + std::to_string(value) +
      ": a job whose request (prompt and settings) is longer than that takes about four times "
      "the memory in Redis; set it to " +
      std::to_string(kCompactHashValueBytes) +
      " (deploy/redis/reelq-redis.conf; README \"Running Redis for production\")";
}

std::string JobStore::SchemaMismatch(const std::string& stored) const {
  return "redis holds reelq schema version " + stored + " under '" + p_ + "', this build speaks " +
         std::to_string(kSchemaVersion) + " (and reads " + std::to_string(kOldestReadableSchema) +
         ") and will not read it (version 1 kept job history in separate keys, version 2 a "
         "worker's held jobs in a set; neither is migrated; a higher version was written by a "
         "newer build): finish or cancel the queued jobs with the build that wrote them, or "
         "point this build at another redis.prefix or redis.db";
}

awaitable<Result<void>> JobStore::SyncSettings(const QueueSettings& settings) {
  // "<speaks>:<oldest read>": a build speaking one version only sent "<speaks>".
  std::vector<std::string> args{
      std::to_string(kSchemaVersion) + ":" + std::to_string(kOldestReadableSchema),
      Num(settings.default_weight), std::to_string(settings.models.size())};
  for (const auto& m : settings.models) {
    std::string accounts;
    for (const auto& a : m.accounts) accounts += (accounts.empty() ? "" : ",") + a;
    std::string prices;
    for (const auto& [res, price] : m.price_micros_by_resolution) {
      prices += (prices.empty() ? "" : ",") + res + "=" + std::to_string(price);
    }
    args.insert(args.end(),
                {m.id, accounts, Num(m.latency_seed_seconds), Num(m.latency_min_seconds),
                 Num(m.latency_max_seconds), std::to_string(m.price_micros_per_second), prices});
  }
  args.push_back(std::to_string(settings.accounts.size()));
  for (const auto& a : settings.accounts) {
    args.insert(args.end(),
                {a.id, a.provider, Num(a.requests_per_minute), std::to_string(a.max_concurrent),
                 std::to_string(a.daily_cap), Num(a.polls_per_minute),
                 a.bills_policy_rejections ? "1" : "0", a.bills_failed_tasks ? "1" : "0"});
  }
  args.push_back(std::to_string(settings.tenant_weights.size()));
  for (const auto& [tenant, weight] : settings.tenant_weights) {
    args.insert(args.end(), {tenant, Num(weight)});
  }
  args.push_back(std::to_string(settings.activation_credit));
  auto r = co_await Run(LuaFunction(lua::k_sync_config), std::move(args));
  if (!r) {
    // "SCHEMA stored <n>, ...": the same clear message as CheckSchema.
    if (const auto at = r.error().message.find("SCHEMA stored "); at != std::string::npos) {
      const auto stored = r.error().message.substr(at + 14);
      co_return MakeError(ErrorCategory::kFailedPrecondition,
                          SchemaMismatch(stored.substr(0, stored.find(','))));
    }
    co_return std::unexpected(r.error());
  }
  co_return Result<void>{};
}

awaitable<Result<SubmitOutcome>> JobStore::Submit(const NewJob& job, int64_t idempotency_ttl_s) {
  std::vector<NewJob> one{job};
  auto r = co_await SubmitMany(std::move(one), idempotency_ttl_s);
  if (!r) co_return std::unexpected(r.error());
  co_return std::move(r->front());
}

awaitable<Result<std::vector<SubmitOutcome>>> JobStore::SubmitMany(std::vector<NewJob> jobs,
                                                                   int64_t idempotency_ttl_s) {
  if (jobs.size() <= kMaxJobsPerSubmitCall) {
    co_return co_await SubmitCall(std::move(jobs), idempotency_ttl_s);
  }
  std::vector<SubmitOutcome> out;
  out.reserve(jobs.size());
  size_t begin = 0;
  while (begin < jobs.size()) {
    // A group's children follow their parent (JobApi::SubmitMany): a call ends only before a
    // job that is no one's child.
    size_t end = begin + 1;
    while (end < jobs.size() &&
           (end - begin < kMaxJobsPerSubmitCall || !jobs[end].parent.empty())) {
      ++end;
    }
    std::vector<NewJob> part(std::make_move_iterator(jobs.begin() + static_cast<ptrdiff_t>(begin)),
                             std::make_move_iterator(jobs.begin() + static_cast<ptrdiff_t>(end)));
    auto r = co_await SubmitCall(std::move(part), idempotency_ttl_s);
    if (!r) {
      if (out.empty()) co_return std::unexpected(r.error());  // nothing stored: as one call
      for (size_t i = begin; i < end; ++i) out.push_back(SubmitOutcome{"", false, r.error()});
    } else {
      for (auto& o : *r) out.push_back(std::move(o));
    }
    begin = end;
  }
  co_return out;
}

awaitable<Result<std::vector<SubmitOutcome>>> JobStore::SubmitCall(std::vector<NewJob> jobs,
                                                                   int64_t idempotency_ttl_s) {
  std::vector<SubmitOutcome> out;
  if (jobs.empty()) co_return out;
  const int64_t now = clock_->NowMs();
  const std::string now_text = std::to_string(now);
  const bool groups = std::any_of(jobs.begin(), jobs.end(), [](const NewJob& j) {
    return !j.kind.empty() || !j.parent.empty();
  });
  std::vector<std::string> args{now_text, std::to_string(std::max<int64_t>(1, idempotency_ttl_s)),
                                std::to_string(jobs.size()), groups ? "1" : "0"};
  args.reserve(args.size() + 16 + jobs.size() * 8);
  AppendNewJobs(args, jobs, now);
  auto r = co_await Run(LuaFunction(lua::k_submit), std::move(args));
  if (!r) co_return std::unexpected(r.error());
  if (r->elements.size() != 2 * jobs.size()) {
    co_return MakeError(ErrorCategory::kInternal,
                        "submit: " + std::to_string(jobs.size()) + " jobs sent, " +
                            std::to_string(r->elements.size() / 2) + " outcomes back");
  }
  out.reserve(jobs.size());
  for (size_t i = 0; i < jobs.size(); ++i) {
    const auto& second = r->elements[2 * i + 1];
    SubmitOutcome outcome{r->elements[2 * i].str, false, std::nullopt};
    if (second.type == Reply::Type::kInteger) {
      outcome.duplicate = second.integer == 1;
    } else {
      outcome.refused = SubmitRefusal(second.str, jobs[i]);
    }
    out.push_back(std::move(outcome));
  }
  co_return out;
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
  auto r = co_await Run(LuaFunction(lua::k_dispatch), std::move(command));
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
  auto r = co_await Run(LuaFunction(lua::k_poll_token), std::move(command));
  if (!r) co_return std::unexpected(r.error());
  co_return std::chrono::milliseconds(std::max<int64_t>(0, ReplyInt(*r)));
}

awaitable<Result<ReapOutcome>> JobStore::Reap(int max) {
  std::vector<std::string> command{std::to_string(clock_->NowMs()), std::to_string(max)};
  auto r = co_await Run(LuaFunction(lua::k_reap), std::move(command));
  if (!r) co_return std::unexpected(r.error());
  ReapOutcome out;
  if (r->elements.size() >= 2) {
    out.expired_leases = static_cast<int>(ReplyInt(r->elements[0]));
    out.requeued_retries = static_cast<int>(ReplyInt(r->elements[1]));
  }
  co_return out;
}

awaitable<Result<CancelOutcome>> JobStore::Cancel(std::string job_id) {
  std::vector<std::string> command{std::to_string(clock_->NowMs()), job_id};
  auto r = co_await Run(LuaFunction(lua::k_cancel), std::move(command));
  if (!r) co_return std::unexpected(r.error());
  CancelOutcome out;
  if (r->elements.size() >= 3) {
    auto previous = JobStateFromString(r->elements[0].str);
    if (!previous) {
      co_return MakeError(ErrorCategory::kInternal,
                          "job " + job_id + ": corrupt record, state '" + r->elements[0].str + "'");
    }
    out.previous_state = *previous;
    out.upstream = r->elements[1].str;
    out.account = r->elements[2].str;
  }
  co_return out;
}

awaitable<Result<void>> JobStore::Retry(std::string job_id) {
  std::vector<std::string> command{std::to_string(clock_->NowMs()), job_id};
  auto r = co_await Run(LuaFunction(lua::k_retry), std::move(command));
  if (!r) co_return std::unexpected(r.error());
  co_return Result<void>{};
}

std::string JobStore::NoSuchJob(std::string_view job_id) {
  const std::string shown = IdForMessage(job_id);
  return "no job with id " + (shown == job_id ? "'" + shown + "'" : shown) +
         " (never submitted, or it finished longer ago than the retention window, "
         "queue.retention_hours, and expired)";
}

awaitable<Result<JobRecord>> JobStore::Get(std::string job_id) {
  std::vector<std::string> command{job_id};
  auto r = co_await Run(LuaFunction(lua::k_get), std::move(command));
  if (!r) co_return std::unexpected(r.error());
  if (r->elements.empty() || r->elements[0].elements.empty()) {
    co_return MakeError(ErrorCategory::kNotFound, NoSuchJob(job_id));
  }
  co_return JobRecord::Decode(job_id, ToFields(r->elements[0]));
}

awaitable<Result<std::vector<JobRecord>>> JobStore::GetMany(std::vector<std::string> job_ids) {
  std::vector<JobRecord> out;
  if (job_ids.empty()) co_return out;
  auto rows = co_await Run(LuaFunction(lua::k_get), job_ids);
  if (!rows) co_return std::unexpected(rows.error());
  for (size_t i = 0; i < job_ids.size() && i < rows->elements.size(); ++i) {
    if (rows->elements[i].elements.empty()) continue;
    auto job = JobRecord::Decode(job_ids[i], ToFields(rows->elements[i]));
    if (!job) co_return std::unexpected(job.error());
    out.push_back(std::move(*job));
  }
  co_return out;
}

awaitable<Result<void>> JobStore::SetPicked(std::string group_id, std::string take_id) {
  std::vector<std::string> command{"HSET", p_ + ":job:" + group_id, field::kPicked, take_id};
  auto r = co_await connection_->Command(std::move(command));
  if (!r) co_return std::unexpected(r.error());
  co_return Result<void>{};
}

awaitable<Result<BatchCounts>> JobStore::GetBatch(std::string batch_id) {
  std::vector<std::string> command{"HGETALL", p_ + ":batch:" + batch_id};
  auto r = co_await connection_->Command(std::move(command));
  if (!r) co_return std::unexpected(r.error());
  BatchCounts counts;
  for (const auto& [k, v] : FlatToMap(*r)) {
    if (k == "total") {
      counts.total = ToInt(v);
    } else if (k == "budget") {
      counts.budget_micros = ToInt(v);
    } else if (k == "cost") {
      counts.cost_micros = ToInt(v);
    } else if (k.starts_with("spent:")) {
      if (const int64_t spent = ToInt(v); spent != 0) {
        counts.spent_micros_by_model[k.substr(6)] = spent;
      }
    } else if (auto state = JobStateFromString(k)) {
      counts.by_state[*state] = ToInt(v);
    }
  }
  if (counts.total == 0) {
    co_return MakeError(ErrorCategory::kNotFound, "no batch with id '" + batch_id + "'");
  }
  co_return counts;
}

awaitable<Result<Stats>> JobStore::GetStats() {
  std::vector<std::string> command{std::to_string(clock_->NowMs())};
  auto r = co_await Run(LuaFunction(lua::k_stats), std::move(command));
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
                              .effective_max_concurrent = count(a, 11),
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
    if (t.elements.size() < 2) continue;
    stats.tenant_pending.emplace_back(t.elements[0].str, ReplyInt(t.elements[1]));
    if (t.elements.size() >= 3 && !t.elements[2].str.empty()) {
      const double weight = ToDouble(t.elements[2].str);
      if (weight > 0) stats.tenant_weights[t.elements[0].str] = weight;
    }
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

}  // namespace reelq::queue
