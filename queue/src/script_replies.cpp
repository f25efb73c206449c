#include "script_replies.h"

#include <sstream>

#include "job_codec.h"
#include "reelq/queue/wallet_store.h"

namespace reelq::queue::detail {

using redis::Reply;

int64_t ReplyInt(const Reply& r) {
  if (r.type == Reply::Type::kInteger) return r.integer;
  return ToInt(r.str);
}

Error ScriptError(std::string_view script, const std::string& message) {
  auto has = [&](std::string_view word) { return message.find(word) != std::string::npos; };
  // A refusal whose text the script wrote for the user (retry.lua).
  if (const auto at = message.find("OVERBUDGET "); at != std::string::npos) {
    return Error{ErrorCategory::kFailedPrecondition, "batch budget: " + message.substr(at + 11)};
  }
  if (const auto at = message.find("LIMIT "); at != std::string::npos) {
    // retry.lua: running the job (or group) again would take its tenant past a limit.
    std::istringstream in(message.substr(at + 6));
    std::string name, tenant;
    int64_t limit = 0;
    in >> name >> limit >> tenant;
    return Error{ErrorCategory::kRateLimited,
                 "limit " + name + ": tenant '" + tenant + "' may have at most " +
                     std::to_string(limit) +
                     (name == "max_queued" ? " jobs queued (not yet running)"
                                           : " jobs in flight (submitted and not ended)") +
                     "; running this again would take it past that: wait for some to finish or "
                     "ask an admin to raise it"};
  }
  if (message.starts_with("WALLET ")) {
    // retry.lua: a group run again reserves what its children need, as at submit.
    std::istringstream in(message.substr(7));
    int64_t available = 0, needed = 0;
    in >> available >> needed;
    return Error{ErrorCategory::kRateLimited,
                 "wallet: running the group again needs " + FormatMicros(needed) +
                     " reserved (each child run again at its cheapest model) and the tenant has " +
                     FormatMicros(available) + " available; top up the wallet first"};
  }
  if (has("WLEASELOST")) {
    return Error{ErrorCategory::kLeaseLost, "this worker's lease lapsed: register again"};
  }
  if (has("LEASELOST")) return Error{ErrorCategory::kLeaseLost, "another worker holds the job"};
  if (has("NOTRUNNING CANCELLED")) return Error{ErrorCategory::kCancelled, "the job was cancelled"};
  if (has("NOTRUNNING")) {
    return Error{ErrorCategory::kLeaseLost, "the job is no longer running here (" + message + ")"};
  }
  if (has("NOTFOUND")) return Error{ErrorCategory::kNotFound, "no such job"};
  if (const auto at = message.find("CHILD "); at != std::string::npos) {
    const std::string group = message.substr(at + 6);
    return Error{ErrorCategory::kFailedPrecondition,
                 "the job is a shot or take of group " + group + ", which runs it again: retry " +
                     group + " (it runs again what of it failed, in order)"};
  }
  if (has("OWNED")) {
    return Error{ErrorCategory::kFailedPrecondition,
                 "the upstream task is owned by job " + message.substr(message.find("OWNED") + 6)};
  }
  if (has("TERMINAL") || has("NOTFINAL")) {
    return Error{ErrorCategory::kFailedPrecondition,
                 "the job is " + message.substr(message.find(' ') + 1)};
  }
  if (message.starts_with("OOM ")) {
    // maxmemory reached: Redis ran nothing. Finished jobs leaving (retention runs while Redis
    // is full: queue/CMakeLists.txt) or a larger maxmemory lets it run again, so it is worth
    // retrying, not a bug to report.
    Error full{ErrorCategory::kRateLimited,
               "redis is out of memory (its maxmemory), so " + std::string(script) +
                   " did not run: " + message +
                   "; raise maxmemory (finished jobs keep leaving Redis "
                   "queue.retention_hours after they end, which frees memory)"};
    full.retry_after = std::chrono::seconds(1);
    return full;
  }
  if (has("SCHEMA")) {
    return Error{ErrorCategory::kFailedPrecondition, "redis schema mismatch: " + message};
  }
  return Error{ErrorCategory::kInternal, "redis script " + std::string(script) + ": " + message};
}

Result<std::vector<Result<void>>> PerJobOutcomes(std::string_view script, const Reply& reply,
                                                 size_t expected) {
  if (reply.elements.size() != expected) {
    return std::unexpected(
        Error{ErrorCategory::kInternal, std::string(script) + ": reply has " +
                                            std::to_string(reply.elements.size()) +
                                            " outcomes for " + std::to_string(expected) + " jobs"});
  }
  std::vector<Result<void>> out;
  out.reserve(expected);
  for (const auto& e : reply.elements) {
    if (e.str == "OK") {
      out.emplace_back();
    } else {
      out.emplace_back(std::unexpected(ScriptError(script, e.str)));
    }
  }
  return out;
}

}  // namespace reelq::queue::detail
