#include "list_cursor.h"

#include <array>
#include <cmath>
#include <cstdlib>

namespace reelq::queue {
namespace {

constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

Error BadToken(const std::string& why) {
  return Error{ErrorCategory::kInvalidRequest, "page_token: not a token this server gave out (" +
                                                   why + "); start again without page_token"};
}

}  // namespace

std::string EncodeListCursor(const ListCursor& cursor) {
  const std::string raw = cursor.score + " " + cursor.id;
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

Result<ListCursor> DecodeListCursor(std::string_view token) {
  if (token.size() > 1024) return std::unexpected(BadToken("too long"));
  std::array<int, 256> value;
  value.fill(-1);
  for (size_t i = 0; i < kAlphabet.size(); ++i) value[static_cast<unsigned char>(kAlphabet[i])] = i;
  std::string raw;
  uint32_t bits = 0;
  int held = 0;
  for (unsigned char c : token) {
    if (value[c] < 0) return std::unexpected(BadToken("not base64url"));
    bits = (bits << 6) | static_cast<uint32_t>(value[c]);
    held += 6;
    if (held >= 8) {
      held -= 8;
      raw.push_back(static_cast<char>((bits >> held) & 0xff));
    }
  }
  const auto space = raw.find(' ');
  if (space == std::string::npos || space == 0 || space + 1 >= raw.size()) {
    return std::unexpected(BadToken("no position inside"));
  }
  ListCursor cursor{raw.substr(0, space), raw.substr(space + 1)};
  char* end = nullptr;
  const double score = std::strtod(cursor.score.c_str(), &end);
  if (end != cursor.score.c_str() + cursor.score.size() || !std::isfinite(score)) {
    return std::unexpected(BadToken("no position inside"));
  }
  for (unsigned char c : cursor.id) {
    if (c < 0x21 || c > 0x7e) return std::unexpected(BadToken("no position inside"));
  }
  return cursor;
}

}  // namespace reelq::queue
