#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "reelq/common/asio.h"
#include "reelq/common/clock.h"
#include "reelq/common/error.h"
#include "reelq/common/redis.h"
#include "reelq/queue/job_record.h"

namespace reelq::queue {

// Bumped whenever the layout of keys or records changes; processes refuse to run against a
// Redis that holds another version. 2: history and attempt errors inside the job hash
// (h:<seq>, e:<seq>), one event stream entry per script call, named fields between C++ and Lua.
// 3: a worker's held jobs are a hash (wjobs:<worker>), lease tokens name their worker,
// upstream-task claims are per-account hashes. (Earlier builds of 3 also handed dispatched jobs
// to lease in `rdata`, whose entries lease drops.)
// 4: while a worker holds a job, its phases, upstream id and history entries live in its held
// entry (plain fields, then JSON parts: common_held.lua), which a build speaking 3 cannot read;
// a finished job's outputs are one field, `out`; a record written at submit holds neither `seq`
// nor `score` (readers supply them) and a plain queued job has no `state:PENDING` entry.
// This build reads a Redis of version 3 as it is (its JSON-array held entries, `rdata`) and
// marks it 4 when one of its schedulers syncs its settings, so that a process of a build
// speaking 3 then refuses to start instead of failing on the first held entry it meets.
inline constexpr int kSchemaVersion = 4;
inline constexpr int kOldestReadableSchema = 3;

// A job's attempts when its record states none (the scheduler's default `max_attempts`):
// submit stores `max_attempts` only when it differs (issue 11), and every reader of a record
// (JobRecord::Decode, DecodeLeasedJob, fail.lua) applies this.
inline constexpr int kDefaultMaxAttempts = 5;

struct NewJob {
  std::string id;
  std::string tenant;
  std::string batch;
  std::string idempotency_key;
  std::string spec_bytes;  // serialized reelq.v1.JobSpec
  std::vector<std::string> candidate_models;
  int priority = 0;
  int max_attempts = kDefaultMaxAttempts;
  int64_t start_deadline_ms = 0;
  int64_t finish_deadline_ms = 0;
  // The first candidate is the request's stated choice (first listed, or the use case's first
  // choice under `auto`): dispatch keeps it unless another model finishes earlier by more than
  // the preference margin.
  bool prefer_first = false;
  // Groups (issue 13). A group's parent: `kind` ("storyboard", "compare") and its children's
  // ids in order; it waits outside the pending queues until its children end. A child: its
  // parent's id and position. SubmitMany stores a parent and its children in one call (the
  // parent first), and none of the children when the parent is a duplicate.
  std::string kind;
  std::vector<std::string> children;
  std::string parent;
  int child_index = 0;
  // A group's parent whose shots run in order, each from the last frame of the one before
  // (`chain`): only the first shot is queued at submit.
  bool chain = false;
  // The wallet (issue 12): bill the tenant's wallet when it has one (false for the open
  // principal: nothing is charged); the seconds and resolution its price is taken for; the
  // batch's budget in micro-dollars when the request states one (0: keep the stored one).
  bool bill = false;
  int64_t billed_seconds = 0;
  std::string resolution;
  int64_t batch_budget_micros = 0;
  // The job's webhook as the scripts read it, "<flags>|<url>" (common_webhook.lua); empty: none.
  std::string webhook;
};

inline constexpr std::string_view kKindStoryboard = "storyboard";
inline constexpr std::string_view kKindCompare = "compare";

struct SubmitOutcome {
  std::string job_id;
  bool duplicate = false;
  // Set when the job was not stored: kRateLimited (RESOURCE_EXHAUSTED at the API) naming the
  // tenant limit, the batch budget or the wallet that refused it.
  std::optional<Error> refused;
};

struct LeasedJob {
  std::string id;
  std::string token;  // fencing token: every later change of the job must present it
  std::string spec_bytes;
  std::string model, account;
  int attempt = 1, max_attempts = 1;
  std::string upstream;  // non-empty: resume this upstream task instead of creating one
  std::string tenant, batch;
  int64_t finish_deadline_ms = 0;
  int64_t created_ms = 0;
  // Non-zero: a create for this attempt was sent at this wall-clock time (TakeCreatePermit) and
  // its upstream id was never stored; find that task before creating another.
  int64_t create_intent_ms = 0;
  std::string create_intent;  // as stored: "<sent_ms>:<attempt>"
  // A group's parent leased for its own step (join, contact sheet): its kind; no model or
  // account. A child: its group and position.
  std::string kind;
  std::string parent;
  int child_index = 0;
  // A chained shot after the first: the stored key of the previous shot's last frame, which
  // this shot starts from (its first_frame).
  std::string chain_frame;
};

// What a worker's heartbeat learned.
struct HeartbeatOutcome {
  // The worker's lease lapsed and the reaper handed its jobs on (or another process registered
  // under the same worker id): stop every job, then RegisterWorker again.
  bool lease_lost = false;
  // Redis holds more jobs under this worker than the `running` it reported (a lease answer
  // lost, or Redis rolled back by a failover): its next Lease call should pass `holding`.
  bool holds_more = false;
  std::vector<std::string> cancelled;  // jobs cancelled while this worker held them
};

// The FailRequest::code of a job whose create may have started (and billed) an upstream
// generation that the provider's API cannot look up (its category is
// ErrorCategory::kCreateOutcomeUnknown; the API shows ERROR_CATEGORY_CREATE_OUTCOME_UNKNOWN).
inline constexpr std::string_view kCreateOutcomeUnknown = "create_outcome_unknown";

// The FailRequest::code of a job whose upstream task outlived its model's generation_timeout
// (category kDeadlineExceeded; catalogue.h).
inline constexpr std::string_view kGenerationTimeout = "generation_timeout";

// The error code fail.lua gives a job whose upstream task finished on an earlier attempt (its clip
// not stored) and is no longer known to the provider (category kNotFound): the job ends, charged,
// rather than paying for the generation again (JobRecord::generated_ms).
inline constexpr std::string_view kResultExpired = "result_expired";

struct FailRequest {
  std::string job_id;
  std::string token;
  ErrorCategory category = ErrorCategory::kInternal;
  std::string message;
  std::string code;
  bool retry = false;
  int64_t retry_at_ms = 0;
  bool count_attempt = true;  // false for failures that are not the job's fault (429s)
  int64_t cooldown_ms = 0;    // > 0: the account cools down this long, fleet-wide
  // The upstream task finished and its clip is still to be had: a retry resumes it (fetches
  // the clip again) instead of creating a new one (fail.lua).
  bool keep_task = false;
  // The account's provider refused a create with a server error (5xx, a timeout with nothing
  // made): a breaker for sick accounts. Each such failure within two minutes of the last one
  // doubles the account's cooldown (1 s, 2 s, ... up to 60 s), so dispatch sends work to its
  // other accounts or allowed models instead of spending every job's attempts on it; a blip
  // costs a second.
  bool account_fault = false;
  // The provider refused the create because too many of the account's tasks run at once
  // (Error::over_concurrency): fail.lua lowers the account's learned concurrency to what it had
  // in flight, and leaves its create rate alone.
  bool over_concurrency = false;
  // The failure is the provider's answer to this attempt's create (a refusal: nothing was
  // made), so the create intent recorded for that create no longer says a task may exist: a
  // refused create is not billed (fail.lua).
  bool create_answered = false;
};

enum class FailOutcome { kRetrying, kFailed };

struct PermitRequest {
  std::string job_id;
  std::string token;
  int64_t sent_ms = 0;  // recorded as the create intent "<sent_ms>:<attempt>"
  int attempt = 1;
};

struct PhaseChange {
  std::string job_id;
  std::string token;
  JobPhase phase = JobPhase::kSubmitting;
  std::string upstream;  // non-empty: the upstream task id, stored and claimed
  std::string detail;
};

struct CompleteRequest {
  std::string job_id;
  std::string token;
  std::string output_key, sidecar_key, sha256, output_url;
  double clip_seconds = 0;
  int64_t generation_ms = 0;
  std::string sheet_key;  // a compare's PNG contact sheet; empty for every other job
  // A chained shot with a next shot: the stored key of its clip's last frame, which the next
  // shot starts from (common_groups.lua's group_child_ended queues it).
  std::string last_frame_key;
  // The provider's own charge for the task in micro-dollars, when its answer carried one; -1:
  // settle at the model's price for the billed seconds.
  int64_t charge_micros = -1;
};

struct ModelSetting {
  std::string id;
  std::vector<std::string> accounts;
  double latency_seed_seconds = 60;
  // The catalogue's latency profile: complete.lua clamps each observed generation time to
  // [min / 2, max * 2] before it enters the model's estimate. 0: no bound on that side.
  double latency_min_seconds = 0;
  double latency_max_seconds = 0;
  // Micro-dollars per generated second; per resolution where the provider charges so.
  int64_t price_micros_per_second = 0;
  std::map<std::string, int64_t> price_micros_by_resolution;
};

struct AccountSetting {
  std::string id;
  std::string provider;
  double requests_per_minute = 60;
  int max_concurrent = 1;
  int daily_cap = 0;
  double polls_per_minute = 0;  // 0: the provider does not count polls
  // Whether the provider bills a task that was created and then failed by content policy / in
  // any other way (accounts[].billing); unbilled failures are refunded to the wallet.
  bool bills_policy_rejections = false;
  bool bills_failed_tasks = false;
};

struct QueueSettings {
  std::vector<ModelSetting> models;
  std::vector<AccountSetting> accounts;
  double default_weight = 1;
  std::map<std::string, double> tenant_weights;
  // Jobs (at weight 1) a tenant whose queue was empty starts ahead of the global virtual clock
  // (tenants.activation_credit; common.lua, activation_vt).
  int activation_credit = 64;
};

struct DispatchOutcome {
  int dispatched = 0;
  int expired = 0;      // failed on the way because their start deadline had passed
  int64_t wait_ms = 0;  // when capacity is expected back (0: unknown or now)
};

struct ReapOutcome {
  int expired_leases = 0;  // jobs handed back because their worker's lease lapsed
  int requeued_retries = 0;
};

struct CancelOutcome {
  JobState previous_state = JobState::kPending;
  std::string upstream;
  std::string account;
};

struct Event {
  std::string stream_id;
  std::string job_id;
  int seq = 0;
  JobState state = JobState::kPending;
  JobPhase phase = JobPhase::kNone;
  int64_t at_ms = 0;
  std::string batch;
  std::string detail;
  // The job's tenant (every transition carries it; the dashboard's per-tenant figures come
  // from the stream).
  std::string tenant;
};

struct BatchCounts {
  int64_t total = 0;
  std::map<JobState, int64_t> by_state;
  // Money (micro-dollars): the budget (0: none), what the batch holds and has spent, and what
  // was spent per model.
  int64_t budget_micros = 0;
  int64_t cost_micros = 0;
  std::map<std::string, int64_t> spent_micros_by_model;
  int64_t Count(JobState state) const;
  bool Done() const;  // every job is terminal
};

struct ListFilter {
  std::string tenant, batch, model;
  std::optional<JobState> state;
  // Empty: from the start; else a ListPage::next_page_token (an opaque position in the index,
  // so paging stays exact while jobs change state).
  std::string page_token;
  int page_size = 100;
};

struct ListPage {
  std::vector<JobRecord> jobs;
  std::string next_page_token;  // empty: no more
  // Jobs of this page whose records could not be read (damaged): left out, so that one record
  // does not hide every job listed after it; GetJob on the id names what is wrong.
  std::vector<std::string> unreadable;
};

struct RetentionOutcome {
  int jobs_removed = 0;
  int batches_removed = 0;  // batch records whose last job went
  bool more = false;        // the call hit its limit: more are due now
};

// The live view behind ListModels / GetStats (queue/lua/stats.lua), typed: readers never see
// Redis field names. Numbers derived from a rule the scripts own (the effective create rate,
// the day's usage) are computed by the scripts at the read's `now`, so there is one formula.
struct Stats {
  struct Account {
    std::string id;
    std::string provider;
    double requests_per_minute = 0;  // configured
    // The rate dispatch applies now: lower than configured after a 429, climbing back
    // (effective_rpm in queue/lua/common.lua).
    double effective_requests_per_minute = 0;
    int64_t max_concurrent = 0;
    // The concurrency dispatch applies now: lower than configured after the provider refused
    // creates for concurrency, growing back one a minute (effective_conc in common.lua).
    int64_t effective_max_concurrent = 0;
    int64_t in_flight = 0;
    int64_t daily_cap = 0;           // 0: none
    int64_t used_today = 0;          // creates dispatched on the current UTC day
    int64_t cooldown_until_ms = 0;   // wall clock; in the past (or 0) when not cooling down
    int64_t rate_limited_total = 0;  // 429s seen
    double polls_per_minute = 0;     // 0: the provider does not count polls
  };
  struct Model {
    std::string id;
    double latency_estimate_seconds = 0;  // 0: no estimate stored
    int64_t succeeded = 0, failed = 0;
    // Depth counters (common.lua, depth_add), clamped at zero: PENDING jobs that may go to this
    // model, dispatched but not leased, leased by a worker.
    int64_t queue_depth = 0, dispatched = 0, in_flight = 0;
  };
  std::vector<Account> accounts;
  std::vector<Model> models;
  std::vector<std::pair<std::string, int64_t>> tenant_pending;
  // The weights dispatch uses for those tenants (the configured ones, or an admin's SetWeight);
  // a tenant absent here runs at the default weight.
  std::map<std::string, double> tenant_weights;
  int64_t ready = 0, leased = 0, delayed = 0, workers = 0;
  // Jobs not yet dispatched: pending in every tenant's queue plus those waiting out a retry.
  int64_t Pending() const;
};

// The Redis data model. Every change that touches several keys is one Lua script (queue/lua),
// so any number of schedulers and workers can share one Redis. Keys are "<prefix>:{q}:...":
// one hash tag, so the layout can move to Redis Cluster.
class JobStore {
 public:
  JobStore(redis::ConnectionPtr connection, std::string prefix, ClockPtr clock);

