#include "reelq/common/utf8.h"

#include <algorithm>
#include <cstdint>

namespace reelq {

size_t FindInvalidUtf8(std::string_view s) {
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {  // 0xC0, 0xC1 could only start overlong forms
      len = 2;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {  // 0xF5.. would be above U+10FFFF
      len = 4;
      cp = c & 0x07;
    } else {
      return i;  // a stray continuation byte, or a lead byte that is never valid
    }
    if (n - i < len) return i;
    for (size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if (len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) return i;
    if (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) return i;
    i += len;
  }
  return std::string_view::npos;
}

size_t CountCodePoints(std::string_view utf8) {
  return static_cast<size_t>(std::count_if(utf8.begin(), utf8.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  }));
}

std::string QuoteForMessage(std::string_view value, size_t max) {
  std::string out = "\"";
  size_t end = value.size();
  bool cut = false;
  if (end > max) {
    end = max;
    while (end > 0 && (static_cast<unsigned char>(value[end]) & 0xC0) == 0x80) --end;
    cut = true;
  }
  static constexpr char kHex[] = "0123456789abcdef";
  auto escape = [&out](unsigned char c) {
    out += "\\x";
    out += kHex[c >> 4];
    out += kHex[c & 0xF];
  };
  std::string_view rest = value.substr(0, end);
  while (!rest.empty()) {
    const size_t bad = FindInvalidUtf8(rest);
    const std::string_view good = rest.substr(0, bad == std::string_view::npos ? rest.size() : bad);
    for (char ch : good) {
      auto c = static_cast<unsigned char>(ch);
      if (c < 0x20 || c == 0x7F) {
        escape(c);
      } else if (c == '"' || c == '\\') {
        out += '\\';
        out += ch;
      } else {
        out += ch;
      }
    }
    if (bad == std::string_view::npos) break;
    escape(static_cast<unsigned char>(rest[bad]));
    rest.remove_prefix(bad + 1);
  }
  out += cut ? "\"…" : "\"";
  return out;
}

std::string IdForMessage(std::string_view value) {
  const bool plain =
      !value.empty() && value.size() <= 128 && std::all_of(value.begin(), value.end(), [](char ch) {
        return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
               ch == '.' || ch == '_' || ch == '-' || ch == ':' || ch == '/';
      });
  return plain ? std::string(value) : QuoteForMessage(value);
}

std::string PlainSnippet(std::string_view text, size_t max) {
  size_t end = text.size();
  const bool cut = end > max;
  if (cut) {
    end = max;
    while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(end + 3);
  std::string_view rest = text.substr(0, end);
  while (!rest.empty()) {
    const size_t bad = FindInvalidUtf8(rest);
    const std::string_view good = rest.substr(0, bad == std::string_view::npos ? rest.size() : bad);
    for (char ch : good) {
      const auto c = static_cast<unsigned char>(ch);
      out += (c < 0x20 || c == 0x7F) ? ' ' : ch;
    }
    if (bad == std::string_view::npos) break;
    const auto c = static_cast<unsigned char>(rest[bad]);
    out += "\\x";
    out += kHex[c >> 4];
    out += kHex[c & 0xF];
    rest.remove_prefix(bad + 1);
  }
  if (cut) out += "...";
  return out;
}

}  // namespace reelq
