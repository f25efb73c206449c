#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>

#include <grpcpp/support/status.h>

#include "reelq/common/asio.h"
#include "reelq/common/clock.h"
#include "reelq/common/error.h"
#include "reelq/common/redis.h"
#include "reelq/queue/auth_store.h"
#include "reelq/queue/job_store.h"
#include "reelq/queue/wallet_store.h"
#include "reelq/queue/webhook_store.h"
#include "reelq/scheduler/admission.h"
#include "reelq/scheduler/authenticator.h"
#include "reelq/scheduler/groups.h"
#include "reelq/scheduler/settings.h"
#include "reelq/scheduler/webhooks.h"
#include "reelq/storage/object_store.h"
#include "reelq/v1/jobs.pb.h"

namespace reelq::scheduler {

// The JobService's logic as a plain class (the gRPC shell only moves messages): admission,
// storage in Redis, reads, cancel and retry.
//
// Every call acts for a Principal (Authenticator): a tenant sees only its own jobs and batches
// (another tenant's answer NOT_FOUND, exactly as if they did not exist), a request naming
// another tenant is refused (kAuthFailed -> PERMISSION_DENIED, naming the field); an admin sees
// all. An open principal (authentication off) behaves as before tokens existed. `auth` records
// which tenant owns each batch id; it may be null only when authentication is off.
class JobApi {
 public:
  JobApi(queue::JobStore& store, const Admission& admission, const Settings& settings,
         storage::ObjectStore* objects, ClockPtr clock, queue::AuthStore* auth = nullptr,
         queue::WalletStore* wallets = nullptr);

  // Called after every accepted submission (the dispatcher wakes up).
  void OnSubmitted(std::function<void()> callback) { on_submitted_ = std::move(callback); }

  // redis.wait_replicas: every accepted submission is written through `writes` and answered
  // only once `replicas` replicas have it (WAIT on `connection`, the one `writes` uses); until
  // then, or when they do not confirm within `timeout`, Submit fails with kRetryable (a retry
  // with the same idempotency key finds the job and waits again). Everything else (reads,
  // cancels, retries) stays on the JobStore given at construction: a WAIT holds up every command
  // behind it on its connection, and a GetJob must not wait on a lagging replica.
  void RequireReplicas(queue::JobStore& writes, redis::ConnectionPtr connection, int replicas,
                       std::chrono::milliseconds timeout);

  awaitable<Result<v1::SubmitJobResponse>> Submit(Principal who, v1::JobSpec spec);
  // Admits each spec on its own (a bad one gets its own error) and stores the admitted ones
  // with one Redis call. One result per spec, in order.
  // `batch_budget_micros` > 0: the batch's budget (SubmitBatchRequest.budget_micros).
  // `with_status`: fill each response's status (SubmitJob answers with it; SubmitBatch needs
  // only the id and whether it was a duplicate, and skips building it).
  awaitable<std::vector<Result<v1::SubmitJobResponse>>> SubmitMany(Principal who,
                                                                   std::vector<v1::JobSpec> specs,
                                                                   int64_t batch_budget_micros = 0,
                                                                   bool with_status = true);
  awaitable<Result<v1::JobStatus>> Get(Principal who, std::string job_id);
  awaitable<Result<v1::ListJobsResponse>> List(Principal who, v1::ListJobsRequest request);
  awaitable<Result<v1::JobStatus>> Cancel(Principal who, std::string job_id);
  awaitable<Result<v1::JobStatus>> Retry(Principal who, std::string job_id);
  awaitable<Result<v1::BatchProgress>> GetBatch(Principal who, std::string batch_id);
  // Every job of the batch, page by page (batch_actions.cpp): CancelBatch cancels what has not
  // ended, RetryBatch runs again what FAILED or was CANCELLED; a group's children go with it.
  awaitable<Result<v1::BatchActionResponse>> CancelBatch(Principal who, std::string batch_id);
  awaitable<Result<v1::BatchActionResponse>> RetryBatch(Principal who, std::string batch_id);
  // The caller's wallet (an admin names the tenant; open: the request's). wallet_api.cpp.
  awaitable<Result<v1::Wallet>> GetWallet(Principal who, v1::GetWalletRequest request);

  // Webhooks (webhooks.h). Until enabled, a request naming a webhook is refused.
  void EnableWebhooks(const WebhookGuard* guard, queue::WebhookStore* store) {
    webhook_guard_ = guard;
    webhook_store_ = store;
  }
  // Checks and records a batch's webhook (SubmitBatch's batch_webhook_url): the jobs of the
  // batch this scheduler admits from then on report to it. kInvalidRequest naming the field.
  awaitable<Result<void>> SetBatchWebhook(Principal who, std::string batch_id, std::string url,
                                          std::string events);

  // The id of a batch submitted without one (the job ids' clock and seeded source).
  std::string NewBatchId() const;

