#pragma once

// Runs short blocking system calls (fsync, rename, stat) off the event loop, on a small
// process-wide pool, so one slow disk does not stall every other job's coroutine.

#include <type_traits>

#include "reelq/common/asio.h"

namespace reelq::storage::detail {

asio::thread_pool& BlockingPool();

template <class F>
awaitable<std::invoke_result_t<F>> InvokeAsCoroutine(F f) {
  co_return f();
}

// Resumes the caller on its own executor once `f` has run on the pool.
template <class F>
awaitable<std::invoke_result_t<F>> RunBlocking(F f) {
  auto task = InvokeAsCoroutine(std::move(f));
  auto result =
      co_await asio::co_spawn(BlockingPool().get_executor(), std::move(task), use_awaitable);
  co_return result;
}

}  // namespace reelq::storage::detail
