#pragma once

// Following WatchJob streams, shared by `watch` and `batch`.

#include <chrono>
#include <functional>
#include <optional>
#include <ostream>
#include <string>

#include "context.h"

namespace reelq::cli {

enum class WatchEnd {
  kFinished,     // the server ended the stream: the job / every job of the batch is terminal
  kStopped,      // the callback asked to stop
  kTimedOut,     // --max-wait ran out
  kUnsupported,  // the server does not implement WatchJob (UNIMPLEMENTED)
  kFailed,       // an RPC error (already printed); `exit_code` says which
};

struct WatchResult {
  WatchEnd end = WatchEnd::kFinished;
  int exit_code = 0;
};

// Follows the watch until it ends. `on_event` returns false to stop. A stream that breaks with
// UNAVAILABLE after it delivered events is reopened (a few times, with backoff); the server
// replays what already happened, so `on_event` must tolerate repeats. `max_wait` of zero means
// no limit.
WatchResult FollowWatch(Context& context, const v1::WatchJobRequest& request,
                        std::chrono::milliseconds max_wait,
                        const std::function<bool(const v1::JobEvent&)>& on_event);

// What makes an event the same one when a reopened stream replays it: the job, its state, phase,
// time and detail (a replayed event also carries the job's current model and attempt, a live one
// does not); for an event of batch progress alone, that progress.
std::string EventIdentity(const v1::JobEvent& event);

// Redraws a progress bar on a TTY; prints a line every few seconds elsewhere.
class ProgressReporter {
 public:
  ProgressReporter(std::ostream& out, bool tty,
                   std::chrono::milliseconds line_interval = std::chrono::seconds(5));
  void Update(const v1::BatchProgress& progress);
  // Prints the final state and ends the bar's line.
  void Finish();

 private:
  std::ostream& out_;
  bool tty_;
  std::chrono::milliseconds line_interval_;
  std::chrono::steady_clock::time_point started_;
  std::optional<std::chrono::steady_clock::time_point> last_line_;
  std::optional<v1::BatchProgress> last_;
  bool drawn_ = false;
};

}  // namespace reelq::cli
