// The deliverer (webhooks.h): claims due deliveries, POSTs them signed, settles each attempt.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "reelq/common/random.h"
#include "reelq/scheduler/webhooks.h"

namespace reelq::scheduler {

WebhookDeliverer::WebhookDeliverer(queue::WebhookStore& store, WebhookSecrets& secrets,
                                   const WebhookSettings& settings, http::ClientPtr http,
                                   ClockPtr clock)
    : store_(store),
      secrets_(secrets),
      settings_(settings),
      http_(std::move(http)),
      clock_(std::move(clock)),
      rng_(NewRng()) {}

int64_t WebhookDeliverer::Backoff(const WebhookSettings& settings, int attempts,
                                  std::mt19937_64& rng) {
  double delay = static_cast<double>(settings.retry_initial_ms);
  for (int i = 1; i < attempts && delay < static_cast<double>(settings.retry_max_ms); ++i) {
    delay *= 2;
  }
  delay = std::min(delay, static_cast<double>(settings.retry_max_ms));
  const std::chrono::milliseconds cap(static_cast<int64_t>(delay));
  return std::max<int64_t>(1, EqualJitter(cap, rng).count());
}

void WebhookDeliverer::Stop() {
  stopped_ = true;
  if (timer_) timer_->cancel();
}

awaitable<void> WebhookDeliverer::Run() {
  auto executor = co_await asio::this_coro::executor;
  timer_.emplace(executor);
  bool warned = false;
  while (!stopped_) {
    const int room = settings_.max_in_flight - in_flight_;
    size_t claimed_count = 0;
    bool more = false;
    slot_freed_ = false;
    if (room > 0) {
      queue::ClaimFairness fairness;
      fairness.per_tenant = settings_.max_in_flight_per_tenant;
      fairness.in_flight = tenant_in_flight_;
      // A tenant at its cap waits until its attempts in flight have answered or timed out.
      fairness.defer_ms = settings_.timeout_ms;
      fairness.scan = std::max(256, 4 * room);
      auto claimed =
          co_await store_.Claim(clock_->NowMs(), settings_.lease_ms, room, std::move(fairness));
      if (!claimed) {
        // Redis out of reach: the deliveries wait there; try again next round.
        if (!warned) spdlog::warn("webhooks: cannot claim deliveries: {}", claimed.error().message);
        warned = true;
      } else {
        warned = false;
        claimed_count = claimed->deliveries.size();
        more = claimed->more;
        for (auto& delivery : claimed->deliveries) {
          ++in_flight_;
          ++tenant_in_flight_[delivery.tenant];
          std::string tenant = delivery.tenant;
          asio::co_spawn(
              executor, Deliver(std::move(delivery)), [this, tenant](std::exception_ptr e) {
                --in_flight_;
                // Wake the claim loop: a tenant at its share, or a full deliverer, would
                // otherwise wait out the poll interval with a slot free.
                slot_freed_ = true;
                if (timer_) timer_->cancel();
                if (auto it = tenant_in_flight_.find(tenant);
                    it != tenant_in_flight_.end() && --it->second <= 0) {
                  tenant_in_flight_.erase(it);
                }
                if (e) {
                  try {
                    std::rethrow_exception(e);
                  } catch (const std::exception& ex) {
                    spdlog::error("webhooks: a delivery ended by an exception: {}", ex.what());
                  }
                }
              });
        }
      }
    }
    // A full claim means more may be due: look again at once (after the others had a turn). So
    // does a claim that passed over a whole scan of deliveries of tenants at their cap.
    // An attempt that ended while this claim ran freed a slot the claim could not see.
    const bool again =
        slot_freed_ || (room > 0 && (more || claimed_count == static_cast<size_t>(room)));
    timer_->expires_after(again ? std::chrono::milliseconds(0)
                                : std::chrono::milliseconds(settings_.poll_interval_ms));
    co_await timer_->async_wait(use_nothrow_awaitable);
  }
}

awaitable<WebhookAttempt> AttemptWebhook(http::ClientPtr client, queue::ClaimedDelivery d,
                                         std::vector<std::string> secrets, int64_t timestamp_s,
                                         std::chrono::milliseconds timeout) {
  http::Request request;
  request.method = "POST";
  request.url = d.url;
  request.body = d.body;
  request.timeout = timeout;
  // The status line is the receiver's answer; its body is never used. A large or slow body
  // after a 2xx must not turn a delivered event into a day of duplicate retries.
  request.accept_partial_body = true;
  request.headers = {
      {"content-type", "application/json"},
      {"user-agent", "reelq-webhooks/1"},
      {"webhook-id", d.id},
      {"webhook-timestamp", std::to_string(timestamp_s)},
      {"webhook-signature", SignWebhook(secrets, d.id, timestamp_s, d.body)},
  };
  auto response = co_await client->Send(std::move(request));
  WebhookAttempt attempt;
  if (!response) {
    attempt.error = response.error().message;
    co_return attempt;
  }
  attempt.status = response->status;
  if (attempt.status >= 200 && attempt.status <= 299) {
    attempt.outcome = queue::DeliveryOutcome::kDelivered;
    if (response->body_cut_short) {
      spdlog::debug("webhooks: {} answered {}; its body was not read whole ({})", d.id,
                    attempt.status, *response->body_cut_short);
    }
  } else if (attempt.status == 410) {
    // The receiver says the endpoint is gone for good: a day of retries would only knock on it.
    attempt.outcome = queue::DeliveryOutcome::kFailed;
    attempt.error =
        "the receiver answered HTTP 410 Gone, so reelq stopped delivering this event (no retries)";
  } else {
    attempt.error = "HTTP " + std::to_string(attempt.status);
  }
  co_return attempt;
}

awaitable<void> WebhookDeliverer::Deliver(queue::ClaimedDelivery d) {
  WebhookAttempt attempt;
  auto secret = co_await secrets_.ForSigning(d.tenant);
  auto url = ParseWebhookUrl(d.url, "url");
  if (!url) {
    // A URL that can never work (a corrupt record) is not retried.
    attempt.outcome = queue::DeliveryOutcome::kFailed;
    attempt.error = url.error().message;
  } else if (!secret) {
    attempt.error = "no signing secret: " + secret.error().message;
  } else {
    attempt = co_await AttemptWebhook(http_, d, std::move(*secret), clock_->NowMs() / 1000,
                                      std::chrono::milliseconds(settings_.timeout_ms));
  }
  const int64_t now = clock_->NowMs();
  const int64_t give_up_at =
      d.created_ms + static_cast<int64_t>(settings_.max_retry_hours * 3'600'000.0);
  queue::DeliveryOutcome outcome = attempt.outcome;
  const std::string& error = attempt.error;
  int64_t next_at = 0;
  if (outcome == queue::DeliveryOutcome::kRetry) {
    if (now >= give_up_at) {
      outcome = queue::DeliveryOutcome::kFailed;
    } else {
      next_at = std::min(give_up_at, now + Backoff(settings_, d.attempts, rng_));
    }
  }
  switch (outcome) {
    case queue::DeliveryOutcome::kDelivered:
      ++delivered_;
      spdlog::debug("webhooks: {} delivered to {} (attempt {})", d.id, d.url, d.attempts);
      break;
    case queue::DeliveryOutcome::kRetry:
      ++retried_;
      spdlog::info("webhooks: {} to {} attempt {} failed ({}); next in {} ms", d.id, d.url,
                   d.attempts, error, next_at - now);
      break;
    case queue::DeliveryOutcome::kFailed:
      ++failed_;
      spdlog::warn("webhooks: {} to {} failed after {} attempts ({}); giving up", d.id, d.url,
                   d.attempts, error);
      break;
  }
  auto settled = co_await store_.Settle(d.id, outcome, attempt.status, error, now, next_at,
                                        settings_.keep_hours * 3600);
  if (!settled) {
    // Its lease runs out and it is attempted again: a duplicate with the same id, as allowed.
    spdlog::warn("webhooks: cannot record the outcome of {}: {}", d.id, settled.error().message);
  }
}

}  // namespace reelq::scheduler
