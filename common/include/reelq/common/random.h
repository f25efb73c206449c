#pragma once

#include <chrono>
#include <cstdint>
#include <random>

namespace reelq {

// The one source of randomness in reelq (jitter, ids, temporary names): every generator is made
// by NewRng, seeded from the process seed and a sequence number, so generators differ from each
// other and a run with REELQ_RANDOM_SEED=<n> repeats its random choices. Without that variable
// the process seed is read once from the OS's entropy (std::random_device), here and nowhere
// else. Tests that need determinism inside one process pass their own seeded generator instead.
uint64_t ProcessSeed();
std::mt19937_64 NewRng();

// A retry delay drawn from [cap / 2, cap] ("equal jitter"): many clients that failed together
// (every worker when Redis restarts, every part of an upload) come back spread over half the
// delay instead of at one instant, and none comes back at once.
std::chrono::milliseconds EqualJitter(std::chrono::milliseconds cap, std::mt19937_64& rng);

}  // namespace reelq
