#include "reelq/scheduler/dispatcher.h"

#include <spdlog/spdlog.h>

namespace reelq::scheduler {

Dispatcher::Dispatcher(queue::JobStore& store, const Settings& settings)
    : store_(store), settings_(settings) {}

void Dispatcher::Wake() {
  if (wake_) wake_->cancel();
}

void Dispatcher::Stop() {
  stopped_ = true;
  Wake();
}

awaitable<void> Dispatcher::RunDispatch() {
  auto executor = co_await asio::this_coro::executor;
  wake_ = std::make_unique<asio::steady_timer>(executor);
  while (!stopped_) {
    auto round = co_await store_.Dispatch(settings_.dispatch_batch, settings_.dispatch_scan_depth,
                                          settings_.default_weight, settings_.dispatch_policy,
                                          settings_.preference_margin_seconds);
    std::chrono::milliseconds pause(20);
    if (!round) {
      spdlog::warn("dispatch round failed: {}", round.error().Describe());
      pause = std::chrono::milliseconds(250);
    } else {
      dispatched_total_ += round->dispatched;
      if (round->dispatched >= settings_.dispatch_batch) continue;  // more is ready
      // Slots free up when workers finish, which this process does not see: look again soon.
      // A known wait (tokens refill, cooldown ends) bounds the pause from above.
      if (round->wait_ms > 0)
        pause = std::chrono::milliseconds(std::min<int64_t>(round->wait_ms, 50));
    }
    wake_->expires_after(pause);
    co_await wake_->async_wait(use_nothrow_awaitable);
  }
}

awaitable<void> Dispatcher::RunReaper() {
  auto executor = co_await asio::this_coro::executor;
  asio::steady_timer timer(executor);
  while (!stopped_) {
    auto reaped = co_await store_.Reap(500);
    if (!reaped) {
      ++reaper_failures_total_;
      spdlog::warn("reaper failed: {}", reaped.error().Describe());
    } else if (reaped->expired_leases > 0) {
      expired_leases_total_ += static_cast<uint64_t>(reaped->expired_leases);
      spdlog::info("reaper: {} expired leases handed back, {} retries due", reaped->expired_leases,
                   reaped->requeued_retries);
    }
    if (reaped && (reaped->expired_leases > 0 || reaped->requeued_retries > 0)) Wake();
    timer.expires_after(std::chrono::milliseconds(250));
    co_await timer.async_wait(use_nothrow_awaitable);
  }
}

}  // namespace reelq::scheduler
