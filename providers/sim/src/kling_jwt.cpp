#include "kling_jwt.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <nlohmann/json.hpp>

namespace reelq::sim {

bool Base64UrlDecode(const std::string& in, std::string& out) {
  out.clear();
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v;
    if (c >= 'A' && c <= 'Z') {
      v = c - 'A';
    } else if (c >= 'a' && c <= 'z') {
      v = c - 'a' + 26;
    } else if (c >= '0' && c <= '9') {
      v = c - '0' + 52;
    } else if (c == '-') {
      v = 62;
    } else if (c == '_') {
      v = 63;
    } else if (c == '=') {
      break;
    } else {
      return false;
    }
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return true;
}

std::string Base64UrlEncode(const std::string& in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : in) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kAlphabet[(acc >> bits) & 63]);
    }
  }
  if (bits > 0) out.push_back(kAlphabet[(acc << (6 - bits)) & 63]);
  return out;
}

std::string HmacSha256(const std::string& key, const std::string& data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &len);
  return std::string(reinterpret_cast<char*>(mac), len);
}

KlingJwtCheck ParseKlingJwt(const std::string& token, int64_t now_s, std::string& signing_input,
                            std::string& signature) {
  auto bad = [](std::string why) {
    return KlingJwtCheck{1002, "", "Authorization is invalid: " + why};
  };
  const auto d1 = token.find('.');
  const auto d2 = d1 == std::string::npos ? d1 : token.find('.', d1 + 1);
  if (d2 == std::string::npos || token.find('.', d2 + 1) != std::string::npos) {
    return bad("not a JWT (header.payload.signature)");
  }
  std::string header_raw, payload_raw, sig_raw;
  if (!Base64UrlDecode(token.substr(0, d1), header_raw) ||
      !Base64UrlDecode(token.substr(d1 + 1, d2 - d1 - 1), payload_raw) ||
      !Base64UrlDecode(token.substr(d2 + 1), sig_raw)) {
    return bad("JWT parts are not base64url");
  }
  auto header = nlohmann::json::parse(header_raw, nullptr, false);
  auto payload = nlohmann::json::parse(payload_raw, nullptr, false);
  if (!header.is_object() || !payload.is_object()) return bad("JWT header/payload is not JSON");
  if (!header.contains("alg") || header["alg"] != "HS256") return bad("JWT alg must be HS256");
  if (!payload.contains("iss") || !payload["iss"].is_string()) return bad("JWT has no iss");
  if (!payload.contains("exp") || !payload["exp"].is_number()) return bad("JWT has no exp");
  signing_input = token.substr(0, d2);
  signature = sig_raw;
  KlingJwtCheck check{0, payload["iss"].get<std::string>(), ""};
  if (payload.contains("nbf")) {
    if (!payload["nbf"].is_number()) return bad("JWT nbf is not a number");
    if (payload["nbf"].get<double>() > static_cast<double>(now_s)) {
      check.code = 1003;
      check.message = "Authorization is not yet valid (nbf is in the future)";
    }
  }
  if (check.code == 0 && payload["exp"].get<double>() <= static_cast<double>(now_s)) {
    check.code = 1004;
    check.message = "Authorization has expired (exp is in the past)";
  }
  return check;
}

}  // namespace reelq::sim
