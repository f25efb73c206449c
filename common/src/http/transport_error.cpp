#include "transport_error.h"

#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>

namespace reelq::http::internal {
namespace {

namespace beast = boost::beast;
namespace aerr = boost::asio::error;

std::string StepPhrase(Step step, const std::string& authority) {
  switch (step) {
    case Step::kResolve:
      return "resolve " + authority;
    case Step::kConnect:
      return "connect to " + authority;
    case Step::kTlsHandshake:
      return "TLS handshake with " + authority;
    case Step::kWrite:
      return "write to " + authority;
    case Step::kReadHead:
      return "read from " + authority;
    case Step::kReadBody:
      return "read body from " + authority;
    case Step::kSink:
      return "store body from " + authority;
  }
  return authority;
}

}  // namespace

std::string FormatDuration(std::chrono::milliseconds d) {
  auto ms = d.count();
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  if (ms > 1000) {
    std::string s = std::to_string(ms / 1000) + "." + std::to_string(ms % 1000 / 100);
    return s + "s";
  }
  return std::to_string(ms) + "ms";
}

Error MapTransportError(const TransportFailure& f) {
  const auto& ec = f.ec;
  std::string what = StepPhrase(f.step, f.authority);
  std::string message;
  if (ec == beast::error::timeout || ec == aerr::timed_out) {
    message = what + " timed out after " + FormatDuration(f.timeout);
  } else if (ec == beast::http::error::body_limit) {
    message = "response body from " + f.authority + " exceeds max_body_bytes (" +
              std::to_string(f.max_body_bytes) + ")";
  } else if ((f.step == Step::kReadBody) &&
             (ec == beast::http::error::partial_message ||
              ec == beast::http::error::end_of_stream || ec == aerr::eof ||
              ec == aerr::connection_reset || ec == boost::asio::ssl::error::stream_truncated)) {
    message = "body from " + f.authority + " truncated at " + std::to_string(f.body_bytes);
    message += f.content_length ? " of " + std::to_string(*f.content_length) + " bytes"
                                : " bytes (connection closed)";
  } else if (f.step == Step::kConnect && ec == aerr::connection_refused) {
    message = what + " refused";
  } else if (ec == aerr::connection_reset) {
    message = what + ": connection reset by peer";
  } else if (ec == beast::http::error::end_of_stream || ec == aerr::eof) {
    message = what + ": connection closed by peer";
  } else if (f.step == Step::kResolve &&
             (ec == aerr::host_not_found || ec == aerr::host_not_found_try_again)) {
    message = what + ": host not found";
  } else if (ec == aerr::operation_aborted) {
    message = what + ": cancelled";
  } else {
    message = what + " failed: " + ec.message();
  }
  Error error{.category = ErrorCategory::kRetryable, .message = std::move(message)};
  // Before the write nothing reached the peer; from the write on, it may have acted on the
  // request (a create may have made a paid task).
  error.maybe_delivered = f.step == Step::kWrite || f.step == Step::kReadHead ||
                          f.step == Step::kReadBody || f.step == Step::kSink;
  return error;
}

}  // namespace reelq::http::internal
