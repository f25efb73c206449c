#include "task_store.h"

#include <algorithm>

namespace reelq::sim {

int64_t Task::UpdatedUnixMs() const {
  switch (phase) {
    case Phase::kQueued:
      return UnixMs(created);
    case Phase::kRunning:
      return UnixMs(started);
    default:
      return UnixMs(ended);
  }
}

int Task::Progress(SimClock::time_point now) const {
  if (phase == Phase::kSucceeded) return 100;
  if (phase != Phase::kRunning || latency.count() <= 0) return 0;
  const double f = std::chrono::duration<double>(now - started).count() /
                   std::chrono::duration<double>(latency).count();
  return std::clamp(static_cast<int>(f * 100), 0, 99);
}

bool Task::Rendering() const {
  for (const auto* render : {&media_ready, &last_frame_ready}) {
    if (render->valid() && render->wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
      return true;
    }
  }
  return false;
}

Task& TaskStore::Add(Task task, int max_concurrent) {
  auto& slots = slots_[SlotKey(task.provider, task.key)];
  slots.max_concurrent = max_concurrent;
  const std::string tk = TaskKey(task.provider, task.id);
  auto [it, inserted] = tasks_.emplace(tk, std::move(task));
  Task& t = it->second;
  if (!t.external_id.empty()) {
    external_[SlotKey(t.provider, t.key) + "\n" + t.external_id] = t.id;
  }
  if (slots.in_flight < slots.max_concurrent && slots.waiting.empty()) {
    Start(t, t.created);
  } else {
    t.phase = Phase::kQueued;
    slots.waiting.push_back(t.id);
  }
  return t;
}

void TaskStore::Start(Task& task, SimClock::time_point at) {
  auto& slots = slots_[SlotKey(task.provider, task.key)];
  ++slots.in_flight;
  task.holds_slot = true;
  task.phase = Phase::kRunning;
  task.started = at;
  task.finishes = at + task.latency;
  running_.emplace(task.finishes, TaskKey(task.provider, task.id));
}

void TaskStore::Finish(Task& task, SimClock::time_point at) {
  if (task.holds_slot) {
    auto& slots = slots_[SlotKey(task.provider, task.key)];
    --slots.in_flight;
    task.holds_slot = false;
  }
  task.ended = at;
  switch (task.outcome) {
    case Outcome::kSucceed:
      task.phase = Phase::kSucceeded;
      break;
    case Outcome::kTransientFailure:
    case Outcome::kPolicyFailure:
      task.phase = Phase::kFailed;
      break;
  }
}

void TaskStore::StartWaiting(KeySlots& slots, SimClock::time_point at) {
  while (slots.in_flight < slots.max_concurrent && !slots.waiting.empty()) {
    const std::string id = slots.waiting.front();
    slots.waiting.pop_front();
    // The waiting list only holds ids of this slot's provider; find it by scanning providers.
    Task* task = nullptr;
    for (Provider p : kAllProviders) {
      auto it = tasks_.find(TaskKey(p, id));
      if (it != tasks_.end() && it->second.phase == Phase::kQueued) task = &it->second;
    }
    if (!task) continue;
    if (task->expires_after.count() > 0 && task->created + task->expires_after <= at) {
      task->phase = Phase::kExpired;
      task->ended = task->created + task->expires_after;
      continue;
    }
    Start(*task, at);
  }
}

void TaskStore::Advance(SimClock::time_point now) {
  while (!running_.empty() && running_.begin()->first <= now) {
    auto [at, tk] = *running_.begin();
    running_.erase(running_.begin());
    auto it = tasks_.find(tk);
    if (it == tasks_.end()) continue;
    Task& task = it->second;
    if (task.phase != Phase::kRunning || task.finishes != at) continue;
    if (task.Rendering()) {
      task.finishes = now + std::chrono::milliseconds(20);  // look again then
      running_.emplace(task.finishes, tk);
      continue;
    }
    Finish(task, at);
    StartWaiting(slots_[SlotKey(task.provider, task.key)], at);
  }
  for (auto& [sk, slots] : slots_) {
    std::erase_if(slots.waiting, [&](const std::string& id) {
      for (Provider p : kAllProviders) {
        auto it = tasks_.find(TaskKey(p, id));
        if (it == tasks_.end() || it->second.phase != Phase::kQueued) continue;
        Task& t = it->second;
        if (t.expires_after.count() > 0 && t.created + t.expires_after <= now) {
          t.phase = Phase::kExpired;
          t.ended = t.created + t.expires_after;
          return true;
        }
      }
      return false;
    });
  }
}

Task* TaskStore::Find(Provider p, const std::string& id, SimClock::time_point now) {
  auto it = tasks_.find(TaskKey(p, id));
  if (it == tasks_.end()) return nullptr;
  Task& t = it->second;
  if (IsTerminal(t.phase)) {
    auto r = retention_.find(p);
    if (r != retention_.end() && now - t.ended >= r->second) {
      Erase(p, id);
      return nullptr;
    }
  }
  return &t;
}

Task* TaskStore::FindByExternal(Provider p, const std::string& key, const std::string& external_id,
                                SimClock::time_point now) {
  if (external_id.empty()) return nullptr;
  auto it = external_.find(SlotKey(p, key) + "\n" + external_id);
  if (it == external_.end()) return nullptr;
  return Find(p, it->second, now);
}

std::vector<std::string> TaskStore::Ids(Provider p) const {
  std::vector<const Task*> found;
  for (const auto& [tk, t] : tasks_) {
    if (t.provider == p) found.push_back(&t);
  }
  std::sort(found.begin(), found.end(),
            [](const Task* a, const Task* b) { return a->created < b->created; });
  std::vector<std::string> ids;
  for (const Task* t : found) ids.push_back(t->id);
  return ids;
}

void TaskStore::Cancel(Task& task, SimClock::time_point now) {
  auto& slots = slots_[SlotKey(task.provider, task.key)];
  if (task.phase == Phase::kQueued) {
    std::erase(slots.waiting, task.id);
  } else if (task.phase == Phase::kRunning && task.holds_slot) {
    --slots.in_flight;
    task.holds_slot = false;
  }
  task.phase = Phase::kCancelled;
  task.ended = now;
  StartWaiting(slots, now);
}

void TaskStore::Erase(Provider p, const std::string& id) {
  auto it = tasks_.find(TaskKey(p, id));
  if (it == tasks_.end()) return;
  Task& t = it->second;
  if (!IsTerminal(t.phase)) Cancel(t, SimClock::now());
  if (!t.external_id.empty()) external_.erase(SlotKey(p, t.key) + "\n" + t.external_id);
  tasks_.erase(it);
}

int TaskStore::InFlight(Provider p, const std::string& key) const {
  auto it = slots_.find(SlotKey(p, key));
  return it == slots_.end() ? 0 : it->second.in_flight;
}

int TaskStore::Waiting(Provider p, const std::string& key) const {
  auto it = slots_.find(SlotKey(p, key));
  return it == slots_.end() ? 0 : static_cast<int>(it->second.waiting.size());
}

void TaskStore::SetConcurrency(Provider p, const std::string& key, int max_concurrent,
                               SimClock::time_point now) {
  auto& slots = slots_[SlotKey(p, key)];
  slots.max_concurrent = max_concurrent;
  StartWaiting(slots, now);
}

}  // namespace reelq::sim
