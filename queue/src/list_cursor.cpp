#include "list_cursor.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <array>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <optional>

namespace reelq::queue {
namespace {

constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
constexpr size_t kNonceBytes = 12, kTagBytes = 16;
constexpr const char* kDoesNotOpen =
    "it does not open: made for another listing, altered, or from before this release";

Error BadToken(const std::string& why) {
  return Error{ErrorCategory::kInvalidRequest, "page_token: not a token this server gave out (" +
                                                   why + "); start again without page_token"};
}

std::string Base64Url(std::string_view raw) {
  std::string out;
  out.reserve((raw.size() * 4 + 2) / 3);
  uint32_t bits = 0;
  int held = 0;
  for (unsigned char c : raw) {
    bits = (bits << 8) | c;
    held += 8;
    while (held >= 6) {
      held -= 6;
      out.push_back(kAlphabet[(bits >> held) & 63]);
    }
  }
  if (held > 0) out.push_back(kAlphabet[(bits << (6 - held)) & 63]);
  return out;
}

std::optional<std::string> FromBase64Url(std::string_view token) {
  std::array<int, 256> value;
  value.fill(-1);
  for (size_t i = 0; i < kAlphabet.size(); ++i) value[static_cast<unsigned char>(kAlphabet[i])] = i;
  std::string raw;
  uint32_t bits = 0;
  int held = 0;
  for (unsigned char c : token) {
    if (value[c] < 0) return std::nullopt;
    bits = (bits << 6) | static_cast<uint32_t>(value[c]);
    held += 6;
    if (held >= 8) {
      held -= 8;
      raw.push_back(static_cast<char>((bits >> held) & 0xff));
    }
  }
  return raw;
}

using CipherContext = std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;

const unsigned char* Bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

}  // namespace

std::string SealListCursor(const ListCursor& cursor, std::string_view key,
                           std::string_view listing) {
  const std::string plain = cursor.score + " " + cursor.id;
  std::string sealed(kNonceBytes + plain.size() + kTagBytes, '\0');
  auto* out = reinterpret_cast<unsigned char*>(sealed.data());
  CipherContext ctx(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
  int len = 0;
  // Any failure here is OpenSSL's own (out of memory, no entropy): a token that will not open
  // sends the client back to the first page, which loses nothing.
  if (key.size() != kListKeyBytes || !ctx || RAND_bytes(out, kNonceBytes) != 1 ||
      EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, Bytes(key), out) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nullptr, &len, Bytes(listing),
                        static_cast<int>(listing.size())) != 1 ||
      EVP_EncryptUpdate(ctx.get(), out + kNonceBytes, &len, Bytes(plain),
                        static_cast<int>(plain.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), out + kNonceBytes + len, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagBytes,
                          out + kNonceBytes + plain.size()) != 1) {
    return "";
  }
  return Base64Url(sealed);
}

Result<ListCursor> OpenListCursor(std::string_view token, std::string_view key,
                                  std::string_view listing) {
  if (token.size() > 1024) return std::unexpected(BadToken("too long"));
  auto sealed = FromBase64Url(token);
  if (!sealed) return std::unexpected(BadToken("not base64url"));
  if (sealed->size() <= kNonceBytes + kTagBytes || key.size() != kListKeyBytes) {
    return std::unexpected(BadToken(kDoesNotOpen));
  }
  const size_t body = sealed->size() - kNonceBytes - kTagBytes;
  auto* in = reinterpret_cast<unsigned char*>(sealed->data());
  std::string plain(body, '\0');
  auto* out = reinterpret_cast<unsigned char*>(plain.data());
  CipherContext ctx(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
  int len = 0;
  if (!ctx || EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, Bytes(key), in) != 1 ||
      EVP_DecryptUpdate(ctx.get(), nullptr, &len, Bytes(listing),
                        static_cast<int>(listing.size())) != 1 ||
      EVP_DecryptUpdate(ctx.get(), out, &len, in + kNonceBytes, static_cast<int>(body)) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagBytes, in + kNonceBytes + body) !=
          1 ||
      EVP_DecryptFinal_ex(ctx.get(), out + len, &len) != 1) {
    return std::unexpected(BadToken(kDoesNotOpen));
  }
  const auto space = plain.find(' ');
  if (space == std::string::npos || space == 0 || space + 1 >= plain.size()) {
    return std::unexpected(BadToken("no position inside"));
  }
  ListCursor cursor{plain.substr(0, space), plain.substr(space + 1)};
  char* end = nullptr;
  const double score = std::strtod(cursor.score.c_str(), &end);
  if (end != cursor.score.c_str() + cursor.score.size() || !std::isfinite(score)) {
    return std::unexpected(BadToken("no position inside"));
  }
  return cursor;
}

}  // namespace reelq::queue
