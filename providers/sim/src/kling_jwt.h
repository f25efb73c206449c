#pragma once

#include <cstdint>
#include <string>

namespace reelq::sim {

// Verdict on a Kling bearer token, as the Kling error table numbers it.
struct KlingJwtCheck {
  int code = 0;        // 0 ok; 1000 signature/issuer, 1002 malformed, 1003 nbf, 1004 expired
  std::string issuer;  // the access key, when the token parsed
  std::string message;
};

// Parses header.payload.signature (base64url) and checks alg, nbf and exp. The signature is
// checked with `secret_for(issuer)`; an empty secret means an unknown access key.
template <class SecretFor>
KlingJwtCheck CheckKlingJwt(const std::string& token, int64_t now_s, SecretFor secret_for);

// Building blocks, exposed for the template above.
bool Base64UrlDecode(const std::string& in, std::string& out);
std::string Base64UrlEncode(const std::string& in);
std::string HmacSha256(const std::string& key, const std::string& data);
KlingJwtCheck ParseKlingJwt(const std::string& token, int64_t now_s, std::string& signing_input,
                            std::string& signature);

template <class SecretFor>
KlingJwtCheck CheckKlingJwt(const std::string& token, int64_t now_s, SecretFor secret_for) {
  std::string signing_input, signature;
  KlingJwtCheck check = ParseKlingJwt(token, now_s, signing_input, signature);
  if (check.code == 1002) return check;
  const std::string secret = secret_for(check.issuer);
  if (secret.empty()) {
    return {1000, check.issuer, "Authorization failed: unknown access key in iss"};
  }
  const std::string expected = HmacSha256(secret, signing_input);
  // Constant-time compare: the simulator should not teach bad habits.
  unsigned char diff = expected.size() == signature.size() ? 0 : 1;
  for (size_t i = 0; i < expected.size() && i < signature.size(); ++i) {
    diff |= static_cast<unsigned char>(expected[i] ^ signature[i]);
  }
  if (diff != 0) return {1000, check.issuer, "Authorization failed: JWT signature mismatch"};
  return check;  // may still carry 1003/1004 from the time checks
}

}  // namespace reelq::sim