  const std::string& key_prefix() const { return p_; }

  // kFailedPrecondition when Redis holds another schema version (none yet is fine).
  awaitable<Result<void>> CheckSchema();

  // A job's hash stays in Redis's compact (listpack) encoding only while every value is at most
  // hash-max-listpack-value bytes; a prompt longer than that makes the whole record about four
  // times larger. Returns advice naming the setting when Redis's is below
  // kCompactHashValueBytes, empty when it is not (or when CONFIG is not allowed, as on some
  // managed services, where nothing can be told).
  static constexpr int kCompactHashValueBytes = 1024;
  awaitable<std::string> AdviseOnRedisSettings();

  // Publishes models, accounts and weights; fails with kFailedPrecondition when Redis holds
  // another schema version.
  awaitable<Result<void>> SyncSettings(const QueueSettings& settings);

  awaitable<Result<SubmitOutcome>> Submit(const NewJob& job, int64_t idempotency_ttl_s);
  // Many jobs in one script call (a chunk of a SubmitBatch stream): one outcome per job, in
  // order. Nothing is read back: the caller knows what it stored. More than
  // kMaxJobsPerSubmitCall go in several calls, a group never split; when a later call fails,
  // its jobs are answered refused with its error (the earlier ones are stored).
  awaitable<Result<std::vector<SubmitOutcome>>> SubmitMany(std::vector<NewJob> jobs,
                                                           int64_t idempotency_ttl_s);
  // submit.lua passes its per-call lists to Redis commands with unpack, which Redis's Lua
  // stops at 8,000 values (two a job in the pending queues); a script stopped half-way would
  // leave records in no queue or index. Storyboards make a chunk of 200 specs thousands of jobs.
  static constexpr size_t kMaxJobsPerSubmitCall = 1000;
  // `policy`: "fair" (weighted fair share between tenants) or "fifo" (one global order; the
  // baseline bench/schedule compares against). `preference_margin_s`: how much earlier (in
  // seconds of expected finish) another model must be to take a job from its preferred first
  // choice (NewJob::prefer_first).
  awaitable<Result<DispatchOutcome>> Dispatch(int max_jobs, int scan_depth, double default_weight,
                                              std::string policy = "fair",
                                              double preference_margin_s = 0);
  awaitable<Result<ReapOutcome>> Reap(int max);

