#pragma once

#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "media_tools.h"
#include "reelq/queue/group_sidecar.h"
#include "reelq/queue/job_store.h"
#include "reelq/v1/jobs.pb.h"
#include "reelq/worker/job_runner.h"

namespace reelq::worker {

struct StoredObject {
  std::string key, sha256;
  uint64_t size = 0;
};

// One lease of a group's parent: reads its children, makes the group's output with ffmpeg,
// stores it with a sidecar listing every child, and ends the parent. Fenced by the lease token
// like any job; a stop (cancel, lost lease) commits nothing further.
class GroupStep {
 public:
  GroupStep(RunnerDeps& deps, std::mt19937_64& rng, queue::LeasedJob job,
            std::shared_ptr<JobControl> control)
      : deps_(deps), rng_(rng), job_(std::move(job)), control_(std::move(control)) {}

  awaitable<RunOutcome> Run();

 private:
  awaitable<RunOutcome> RunSteps();  // Run, while the tools' stop is watched
  // Every child, by position; an error unless each has succeeded with a clip (a compare: each
  // has ended, and one at least succeeded with a clip).
  awaitable<Result<std::vector<queue::JobRecord>>> Children();
  awaitable<RunOutcome> Join(std::vector<queue::JobRecord> shots);          // join.cpp
  awaitable<RunOutcome> ContactSheet(std::vector<queue::JobRecord> takes);  // contact_sheet.cpp

  // Each child's clip where ffmpeg reads it, and what ffprobe says of it. The error names the
  // child as `step`: `list`[index] ("join: shots[2] (job s2): ...").
  struct ChildClips {
    std::vector<std::string> inputs;
    std::vector<MediaInfo> infos;
  };
  awaitable<Result<ChildClips>> ProbeChildren(std::vector<queue::JobRecord> children,
                                              std::string step, std::string list);
  // Where ffmpeg reads a stored object: a path for the filesystem store, else a presigned URL.
  std::string LocalInput(const std::string& key) const;
  // The child as the group's sidecar lists it (queue/group_sidecar.h).
  nlohmann::json ChildEntry(const queue::JobRecord& child) const;
  queue::PriceOf PriceOf() const;  // the catalogue's price per second (at a resolution)
  awaitable<Result<StoredObject>> StoreFile(std::filesystem::path file, std::string key,
                                            std::string content_type);
  awaitable<Result<void>> StoreText(std::string key, std::string text);
  bool LeaseHeld() const;
  awaitable<RunOutcome> Fail(Error error);
  awaitable<RunOutcome> Finish(queue::CompleteRequest done);
  awaitable<RunOutcome> Stopped();
  // After a store that failed: stopped when the job was stopped meanwhile (the store gave up
  // because of it), else failed with `error`.
  awaitable<RunOutcome> StopOrFail(Error error);
  // The limits of a tool run for this step: `timeout`, and killed once the job is stopped.
  ToolLimits Limits(std::chrono::milliseconds timeout) const { return {timeout, tool_stop_}; }

  RunnerDeps& deps_;
  std::mt19937_64& rng_;  // the backoff's jitter (JobRunner's)
  queue::LeasedJob job_;
  std::shared_ptr<JobControl> control_;
  v1::JobSpec spec_;
  int64_t leased_ms_ = 0;
  // The output and sidecar replace what is stored under their keys (a compare's sheet made anew
  // after RetryJob); else an object already there is kept (a redelivered step).
  bool overwrite_ = false;
  // Set once the job is stopped (WatchStop in group_step.cpp): a tool running for it is killed.
  std::shared_ptr<std::atomic<bool>> tool_stop_ = std::make_shared<std::atomic<bool>>(false);
};

}  // namespace reelq::worker
