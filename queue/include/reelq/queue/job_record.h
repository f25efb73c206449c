#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "reelq/common/error.h"

namespace reelq::queue {

// Job states as stored in Redis: the names of reelq.v1.JobState without the prefix.
enum class JobState { kPending, kDispatched, kRunning, kSucceeded, kFailed, kCancelled };
std::string_view ToString(JobState state);
std::optional<JobState> JobStateFromString(std::string_view text);
bool IsTerminal(JobState state);

// A RUNNING job's phase; kNone outside RUNNING.
enum class JobPhase { kNone, kSubmitting, kGenerating, kTransferring };
std::string_view ToString(JobPhase phase);
std::optional<JobPhase> JobPhaseFromString(std::string_view text);

// The stored name of an error category is ToString(ErrorCategory) (common/error.h); this is its
// inverse. nullopt for a name no category has.
std::optional<ErrorCategory> ErrorCategoryFromString(std::string_view text);

// A flat list of Redis hash fields: what the scripts take and return (named, never positional).
using Fields = std::vector<std::pair<std::string, std::string>>;

struct TransitionRecord {
  int seq = 0;
  JobState state = JobState::kPending;
  JobPhase phase = JobPhase::kNone;
  int64_t at_ms = 0;
  std::string detail;
};

struct AttemptError {
  int attempt = 0;
  std::optional<ErrorCategory> category;  // nullopt: a name this build does not know
  std::string category_name;              // as stored
  std::string message;
  std::string code;
  std::string model;
  std::string account;
  int64_t at_ms = 0;
};

// One job as Redis holds it (key <prefix>:{q}:job:<id>, one hash). job_codec.cpp is the one
// place that maps these members to hash fields and back.
struct JobRecord {
  std::string id;
  std::string tenant, batch, idempotency_key;
  std::string spec_bytes;  // serialized reelq.v1.JobSpec
  std::vector<std::string> candidate_models;
  bool prefer_first = false;
  int priority = 0;
  int64_t start_deadline_ms = 0, finish_deadline_ms = 0;

  JobState state = JobState::kPending;
  JobPhase phase = JobPhase::kNone;
  std::string model, account, upstream, worker, token;
  int attempt = 0, max_attempts = 0;
  std::string output_key, output_url, sidecar_key, sha256;
  double clip_seconds = 0;
  // Money (micro-dollars): reserved now, settled so far; billed to the tenant's wallet or not.
  int64_t reserved_micros = 0, cost_micros = 0;
  // The provider's own charge for the task when its answer carried one, else -1. A billed job
  // settles at no more than its hold, so this can be above cost_micros (complete.lua).
  int64_t provider_charge_micros = -1;
  bool billed = false;
  // A PENDING job parked by dispatch: what it waits for ("funds": no model it may use can be
  // paid for by what it holds plus its wallet's balance) and what that balance must hold for it
  // to go; empty and 0 otherwise (and for records written before jobs were parked).
  std::string waiting;
  int64_t waiting_need_micros = 0;
  std::optional<ErrorCategory> error_category;  // set once the job FAILED
  std::string error_category_name, error_message, error_code;
  int64_t created_ms = 0, updated_ms = 0;
  // Non-zero: the upstream task finished (at this time) on an attempt that failed after it, and
  // is kept for the next attempt to fetch its clip instead of paying for another generation.
  int64_t generated_ms = 0;
  std::vector<TransitionRecord> history;  // by seq
  std::vector<AttemptError> errors;       // by attempt
  // Groups (issue 13): see NewJob.
  std::string kind;
  std::vector<std::string> children;
  int children_ok = 0;  // children that succeeded
  std::string parent;
  int child_index = 0;
  std::string sheet_key, picked;  // compare: the PNG contact sheet, the picked take
  // Chained storyboards: the group is a chain; a shot's first frame (the previous shot's last
  // frame, set when that one succeeded) and its own last frame (stored when it succeeded).
  bool chain = false;
  std::string chain_frame, last_frame_key;
  // The webhook the job reports to, "<flags>|<url>" (common_webhook.lua): its own, or its
  // batch's when the batch hook asks for every job's end (submit.lua); empty: none.
  std::string webhook;

  // Decodes a hash read whole (HGETALL). kInternal naming the field when a field the job cannot
  // be without is missing or unreadable (a corrupt record).
  static Result<JobRecord> Decode(std::string id, const Fields& fields);
};

}  // namespace reelq::queue
