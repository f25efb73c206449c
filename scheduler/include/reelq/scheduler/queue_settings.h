#pragma once

#include "reelq/providers/catalogue.h"
#include "reelq/queue/job_store.h"
#include "reelq/scheduler/settings.h"

namespace reelq::scheduler {

// What a scheduler publishes to the queue at start (JobStore::SyncSettings): the catalogue's
// models with their accounts and latency profile (the seed and the clamp bounds of the estimate
// dispatch routes by), the accounts' limits, the tenant weights.
queue::QueueSettings ToQueueSettings(const providers::Catalogue& catalogue,
                                     const Settings& settings);

}  // namespace reelq::scheduler
