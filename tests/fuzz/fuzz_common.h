#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace reelq::fuzz {

constexpr int64_t kNowMs = 1'700'000'000'000;

// The first byte picks the HTTP status the body arrived with, so the error paths (4xx/5xx
// tables) are fuzzed as well as the 2xx parsers; the rest is the body.
struct Input {
  int status = 200;
  std::string_view body;
  std::optional<std::string> header;  // a Retry-After / poll hint made of the first bytes
};

inline Input Split(const uint8_t* data, size_t size) {
  Input in;
  if (size == 0) return in;
  static constexpr int kStatuses[] = {200, 200, 200, 201, 400, 401, 403, 404, 409, 429, 500, 503};
  in.status = kStatuses[data[0] % (sizeof kStatuses / sizeof kStatuses[0])];
  in.body = std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] & 0x80) in.header = std::string(in.body.substr(0, 32));
  return in;
}

}  // namespace reelq::fuzz
