#pragma once

// Webhooks (issue 13): settings, the SSRF guard, Standard Webhooks signatures, per-tenant
// secrets and the deliverer. Deliveries are recorded in Redis by the state-change scripts
// (queue/lua/common_webhook.lua); every scheduler runs a deliverer that claims due ones.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "reelq/common/address_policy.h"
#include "reelq/common/asio.h"
#include "reelq/common/clock.h"
#include "reelq/common/config.h"
#include "reelq/common/error.h"
#include "reelq/common/http_client.h"
#include "reelq/queue/webhook_store.h"

namespace reelq::scheduler {

// An address range (CIDR); a plain address is a range of one.
using net::AddressRange;
using net::ParseAddressRange;

struct WebhookSettings {
  // Host names (exact, case-insensitive) and address ranges a webhook may use even though they
  // are loopback, private, link-local or metadata addresses.
  std::vector<std::string> allow_hosts;
  std::vector<AddressRange> allow_ranges;
  double max_retry_hours = 24;        // retried until this long after the event, then failed
  int64_t retry_initial_ms = 10'000;  // backoff before the 2nd attempt; doubles each time
  int64_t retry_max_ms = 3'600'000;
  int64_t timeout_ms = 10'000;  // one attempt's HTTP exchange
  int64_t lease_ms = 60'000;    // a claimed delivery is someone else's again after this
  int64_t poll_interval_ms = 1'000;
  int max_in_flight = 32;  // attempts one scheduler makes at once
  // Attempts one scheduler makes at once for one tenant (default: a quarter of max_in_flight):
  // a tenant whose receiver is slow or silent holds no more, and the others' deliveries go on.
  int max_in_flight_per_tenant = 8;
  int64_t keep_hours = 168;  // an ended delivery's record stays this long (GetJob)
  std::string secret;        // with authentication off: the signing secret of every tenant
  bool deliver = true;       // run the deliverer in this scheduler
};
// The `webhooks:` section; errors name the key.
Result<WebhookSettings> ParseWebhookSettings(const config::Document& doc,
                                             const std::map<std::string, std::string>& env);

// The parts of a webhook URL the guard needs.
struct WebhookUrl {
  bool tls = false;
  std::string host;  // lower-case, without brackets
  uint16_t port = 0;
};
// Only http(s), a host, an optional port; kInvalidRequest naming `field`.
Result<WebhookUrl> ParseWebhookUrl(std::string_view url, std::string_view field);

// Refuses webhook targets in loopback, private, link-local and metadata ranges (SSRF) unless
// the config allowlists them.
class WebhookGuard {
 public:
  explicit WebhookGuard(const WebhookSettings& settings) : settings_(settings) {}
  // Why `address` may not be called ("loopback", ...); nullopt when it may.
  std::optional<std::string> Refusal(const asio::ip::address& address) const;
  bool HostAllowlisted(std::string_view host) const;
  // At submit: the URL's form, then every address its host resolves to. kInvalidRequest
  // naming `field`.
  awaitable<Result<void>> Check(std::string url, std::string field) const;

 private:
  const WebhookSettings& settings_;
};

// "v1,<base64 HMAC-SHA256 of id.timestamp.body>" keyed by the secret's bytes (the base64 after
// "whsec_").
std::string SignWebhook(std::string_view secret, std::string_view id, int64_t timestamp_s,
                        std::string_view body);
// The webhook-signature header: one such entry per secret, separated by spaces (the Standard
// Webhooks way; a receiver accepts the message when any entry verifies).
std::string SignWebhook(const std::vector<std::string>& secrets, std::string_view id,
                        int64_t timestamp_s, std::string_view body);
// "whsec_" + base64 of 24 random bytes (OpenSSL's RAND_bytes).
std::string NewWebhookSecret();

// A tenant's signing secret: the configured one with authentication off, else the tenant's own
// in Redis (made on first use). A rotated secret still signs for kRotationOverlap beside the new
// one, so a receiver has that long to switch.
class WebhookSecrets {
 public:
  static constexpr std::chrono::hours kRotationOverlap{24};

