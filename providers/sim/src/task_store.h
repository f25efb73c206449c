#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "config.h"
#include "images.h"
#include "reelq/common/error.h"

namespace reelq::sim {

using SimClock = std::chrono::steady_clock;

// What an accepted task will end as; decided at create so a run is reproducible from --seed.
enum class Outcome { kSucceed, kTransientFailure, kPolicyFailure };

enum class Phase { kQueued, kRunning, kSucceeded, kFailed, kCancelled, kExpired };
inline bool IsTerminal(Phase p) { return p != Phase::kQueued && p != Phase::kRunning; }

struct Task {
  std::string id;
  Provider provider = Provider::kKling;
  std::string key;
  std::string model;
  std::string prompt;       // all prompt text (multi-shot prompts joined)
  std::string external_id;  // Kling external_task_id
  // Kling multi-shot (shot_type customize): each multi_prompt entry's duration, in order;
  // reported in /_sim/stats creates[] so tests can see one generation carried every shot.
  std::vector<int> shot_durations;
  int duration_s = 5;
  std::string ratio = "16:9";
  bool audio = false;
  nlohmann::json echo;                // provider-specific request fields echoed back on poll
  std::vector<ReceivedImage> images;  // input images, in the order the request gave them
  bool return_last_frame = false;     // Seedance: serve the clip's last frame as a PNG
  std::filesystem::path last_frame;   // when return_last_frame; see last_frame_ready
  Outcome outcome = Outcome::kSucceed;
  bool hang_download = false;
  bool truncate_poll = false;
  bool bad_json_poll = false;

  Phase phase = Phase::kQueued;
  SimClock::duration latency{0};    // generation time once a slot is held
  SimClock::duration queue_for{0};  // shown as queued/submitted before running (cosmetic)
  SimClock::time_point created;
  SimClock::time_point started;         // valid from kRunning
  SimClock::time_point finishes;        // valid from kRunning
  SimClock::time_point ended;           // valid when terminal
  SimClock::duration expires_after{0};  // Seedance execution_expires_after (queued too long)
  bool holds_slot = false;
  int64_t created_unix_ms = 0;
  std::filesystem::path media;
  // A labelled clip rendering in the background: the task does not succeed before it is made
  // (rendering is part of the generation), so a download never waits for it.
  std::shared_future<Result<void>> media_ready;
  // Likewise the PNG of the clip's last frame (return_last_frame), made after the clip.
  std::shared_future<Result<void>> last_frame_ready;
  // Whether a render the task's success waits for is still running.
  bool Rendering() const;

  // Unix milliseconds of a steady-clock instant of this task.
  int64_t UnixMs(SimClock::time_point t) const {
    return created_unix_ms +
           std::chrono::duration_cast<std::chrono::milliseconds>(t - created).count();
  }
  // Last state change, unix ms.
  int64_t UpdatedUnixMs() const;
  // 0..100 while running.
  int Progress(SimClock::time_point now) const;
  // Cosmetic: queued/submitted for a short while before running.
  bool LooksQueued(SimClock::time_point now) const {
    return phase == Phase::kQueued || (phase == Phase::kRunning && now < started + queue_for);
  }
};

// All tasks of all providers, and each key's concurrency slots. Time only moves forward through
// Advance(), which every request calls first, so state is evaluated lazily and exactly.
class TaskStore {
 public:
  // Registers an accepted task: it runs at once when its key has a slot (callers check the
  // limit first for providers that reject), otherwise it waits in the key's FIFO (Seedance).
  Task& Add(Task task, int max_concurrent);

  void Advance(SimClock::time_point now);

  // nullptr when unknown or past retention (then it is also erased).
  Task* Find(Provider p, const std::string& id, SimClock::time_point now);
  Task* FindByExternal(Provider p, const std::string& key, const std::string& external_id,
                       SimClock::time_point now);
  bool ExternalIdTaken(Provider p, const std::string& key, const std::string& external_id,
                       SimClock::time_point now) {
    return FindByExternal(p, key, external_id, now) != nullptr;
  }

  // A queued task becomes cancelled; a running one stops and frees its slot.
  void Cancel(Task& task, SimClock::time_point now);
  void Erase(Provider p, const std::string& id);

  // Ids of a provider's stored tasks, oldest first (for list endpoints).
  std::vector<std::string> Ids(Provider p) const;

  int InFlight(Provider p, const std::string& key) const;
  int Waiting(Provider p, const std::string& key) const;
  // Raises the key's limit at run time: queued tasks may start.
  void SetConcurrency(Provider p, const std::string& key, int max_concurrent,
                      SimClock::time_point now);
  void SetRetention(Provider p, SimClock::duration retention) { retention_[p] = retention; }

 private:
  struct KeySlots {
    int in_flight = 0;
    int max_concurrent = 64;
    std::deque<std::string> waiting;  // task ids, FIFO
  };
  static std::string SlotKey(Provider p, const std::string& key) {
    return std::string(ProviderName(p)) + "\n" + key;
  }
  static std::string TaskKey(Provider p, const std::string& id) {
    return std::string(ProviderName(p)) + "\n" + id;
  }
  void Start(Task& task, SimClock::time_point at);
  void Finish(Task& task, SimClock::time_point at);
  void StartWaiting(KeySlots& slots, SimClock::time_point at);

  std::unordered_map<std::string, Task> tasks_;
  // provider \n key \n external id -> task id, so idempotency lookups stay O(1).
  std::unordered_map<std::string, std::string> external_;
  std::unordered_map<std::string, KeySlots> slots_;
  std::multimap<SimClock::time_point, std::string> running_;  // finish time -> task key
  std::map<Provider, SimClock::duration> retention_;
};

}  // namespace reelq::sim
