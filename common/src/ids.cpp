#include "reelq/common/ids.h"

#include <unistd.h>

#include <cstdint>

#include "reelq/common/random.h"

namespace reelq {

std::string NewId(const Clock& clock) {
  static constexpr char kAlphabet[] = "0123456789abcdefghjkmnpqrstvwxyz";
  // The pid goes into the stream so that two processes given the same REELQ_RANDOM_SEED (a
  // test's scheduler pair) still make different ids in the same millisecond.
  thread_local std::mt19937_64 rng = [] {
    auto seeded = NewRng();
    const uint64_t drawn = seeded();
    std::seed_seq mix{static_cast<uint32_t>(drawn), static_cast<uint32_t>(drawn >> 32),
                      static_cast<uint32_t>(getpid())};
    return std::mt19937_64(mix);
  }();
  const uint64_t ms = static_cast<uint64_t>(clock.NowMs());
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
