#pragma once

#include <chrono>
#include <string>

#include "reelq/common/config.h"
#include "reelq/common/error.h"

namespace reelq::worker {

struct Settings {
  std::string worker_id;
  int max_in_flight = 256;
  std::chrono::milliseconds lease{15'000};
  std::chrono::milliseconds heartbeat{1'000};
  std::chrono::milliseconds min_poll_interval{5'000};
  std::chrono::milliseconds drain_timeout{120'000};
  std::chrono::milliseconds retry_backoff_initial{2'000};
  std::chrono::milliseconds retry_backoff_max{120'000};
  std::chrono::milliseconds rate_limit_cooldown{30'000};  // when a 429 carries no Retry-After
  // Added to the provider's 60 s window by the create gate (JobStore::TakeCreatePermit): the
  // spread in how long a create call takes to reach the provider.
  std::chrono::milliseconds create_rate_guard{500};
  int poll_error_budget = 30;  // consecutive failed polls before the job is handed back
  int transfer_attempts = 4;   // download-to-store tries before the attempt fails
  std::string metrics_listen = "127.0.0.1:0";
};

// Reads the `worker:` section. Errors name the key.
Result<Settings> ParseSettings(const config::Document& doc);

}  // namespace reelq::worker
