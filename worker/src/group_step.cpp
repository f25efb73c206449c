// A group's own step (issue 13), leased like any job once its children have succeeded (a
// compare's: once every take has ended and one at least succeeded): a storyboard's join
// (worker/src/join.cpp) or a compare's contact sheet (contact_sheet.cpp). This file holds what
// both share: reading the children, storing the result and its sidecar, and ending the parent.
#include "group_step.h"

#include <fmt/format.h>

#include <fstream>

#include <spdlog/spdlog.h>

#include "reelq/common/spawn.h"
#include "reelq/queue/group_sidecar.h"
#include "reelq/storage/hashing_writer.h"
#include "reelq/worker/retry_policy.h"
#include "store_writer.h"

namespace reelq::worker {

std::string GroupStep::LocalInput(const std::string& key) const {
  auto url = deps_.objects->PresignGet(key, std::chrono::hours(1));
  if (!url) return "";
  constexpr std::string_view kFile = "file://";
  if (url->starts_with(kFile)) return url->substr(kFile.size());
  return *url;
}

nlohmann::json GroupStep::ChildEntry(const queue::JobRecord& child) const {
  return queue::GroupChildEntry(child, PriceOf());
}

queue::PriceOf GroupStep::PriceOf() const {
  const auto* catalogue = deps_.catalogue;
  return [catalogue](const std::string& id, const std::string& resolution) {
    const auto* model = catalogue->FindModel(id);
    return model == nullptr ? 0.0 : model->PricePerSecondAt(resolution);
  };
}

awaitable<Result<std::vector<queue::JobRecord>>> GroupStep::Children() {
  auto group = co_await deps_.store->Get(job_.id);
  if (!group) co_return std::unexpected(group.error());
  auto children = co_await deps_.store->GetMany(group->children);
  if (!children) co_return std::unexpected(children.error());
  if (children->size() != group->children.size()) {
    co_return MakeError(ErrorCategory::kInternal,
                        "group " + job_.id + ": some of its children's records are gone");
  }
  std::sort(children->begin(), children->end(),
            [](const auto& a, const auto& b) { return a.child_index < b.child_index; });
  // A compare's takes are alternatives: one that FAILED or was CANCELLED is shown on the sheet
  // as such (common_groups.lua queues the sheet once every take ended and one succeeded). A
  // storyboard needs every shot.
  const bool compare = group->kind == queue::kKindCompare;
  size_t made = 0;
  for (const auto& c : *children) {
    if (c.state == queue::JobState::kSucceeded && !c.output_key.empty()) {
      ++made;
      continue;
    }
    if (compare &&
        (c.state == queue::JobState::kFailed || c.state == queue::JobState::kCancelled)) {
      continue;
    }
    co_return MakeError(ErrorCategory::kInternal, "child " + std::to_string(c.child_index) +
                                                      " (job " + c.id + ") has not succeeded (" +
                                                      std::string(ToString(c.state)) + ")");
  }
  if (made == 0) {
    co_return MakeError(ErrorCategory::kInternal,
                        "group " + job_.id + ": none of its children succeeded");
  }
  // A compare with a sheet already (RetryJob ran its failed takes again): the sheet and its
  // sidecar are made anew over the old ones. A first sheet, redelivered, overwrites nothing.
  overwrite_ = compare && !group->output_key.empty();
  co_return std::move(*children);
}

awaitable<Result<StoredObject>> GroupStep::StoreFile(std::filesystem::path file, std::string key,
                                                     std::string content_type) {
  storage::PutOptions options;
  options.content_type = content_type;
  options.if_absent = !overwrite_;
  options.metadata = {{"job-id", job_.id}, {"worker", deps_.settings.worker_id}};
  auto opened = co_await deps_.objects->OpenWriter(key, options);
  if (!opened) co_return std::unexpected(opened.error());
  storage::HashingWriter sink(std::move(*opened));
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    co_await sink.Abort();
    co_return MakeError(ErrorCategory::kInternal, "cannot read " + file.string());
  }
  std::vector<char> buf(256 * 1024);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const auto n = static_cast<size_t>(in.gcount());
    if (n == 0) break;
    auto w = co_await sink.Write(std::as_bytes(std::span(buf.data(), n)));
    if (!w) {
      co_await sink.Abort();
      co_return std::unexpected(w.error());
    }
  }
  if (!LeaseHeld()) {
    co_await sink.Abort();
    co_return MakeError(ErrorCategory::kCancelled, "the group step stopped");
  }
  auto committed = co_await sink.Commit();
  if (!committed) co_return std::unexpected(committed.error());
  co_return StoredObject{key, sink.sha256_hex(), sink.bytes()};
}

