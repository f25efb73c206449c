#pragma once

// The job record's Redis hash field names (the Lua scripts use the same names) and the
// conversions between the C++ types and flat field lists.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "reelq/queue/job_store.h"

namespace reelq::queue {

namespace field {
inline constexpr const char* kId = "id";
inline constexpr const char* kTenant = "tenant";
inline constexpr const char* kBatch = "batch";
inline constexpr const char* kIdempotencyKey = "idem";
inline constexpr const char* kScore = "score";
inline constexpr const char* kModels = "models";
inline constexpr const char* kPreferFirst = "pref";
inline constexpr const char* kPriority = "priority";
inline constexpr const char* kSpec = "spec";
inline constexpr const char* kStartDeadline = "start_deadline";
inline constexpr const char* kFinishDeadline = "finish_deadline";
inline constexpr const char* kState = "state";
inline constexpr const char* kPhase = "phase";
inline constexpr const char* kModel = "model";
inline constexpr const char* kAccount = "account";
inline constexpr const char* kUpstream = "upstream";
inline constexpr const char* kWorker = "worker";
inline constexpr const char* kToken = "token";
inline constexpr const char* kAttempt = "attempt";
inline constexpr const char* kMaxAttempts = "max_attempts";
inline constexpr const char* kOutputKey = "output_key";
inline constexpr const char* kOutputUrl = "output_url";
inline constexpr const char* kSidecarKey = "sidecar_key";
inline constexpr const char* kSha256 = "sha256";
inline constexpr const char* kClipSeconds = "clip_seconds";
// complete.lua writes the five outputs as one field: key, sidecar, sha256, seconds, url (\x1f
// between); a record of an earlier build has them one field each.
inline constexpr const char* kOutputs = "out";
inline constexpr const char* kErrorCategory = "err_cat";
inline constexpr const char* kErrorMessage = "err_msg";
inline constexpr const char* kErrorCode = "err_code";
inline constexpr const char* kCreated = "created";
inline constexpr const char* kUpdated = "updated";
inline constexpr const char* kCreateIntent = "create_intent";
// When the upstream task was first seen finished by an attempt that then failed to store its clip
// (fail.lua): the task is kept, and only its expiry upstream lets it go.
inline constexpr const char* kGenerated = "generated";
// The wallet (issue 12; common_groups.lua's move_money).
inline constexpr const char* kBill = "bill";
inline constexpr const char* kBilledSeconds = "secs";
inline constexpr const char* kResolution = "res";
inline constexpr const char* kHold = "hold";
inline constexpr const char* kCost = "cost";
// The provider's own charge for the task, when its answer carried one (complete.lua); `cost`
// is what the wallet settled, capped at the hold.
inline constexpr const char* kProviderCharge = "provider_charge";
inline constexpr const char* kWebhook = "webhook";  // see common_webhook.lua
// A PENDING job parked by dispatch (dispatch.lua; common_groups.lua, unpark): what it waits for
// ("funds") and what its wallet's balance must hold for it to go (micro-dollars).
inline constexpr const char* kWaiting = "waiting";
inline constexpr const char* kWaitNeed = "wait_need";
// Groups (issue 13; common_groups.lua's group section).
inline constexpr const char* kKind = "kind";
inline constexpr const char* kChildren = "children";
inline constexpr const char* kChildCount = "nchildren";
inline constexpr const char* kChildrenOk = "children_ok";
inline constexpr const char* kParent = "parent";
inline constexpr const char* kChildIndex = "index";
inline constexpr const char* kSheetKey = "sheet_key";
inline constexpr const char* kPicked = "picked";
// Chained storyboards: `chain` = 1 on the group; a shot's `chain_frame` is the stored key of
// the frame it starts from (the previous shot's `last_frame`).
inline constexpr const char* kChain = "chain";
inline constexpr const char* kChainFrame = "chain_frame";
inline constexpr const char* kLastFrame = "last_frame";
}  // namespace field

// Appends the jobs of one submit.lua call (its ARGV after `groups`): the call's fields (those
// every job holds alike), then each job's own named fields; `now` is the call's time.
void AppendNewJobs(std::vector<std::string>& args, const std::vector<NewJob>& jobs, int64_t now);
// The named fields of one leased job.
Result<LeasedJob> DecodeLeasedJob(const Fields& fields);
// One leased job as lease.lua returns it and dispatch.lua pushes it to a waiting worker
// (common_lease.lua's leased_entry); an entry of another layout is refused.
Result<LeasedJob> DecodeLeasedEntry(std::string_view entry);
// The named fields phase.lua takes for one job.
Fields EncodePhaseChange(const PhaseChange& change);
// The named fields complete.lua takes for one job.
Fields EncodeCompletion(const CompleteRequest& done);

// Shortest text that reads back as the same double.
std::string FormatNumber(double v);
// Appends "<n> name value ..." (how the many-per-call scripts take one item).
void AppendFields(std::vector<std::string>& args, const Fields& fields);

// Numbers as Redis stores them; `fallback` for a field that is missing or not a number.
int64_t ToInt(std::string_view s, int64_t fallback = 0);

// The first N `sep`-separated fields of `text`, and where what follows them begins (a last
// field that may hold `sep` itself); nullopt when `text` has fewer than N separators.
template <size_t N>
struct LeadingFields {
  std::array<std::string_view, N> fields;
  size_t rest = 0;
};
template <size_t N>
std::optional<LeadingFields<N>> SplitLeading(std::string_view text, char sep) {
  LeadingFields<N> out;
  for (auto& field : out.fields) {
    const size_t at = text.find(sep, out.rest);
    if (at == std::string_view::npos) return std::nullopt;
    field = text.substr(out.rest, at - out.rest);
    out.rest = at + 1;
  }
  return out;
}
double ToDouble(const std::string& s, double fallback = 0);

}  // namespace reelq::queue
