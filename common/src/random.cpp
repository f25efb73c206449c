#include "reelq/common/random.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <string>

namespace reelq {

uint64_t ProcessSeed() {
  static const uint64_t seed = [] {
    if (const char* text = std::getenv("REELQ_RANDOM_SEED"); text != nullptr && *text != '\0') {
      return static_cast<uint64_t>(std::strtoull(text, nullptr, 10));
    }
    std::random_device entropy;
    return (static_cast<uint64_t>(entropy()) << 32) ^ entropy();
  }();
  return seed;
}

std::mt19937_64 NewRng() {
  static std::atomic<uint64_t> sequence{0};
  const uint64_t n = sequence++;
  const uint64_t seed = ProcessSeed();
  std::seed_seq seq{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32),
                    static_cast<uint32_t>(n), static_cast<uint32_t>(n >> 32)};
  return std::mt19937_64(seq);
}

std::chrono::milliseconds EqualJitter(std::chrono::milliseconds cap, std::mt19937_64& rng) {
  const long long whole = std::max<long long>(cap.count(), 0);
  std::uniform_int_distribution<long long> extra(0, whole - whole / 2);
  return std::chrono::milliseconds(whole / 2 + extra(rng));
}

}  // namespace reelq