awaitable<Result<void>> GroupStep::StoreText(std::string key, std::string text) {
  storage::PutOptions options;
  options.content_type = "application/json";
  options.if_absent = !overwrite_;
  auto writer = co_await deps_.objects->OpenWriter(key, options);
  if (!writer) co_return std::unexpected(writer.error());
  auto w = co_await (*writer)->Write(std::as_bytes(std::span(text.data(), text.size())));
  if (!w) {
    co_await (*writer)->Abort();
    co_return std::unexpected(w.error());
  }
  if (!LeaseHeld()) {
    co_await (*writer)->Abort();
    co_return MakeError(ErrorCategory::kCancelled, "the group step stopped");
  }
  auto committed = co_await (*writer)->Commit();
  if (!committed) co_return std::unexpected(committed.error());
  co_return Result<void>{};
}

awaitable<Result<GroupStep::ChildClips>> GroupStep::ProbeChildren(
    std::vector<queue::JobRecord> children, std::string step, std::string list) {
  ChildClips clips;
  for (const auto& child : children) {
    clips.inputs.push_back(LocalInput(child.output_key));
    // Named: g++ 12 double-destroys a temporary passed into a coroutine call inside co_await.
    auto probe_limits = Limits(kProbeTimeout);
    auto info = co_await ProbeMedia(clips.inputs.back(), std::move(probe_limits));
    if (!info) {
      // A probe killed at its limit stays retryable (a stalled read), one stopped cancelled.
      const ErrorCategory category = info.error().category == ErrorCategory::kRetryable ||
                                             info.error().category == ErrorCategory::kCancelled
                                         ? info.error().category
                                         : ErrorCategory::kInternal;
      co_return MakeError(category, fmt::format("{}: {}[{}] (job {}): {}", step, list,
                                                child.child_index, child.id, info.error().message));
    }
    clips.infos.push_back(*info);
  }
  co_return clips;
}

awaitable<RunOutcome> GroupStep::StopOrFail(Error error) {
  if (control_->stop != StopReason::kNone) {
    auto stopped = co_await Stopped();
    co_return stopped;
  }
  auto outcome = co_await Fail(std::move(error));
  co_return outcome;
}

bool GroupStep::LeaseHeld() const {
  if (control_->stop != StopReason::kNone) return false;
  if (control_->lease_valid_until_ms > 0 &&
      deps_.clock->NowMs() + JobRunner::SelfFenceGuard(deps_.settings.lease).count() >=
          control_->lease_valid_until_ms) {
    control_->Stop(StopReason::kLeaseLapsed);
    return false;
  }
  return true;
}

awaitable<RunOutcome> GroupStep::Fail(Error error) {
  spdlog::warn("job={} {} step failed: {}", job_.id, job_.kind, error.Describe());
  queue::FailRequest req;
  req.job_id = job_.id;
  req.token = job_.token;
  req.category =
      error.category == ErrorCategory::kCancelled ? ErrorCategory::kInternal : error.category;
  req.message = error.message;
  // A passing failure (Redis or the store unreachable) runs the step again after a backoff,
  // straight from `ready` (fail.lua keep_task): its children are done and paid for. Anything
  // else ends the group; RetryJob (which queues the step again at once when every child
  // succeeded) is the way back.
  auto decision = DecideRetry(error, job_.attempt, job_.max_attempts, deps_.settings, rng_);
  req.retry = IsRetryable(error.category) && decision.retry;
  req.keep_task = req.retry;
  req.retry_at_ms = deps_.clock->NowMs() + decision.delay_ms;
  auto outcome = co_await deps_.store->Fail(req);
  if (!outcome) co_return RunOutcome::kStopped;
  co_return *outcome == queue::FailOutcome::kRetrying ? RunOutcome::kRetrying : RunOutcome::kFailed;
}

