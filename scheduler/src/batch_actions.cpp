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
  auto filter = BatchFilter(who, batch_id);
  for (;;) {
    auto page = co_await store_.List(filter);
    if (!page) co_return std::unexpected(page.error());
    for (const auto& job : page->jobs) {
      // A group's children go with their group's cancel. A group that already FAILED may still
      // have children running: its cancel stops those (and answers TERMINAL when none run).
      const bool ended_group = !job.kind.empty() && job.state == queue::JobState::kFailed;
      if (!job.parent.empty() || (queue::IsTerminal(job.state) && !ended_group)) continue;
      auto cancelled = co_await store_.Cancel(job.id);
      if (cancelled) {
        response.set_jobs_changed(response.jobs_changed() + 1);
      } else if (cancelled.error().category != ErrorCategory::kFailedPrecondition &&
                 cancelled.error().category != ErrorCategory::kNotFound) {
        // Ended meanwhile (or gone with retention): nothing to cancel. Anything else stops the
        // walk; the call sent again goes on from the jobs still to cancel.
        auto e = cancelled.error();
        e.message = "batch " + batch_id + ": cancelling job " + job.id + " after " +
                    std::to_string(response.jobs_changed()) + " others: " + e.message;
        co_return std::unexpected(e);
      }
    }
    if (page->next_page_token.empty()) break;
    filter.page_token = page->next_page_token;
  }
  auto progress = co_await GetBatch(who, batch_id);
  if (!progress) co_return std::unexpected(progress.error());
  *response.mutable_progress() = std::move(*progress);
  co_return response;
}

awaitable<Result<v1::BatchActionResponse>> JobApi::RetryBatch(Principal who, std::string batch_id) {
  if (auto known = co_await CheckBatchHasJobs(who, batch_id); !known) {
    co_return std::unexpected(known.error());
  }
  v1::BatchActionResponse response;
  auto filter = BatchFilter(who, batch_id);
  for (;;) {
    auto page = co_await store_.List(filter);
    if (!page) co_return std::unexpected(page.error());
    for (const auto& job : page->jobs) {
      // A group runs again what of it failed: its children are not retried on their own.
      if (!job.parent.empty()) continue;
      if (job.state != queue::JobState::kFailed && job.state != queue::JobState::kCancelled) {
        continue;
      }
      auto retried = co_await store_.Retry(job.id);
      if (retried) {
        response.set_jobs_changed(response.jobs_changed() + 1);
        continue;
      }
      auto e = retried.error();
      // Retried or gone meanwhile: nothing to do. The budget refusing the next one stops the
      // walk, as does anything else, naming how far it got.
      if (e.category == ErrorCategory::kNotFound ||
          (e.category == ErrorCategory::kFailedPrecondition &&
           e.message.find("batch budget") == std::string::npos)) {
        continue;
      }
      if (response.jobs_changed() > 0 && on_submitted_) on_submitted_();
      e.message = "batch " + batch_id + ": " + std::to_string(response.jobs_changed()) +
                  " jobs run again, then job " + job.id + " was not: " + e.message;
      co_return std::unexpected(e);
    }
    if (page->next_page_token.empty()) break;
    filter.page_token = page->next_page_token;
  }
  if (response.jobs_changed() > 0 && on_submitted_) on_submitted_();
  auto progress = co_await GetBatch(who, batch_id);
  if (!progress) co_return std::unexpected(progress.error());
  *response.mutable_progress() = std::move(*progress);
  co_return response;
}

}  // namespace reelq::scheduler
