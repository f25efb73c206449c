// Retention: finished jobs leave Redis `queue.retention_hours` after they end.
#include <algorithm>

#include <spdlog/spdlog.h>

#include "reelq/scheduler/dispatcher.h"

namespace reelq::scheduler {

awaitable<void> Dispatcher::RunRetention() {
  // Chunks keep each script call short (Redis serves nobody else while it runs); a full chunk
  // means more are due, so the next one follows at once, else the sweep rests.
  constexpr int kChunk = 500;
  // Every 2 s, or a twentieth of a short retention (tests, the soak bench), so what is kept
  // overshoots the retention by at most that much.
  const auto rest = std::clamp(std::chrono::milliseconds(settings_.retention_ms / 20),
                               std::chrono::milliseconds(100), std::chrono::milliseconds(2000));
  auto executor = co_await asio::this_coro::executor;
  asio::steady_timer timer(executor);
  while (!stopped_) {
    auto swept =
        co_await store_.ExpireFinished(std::chrono::milliseconds(settings_.retention_ms), kChunk);
    if (!swept) {
      spdlog::warn("retention sweep failed: {}", swept.error().Describe());
    } else {
      expired_jobs_total_ += static_cast<uint64_t>(swept->jobs_removed);
      if (swept->more) continue;
    }
    timer.expires_after(rest);
    co_await timer.async_wait(use_nothrow_awaitable);
  }
}

}  // namespace reelq::scheduler
