#include "reelq/scheduler/queue_settings.h"

namespace reelq::scheduler {

queue::QueueSettings ToQueueSettings(const providers::Catalogue& catalogue,
                                     const Settings& settings) {
  queue::QueueSettings q;
  for (const auto& m : catalogue.models) {
    queue::ModelSetting ms;
    ms.id = m.id;
    ms.latency_seed_seconds = m.latency.p50_seconds;
    ms.latency_min_seconds = m.latency.min_seconds;
    ms.latency_max_seconds = m.latency.max_seconds;
    ms.price_micros_per_second = m.price_micros_per_second;
    ms.price_micros_by_resolution = m.price_micros_by_resolution;
    for (const auto* a : catalogue.AccountsFor(m)) ms.accounts.push_back(a->id);
    q.models.push_back(std::move(ms));
  }
  for (const auto& a : catalogue.accounts) {
    q.accounts.push_back({a.id, a.provider, a.requests_per_minute, a.max_concurrent, a.daily_cap,
                          a.polls_per_minute, a.bills_policy_rejections, a.bills_failed_tasks});
  }
  q.default_weight = settings.default_weight;
  q.tenant_weights = settings.tenant_weights;
  q.activation_credit = settings.activation_credit;
  return q;
}

}  // namespace reelq::scheduler