  WebhookSecrets(queue::WebhookStore& store, std::string configured, bool per_tenant,
                 ClockPtr clock = nullptr)
      : store_(store),
        configured_(std::move(configured)),
        per_tenant_(per_tenant),
        clock_(clock ? std::move(clock) : std::make_shared<SystemClock>()) {}
  awaitable<Result<std::string>> Get(std::string tenant);
  awaitable<Result<std::string>> Rotate(std::string tenant);
  // What a delivery is signed with: the secret, then the one a rotation replaced while its
  // overlap lasts.
  awaitable<Result<std::vector<std::string>>> ForSigning(std::string tenant);

 private:
  queue::WebhookStore& store_;
  std::string configured_;
  bool per_tenant_;
  ClockPtr clock_;
};

// One attempt's answer, as the deliverer settles it.
struct WebhookAttempt {
  // kDelivered, kRetry, or kFailed when retrying is pointless (410 Gone).
  queue::DeliveryOutcome outcome = queue::DeliveryOutcome::kRetry;
  int status = 0;     // the answer's HTTP status; 0 when none arrived
  std::string error;  // why it was not delivered; empty when it was
};

// POSTs one delivery, signed with each of `secrets` at `timestamp_s`, and settles on the status
// line: a
// 2xx is delivered even when its body is over the client's cap or still arriving at `timeout`
// (the receiver has the event, and a retry would only repeat it); 410 Gone is kFailed; any other
// status, or none, is kRetry.
awaitable<WebhookAttempt> AttemptWebhook(http::ClientPtr client, queue::ClaimedDelivery delivery,
                                         std::vector<std::string> secrets, int64_t timestamp_s,
                                         std::chrono::milliseconds timeout);

// Claims due deliveries and POSTs them, signed; settles each attempt (delivered, retry with
// exponential backoff and jitter, or failed once max_retry_hours have passed or at a 410).
class WebhookDeliverer {
 public:
  WebhookDeliverer(queue::WebhookStore& store, WebhookSecrets& secrets,
                   const WebhookSettings& settings, http::ClientPtr http, ClockPtr clock);
  awaitable<void> Run();
  void Stop();

  // Attempts by outcome (metrics).
  int64_t delivered_total() const { return delivered_; }
  int64_t retried_total() const { return retried_; }
  int64_t failed_total() const { return failed_; }
  int in_flight() const { return in_flight_; }

  // The wait before attempt `attempts + 1`: initial * 2^(attempts-1), capped, jittered into
  // [half, whole] so deliverers retrying together spread out.
  static int64_t Backoff(const WebhookSettings& settings, int attempts, std::mt19937_64& rng);

 private:
  awaitable<void> Deliver(queue::ClaimedDelivery delivery);

  queue::WebhookStore& store_;
  WebhookSecrets& secrets_;
  const WebhookSettings& settings_;
  http::ClientPtr http_;
  ClockPtr clock_;
  std::mt19937_64 rng_;
  bool stopped_ = false;
  std::optional<asio::steady_timer> timer_;
  int in_flight_ = 0;                            // io thread only
  std::map<std::string, int> tenant_in_flight_;  // in_flight_ by tenant; io thread only
  // An attempt ended since the last claim: its slot (and its tenant's share) is free, so the
  // next claim runs at once instead of after the poll interval. io thread only.
  bool slot_freed_ = false;
  std::atomic<int64_t> delivered_{0}, retried_{0}, failed_{0};
};

// An HTTP client that refuses to connect to an address the guard refuses (a host that resolved
// to a public address at submit may resolve to a private one now: DNS rebinding).
http::ClientPtr MakeWebhookHttpClient(asio::any_io_executor executor, const WebhookGuard& guard);

}  // namespace reelq::scheduler
