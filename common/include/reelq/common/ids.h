#pragma once

#include <string>

#include "reelq/common/clock.h"

namespace reelq {

// Time-ordered, URL- and key-safe unique id: 26 characters of Crockford base32 (ULID layout):
// the time from `clock`, then 80 bits from the process's seeded source (random.h).
std::string NewId(const Clock& clock);

}  // namespace reelq
