// WAIT, the one call that turns "written on the master" into "written on N replicas too".
#include <algorithm>

#include "reelq/common/redis.h"

namespace reelq::redis {

awaitable<Result<void>> WaitForReplicas(Connection& connection, int replicas,
                                        std::chrono::milliseconds timeout,
                                        std::optional<uint64_t> written_in) {
  if (replicas <= 0) co_return Result<void>{};
  auto reconnected = [&]() -> Result<void> {
    return MakeError(ErrorCategory::kRetryable,
                     "the connection to redis was made again after the write (a dropped link or "
                     "a failover): whether it reached " +
                         std::to_string(replicas) +
                         " replicas (redis.wait_replicas) cannot be told; send it again");
  };
  if (written_in && connection.Session() != *written_in) co_return reconnected();
  std::vector<std::string> wait = {std::string("WAIT"), std::to_string(replicas),
                                   std::to_string(std::max<int64_t>(1, timeout.count()))};
  // The server answers by itself when `timeout` passes; the client's deadline only has to
  // cover the round trip on top of that.
  auto reply = co_await connection.Command(std::move(wait), timeout + std::chrono::seconds(2));
  if (!reply) co_return std::unexpected(std::move(reply.error()));
  if (reply->IsError()) {
    co_return MakeError(ErrorCategory::kRetryable, "redis WAIT failed: " + reply->str);
  }
  if (reply->type != Reply::Type::kInteger) {
    co_return MakeError(ErrorCategory::kInternal,
                        "redis WAIT answered something other than a count");
  }
  // A session's WAIT counts only that session's writes: one that began after them answers at
  // once, whatever the replicas hold.
  if (written_in && connection.Session() != *written_in) co_return reconnected();
  if (reply->integer < replicas) {
    co_return MakeError(ErrorCategory::kRetryable,
                        "the write reached the redis master but only " +
                            std::to_string(reply->integer) + " of " + std::to_string(replicas) +
                            " replicas (redis.wait_replicas) acknowledged it within " +
                            std::to_string(timeout.count()) + "ms (redis.wait_timeout_ms)");
  }
  co_return Result<void>{};
}

}  // namespace reelq::redis
