#pragma once

// A test double of Provider, shipped beside the interface so any test of code that drives a
// provider (the worker's job runner, its fencing) can use it without a simulator process.
// Production code never uses it.
#include <chrono>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "reelq/providers/provider.h"

namespace reelq::providers {

// Tasks finish at once (after `running_polls` RUNNING answers: SUCCEEDED, `clip_seconds` long) and
// the clip is two writes; while `hold_download` is true the download stops between them, so a test
// can act while a job is in TRANSFERRING. While `hold_polls` is true, every poll after the first
// `polls_released` waits until released, whatever happens to its job meanwhile, as an HTTP exchange
// in flight does. Counters say what was called. Not thread-safe: run it on one io_context.
class FakeProvider final : public Provider {
 public:
  bool hold_download = false;
  int downloads_gone = 0;  // downloads still to be refused as gone (an expired URL)
  // Downloads still to be refused as unauthorised (a 401/403: a key rotated since the create).
  int downloads_unauthorised = 0;
  // Downloads still to be refused as rate limited (a CDN's 429), with this Retry-After.
  int downloads_rate_limited = 0;
  std::chrono::milliseconds download_retry_after{100};
  bool hold_polls = false;
  int polls_released = 0;
  int polls_waiting = 0;
  int running_polls = 0;  // polls still to answer RUNNING (a task still generating, or stuck)
  // Carried by each RUNNING answer as the provider's suggested wait before the next poll.
  std::chrono::milliseconds running_poll_after{0};
  int polls_unauthorised = 0;  // polls still to be refused as unauthorised (a key rotated)
  // Polls answered before the provider forgets every task (its results expired) and answers
  // not found; negative: never.
  int polls_before_forgetting = -1;
  double clip_seconds = 5;
  int creates = 0, polls = 0, downloads_started = 0, downloads_finished = 0, cancels = 0;

  std::string_view name() const override { return "fake"; }

  // Creates whose task is made but whose answer is lost on the way back (maybe delivered).
  int create_answers_lost = 0;
  // An idempotency id is unique (as Kling's external_task_id per account): a create naming one
  // already used is refused as invalid, and makes nothing.
  std::map<std::string, std::string> task_by_idempotency_id;
  int creates_refused = 0;
  // Creates slower than the caller waits: each call takes `slow_create_call`, makes its task,
  // and fails as a timeout (maybe delivered); lookups list the task only `slow_create_listed_after`
  // after that (the provider was still making it).
  int creates_timed_out = 0;
  std::chrono::milliseconds slow_create_call{0};
  std::chrono::milliseconds slow_create_listed_after{0};
  // Tasks lookups do not list before the time given (by idempotency id).
  std::map<std::string, std::chrono::steady_clock::time_point> listed_from;
  // Set: every create is refused with this error, its answer come back and nothing made (as a
  // provider answers a create for a model it retired: model_gone).
  std::optional<Error> create_refusal;

  awaitable<Result<std::string>> Create(GenerationRequest request) override {
    if (create_refusal) {
      ++creates_refused;
      co_return std::unexpected(*create_refusal);
    }
    if (!request.idempotency_id.empty() &&
        task_by_idempotency_id.contains(request.idempotency_id)) {
      ++creates_refused;
      co_return std::unexpected(
          Error{ErrorCategory::kInvalidRequest,
                "idempotency id " + request.idempotency_id + " already exists for this account"});
    }
    ++creates;
    std::string task = "task-" + std::to_string(creates);
    if (!request.idempotency_id.empty()) task_by_idempotency_id[request.idempotency_id] = task;
    if (creates_timed_out > 0) {
      --creates_timed_out;
      asio::steady_timer timer(co_await asio::this_coro::executor, slow_create_call);
      co_await timer.async_wait(use_nothrow_awaitable);
      listed_from[request.idempotency_id] =
          std::chrono::steady_clock::now() + slow_create_listed_after;
      Error timed_out{ErrorCategory::kRetryable, "the create call timed out"};
      timed_out.maybe_delivered = true;
      co_return std::unexpected(timed_out);
    }
    if (create_answers_lost > 0) {
      --create_answers_lost;
      Error lost{ErrorCategory::kRetryable, "the create's answer was lost"};
      lost.maybe_delivered = true;
      co_return std::unexpected(lost);
    }
    co_return task;
  }

