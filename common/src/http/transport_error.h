#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <boost/system/error_code.hpp>

#include "reelq/common/error.h"

namespace reelq::http::internal {

// The steps of one HTTP exchange, named in error messages so an operator can tell a refused
// connection from a server that stopped sending half-way.
enum class Step { kResolve, kConnect, kTlsHandshake, kWrite, kReadHead, kReadBody, kSink };

struct TransportFailure {
  Step step = Step::kConnect;
  std::string authority;  // "host:port"
  boost::system::error_code ec;
  std::chrono::milliseconds timeout{0};    // the deadline that applied, for "timed out after"
  uint64_t body_bytes = 0;                 // bytes of body received before the failure
  std::optional<uint64_t> content_length;  // from the response head, when known
  uint64_t max_body_bytes = 0;
};

// The one place where transport errors (Asio, Beast, OpenSSL) become reelq errors. Everything
// here is kRetryable: the request may succeed on another attempt. (A body over the limit is
// also retryable from the transport's point of view; the caller decides whether it cares.)
// A failure from the write on sets Error::maybe_delivered: the peer may have acted on it.
Error MapTransportError(const TransportFailure& failure);

// "30s", "1.5s", "200ms".
std::string FormatDuration(std::chrono::milliseconds d);

}  // namespace reelq::http::internal
