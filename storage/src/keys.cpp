#include "reelq/storage/keys.h"

namespace reelq::storage {

namespace {

std::string Quoted(std::string_view key) {
  std::string out = "\"";
  for (char c : key) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 0xf]);
    } else {
      out.push_back(c);
    }
  }
  return out + "\"";
}

std::unexpected<Error> KeyError(std::string_view key, std::string_view why) {
  return MakeError(ErrorCategory::kInvalidRequest,
                   "invalid object key " + Quoted(key.substr(0, 200)) + ": " + std::string(why));
}

}  // namespace

Result<void> ValidateKey(std::string_view key) {
  if (key.empty()) return KeyError(key, "empty");
  if (key.size() > kMaxKeyBytes) return KeyError(key, "longer than 1024 bytes");
  if (key.front() == '/') return KeyError(key, "absolute (starts with '/')");
  for (char c : key) {
    auto u = static_cast<unsigned char>(c);
    if (u == 0) return KeyError(key, "contains a NUL byte");
    if (u < 0x20 || u == 0x7f) return KeyError(key, "contains a control character");
  }
  size_t pos = 0;
  while (pos <= key.size()) {
    size_t slash = key.find('/', pos);
    if (slash == std::string_view::npos) slash = key.size();
    std::string_view seg = key.substr(pos, slash - pos);
    if (seg.empty()) return KeyError(key, "empty path segment ('//' or a trailing '/')");
    if (seg == "." || seg == "..") {
      return KeyError(key, "segment \"" + std::string(seg) + "\" is not allowed");
    }
    if (seg.front() == '.') {
      return KeyError(key, "segment \"" + std::string(seg) +
                               "\" starts with '.' (reserved for the store's own files)");
    }
    if (seg.size() > kMaxSegmentBytes) return KeyError(key, "a segment is longer than 255 bytes");
    pos = slash + 1;
  }
  return {};
}

Result<void> ValidateMetadata(const std::map<std::string, std::string>& metadata) {
  size_t total = 0;
  for (const auto& [name, value] : metadata) {
    if (name.empty()) return MakeError(ErrorCategory::kInvalidRequest, "metadata: empty name");
    for (char c : name) {
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_')) {
        return MakeError(ErrorCategory::kInvalidRequest,
                         "metadata name \"" + name + "\": only a-z, 0-9, '-' and '_' allowed");
      }
    }
    for (char c : value) {
      auto u = static_cast<unsigned char>(c);
      if (u < 0x20 || u >= 0x7f) {
        return MakeError(ErrorCategory::kInvalidRequest,
                         "metadata \"" + name + "\": value must be printable ASCII");
      }
    }
    total += name.size() + value.size();
  }
  if (total > 2048) {
    return MakeError(ErrorCategory::kInvalidRequest, "metadata: more than 2 KiB in all");
  }
  return {};
}

}  // namespace reelq::storage
