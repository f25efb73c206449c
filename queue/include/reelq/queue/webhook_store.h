#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "reelq/common/asio.h"
#include "reelq/common/error.h"
#include "reelq/common/redis.h"

namespace reelq::queue {

// One delivery a deliverer has claimed (webhook_claim.lua).
struct ClaimedDelivery {
  std::string id;  // the webhook-id header, the same on every attempt
  std::string url, tenant, body;
  int attempts = 0;  // including this one
  int64_t created_ms = 0;
};

// What GetJob / GetBatch show of the latest delivery.
struct DeliveryState {
  std::string id, url, type, state;  // state: pending, delivered, failed
  int attempts = 0;
  int last_status = 0;
  std::string last_error;
  int64_t next_at_ms = 0, last_at_ms = 0;
};

enum class DeliveryOutcome { kDelivered, kRetry, kFailed };

// How one deliverer shares its slots between tenants (webhook_claim.lua).
struct ClaimFairness {
  int per_tenant = 1;                    // deliveries of one tenant in flight at once, at most
  std::map<std::string, int> in_flight;  // this deliverer's deliveries in flight, by tenant
  int64_t defer_ms = 1'000;  // a passed-over delivery is due again this much later (see Claim)
  int scan = 256;            // due deliveries looked at per call, at most
};

struct ClaimResult {
  std::vector<ClaimedDelivery> deliveries;
  // Deliveries of tenants at their cap filled the whole scan and were deferred: call again at
  // once to reach the ones behind them.
  bool more = false;
};

// Webhook deliveries and signing secrets in Redis (under "<prefix>:{q}:"). Deliveries are
// recorded by the state-change scripts themselves (queue/lua/common_webhook.lua); this class
// claims, settles and reads them. Keys: wh:<id> (hash), whdue (sorted set, due time),
// whsecret (hash tenant -> secret), batch:<id> fields `webhook` (the batch's URL), `wh_tenant`
// and `wh_all`.
class WebhookStore {
 public:
  WebhookStore(redis::ConnectionPtr connection, std::string prefix);

  // Up to `limit` due deliveries, each leased for `lease_ms` (another deliverer takes it only
  // after that) and counted as an attempt. A tenant's deliveries are taken only while it has
  // fewer than `fairness.per_tenant` in flight; the others stay due, unclaimed and uncounted
  // (when they filled the whole scan, due again `fairness.defer_ms` later).
  awaitable<Result<ClaimResult>> Claim(int64_t now_ms, int64_t lease_ms, int limit,
                                       ClaimFairness fairness);
  // Records an attempt's outcome: kRetry makes it due again at `next_at_ms`; kDelivered and
  // kFailed end it (its record stays `keep_s` seconds for GetJob).
  awaitable<Result<void>> Settle(std::string id, DeliveryOutcome outcome, int status,
                                 std::string error, int64_t now_ms, int64_t next_at_ms,
                                 int64_t keep_s);
  // The latest delivery of a job (`kind` "job") or batch ("batch"); nullopt when none.
  awaitable<Result<std::optional<DeliveryState>>> Latest(std::string kind, std::string id);
  // Names the batch's webhook (batch_webhook.lua): its end is delivered to `url`, and with
  // `all` each job's end too. Only `tenant`'s jobs report to it ('' for any: an admin or a
  // scheduler without authentication). Set before the batch's first job; a batch no job is
  // stored into within `unused_ms` loses the record again.
  awaitable<Result<void>> SetBatchWebhook(std::string batch_id, std::string url, std::string tenant,
                                          bool all, int64_t unused_ms);
  // The tenant's signing secret; `fresh` becomes it when it has none yet.
  awaitable<Result<std::string>> Secret(std::string tenant, std::string fresh);
  // Makes `fresh` the tenant's secret; the one it replaces still signs until now + overlap
  // (webhook_rotate.lua).
  awaitable<Result<std::string>> RotateSecret(std::string tenant, std::string fresh, int64_t now_ms,
                                              int64_t overlap_ms);
  // The secret a rotation replaced, while its overlap lasts at `now_ms`; nullopt otherwise.
  awaitable<Result<std::optional<std::string>>> PreviousSecret(std::string tenant, int64_t now_ms);

 private:
  redis::ConnectionPtr connection_;
  std::string p_;  // "<prefix>:{q}"
};

}  // namespace reelq::queue
