#include "reply.h"

#include <cctype>

namespace reelq::redis::detail {

Reply CopyReply(const redisReply& reply) {
  Reply out;
  switch (reply.type) {
    case REDIS_REPLY_NIL:
      out.type = Reply::Type::kNil;
      break;
    case REDIS_REPLY_INTEGER:
      out.type = Reply::Type::kInteger;
      out.integer = reply.integer;
      break;
    case REDIS_REPLY_STRING:
      out.type = Reply::Type::kString;
      out.str.assign(reply.str, reply.len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = Reply::Type::kStatus;
      out.str.assign(reply.str, reply.len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = Reply::Type::kError;
      out.str.assign(reply.str, reply.len);
      break;
    case REDIS_REPLY_ARRAY:
      out.type = Reply::Type::kArray;
      out.elements.reserve(reply.elements);
      for (size_t i = 0; i < reply.elements; ++i) {
        // A NULL element does not occur in RESP2; treat it as nil rather than crash.
        out.elements.push_back(reply.element[i] ? CopyReply(*reply.element[i]) : Reply{});
      }
      break;
    default:
      // hiredis 0.14 only produces the six RESP2 types; anything else is reported, not dropped.
      out.type = Reply::Type::kError;
      out.str = "ERR reelq: unknown hiredis reply type " + std::to_string(reply.type);
      break;
  }
  return out;
}

std::string CommandName(const std::vector<std::string>& args) {
  if (args.empty()) return "<empty>";
  std::string name;
  for (char c : args.front().substr(0, 32)) {
    auto u = static_cast<unsigned char>(c);
    name.push_back(std::isprint(u) ? static_cast<char>(std::toupper(u)) : '?');
  }
  return name;
}

Error MapFailure(Failure failure, std::string message) {
  Error error;
  error.message = std::move(message);
  switch (failure) {
    case Failure::kTimedOut:
    case Failure::kConnectionLost:
    case Failure::kSendFailed:
    case Failure::kConnectFailed:
    case Failure::kServerNotReady:
      error.category = ErrorCategory::kRetryable;
      break;
    case Failure::kClosed:
      error.category = ErrorCategory::kCancelled;
      break;
    case Failure::kAuthFailed:
      error.category = ErrorCategory::kAuthFailed;
      break;
    case Failure::kUnsupported:
      error.category = ErrorCategory::kInvalidRequest;
      break;
    case Failure::kInternal:
      error.category = ErrorCategory::kInternal;
      break;
  }
  return error;
}

}  // namespace reelq::redis::detail