  // Takes a token from `account`'s fleet-wide poll bucket (`polls_per_minute` > 0) and returns
  // how long to wait before sending the poll: the bucket reserves the poll's turn rather than
  // refusing it, so this is the only Redis call a poll needs. No sliding minute of released
  // polls exceeds `polls_per_minute` across every worker (queue/lua/poll_token.lua).
  awaitable<Result<std::chrono::milliseconds>> TakePollToken(std::string account,
                                                             double polls_per_minute);

  // A worker's start: a new epoch and one lease for everything it will hold (renewed by
  // Heartbeat). Jobs still held under an earlier incarnation of this worker id are handed back.
  awaitable<Result<int64_t>> RegisterWorker(std::string worker, std::chrono::milliseconds lease);
  // Leases jobs under the worker's lease (extending it). `epoch`: RegisterWorker's; kLeaseLost
  // when that lease is gone (register again). 0 skips the check and registers the worker when
  // it has no lease (tests and tools).
  // Returns first the jobs dispatch leased straight to this worker since its last call (see
  // WaitForWork), then jobs from `ready`; when `ready` runs dry the worker is entered among
  // the workers waiting for work, for `max` less what it got (max 0 takes it out: draining).
  // `holding`: set after a Lease call whose answer was lost (the script may have run): the
  // jobs the worker holds; any other job Redis holds under this worker was leased by that lost
  // answer, which no one will run, and is handed back (and may be leased again in this call).
  // `room`: how many jobs the worker can take in all (when above `max`, which bounds what one
  // call leases from `ready`): what it waits for, less what it gets.
  // `waiting`, when given, is set when this call entered the worker among those waiting for
  // work (with room left): the worker may then block on WaitForWork straight away, with or
  // without jobs, instead of calling again only to be entered (one call a push saved).
  awaitable<Result<std::vector<LeasedJob>>> Lease(std::string worker, int max,
                                                  std::chrono::milliseconds lease,
                                                  int64_t epoch = 0,
                                                  const std::vector<std::string>* holding = nullptr,
                                                  int room = 0, bool* waiting = nullptr);
  // Waits (on a blocking connection of its own) until dispatch signals new work on `ready`, or,
  // with `worker` (after a Lease call that found nothing and so entered it among the workers
  // waiting for work), leases jobs straight to it; or `timeout`. The jobs come with the next
  // Lease call: the wait pops only a token, so a wait whose answer is lost, or which outlives
  // its client's timeout inside Redis, loses no job.
  awaitable<Result<void>> WaitForWork(redis::Connection& blocking,
                                      std::chrono::milliseconds timeout,
                                      const std::string& worker = "");
  // Renews the worker's one lease: a few commands per worker, whatever it holds.
  // `acknowledged`: cancelled jobs (from an earlier Heartbeat or WaitForCancel) the worker has
  // stopped, taken off its cancel list; the others are returned again until acknowledged.
  // `running`: how many jobs the worker runs (-1: not compared), see HeartbeatOutcome.
  awaitable<Result<HeartbeatOutcome>> Heartbeat(std::string worker, int64_t epoch,
                                                std::chrono::milliseconds lease,
                                                std::vector<std::string> acknowledged = {},
                                                int64_t running = -1);
  // Blocks (on a connection of its own) until a job this worker holds is cancelled, or
  // `timeout`; returns the ids on its cancel list (none on timeout), which stay there until a
  // Heartbeat acknowledges them. Cancels reach the worker this way at once; the wait pops only a
  // token, so one whose answer is lost, or which outlives its client inside Redis, loses none.
  awaitable<Result<std::vector<std::string>>> WaitForCancel(redis::Connection& blocking,
                                                            std::string worker,
                                                            std::chrono::milliseconds timeout);
  // kLeaseLost when the token is stale; kCancelled when the job was cancelled. With an upstream
  // id: kFailedPrecondition (message "owned by job <id>") when another job already stored that
  // same upstream task.
  awaitable<Result<void>> SetPhase(std::string job_id, std::string token, JobPhase phase,
                                   std::string upstream, std::string detail);
  // Many phase changes in one script call; one result per change, in order.
  awaitable<Result<std::vector<Result<void>>>> SetPhaseMany(std::vector<PhaseChange> changes);
  // Right before an upstream create, at `sent_ms`: 0 when the call may go now (it is then
  // counted in the account's sliding minute, and the create intent "<sent_ms>:<attempt>" is
  // recorded on the job, cleared by SetPhase with an upstream id, Fail and Retry), else how
  // long to wait before asking again. Keeps every window of 60 s + `guard` within the
  // account's rate however late dispatched jobs reach the provider. kLeaseLost / kCancelled as
  // SetPhase.
  awaitable<Result<std::chrono::milliseconds>> TakeCreatePermit(std::string job_id,
                                                                std::string token,
                                                                std::chrono::milliseconds guard,
                                                                int64_t sent_ms, int attempt);
  // Many permits in one script call (at the time of the latest `sent_ms`); one result per
  // request, in order.
  awaitable<Result<std::vector<Result<std::chrono::milliseconds>>>> TakeCreatePermitMany(
      std::chrono::milliseconds guard, std::vector<PermitRequest> requests);
  awaitable<Result<void>> Complete(CompleteRequest request);
  // Many completions in one script call; one result per request, in order (kLeaseLost /
  // kCancelled per job as Complete).
  awaitable<Result<std::vector<Result<void>>>> CompleteMany(std::vector<CompleteRequest> requests);
  awaitable<Result<FailOutcome>> Fail(FailRequest request);
  // Gives a RUNNING job back with its slot, upstream task and create intent kept, for another
  // lease to resume. `retry_at_ms` > now: it waits until then (in `delayed`) instead of going
  // to the front of `ready`, so a worker that cannot run it does not lease it again at once.
  awaitable<Result<void>> HandBack(std::string job_id, std::string token, std::string reason,
                                   int64_t retry_at_ms = 0);

