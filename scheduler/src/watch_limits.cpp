#include "reelq/scheduler/watch_limits.h"

#include <fmt/format.h>

namespace reelq::scheduler {

struct WatchLimits::Slot::State {
  mutable std::mutex mu;
  std::map<std::string, size_t> by_principal;
  size_t total = 0;
};

void WatchLimits::Slot::Release() {
  if (!state_) return;
  {
    std::lock_guard lock(state_->mu);
    auto it = state_->by_principal.find(principal_);
    if (it != state_->by_principal.end() && --it->second == 0) state_->by_principal.erase(it);
    --state_->total;
  }
  state_.reset();
}

WatchLimits::WatchLimits() : state_(std::make_shared<Slot::State>()) {}

std::variant<WatchLimits::Slot, std::string> WatchLimits::Open(const std::string& tenant,
                                                               size_t per_principal, size_t total) {
  std::lock_guard lock(state_->mu);
  const size_t mine = state_->by_principal.contains(tenant) ? state_->by_principal[tenant] : 0;
  if (mine >= per_principal) {
    const std::string who = tenant.empty() ? std::string("the admin (or unauthenticated) caller")
                                           : fmt::format("tenant '{}'", tenant);
    return fmt::format(
        "watch: {} already has {} watches open, the most one tenant may "
        "(scheduler.max_watches_per_tenant); end one first, watch the batch (one stream for all "
        "its jobs) instead of each job, or raise the limit",
        who, mine);
  }
  if (state_->total >= total) {
    return fmt::format(
        "watch: this scheduler already has {} watches open, the most it allows "
        "(scheduler.max_watches); end one first, watch batches instead of single jobs, or "
        "raise the limit",
        state_->total);
  }
  ++state_->by_principal[tenant];
  ++state_->total;
  return Slot(state_, tenant);
}

size_t WatchLimits::open() const {
  std::lock_guard lock(state_->mu);
  return state_->total;
}

size_t WatchLimits::open(const std::string& tenant) const {
  std::lock_guard lock(state_->mu);
  auto it = state_->by_principal.find(tenant);
  return it == state_->by_principal.end() ? 0 : it->second;
}

}  // namespace reelq::scheduler