awaitable<RunOutcome> GroupStep::Finish(queue::CompleteRequest done) {
  if (!LeaseHeld()) {
    auto stopped = co_await Stopped();
    co_return stopped;
  }
  done.job_id = job_.id;
  done.token = job_.token;
  done.generation_ms = std::max<int64_t>(0, deps_.clock->NowMs() - leased_ms_);
  auto completed = co_await deps_.store->Complete(done);
  if (completed) co_return RunOutcome::kSucceeded;
  spdlog::warn("job={} could not be completed: {}", job_.id, completed.error().Describe());
  co_return RunOutcome::kStopped;
}

awaitable<RunOutcome> GroupStep::Stopped() {
  if (control_->stop == StopReason::kDrain) {
    (void)co_await deps_.store->HandBack(job_.id, job_.token, "worker draining");
    co_return RunOutcome::kHandedBack;
  }
  co_return RunOutcome::kStopped;
}

namespace {

// Sets `tool_stop` once the job is stopped (a cancel, a lost lease, a drain), so that the tool
// running for it is killed (media_tools.h, ToolLimits) instead of running on for nothing;
// ends when `done` is set. Looks every 200 ms: JobControl is the event loop's, the tool runs
// on the tool thread.
awaitable<void> WatchStop(std::shared_ptr<JobControl> control,
                          std::shared_ptr<std::atomic<bool>> tool_stop,
                          std::shared_ptr<std::atomic<bool>> done) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  while (!done->load()) {
    if (control->stop != StopReason::kNone) {
      tool_stop->store(true);
      co_return;
    }
    timer.expires_after(std::chrono::milliseconds(200));
    (void)co_await timer.async_wait(use_nothrow_awaitable);
  }
}

}  // namespace

awaitable<RunOutcome> GroupStep::Run() {
  auto done = std::make_shared<std::atomic<bool>>(false);
  auto executor = co_await asio::this_coro::executor;
  SpawnOrDie(executor, "group step stop watch", WatchStop(control_, tool_stop_, done));
  auto outcome = co_await RunSteps();
  done->store(true);
  co_return outcome;
}

awaitable<RunOutcome> GroupStep::RunSteps() {
  leased_ms_ = deps_.clock->NowMs();
  // Named values passed into coroutine calls: g++ 12 double-destroys temporaries there.
  if (!spec_.ParseFromString(job_.spec_bytes)) {
    Error corrupt{ErrorCategory::kInvalidRequest,
                  "the job record is corrupt: its spec does not parse"};
    auto outcome = co_await Fail(corrupt);
    co_return outcome;
  }
  auto children = co_await Children();
  if (!children) {
    Error failure = children.error();
    auto outcome = co_await Fail(failure);
    co_return outcome;
  }
  RunOutcome outcome = RunOutcome::kStopped;
  if (job_.kind == queue::kKindStoryboard) {
    outcome = co_await Join(std::move(*children));
  } else if (job_.kind == queue::kKindCompare) {
    outcome = co_await ContactSheet(std::move(*children));
  } else {
    Error unknown{ErrorCategory::kInvalidRequest, "unknown group kind '" + job_.kind + "'"};
    outcome = co_await Fail(unknown);
  }
  co_return outcome;
}

awaitable<RunOutcome> JobRunner::RunGroupStep(queue::LeasedJob job,
                                              std::shared_ptr<JobControl> control) {
  GroupStep step(deps_, rng_, job, control);
  auto outcome = co_await step.Run();
  co_return outcome;
}

}  // namespace reelq::worker
