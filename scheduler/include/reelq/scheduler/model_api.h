#pragma once

#include <cstdint>

#include "reelq/common/asio.h"
#include "reelq/common/clock.h"
#include "reelq/common/error.h"
#include "reelq/providers/catalogue.h"
#include "reelq/queue/job_store.h"
#include "reelq/scheduler/authenticator.h"
#include "reelq/scheduler/settings.h"
#include "reelq/v1/models.pb.h"

namespace reelq::scheduler {

// The ModelService's logic as a plain class (the gRPC shell only moves messages): the
// catalogue joined with the queue's live view (queue::JobStore::GetStats). Every live number is
// computed by the queue's scripts, which own the rules (the effective create rate, the depth
// counters, the latency estimate); this class only shapes them into the API's messages. Times
// relative to now (an account's remaining cooldown) come from the injected clock.
//
// Lives on the scheduler's io executor, like JobApi; the catalogue and settings must outlive it.
class ModelApi {
 public:
  ModelApi(queue::JobStore& store, const providers::Catalogue& catalogue, const Settings& settings,
           ClockPtr clock);

  // Every catalogue model in catalogue order, with its live counters, latency estimate (the
  // catalogue's p50 until the queue has one) and the live state of its accounts.
  awaitable<Result<v1::ListModelsResponse>> ListModels();
  // As a caller sees them: the provider accounts behind each model are the operator's, shown
  // to an admin token (or with authentication off), not to a tenant's (as on the dashboard).
  awaitable<Result<v1::ListModelsResponse>> ListModels(Principal who);
  // Fleet-wide totals, tenants with their weights, every account, per-model depth (by model id).
  awaitable<Result<v1::GetStatsResponse>> GetStats();
  // The same as `who` may see it: a tenant sees only its own line in `tenants`, and `pending`
  // counts only its own queue (retry waits are not kept per tenant, so only an admin sees them).
  awaitable<Result<v1::GetStatsResponse>> GetStats(Principal who);

  // The same from a snapshot already read (no I/O), at `now_ms`: for pages that read the queue
  // once and build both views.
  v1::ListModelsResponse ToModels(const queue::Stats& stats, int64_t now_ms) const;
  v1::GetStatsResponse ToStats(const queue::Stats& stats, int64_t now_ms) const;
  static v1::AccountStats ToAccountStats(const queue::Stats::Account& account, int64_t now_ms);

 private:
  queue::JobStore& store_;
  const providers::Catalogue& catalogue_;
  const Settings& settings_;
  ClockPtr clock_;
};

}  // namespace reelq::scheduler
