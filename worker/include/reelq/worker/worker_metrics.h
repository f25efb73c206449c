#pragma once

#include "reelq/common/metrics.h"

namespace reelq::worker {

// Counters bumped by the job runner where the event happens. All are registered at start, so
// /metrics names them before the first event (the monitoring kit in deploy/ relies on that).
struct RunnerMetrics {
  explicit RunnerMetrics(metrics::Registry& registry)
      : provider_errors(registry.AddCounter(
            "reelq_worker_provider_errors_total",
            "Provider calls (create, poll, download) that failed, by account and error category "
            "(rate_limited: the provider answered 429)",
            {"account", "category"})),
        store_failures(registry.AddCounter(
            "reelq_worker_store_failures_total",
            "Object store writes that failed (clip or sidecar: open, write, commit)", {"object"})) {
  }

  metrics::Family<metrics::Counter>& provider_errors;
  metrics::Family<metrics::Counter>& store_failures;
};

}  // namespace reelq::worker
