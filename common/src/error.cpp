#include "reelq/common/error.h"

namespace reelq {

std::string_view ToString(ErrorCategory category) {
  switch (category) {
    case ErrorCategory::kRetryable:
      return "retryable";
    case ErrorCategory::kRateLimited:
      return "rate_limited";
    case ErrorCategory::kPolicyRejected:
      return "policy_rejected";
    case ErrorCategory::kInvalidRequest:
      return "invalid_request";
    case ErrorCategory::kAuthFailed:
      return "auth_failed";
    case ErrorCategory::kModelGone:
      return "model_gone";
    case ErrorCategory::kNotFound:
      return "not_found";
    case ErrorCategory::kDeadlineExceeded:
      return "deadline_exceeded";
    case ErrorCategory::kCancelled:
      return "cancelled";
    case ErrorCategory::kLeaseLost:
      return "lease_lost";
    case ErrorCategory::kFailedPrecondition:
      return "failed_precondition";
    case ErrorCategory::kCreateOutcomeUnknown:
      return "create_outcome_unknown";
    case ErrorCategory::kInternal:
      return "internal";
  }
  return "unknown";
}

std::string Error::Describe() const {
  std::string out(ToString(category));
  out += ": ";
  out += message;
  if (!provider_code.empty()) out += " (code " + provider_code + ")";
  return out;
}

}  // namespace reelq