  awaitable<Result<CancelOutcome>> Cancel(std::string job_id);
  awaitable<Result<void>> Retry(std::string job_id);

  // kNotFound with NoSuchJob(job_id) when there is none.
  awaitable<Result<JobRecord>> Get(std::string job_id);
  // Many jobs in one call (a group's children), in order; a job that does not exist is left
  // out.
  awaitable<Result<std::vector<JobRecord>>> GetMany(std::vector<std::string> job_ids);
  // Records a compare group's picked take (one field of the group's record).
  awaitable<Result<void>> SetPicked(std::string group_id, std::string take_id);
  // The answer for a job Redis does not hold (never submitted, or expired by retention); also
  // what a tenant hears for another tenant's job, so the two cannot be told apart.
  static std::string NoSuchJob(std::string_view job_id);
  // kInvalidRequest (naming page_token) for a token this store did not give out.
  awaitable<Result<ListPage>> List(ListFilter filter);
  // Retention (queue/lua/retention.lua): up to `max` jobs that finished at least `retention`
  // ago (by the injected clock) leave Redis with their index entries, and batch records with
  // their last job.
  awaitable<Result<RetentionOutcome>> ExpireFinished(std::chrono::milliseconds retention, int max);
  // Blocks (on a connection of its own) until a script freed an account slot or added
  // dispatchable work (common.lua wake_dispatch), or `timeout`; true when woken.
  awaitable<Result<bool>> WaitForDispatchWake(redis::Connection& blocking,
                                              std::chrono::milliseconds timeout);
  awaitable<Result<BatchCounts>> GetBatch(std::string batch_id);
  awaitable<Result<Stats>> GetStats();

