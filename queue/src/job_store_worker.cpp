// JobStore's calls from workers: registering, leasing, heartbeats and cancels, and the
// batched writes of a held job's life (create permits, phases, completion, failure, hand-back).
// The scheduler's side (submit, dispatch, cancel, reads) is in job_store.cpp.

#include <algorithm>

#include "job_codec.h"
#include "lua_library.h"
#include "lua_scripts.h"
#include "reelq/queue/job_store.h"
#include "script_replies.h"

namespace reelq::queue {

using detail::PerJobOutcomes;
using detail::ReplyInt;
using detail::ScriptError;
using redis::Reply;

awaitable<Result<int64_t>> JobStore::RegisterWorker(std::string worker,
                                                    std::chrono::milliseconds lease) {
  std::vector<std::string> command{std::to_string(clock_->NowMs()), std::move(worker),
                                   std::to_string(lease.count())};
  auto r = co_await Run(LuaFunction(lua::k_register), std::move(command));
  if (!r) co_return std::unexpected(r.error());
  co_return ReplyInt(*r);
}

awaitable<Result<std::vector<LeasedJob>>> JobStore::Lease(std::string worker, int max,
                                                          std::chrono::milliseconds lease,
                                                          int64_t epoch,
                                                          const std::vector<std::string>* holding,
                                                          int room, bool* waiting) {
  std::vector<std::string> command{std::to_string(clock_->NowMs()),
                                   worker,
                                   std::to_string(max),
                                   std::to_string(lease.count()),
                                   std::to_string(epoch),
                                   std::to_string(room)};
  if (holding != nullptr) {
    command.push_back("1");
    command.insert(command.end(), holding->begin(), holding->end());
  }
  auto r = co_await Run(LuaFunction(lua::k_lease), std::move(command));
  if (!r) co_return std::unexpected(r.error());
  // lease.lua ends its reply with this when it entered the worker in `wwait` (no job id holds a
  // control character, so no leased entry is it).
  constexpr std::string_view kWaiting = "\x1ewaiting";
  const bool entered = !r->elements.empty() && r->elements.back().str == kWaiting;
  if (entered) r->elements.pop_back();
  if (waiting != nullptr) *waiting = entered;
  std::vector<LeasedJob> out;
  for (const auto& entry : r->elements) {
    auto job = DecodeLeasedEntry(entry.str);
    if (!job) co_return std::unexpected(job.error());
    out.push_back(std::move(*job));
  }
  co_return out;
}

awaitable<Result<void>> JobStore::WaitForWork(redis::Connection& blocking,
                                              std::chrono::milliseconds timeout,
                                              const std::string& worker) {
  const double seconds = std::max(0.01, timeout.count() / 1000.0);
  std::vector<std::string> command{"BLPOP"};
  if (!worker.empty()) command.push_back(p_ + ":wnudge:" + worker);
  command.push_back(p_ + ":wake");
  command.push_back(FormatNumber(seconds));
  auto r = co_await blocking.Command(std::move(command), timeout + std::chrono::milliseconds(2000));
  if (!r) co_return std::unexpected(r.error());
  co_return Result<void>{};
}

awaitable<Result<HeartbeatOutcome>> JobStore::Heartbeat(std::string worker, int64_t epoch,
                                                        std::chrono::milliseconds lease,
                                                        std::vector<std::string> acknowledged,
                                                        int64_t running) {
  std::vector<std::string> args{std::to_string(clock_->NowMs()), std::to_string(lease.count()),
                                std::move(worker), std::to_string(epoch),
                                running < 0 ? std::string() : std::to_string(running)};
  for (auto& id : acknowledged) args.push_back(std::move(id));
  auto r = co_await Run(LuaFunction(lua::k_heartbeat), std::move(args));
  if (!r) co_return std::unexpected(r.error());
  HeartbeatOutcome out;
  if (r->elements.empty()) {
    co_return MakeError(ErrorCategory::kInternal, "heartbeat: empty reply");
  }
  out.lease_lost = r->elements[0].str == "LOST";
  out.holds_more = r->elements[0].str == "MORE";
  for (size_t i = 1; i < r->elements.size(); ++i) out.cancelled.push_back(r->elements[i].str);
  co_return out;
}

awaitable<Result<std::vector<std::string>>> JobStore::WaitForCancel(
    redis::Connection& blocking, std::string worker, std::chrono::milliseconds timeout) {
  const double seconds = std::max(0.01, timeout.count() / 1000.0);
  std::vector<std::string> out;
  std::vector<std::string> wait{"BLPOP", p_ + ":wcnudge:" + worker, FormatNumber(seconds)};
  auto r = co_await blocking.Command(std::move(wait), timeout + std::chrono::milliseconds(2000));
  if (!r) co_return std::unexpected(r.error());
  if (r->IsNil()) co_return out;
  // Read, not popped: the ids stay until a heartbeat acknowledges them (heartbeat.lua).
  std::vector<std::string> read{"LRANGE", p_ + ":wcancel:" + worker, "0", "999"};
  auto ids = co_await blocking.Command(std::move(read));
  if (!ids) co_return std::unexpected(ids.error());
  for (const auto& id : ids->elements) out.push_back(id.str);
  co_return out;
}

awaitable<Result<void>> JobStore::SetPhase(std::string job_id, std::string token, JobPhase phase,
                                           std::string upstream, std::string detail) {
  std::vector<PhaseChange> one{PhaseChange{std::move(job_id), std::move(token), phase,
                                           std::move(upstream), std::move(detail)}};
  auto r = co_await SetPhaseMany(std::move(one));
  if (!r) co_return std::unexpected(r.error());
  co_return std::move(r->front());
}

awaitable<Result<std::vector<Result<void>>>> JobStore::RunPerJob(std::string_view name,
                                                                 const redis::Function& script,
                                                                 std::vector<Fields> jobs) {
  if (jobs.empty()) co_return std::vector<Result<void>>{};
  std::vector<std::string> args{std::to_string(clock_->NowMs()), std::to_string(jobs.size())};
  for (const auto& fields : jobs) AppendFields(args, fields);
  auto r = co_await Run(script, std::move(args));
  if (!r) co_return std::unexpected(r.error());
  co_return PerJobOutcomes(name, *r, jobs.size());
}

awaitable<Result<std::vector<Result<void>>>> JobStore::SetPhaseMany(
    std::vector<PhaseChange> changes) {
  std::vector<Fields> jobs;
  jobs.reserve(changes.size());
  for (const auto& c : changes) jobs.push_back(EncodePhaseChange(c));
  co_return co_await RunPerJob("phase", LuaFunction(lua::k_phase), std::move(jobs));
}

awaitable<Result<std::chrono::milliseconds>> JobStore::TakeCreatePermit(
    std::string job_id, std::string token, std::chrono::milliseconds guard, int64_t sent_ms,
    int attempt) {
  std::vector<PermitRequest> one{
      PermitRequest{std::move(job_id), std::move(token), sent_ms, attempt}};
  auto r = co_await TakeCreatePermitMany(guard, std::move(one));
  if (!r) co_return std::unexpected(r.error());
  co_return std::move(r->front());
}

awaitable<Result<std::vector<Result<std::chrono::milliseconds>>>> JobStore::TakeCreatePermitMany(
    std::chrono::milliseconds guard, std::vector<PermitRequest> requests) {
  std::vector<Result<std::chrono::milliseconds>> out;
  if (requests.empty()) co_return out;
  int64_t now = 0;
  for (const auto& req : requests) now = std::max(now, req.sent_ms);
  std::vector<std::string> args{std::to_string(now), std::to_string(guard.count()),
                                std::to_string(requests.size())};
  for (const auto& req : requests) {
    AppendFields(
        args, Fields{{"id", req.job_id},
                     {"token", req.token},
                     {"intent", std::to_string(req.sent_ms) + ":" + std::to_string(req.attempt)}});
  }
  auto r = co_await Run(LuaFunction(lua::k_create_permit), std::move(args));
  if (!r) co_return std::unexpected(r.error());
  if (r->elements.size() != requests.size()) {
    co_return MakeError(ErrorCategory::kInternal,
                        "create_permit: reply has " + std::to_string(r->elements.size()) +
                            " outcomes for " + std::to_string(requests.size()) + " jobs");
  }
  out.reserve(requests.size());
  for (const auto& e : r->elements) {
    if (e.type == Reply::Type::kInteger) {
      out.emplace_back(std::chrono::milliseconds(e.integer));
    } else {
      out.emplace_back(std::unexpected(ScriptError("create_permit", e.str)));
    }
  }
  co_return out;
}

awaitable<Result<void>> JobStore::Complete(CompleteRequest req) {
  std::vector<CompleteRequest> one{std::move(req)};
  auto r = co_await CompleteMany(std::move(one));
  if (!r) co_return std::unexpected(r.error());
  co_return std::move(r->front());
}

awaitable<Result<std::vector<Result<void>>>> JobStore::CompleteMany(
    std::vector<CompleteRequest> requests) {
  std::vector<Fields> jobs;
  jobs.reserve(requests.size());
  for (const auto& req : requests) jobs.push_back(EncodeCompletion(req));
  co_return co_await RunPerJob("complete", LuaFunction(lua::k_complete), std::move(jobs));
}

awaitable<Result<FailOutcome>> JobStore::Fail(FailRequest req) {
  std::vector<std::string> command{std::to_string(clock_->NowMs()),
                                   req.job_id,
                                   req.token,
                                   std::string(ToString(req.category)),
                                   req.message,
                                   req.code,
                                   req.retry ? "1" : "0",
                                   std::to_string(req.retry_at_ms),
                                   req.count_attempt ? "1" : "0",
                                   std::to_string(req.cooldown_ms),
                                   req.keep_task ? "1" : "0",
                                   req.account_fault ? "1" : "0",
                                   req.over_concurrency ? "1" : "0",
                                   req.create_answered ? "1" : "0"};
  auto r = co_await Run(LuaFunction(lua::k_fail), std::move(command));
  if (!r) co_return std::unexpected(r.error());
  co_return r->str == "RETRY" ? FailOutcome::kRetrying : FailOutcome::kFailed;
}

awaitable<Result<void>> JobStore::HandBack(std::string job_id, std::string token,
                                           std::string reason, int64_t retry_at_ms) {
  std::vector<std::string> command{std::to_string(clock_->NowMs()), job_id, token, reason,
                                   std::to_string(retry_at_ms)};
  auto r = co_await Run(LuaFunction(lua::k_handback), std::move(command));
  if (!r) co_return std::unexpected(r.error());
  co_return Result<void>{};
}

}  // namespace reelq::queue
