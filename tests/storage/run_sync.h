#pragma once

// Runs one coroutine to completion on a private io_context (tests only).

#include <future>
#include <string>
#include <string_view>

#include "reelq/common/asio.h"

namespace reelq::storage::testing {

template <class T>
T RunSync(asio::io_context& io, awaitable<T> task) {
  auto future = asio::co_spawn(io, std::move(task), asio::use_future);
  io.restart();
  while (future.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
    if (io.run_one_for(std::chrono::milliseconds(50)) == 0) io.restart();
  }
  return future.get();
}

inline std::span<const std::byte> Bytes(std::string_view s) {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

}  // namespace reelq::storage::testing
