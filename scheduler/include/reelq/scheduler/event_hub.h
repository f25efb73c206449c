#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "reelq/common/asio.h"
#include "reelq/common/redis.h"
#include "reelq/queue/job_store.h"

namespace reelq::scheduler {

// Follows the event stream in Redis on a blocking connection of its own and fans each state
// change out to the watches of its job or batch. Lives on the scheduler's io executor; every
// method must be called there.
class EventHub {
 public:
  using Listener = std::function<void(const queue::Event&)>;

  EventHub(queue::JobStore& store, redis::ConnectionPtr blocking);

  awaitable<void> Run();
  void Stop();

  // Returns a handle for Unsubscribe. `key` is a job id or "batch:<id>".
  uint64_t Subscribe(std::string key, Listener listener);
  void Unsubscribe(uint64_t handle);

 private:
  queue::JobStore& store_;
  redis::ConnectionPtr blocking_;
  bool stopped_ = false;
  uint64_t next_handle_ = 1;
  std::multimap<std::string, std::pair<uint64_t, Listener>> listeners_;
  std::map<uint64_t, std::string> keys_;
};

}  // namespace reelq::scheduler