  // Reads events after `after_id` ("$" for only new ones), blocking up to `block`.
  awaitable<Result<std::vector<Event>>> ReadEvents(redis::Connection& blocking,
                                                   std::string after_id,
                                                   std::chrono::milliseconds block, int count);
  // Up to `count` events from `start` on, oldest first, without blocking (XRANGE on the main
  // connection): `start` is "<ms>-0" for everything since a time, or "(<id>" for what came
  // after an event already read.
  awaitable<Result<std::vector<Event>>> ReadEventRange(std::string start, int count);
  // The id of the newest event, "0-0" when there is none.
  awaitable<Result<std::string>> LastEventId();

  // Pending order within a tenant: priority (higher first), then deadline, then age.
  static double PendingScore(int priority, int64_t start_deadline_ms, int64_t created_ms);

 private:
  awaitable<Result<std::vector<SubmitOutcome>>> SubmitCall(std::vector<NewJob> jobs,
                                                           int64_t idempotency_ttl_s);
  std::string SchemaMismatch(const std::string& stored) const;
  awaitable<Result<redis::Reply>> Run(const redis::Function& script, std::vector<std::string> args);
  // A write of many held jobs (phase, complete): now, the count, then each job's fields; one
  // outcome per job, in order.
  awaitable<Result<std::vector<Result<void>>>> RunPerJob(std::string_view name,
                                                         const redis::Function& script,
                                                         std::vector<Fields> jobs);

  // The key ListJobs page tokens are sealed under (list_cursor.h): one per deployment, made by
  // the first store that needs it and kept in Redis, so a token from one scheduler opens on any.
  // `reread`: read it from Redis again (a token did not open under the remembered one).
  awaitable<Result<std::string>> ListKey(bool reread = false);

  redis::ConnectionPtr connection_;
  std::string p_;  // "<prefix>:{q}"
  ClockPtr clock_;
  std::string list_key_;  // ListKey's, once read
  // Redis could not store a key (out of memory): list_key_ is this process's own until it can.
  bool list_key_provisional_ = false;
};

}  // namespace reelq::queue
