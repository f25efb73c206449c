#include "reelq/worker/job_runner.h"

#include "attempt.h"
#include "reelq/common/random.h"
#include "store_writer.h"

namespace reelq::worker {

// Backoff jitter comes from the process's one seeded source (common/random.h), so a run with
// REELQ_RANDOM_SEED repeats its choices.
JobRunner::JobRunner(RunnerDeps& deps)
    : deps_(deps),
      writer_(std::make_unique<StoreWriter>(*deps.store, kWriteWindow,
                                            deps.settings.create_rate_guard)),
      rng_(NewRng()) {}

JobRunner::~JobRunner() = default;

std::string JobRunner::ClipKey(const std::string& tenant, const std::string& batch,
                               const std::string& job_id) {
  return tenant + "/" + (batch.empty() ? job_id : batch) + "/" + job_id + ".mp4";
}

std::string JobRunner::SidecarKey(const std::string& clip_key) {
  return clip_key.substr(0, clip_key.size() - 4) + ".json";
}

awaitable<RunOutcome> JobRunner::Run(std::unique_ptr<queue::LeasedJob> job,
                                     std::shared_ptr<JobControl> control) {
  if (!job->kind.empty()) {
    // A group's own step creates nothing upstream.
    MarkStarted(deps_, *control);
    auto outcome = co_await RunGroupStep(std::move(*job), control);
    co_return outcome;
  }
  // On the heap, not in this frame: the frame would keep the attempt's largest size for the
  // job's whole life (see Attempt).
  auto attempt =
      std::make_unique<Attempt>(deps_, *writer_, rng_, std::move(*job), std::move(control));
  job.reset();
  co_return co_await attempt->Run();
}

}  // namespace reelq::worker
