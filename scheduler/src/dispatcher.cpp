#include "reelq/scheduler/dispatcher.h"

#include <spdlog/spdlog.h>

namespace reelq::scheduler {

Dispatcher::Dispatcher(queue::JobStore& store, const Settings& settings)
    : store_(store), settings_(settings) {}

void Dispatcher::Wake() {
  wake_pending_ = true;
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
    wake_pending_ = false;
    auto round = co_await store_.Dispatch(settings_.dispatch_batch, settings_.dispatch_scan_depth,
                                          settings_.default_weight, settings_.dispatch_policy,
                                          settings_.preference_margin_seconds);
    std::chrono::milliseconds pause(settings_.dispatch_interval_ms);
    if (!round) {
      spdlog::warn("dispatch round failed: {}", round.error().Describe());
      pause = std::chrono::milliseconds(250);
    } else {
      dispatched_total_ += round->dispatched;
      if (round->dispatched >= settings_.dispatch_batch) continue;  // more is ready
      // Slots freed and work added anywhere wake this loop (RunWakeListener); a known wait
      // (tokens refill, cooldown ends) shortens the pause.
      if (round->wait_ms > 0)
        pause = std::chrono::milliseconds(std::min<int64_t>(round->wait_ms, pause.count()));
    }
    if (wake_pending_) continue;
    wake_->expires_after(pause);
    co_await wake_->async_wait(use_nothrow_awaitable);
  }
}

awaitable<void> Dispatcher::RunWakeListener(redis::Connection& blocking) {
  auto executor = co_await asio::this_coro::executor;
  asio::steady_timer backoff(executor);
  while (!stopped_) {
    auto woken = co_await store_.WaitForDispatchWake(blocking, std::chrono::milliseconds(1000));
    if (woken && *woken) {
      Wake();
    } else if (!woken) {
      // Redis out of reach: the round timer keeps dispatch going meanwhile.
      backoff.expires_after(std::chrono::milliseconds(250));
      co_await backoff.async_wait(use_nothrow_awaitable);
    }
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
