#pragma once

#include <cstddef>
#include <span>

#include "reelq/common/asio.h"
#include "reelq/common/error.h"

namespace reelq {

// Where streamed bytes go: a provider download writes into it, an object-store writer is one.
// Chunks arrive in order; the sink must not keep the span after Write returns.
class ByteSink {
 public:
  virtual ~ByteSink() = default;
  virtual awaitable<Result<void>> Write(std::span<const std::byte> chunk) = 0;
};

}  // namespace reelq
