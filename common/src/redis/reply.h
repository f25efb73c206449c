#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <hiredis/hiredis.h>

#include "reelq/common/error.h"
#include "reelq/common/redis.h"

namespace reelq::redis::detail {

// Deep copy of a hiredis reply (hiredis frees its own right after the callback returns).
Reply CopyReply(const redisReply& reply);

// The command name for messages: the first argument, upper-cased, without binary noise.
std::string CommandName(const std::vector<std::string>& args);

// Why a command or a connect did not produce a reply. Every failure of the Redis connection is
// mapped to the project's error vocabulary in MapFailure below, and nowhere else.
enum class Failure {
  kTimedOut,        // the command's deadline passed (connected or not)
  kConnectionLost,  // the connection dropped with the command in flight
  kClosed,          // Close() or the connection object was destroyed
  kSendFailed,      // hiredis refused to queue the command
  kConnectFailed,   // TCP connect / handshake failed
  kServerNotReady,  // the server refused to run it for now (LOADING, BUSY, NOREPLICAS, ...)
  kAuthFailed,      // AUTH was refused
  kUnsupported,     // a command this connection cannot carry (SUBSCRIBE, MONITOR...)
  kInternal,        // an exception inside our own callback
};

Error MapFailure(Failure failure, std::string message);

}  // namespace reelq::redis::detail