  // Lookups by idempotency id (as Kling's by external_task_id).
  bool can_find_lost_create = false;
  int lookups = 0;
  bool CanFindLostCreate() const override { return can_find_lost_create; }
  awaitable<Result<std::vector<std::string>>> FindLostCreate(GenerationRequest request,
                                                             int64_t) override {
    ++lookups;
    std::vector<std::string> found;
    auto listed = listed_from.find(request.idempotency_id);
    const bool not_yet_listed =
        listed != listed_from.end() && std::chrono::steady_clock::now() < listed->second;
    if (auto task = task_by_idempotency_id.find(request.idempotency_id);
        task != task_by_idempotency_id.end() && !not_yet_listed) {
      found.push_back(task->second);
    }
    co_return found;
  }

  awaitable<Result<TaskStatus>> Poll(std::string) override {
    const int number = ++polls;
    if (hold_polls && number > polls_released) {
      ++polls_waiting;
      asio::steady_timer timer(co_await asio::this_coro::executor);
      while (hold_polls && number > polls_released) {
        timer.expires_after(std::chrono::milliseconds(10));
        co_await timer.async_wait(use_nothrow_awaitable);
      }
      --polls_waiting;
    }
    if (polls_unauthorised > 0) {
      --polls_unauthorised;
      co_return std::unexpected(Error{ErrorCategory::kAuthFailed, "401: key not valid"});
    }
    if (polls_before_forgetting >= 0 && number > polls_before_forgetting) {
      co_return std::unexpected(Error{ErrorCategory::kNotFound, "task not found"});
    }
    TaskStatus status;
    if (running_polls > 0) {
      --running_polls;
      status.state = TaskState::kRunning;
      if (running_poll_after.count() > 0) status.poll_after = running_poll_after;
      co_return status;
    }
    status.state = TaskState::kSucceeded;
    status.clip_seconds = clip_seconds;
    co_return status;
  }

  // Writes "clip of <task id> " then "second half".
  awaitable<Result<void>> Download(std::string task_id, TaskStatus, ByteSink& sink) override {
    ++downloads_started;
    if (downloads_gone > 0) {
      --downloads_gone;
      co_return std::unexpected(Error{ErrorCategory::kNotFound, "the clip's URL has expired"});
    }
    if (downloads_unauthorised > 0) {
      --downloads_unauthorised;
      co_return std::unexpected(Error{ErrorCategory::kAuthFailed, "403: key not valid"});
    }
    if (downloads_rate_limited > 0) {
      --downloads_rate_limited;
      Error throttled{ErrorCategory::kRateLimited, "429: slow down"};
      throttled.retry_after = download_retry_after;
      co_return std::unexpected(throttled);
    }
    const std::string half = "clip of " + task_id + " ";
    auto first = co_await sink.Write(std::as_bytes(std::span(half.data(), half.size())));
    if (!first) co_return first;
    asio::steady_timer timer(co_await asio::this_coro::executor);
    while (hold_download) {
      timer.expires_after(std::chrono::milliseconds(10));
      co_await timer.async_wait(use_nothrow_awaitable);
    }
    const std::string rest = "second half";
    auto second = co_await sink.Write(std::as_bytes(std::span(rest.data(), rest.size())));
    ++downloads_finished;
    co_return second;
  }

  awaitable<Result<void>> Cancel(std::string) override {
    ++cancels;
    co_return Result<void>{};
  }
};

}  // namespace reelq::providers
