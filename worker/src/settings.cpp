#include "reelq/worker/settings.h"

#include <algorithm>

#include "reelq/common/utf8.h"

namespace reelq::worker {

Result<void> ValidateWorkerId(std::string_view id) {
  const bool plain = std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-' || c == ':' || c == '@';
  });
  if (id.empty() || id.size() > 128 || !plain) {
    return MakeError(ErrorCategory::kInvalidRequest,
                     "--id " + QuoteForMessage(id) +
                         ": a worker id is 1 to 128 of A-Z a-z 0-9 . _ - : @ (it names the "
                         "worker's Redis keys and every clip's metadata)");
  }
  return {};
}

Result<Settings> ParseSettings(const config::Document& doc) {
  Settings s;
  const auto w = doc.root["worker"];
  if (auto k = config::CheckKeys(
          w, "worker",
          {"max_in_flight", "max_starting", "http_idle_connections_per_host", "lease_seconds",
           "heartbeat_seconds", "min_poll_interval_ms", "drain_timeout_seconds",
           "retry_backoff_initial_ms", "retry_backoff_max_ms", "rate_limit_cooldown_ms",
           "create_rate_guard_ms", "metrics_listen", "on_unknown_create", "lost_create_settle_ms",
           "max_clip_mb", "download_allow_hosts"});
      !k) {
    return std::unexpected(k.error());
  }
  using std::chrono::milliseconds;
  auto in_flight = config::GetInt(w, "worker", "max_in_flight", 256, 1, 100000);
  if (!in_flight) return std::unexpected(in_flight.error());
  s.max_in_flight = static_cast<int>(*in_flight);
  auto starting = config::GetInt(w, "worker", "max_starting", 256, 1, 100000);
  if (!starting) return std::unexpected(starting.error());
  s.max_starting = static_cast<int>(*starting);
  auto idle = config::GetInt(w, "worker", "http_idle_connections_per_host", 64, 0, 4096);
  if (!idle) return std::unexpected(idle.error());
  s.http_idle_connections_per_host = static_cast<int>(*idle);
  auto lease = config::GetNumber(w, "worker", "lease_seconds", 15, 0.2, 3600);
  if (!lease) return std::unexpected(lease.error());
  s.lease = milliseconds(static_cast<int64_t>(*lease * 1000));
  // Heartbeats also carry cancellations, so they run at least once a second.
  auto hb = config::GetNumber(w, "worker", "heartbeat_seconds", 1, 0.05, 3600);
  if (!hb) return std::unexpected(hb.error());
  if (*hb > 1.0) {
    // Refused rather than capped in silence: the file would say 3 while the worker beat at 1.
    return MakeError(ErrorCategory::kInvalidRequest,
                     "worker.heartbeat_seconds: at most 1 (heartbeats carry cancellations, "
                     "which must reach a running job within a second)");
  }
  s.heartbeat = milliseconds(static_cast<int64_t>(*hb * 1000));
  if (s.heartbeat * 2 > s.lease) {
    return MakeError(ErrorCategory::kInvalidRequest,
                     "worker.heartbeat_seconds: must be at most half of worker.lease_seconds");
  }
  auto poll = config::GetInt(w, "worker", "min_poll_interval_ms", 5000, 1, 3'600'000);
  if (!poll) return std::unexpected(poll.error());
  s.min_poll_interval = milliseconds(*poll);
  auto drain = config::GetNumber(w, "worker", "drain_timeout_seconds", 120, 0, 86400);
  if (!drain) return std::unexpected(drain.error());
  s.drain_timeout = milliseconds(static_cast<int64_t>(*drain * 1000));
  auto b0 = config::GetInt(w, "worker", "retry_backoff_initial_ms", 2000, 1, 3'600'000);
  if (!b0) return std::unexpected(b0.error());
  s.retry_backoff_initial = milliseconds(*b0);
  auto b1 = config::GetInt(w, "worker", "retry_backoff_max_ms", 120000, 1, 86'400'000);
  if (!b1) return std::unexpected(b1.error());
  s.retry_backoff_max = milliseconds(*b1);
  auto cool = config::GetInt(w, "worker", "rate_limit_cooldown_ms", 30000, 1, 3'600'000);
  if (!cool) return std::unexpected(cool.error());
  s.rate_limit_cooldown = milliseconds(*cool);
  auto guard = config::GetInt(w, "worker", "create_rate_guard_ms", 500, 0, 60'000);
  if (!guard) return std::unexpected(guard.error());
  s.create_rate_guard = milliseconds(*guard);
  auto metrics = config::GetString(w, "worker", "metrics_listen", "127.0.0.1:0");
  if (!metrics) return std::unexpected(metrics.error());
  s.metrics_listen = *metrics;
  if (auto ok = config::CheckListenAddress(s.metrics_listen, "worker.metrics_listen"); !ok) {
    return std::unexpected(ok.error());
  }
  auto clip_mb = config::GetInt(w, "worker", "max_clip_mb", 4096, 1, 1'048'576);
  if (!clip_mb) return std::unexpected(clip_mb.error());
  s.max_clip_bytes = static_cast<uint64_t>(*clip_mb) << 20;
  if (w && w["download_allow_hosts"]) {
    const auto list = w["download_allow_hosts"];
    if (!list.IsSequence()) {
      return MakeError(ErrorCategory::kInvalidRequest,
                       "worker.download_allow_hosts: expected a list of host names, addresses or "
                       "CIDR ranges");
    }
    std::vector<std::string> entries;
    for (size_t i = 0; i < list.size(); ++i) entries.push_back(list[i].as<std::string>(""));
    auto allow = net::AddressAllowList::Parse(entries, "worker.download_allow_hosts");
    if (!allow) return std::unexpected(allow.error());
    s.download_allow = std::move(*allow);
  }
  auto settle = config::GetInt(w, "worker", "lost_create_settle_ms", 2000, 0, 600'000);
  if (!settle) return std::unexpected(settle.error());
  s.lost_create_settle = milliseconds(*settle);
  if (w && w["on_unknown_create"]) {
    const auto policies = w["on_unknown_create"];
    if (!policies.IsMap()) {
      return MakeError(ErrorCategory::kInvalidRequest,
                       "worker.on_unknown_create: must be a map of provider: fail|recreate");
    }
    for (const auto& entry : policies) {
      const std::string provider = entry.first.as<std::string>();
      // A misspelt provider would otherwise leave that provider on the default silently.
      if (provider != "kling" && provider != "sora" && provider != "veo" &&
          provider != "seedance") {
        return MakeError(ErrorCategory::kInvalidRequest,
                         "worker.on_unknown_create." + provider +
                             ": unknown provider (expected kling, sora, veo or seedance)");
      }
      auto policy = config::GetString(policies, "worker.on_unknown_create", provider, "fail");
      if (!policy) return std::unexpected(policy.error());
      if (*policy != "fail" && *policy != "recreate") {
        return MakeError(ErrorCategory::kInvalidRequest, "worker.on_unknown_create." + provider +
                                                             ": must be fail or recreate, not '" +
                                                             *policy + "'");
      }
      s.on_unknown_create[provider] = *policy;
    }
  }
  return s;
}

}  // namespace reelq::worker
