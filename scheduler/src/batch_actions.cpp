// CancelBatch and RetryBatch: one call for what a studio would otherwise send job by job. The
// batch is walked by its ListJobs cursor, so jobs submitted to it meanwhile are reached too, and
// each job goes through the same Redis script its own CancelJob or RetryJob would (money, groups,
// a running job's worker told at once). A call sent again after a broken one finds the jobs it
// already changed in their new state and goes on.
#include "reelq/queue/job_record.h"
#include "reelq/scheduler/job_api.h"

namespace reelq::scheduler {
namespace {

constexpr int kBatchPage = 1000;

// The batch's jobs the caller may change: a tenant's own only (a batch id claimed by a tenant may
// still hold another tenant's jobs from before authentication was on, as GetJob hides them).
queue::ListFilter BatchFilter(const Principal& who, const std::string& batch_id) {
  queue::ListFilter filter;
  filter.batch = batch_id;
  if (!who.is_admin) filter.tenant = who.tenant;
  filter.page_size = kBatchPage;
  return filter;
}

// Hands each job of `filter`'s listing to `act`, page by page; an error from `act` ends the walk.
// `act` (a coroutine lambda) lives in the caller's frame for the whole walk.
template <class Act>
awaitable<Result<void>> WalkBatch(queue::JobStore& store, queue::ListFilter filter, Act& act) {
  for (;;) {
    auto page = co_await store.List(filter);
    if (!page) co_return std::unexpected(page.error());
    for (const auto& job : page->jobs) {
      auto done = co_await act(job);
      if (!done) co_return done;
    }
    if (page->next_page_token.empty()) co_return Result<void>{};
    filter.page_token = page->next_page_token;
  }
}

}  // namespace

awaitable<Result<void>> JobApi::CheckBatchHasJobs(Principal who, const std::string& batch_id) {
  if (batch_id.empty()) co_return MakeError(ErrorCategory::kInvalidRequest, "batch_id: required");
  if (auto visible = co_await CheckBatchVisible(who, batch_id); !visible) {
    co_return std::unexpected(visible.error());
  }
  auto counts = co_await store_.GetBatch(batch_id);
  if (!counts) co_return std::unexpected(counts.error());
  if (counts->total == 0) {
    co_return MakeError(ErrorCategory::kNotFound, "no batch with id '" + batch_id + "'");
  }
  co_return Result<void>{};
}

awaitable<Result<v1::BatchActionResponse>> JobApi::CancelBatch(Principal who,
                                                               std::string batch_id) {
  if (auto known = co_await CheckBatchHasJobs(who, batch_id); !known) {
    co_return std::unexpected(known.error());
  }
  v1::BatchActionResponse response;
  auto cancel = [&](const queue::JobRecord& job) -> awaitable<Result<void>> {
    // A group's children go with their group's cancel. A group that already FAILED may still
    // have children running: its cancel stops those (and answers TERMINAL when none run).
    const bool ended_group = !job.kind.empty() && job.state == queue::JobState::kFailed;
    if (!job.parent.empty() || (queue::IsTerminal(job.state) && !ended_group)) {
      co_return Result<void>{};
    }
    auto cancelled = co_await store_.Cancel(job.id);
    if (cancelled) {
      response.set_jobs_changed(response.jobs_changed() + 1);
      co_return Result<void>{};
    }
    // Ended meanwhile (or gone with retention): nothing to cancel. Anything else stops the walk;
    // the call sent again goes on from the jobs still to cancel.
    auto e = cancelled.error();
    if (e.category == ErrorCategory::kFailedPrecondition ||
        e.category == ErrorCategory::kNotFound) {
      co_return Result<void>{};
    }
    e.message = "batch " + batch_id + ": cancelling job " + job.id + " after " +
                std::to_string(response.jobs_changed()) + " others: " + e.message;
    co_return std::unexpected(e);
  };
  auto walked = co_await WalkBatch(store_, BatchFilter(who, batch_id), cancel);
  if (!walked) co_return std::unexpected(walked.error());
  co_return co_await WithProgress(who, batch_id, std::move(response));
}

awaitable<Result<v1::BatchActionResponse>> JobApi::RetryBatch(Principal who, std::string batch_id) {
  if (auto known = co_await CheckBatchHasJobs(who, batch_id); !known) {
    co_return std::unexpected(known.error());
  }
  v1::BatchActionResponse response;
  auto retry = [&](const queue::JobRecord& job) -> awaitable<Result<void>> {
    // A group runs again what of it failed: its children are not retried on their own. A
    // compare that succeeded with takes that failed (its sheet made of the others) runs those
    // takes again, as RetryJob does, until a take is picked.
    const bool takes_failed = job.kind == "compare" && job.state == queue::JobState::kSucceeded &&
                              job.children_ok < static_cast<int>(job.children.size()) &&
                              job.picked.empty();
    if (!job.parent.empty() || (job.state != queue::JobState::kFailed &&
                                job.state != queue::JobState::kCancelled && !takes_failed)) {
      co_return Result<void>{};
    }
    auto retried = co_await store_.Retry(job.id);
    if (retried) {
      response.set_jobs_changed(response.jobs_changed() + 1);
      co_return Result<void>{};
    }
    // Retried or gone meanwhile: nothing to do. The budget refusing the next one stops the walk,
    // as does anything else, naming how far it got.
    auto e = retried.error();
    if (e.category == ErrorCategory::kNotFound ||
        (e.category == ErrorCategory::kFailedPrecondition &&
         e.message.find("batch budget") == std::string::npos)) {
      co_return Result<void>{};
    }
    e.message = "batch " + batch_id + ": " + std::to_string(response.jobs_changed()) +
                " jobs run again, then job " + job.id + " was not: " + e.message;
    co_return std::unexpected(e);
  };
  auto walked = co_await WalkBatch(store_, BatchFilter(who, batch_id), retry);
  // The jobs requeued before a stop are queued all the same: dispatch is woken for them.
  if (response.jobs_changed() > 0 && on_submitted_) on_submitted_();
  if (!walked) co_return std::unexpected(walked.error());
  co_return co_await WithProgress(who, batch_id, std::move(response));
}

awaitable<Result<v1::BatchActionResponse>> JobApi::WithProgress(Principal who, std::string batch_id,
                                                                v1::BatchActionResponse response) {
  auto progress = co_await GetBatch(who, std::move(batch_id));
  if (!progress) co_return std::unexpected(progress.error());
  *response.mutable_progress() = std::move(*progress);
  co_return response;
}

}  // namespace reelq::scheduler
