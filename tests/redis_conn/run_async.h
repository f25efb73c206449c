#pragma once

#include <chrono>
#include <future>
#include <stdexcept>
#include <string>
#include <vector>

#include "reelq/common/asio.h"

namespace reelq::testing {

// Runs `task` on `io` (on this thread) until it finishes, and returns its value. The io_context
// keeps running other work meanwhile; a connection's socket waits never let run() return, so
// this runs one handler at a time until the task's future is ready.
template <class T>
T RunAsync(asio::io_context& io, awaitable<T> task,
           std::chrono::milliseconds limit = std::chrono::seconds(30)) {
  auto future = asio::co_spawn(io, std::move(task), asio::use_future);
  const auto deadline = std::chrono::steady_clock::now() + limit;
  io.restart();
  while (future.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
    if (std::chrono::steady_clock::now() > deadline) {
      throw std::runtime_error("RunAsync: task did not finish in time");
    }
    io.run_one_for(std::chrono::milliseconds(20));
  }
  return future.get();
}

// Builds a command's arguments. Inside coroutines, g++ 12 rejects a braced list of string
// literals passed as std::vector<std::string> ("array used as initializer"); this avoids it.
template <class... Parts>
std::vector<std::string> Args(Parts&&... parts) {
  return {std::string(std::forward<Parts>(parts))...};
}

// Lets the io_context run for `duration` (background reconnects, late replies).
inline void RunFor(asio::io_context& io, std::chrono::milliseconds duration) {
  io.restart();
  const auto deadline = std::chrono::steady_clock::now() + duration;
  while (std::chrono::steady_clock::now() < deadline) io.run_one_for(std::chrono::milliseconds(5));
}

}  // namespace reelq::testing
