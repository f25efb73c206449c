#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

#include "reelq/common/clock.h"

namespace reelq::providers::kling {

// base64url without padding (RFC 7515 §2).
std::string Base64Url(std::string_view bytes);

// HS256 JWT as Kling wants it: header {"alg":"HS256","typ":"JWT"}, payload
// {"iss": access_key, "exp": now+1800, "nbf": now-5}, signed with the secret key.
std::string MakeJwt(std::string_view access_key, std::string_view secret_key, int64_t now_seconds);

// Keeps one token and renews it 5 minutes before it expires, so every request carries a token
// that is valid for a while yet (a poll may wait in a queue before it is sent).
class JwtSigner {
 public:
  JwtSigner(std::string access_key, std::string secret_key, ClockPtr clock)
      : access_key_(std::move(access_key)),
        secret_key_(std::move(secret_key)),
        clock_(std::move(clock)) {}

  std::string Token();

  static constexpr int64_t kLifetimeSeconds = 1800;
  static constexpr int64_t kRenewBeforeSeconds = 300;

 private:
  std::string access_key_;
  std::string secret_key_;
  ClockPtr clock_;
  std::mutex mutex_;
  std::string token_;
  int64_t expires_at_seconds_ = 0;
};

}  // namespace reelq::providers::kling
