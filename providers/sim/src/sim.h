#pragma once

#include <chrono>
#include <deque>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "config.h"
#include "http_server.h"
#include "media.h"
#include "stats.h"
#include "task_store.h"

namespace reelq::sim {

// Deterministic outcomes forced from the prompt text (see README.md).
struct Triggers {
  bool policy = false;         // [sim:policy]
  bool policy_output = false;  // [sim:policy-output] (Seedance: fail the task, not the create)
  bool fail = false;           // [sim:fail]
  bool fail_once = false;      // [sim:fail-once]
  bool slow = false;           // [sim:slow]
  bool hang_download = false;  // [sim:hang-download]
  bool truncate = false;       // [sim:truncate]
  bool badjson = false;        // [sim:badjson]
};
Triggers ParseTriggers(std::string_view text);

struct Admission {
  enum Kind { kOk, kRateLimited, kConcurrency } kind = kOk;
  int retry_after_s = 1;
};

// What happens to one create call that passed validation and admission.
struct CreatePlan {
  bool fail_create = false;  // answer a 5xx now (injected)
  bool policy = false;       // content-policy rejection: sync at create or as a failed task
  Outcome outcome = Outcome::kSucceed;
  SimClock::duration latency{0};
  Triggers triggers;
};

// The simulator's state, shared by the four wire-format front ends. Single-threaded: every
// handler runs on the one io_context thread, so nothing here locks.
class Sim {
 public:
  Sim(SimConfig config, MediaLibrary media);

  HttpResponse Handle(const HttpRequest& req);

  SimConfig& config() { return config_; }
  const SimConfig& config() const { return config_; }
  TaskStore& store() { return store_; }
  Stats& stats() { return stats_; }
  MediaLibrary& media() { return media_; }
  SimClock::time_point now() const { return now_; }

  const KeyConfig* FindKey(Provider p, std::string_view key) const;
  const ModelConfig* FindModel(Provider p, std::string_view id) const;

  // Counts the create against the key's RPM window; rejects over RPM, and over the
  // concurrency cap when `concurrency_rejects` (every provider but Seedance, which queues).
  Admission Admit(Provider p, const KeyConfig& key, bool concurrency_rejects);
  CreatePlan Plan(Provider p, const ModelConfig& model, const std::string& prompt);
  // Makes the media, stores the task (running, or queued behind the key's slots) and records
  // the create in the stats.
  Result<Task*> Launch(Task task, const CreatePlan& plan);

  std::string NewTaskId(Provider p);
  std::string NewRequestId();
  // Absolute URL of a task's bytes, on the host the client used to reach us.
  std::string MediaUrl(const HttpRequest& req, const Task& task) const;
  HttpResponse ServeMedia(Provider p, const std::string& task_id);
  // Seedance return_last_frame: the clip's last frame, a PNG.
  std::string LastFrameUrl(const HttpRequest& req, const Task& task) const;
  HttpResponse ServeLastFrame(Provider p, const std::string& task_id);

  Result<void> ApplyControl(const nlohmann::json& doc);
  // Applies the provider's hold_create knob to the answer of a create that launched a task.
  void HoldCreateAnswer(Provider p, HttpResponse& res);
  nlohmann::json StatsJson() const;
  // Every TCP connection the server accepted, whatever it was for (`connections_accepted` in
  // the stats): shows whether a client reuses its connections.
  void NoteConnectionAccepted() { ++connections_accepted_; }
  void ResetStats() {
    stats_.Reset();
    connections_accepted_ = 0;
  }

 private:
  void SyncStore();
  double Uniform() { return std::uniform_real_distribution<double>(0, 1)(rng_); }

  SimConfig config_;
  MediaLibrary media_;
  TaskStore store_;
  Stats stats_;
  std::mt19937_64 rng_;
  std::mt19937_64 id_rng_;
  SimClock::time_point now_;
  std::map<std::string, std::deque<SimClock::time_point>> rpm_windows_;
  int64_t connections_accepted_ = 0;
  std::set<std::string> seen_fail_once_;
  const HttpRequest* current_ = nullptr;  // the request being handled (labels read it)
  std::optional<Provider> launched_;  // set by Launch during the current request  // prompts whose
                                      // first [sim:fail-once] task was made
};

std::string Sha256Hex(std::string_view data);

// The four wire formats; `path` is what follows the /<provider> prefix.
HttpResponse HandleKling(Sim& sim, const HttpRequest& req, std::string_view path);
HttpResponse HandleSora(Sim& sim, const HttpRequest& req, std::string_view path);
HttpResponse HandleVeo(Sim& sim, const HttpRequest& req, std::string_view path);
HttpResponse HandleSeedance(Sim& sim, const HttpRequest& req, std::string_view path);
HttpResponse HandleControl(Sim& sim, const HttpRequest& req, std::string_view path);

}  // namespace reelq::sim