  v1::JobStatus ToStatus(const queue::JobRecord& record) const;
  // Groups (groups_api.cpp): a group's children as GetJob shows them (one Redis call).
  awaitable<void> AddChildren(const queue::JobRecord& group, v1::JobStatus& status);
  // Records the chosen take of a SUCCEEDED compare (its `picked` field; the worker-written
  // sidecar names the takes, the API answers which one was picked) and, with `delete_others`,
  // deletes the other takes' clips and sidecars from the store.
  awaitable<Result<v1::JobStatus>> PickTake(Principal who, v1::PickTakeRequest request);
  static v1::BatchProgress ToProgress(const std::string& batch_id, const queue::BatchCounts& c);
  // The tenant that holds the batch id, as Redis records it; empty when none does (no such batch,
  // or one submitted while authentication was off).
  awaitable<Result<std::string>> BatchOwner(std::string batch_id);

 private:
  queue::JobStore& store_;
  queue::JobStore* submit_store_ = &store_;  // RequireReplicas: the connection WAIT runs on
  const Admission& admission_;
  const Settings& settings_;
  storage::ObjectStore* objects_;
  // The tenant a job goes to: the caller's own (a tenant token), the one the request names
  // (admin or open). kAuthFailed when a tenant token's request names another tenant.
  Result<void> ResolveTenant(const Principal& who, v1::JobSpec& spec) const;
  // Records the batch's owner; kInvalidRequest when another tenant already uses that id.
  // `confirmed` (one call's claims, may be null) spares the same batch's later specs a Redis
  // call; claimed_batches_ spares later calls one, once a job is stored under the claim.
  using BatchClaims = std::set<std::pair<std::string, std::string>>;
  awaitable<Result<void>> ClaimBatch(std::string batch_id, std::string tenant,
                                     BatchClaims* confirmed = nullptr);
  // A job was stored under (batch, tenant)'s claim: it lasts at least a retention now.
  void RememberClaim(const std::string& batch_id, const std::string& tenant);
  // kNotFound (the same answer as for no such batch) unless `who` may see the batch.
  awaitable<Result<void>> CheckBatchVisible(Principal who, std::string batch_id);
  // CheckBatchVisible, and kNotFound for a batch with no job (batch_actions.cpp).
  awaitable<Result<void>> CheckBatchHasJobs(Principal who, const std::string& batch_id);
  // `response` with the batch's progress after the call.
  awaitable<Result<v1::BatchActionResponse>> WithProgress(Principal who, std::string batch_id,
                                                          v1::BatchActionResponse response);
  // A group's children as jobs to store after `parent` (whose id and kind it fills in); none for
  // a plain job. `parent_spec` is the group's spec with its images stored: a compare's takes
  // all get them; a storyboard's first shot gets the first frame, its last shot the last frame,
  // every shot the references. The children are billed as the parent would have been; the
  // parent itself holds no money.
  Result<std::vector<queue::NewJob>> GroupChildren(SubmissionPlan& plan,
                                                   const v1::JobSpec& parent_spec,
                                                   queue::NewJob& parent) const;
  static constexpr size_t kChildOfGroup = static_cast<size_t>(-1);

  ClockPtr clock_;
  queue::AuthStore* auth_;
  queue::WalletStore* wallets_;
  std::function<void()> on_submitted_;
  redis::ConnectionPtr replicated_on_;
  int wait_replicas_ = 0;
  std::chrono::milliseconds wait_timeout_{0};
  // (batch, tenant) -> when a job was stored under that claim; io only. Trusted for less than
  // the retention: a batch id is freed only a retention after its last job ended, and another
  // tenant may then claim it (ClaimBatch). A claim no job was stored under is not kept here: it
  // may lapse at any time (auth_claim_batch.lua) and another tenant take the id.
  std::map<std::pair<std::string, std::string>, int64_t> claimed_batches_;

  // The job record's webhook field ("<flags>|<url>", common_webhook.lua) for a spec's
  // webhook_url / webhook_events (submit.lua adds its batch's); kInvalidRequest naming the
  // field. `checked` remembers URLs already checked in this call.
  awaitable<Result<std::string>> WebhookField(std::string url, std::string events,
                                              std::map<std::string, bool>* checked);
  awaitable<void> AddDelivery(std::string kind, std::string id, v1::WebhookDelivery* out);
  const WebhookGuard* webhook_guard_ = nullptr;
  queue::WebhookStore* webhook_store_ = nullptr;
};

// The one place reelq errors become gRPC statuses.
grpc::Status ToGrpcStatus(const Error& error);

v1::JobState ToProto(queue::JobState state);
std::optional<queue::JobState> FromProto(v1::JobState state);
v1::JobPhase ToProto(queue::JobPhase phase);
queue::JobPhase FromProto(v1::JobPhase phase);
v1::ErrorCategory ToProto(std::optional<ErrorCategory> category);
std::string StateName(v1::JobState state);  // "PENDING" ... as stored in Redis; "" for none

}  // namespace reelq::scheduler
