#include "reelq/scheduler/event_hub.h"

#include <spdlog/spdlog.h>

namespace reelq::scheduler {

EventHub::EventHub(queue::JobStore& store, redis::ConnectionPtr blocking)
    : store_(store), blocking_(std::move(blocking)) {}

void EventHub::Stop() {
  stopped_ = true;
  blocking_->Close();
}

uint64_t EventHub::Subscribe(std::string key, Listener listener) {
  const uint64_t handle = next_handle_++;
  keys_[handle] = key;
  listeners_.emplace(std::move(key), std::make_pair(handle, std::move(listener)));
  return handle;
}

void EventHub::Unsubscribe(uint64_t handle) {
  auto it = keys_.find(handle);
  if (it == keys_.end()) return;
  auto [begin, end] = listeners_.equal_range(it->second);
  for (auto l = begin; l != end; ++l) {
    if (l->second.first == handle) {
      listeners_.erase(l);
      break;
    }
  }
  keys_.erase(it);
}

awaitable<void> EventHub::Run() {
  auto executor = co_await asio::this_coro::executor;
  std::string last_id = "$";
  if (auto id = co_await store_.LastEventId()) last_id = *id;
  while (!stopped_) {
    auto events =
        co_await store_.ReadEvents(*blocking_, last_id, std::chrono::milliseconds(1000), 1000);
    if (!events) {
      if (stopped_) break;
      spdlog::warn("event stream read failed: {}", events.error().Describe());
      asio::steady_timer t(executor);
      t.expires_after(std::chrono::milliseconds(200));
      co_await t.async_wait(use_nothrow_awaitable);
      continue;
    }
    for (const auto& ev : *events) {
      last_id = ev.stream_id;
      // Copy the matching listeners first: a listener may unsubscribe itself.
      std::vector<Listener> targets;
      for (const auto& key : {ev.job_id, ev.batch.empty() ? std::string() : "batch:" + ev.batch}) {
        if (key.empty()) continue;
        auto [begin, end] = listeners_.equal_range(key);
        for (auto l = begin; l != end; ++l) targets.push_back(l->second.second);
      }
      for (auto& target : targets) target(ev);
    }
  }
}

}  // namespace reelq::scheduler
