#include "reelq/scheduler/settings.h"

#include <algorithm>
#include <cmath>

namespace reelq::scheduler {

Result<Settings> ParseSettings(const config::Document& doc) {
  Settings s;
  const auto sec = doc.root["scheduler"];
  const std::string n = "scheduler";
  if (auto k = config::CheckKeys(
          sec, n,
          {"listen", "metrics_listen", "max_prompt_bytes", "max_batch_items", "max_message_bytes",
           "idempotency_retention_hours", "max_attempts", "dispatch_batch", "dispatch_scan_depth",
           "dispatch_policy", "preference_margin_seconds", "tls_cert_file", "tls_key_file",
           "tls_client_ca_file", "dashboard_listen", "dispatch_interval_ms", "max_image_bytes",
           "max_watches_per_tenant", "max_watches"});
      !k) {
    return std::unexpected(k.error());
  }
#define REELQ_READ(var, expr)                                      \
  {                                                                \
    auto r = (expr);                                               \
    if (!r) return std::unexpected(r.error());                     \
    var = static_cast<std::remove_reference_t<decltype(var)>>(*r); \
  }
  REELQ_READ(s.listen, config::GetString(sec, n, "listen", s.listen));
  REELQ_READ(s.metrics_listen, config::GetString(sec, n, "metrics_listen", s.metrics_listen));
  if (auto ok = config::CheckListenAddress(s.metrics_listen, n + ".metrics_listen"); !ok) {
    return std::unexpected(ok.error());
  }
  REELQ_READ(s.dashboard_listen, config::GetString(sec, n, "dashboard_listen", s.dashboard_listen));
  REELQ_READ(s.max_prompt_bytes, config::GetInt(sec, n, "max_prompt_bytes", 100000, 1, 16 << 20));
  REELQ_READ(s.max_batch_items, config::GetInt(sec, n, "max_batch_items", 100000, 1, 10'000'000));
  REELQ_READ(s.max_message_bytes,
             config::GetInt(sec, n, "max_message_bytes", 32 << 20, 1024, 1 << 30));
  REELQ_READ(s.max_image_bytes,
             config::GetInt(sec, n, "max_image_bytes", 10 << 20, 1024, 256 << 20));
  REELQ_READ(s.max_watches_per_tenant,
             config::GetInt(sec, n, "max_watches_per_tenant", 1'000, 1, 1'000'000));
  REELQ_READ(s.max_watches, config::GetInt(sec, n, "max_watches", 10'000, 1, 1'000'000));
  // Fractions are allowed (down to one second), so tests can watch a key expire.
  double hours = 24;
  REELQ_READ(hours,
             config::GetNumber(sec, n, "idempotency_retention_hours", 24, 1.0 / 3600, 24 * 365));
  s.idempotency_retention_s = std::max<int64_t>(1, std::llround(hours * 3600));
  REELQ_READ(s.max_attempts, config::GetInt(sec, n, "max_attempts", 5, 1, 100));
  REELQ_READ(s.dispatch_batch, config::GetInt(sec, n, "dispatch_batch", 256, 1, 10000));
  REELQ_READ(s.dispatch_interval_ms,
             config::GetInt(sec, n, "dispatch_interval_ms", s.dispatch_interval_ms, 1, 60000));
  {
    const auto queue = doc.root["queue"];
    if (auto k = config::CheckKeys(queue, "queue", {"retention_hours"}); !k) {
      return std::unexpected(k.error());
    }
    // Fractions are allowed (down to one second), so tests and the soak bench see jobs expire.
    double retention_hours = 168;
    REELQ_READ(retention_hours, config::GetNumber(queue, "queue", "retention_hours", 168,
                                                  1.0 / 3600, 24 * 365 * 10));
    s.retention_ms = std::max<int64_t>(1000, std::llround(retention_hours * 3600 * 1000));
  }
  REELQ_READ(s.dispatch_scan_depth, config::GetInt(sec, n, "dispatch_scan_depth", 64, 1, 1000));
  REELQ_READ(s.dispatch_policy, config::GetString(sec, n, "dispatch_policy", s.dispatch_policy));
  if (s.dispatch_policy != "fair" && s.dispatch_policy != "fifo") {
    return MakeError(
        ErrorCategory::kInvalidRequest,
        "scheduler.dispatch_policy: expected fair or fifo, got '" + s.dispatch_policy + "'");
  }
  REELQ_READ(s.preference_margin_seconds,
             config::GetNumber(sec, n, "preference_margin_seconds", 0, 0, 86400));
  for (auto [var, key] :
       {std::pair{&s.tls_cert_file, "tls_cert_file"}, std::pair{&s.tls_key_file, "tls_key_file"},
        std::pair{&s.tls_client_ca_file, "tls_client_ca_file"}}) {
    REELQ_READ(*var, config::GetString(sec, n, key, ""));
    if (!var->empty() && var->front() != '/' && !doc.base_dir.empty()) {
      *var = doc.base_dir + "/" + *var;
    }
  }
  if (s.tls_cert_file.empty() != s.tls_key_file.empty()) {
    return MakeError(ErrorCategory::kInvalidRequest,
                     "scheduler.tls_cert_file and scheduler.tls_key_file: set both or neither");
  }
  if (!s.tls_client_ca_file.empty() && s.tls_cert_file.empty()) {
    return MakeError(ErrorCategory::kInvalidRequest,
                     "scheduler.tls_client_ca_file: mutual TLS needs tls_cert_file and "
                     "tls_key_file too");
  }
  const auto tenants = doc.root["tenants"];
  if (auto k =
          config::CheckKeys(tenants, "tenants", {"default_weight", "weights", "activation_credit"});
      !k) {
    return std::unexpected(k.error());
  }
  REELQ_READ(s.default_weight,
             config::GetNumber(tenants, "tenants", "default_weight", 1, 0.001, 1e6));
  REELQ_READ(s.activation_credit,
             config::GetInt(tenants, "tenants", "activation_credit", 64, 0, 1000000));
  if (tenants && tenants["weights"]) {
    if (!tenants["weights"].IsMap()) {
      return MakeError(ErrorCategory::kInvalidRequest,
                       "tenants.weights: expected a mapping of tenant to weight");
    }
    for (const auto& kv : tenants["weights"]) {
      const auto tenant = kv.first.as<std::string>();
      double w = 0;
      REELQ_READ(w,
                 config::GetNumber(tenants["weights"], "tenants.weights", tenant, 1, 0.001, 1e6));
      s.tenant_weights[tenant] = w;
    }
  }
#undef REELQ_READ
  return s;
}

}  // namespace reelq::scheduler
