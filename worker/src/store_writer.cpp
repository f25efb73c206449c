#include "store_writer.h"

#include <algorithm>

#include "reelq/common/spawn.h"

namespace reelq::worker {
namespace {

using Clock = std::chrono::steady_clock;

// Queues `request`, makes sure a flush of `pending` is on its way by `due` (`flush` runs then
// with everything queued by then), and waits for this request's own outcome.
template <class Pending, class Request, class Flush>
awaitable<Result<typename Pending::Outcome>> Enqueue(Pending& pending, Request request,
                                                     Clock::time_point due, Flush flush) {
  auto executor = co_await asio::this_coro::executor;
  auto waiter = std::make_shared<typename Pending::Waiter>(executor);
  pending.requests.push_back(std::move(request));
  pending.waiters.push_back(waiter);
  if (!pending.flush_scheduled) {
    pending.flush_scheduled = true;
    pending.due = due;
    SpawnOrDie(executor, "store-writer flush", flush());
  } else if (due < pending.due) {
    pending.due = due;
    if (pending.timer) pending.timer->cancel();  // the flush waits again, until the new due
  }
  while (!waiter->result) {
    waiter->ready.expires_at(asio::steady_timer::time_point::max());
    co_await waiter->ready.async_wait(use_nothrow_awaitable);
  }
  co_return std::move(*waiter->result);
}

// Waits until the call is due (a write queued meanwhile may bring that forward), takes what is
// queued (later writes start the next call), makes the one call and hands every waiter its own
// outcome (or the call's error).
template <class Pending, class Call>
awaitable<void> Flush(Pending& pending, Call call) {
  if (!pending.timer) {
    pending.timer = std::make_unique<asio::steady_timer>(co_await asio::this_coro::executor);
  }
  while (Clock::now() < pending.due) {
    pending.timer->expires_at(pending.due);
    co_await pending.timer->async_wait(use_nothrow_awaitable);
  }
  auto requests = std::move(pending.requests);
  auto waiters = std::move(pending.waiters);
  pending.requests.clear();
  pending.waiters.clear();
  pending.flush_scheduled = false;
  const size_t count = waiters.size();
  auto awaited = call(std::move(requests));
  auto outcomes = co_await std::move(awaited);
  for (size_t i = 0; i < count; ++i) {
    if (!outcomes) {
      waiters[i]->result = std::unexpected(outcomes.error());
    } else if (i < outcomes->size()) {
      waiters[i]->result = std::move((*outcomes)[i]);
    } else {
      waiters[i]->result =
          std::unexpected(Error{ErrorCategory::kInternal, "store writer: an outcome is missing"});
    }
    waiters[i]->ready.cancel();
  }
}

}  // namespace

awaitable<Result<std::chrono::milliseconds>> StoreWriter::TakeCreatePermit(
    queue::PermitRequest request) {
  // Named lambdas and results: g++ 12 mishandles temporaries inside co_await expressions.
  auto flush = [this] {
    auto call = [this](std::vector<queue::PermitRequest> requests) {
      return store_.TakeCreatePermitMany(create_guard_, std::move(requests));
    };
    return Flush(permits_, call);
  };
  auto result = co_await Enqueue(permits_, std::move(request), Due({}), flush);
  co_return result;
}

Clock::time_point StoreWriter::Due(std::chrono::milliseconds may_wait) const {
  return Clock::now() + std::max(window_, may_wait);
}

awaitable<Result<void>> StoreWriter::SetPhase(queue::PhaseChange change,
                                              std::chrono::milliseconds may_wait) {
  auto flush = [this] {
    auto call = [this](std::vector<queue::PhaseChange> changes) {
      return store_.SetPhaseMany(std::move(changes));
    };
    return Flush(phases_, call);
  };
  auto result = co_await Enqueue(phases_, std::move(change), Due(may_wait), flush);
  co_return result;
}

awaitable<Result<void>> StoreWriter::Complete(queue::CompleteRequest done,
                                              std::chrono::milliseconds may_wait) {
  auto flush = [this] {
    auto call = [this](std::vector<queue::CompleteRequest> requests) {
      return store_.CompleteMany(std::move(requests));
    };
    return Flush(completions_, call);
  };
  auto result = co_await Enqueue(completions_, std::move(done), Due(may_wait), flush);
  co_return result;
}

}  // namespace reelq::worker
