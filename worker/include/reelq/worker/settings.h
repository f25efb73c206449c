#pragma once

#include <chrono>
#include <map>
#include <string>

#include "reelq/common/address_policy.h"
#include "reelq/common/config.h"
#include "reelq/common/error.h"
#include "reelq/providers/factory.h"

namespace reelq::worker {

struct Settings {
  std::string worker_id;
  int max_in_flight = 256;
  // Jobs this worker holds between their lease and their upstream task being recorded (the
  // create step). Past it, the worker leases no more: a job being created carries the create
  // call's HTTP exchange and buffers, several KB, so a worker taking thousands of jobs at once
  // would otherwise peak far above its steady memory. Waiting jobs stay in Redis.
  int max_starting = 256;
  // Idle keep-alive connections kept per provider host (and per store host). Every job of the
  // worker talks to the same few hosts; a request that finds no idle connection opens a new
  // one (a TCP and TLS handshake with a real provider), and a connection given back to a full
  // pool is closed. Sized for the requests a busy worker has in the air at once.
  int http_idle_connections_per_host = 64;
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
  // How long a fresh job that a worker cannot run (no usable key for its account, its model not
  // in that worker's catalogue) is handed back for another worker, spending no attempt,
  // counted from its first such hand-back; past it the job fails as before (attempt.h).
  std::chrono::milliseconds wait_for_capable_worker{600'000};
  // A clip larger than this is not stored (its download stops there and the job fails): a
  // provider answering with an endless or enormous body would otherwise fill the store.
  uint64_t max_clip_bytes = uint64_t{4096} << 20;
  // Hosts and address ranges a result URL (or its redirect) may reach though they are not public
  // (download_guard.h); the accounts' and the store's own hosts need no entry.
  net::AddressAllowList download_allow;
  std::string metrics_listen = "127.0.0.1:0";
  // A create whose outcome is unknown (the worker died after sending it, or its answer was
  // lost) on a provider that cannot look the task up (Veo): `fail` ends the job FAILED with
  // category create_outcome_unknown so nothing is paid twice; `recreate` sends a new create
  // and risks paying twice. Keyed by provider name; providers not listed use `fail`.
  std::map<std::string, std::string> on_unknown_create;
  // How long after a lost create's call ended the worker waits before it trusts a lookup that
  // finds nothing (the provider may still be making the task it was asked for).
  std::chrono::milliseconds lost_create_settle{2'000};
  // The longest a create call stays in the air (the adapters' api_timeout). A create whose
  // intent an earlier lease left may have been in the air until its intent's time plus this (its
  // worker died, or lost the lease, mid-call): its lookup waits that long, plus the settle.
  std::chrono::milliseconds create_call_timeout = providers::AdapterOptions{}.api_timeout;

  bool RecreateOnUnknown(std::string_view provider) const {
    auto it = on_unknown_create.find(std::string(provider));
    return it != on_unknown_create.end() && it->second == "recreate";
  }
};

// Reads the `worker:` section. Errors name the key.
Result<Settings> ParseSettings(const config::Document& doc);
// A worker id (--id): 1 to 128 of A-Z a-z 0-9 . _ - : @. It names the worker's Redis keys,
// every clip's `worker` metadata (S3 takes printable ASCII only) and the log lines; an id
// the store would refuse made every job generate (and be billed) and then fail to store.
Result<void> ValidateWorkerId(std::string_view id);

}  // namespace reelq::worker
