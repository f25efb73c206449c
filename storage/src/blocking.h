#pragma once

// Runs short blocking system calls (fsync, rename, stat) off the event loop, on a pool of
// threads that lives as long as the process, so one slow disk does not stall every other job's
// coroutine.

#include <type_traits>

#include "reelq/common/asio.h"

namespace reelq::storage::detail {

// The process's pool of `threads` threads (1 or more), started on first use. A process
// normally opens one store, so it has one pool; stores configured alike share it.
asio::thread_pool& BlockingPool(int threads);

template <class F>
awaitable<std::invoke_result_t<F>> InvokeAsCoroutine(F f) {
  co_return f();
}

// Resumes the caller on its own executor once `f` has run on `pool`.
template <class F>
awaitable<std::invoke_result_t<F>> RunBlocking(asio::thread_pool& pool, F f) {
  auto task = InvokeAsCoroutine(std::move(f));
  auto result = co_await asio::co_spawn(pool.get_executor(), std::move(task), use_awaitable);
  co_return result;
}

}  // namespace reelq::storage::detail
