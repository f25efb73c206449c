#include "reelq/common/ids.h"

#include <chrono>
#include <cstdint>
#include <random>

namespace reelq {

std::string NewId() {
  static constexpr char kAlphabet[] = "0123456789abcdefghjkmnpqrstvwxyz";
  thread_local std::mt19937_64 rng{std::random_device{}()};
  const uint64_t ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  std::string id(26, '0');
  // 48 bits of time in the first 10 characters keep ids sortable by creation time.
  for (int i = 9; i >= 0; --i) id[9 - i] = kAlphabet[(ms >> (i * 5)) & 31];
  uint64_t a = rng(), b = rng();
  for (int i = 10; i < 26; ++i) {
    uint64_t& src = i < 22 ? a : b;
    id[i] = kAlphabet[src & 31];
    src >>= 5;
  }
  return id;
}

}  // namespace reelq
