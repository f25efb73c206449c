#pragma once

#include <string>

namespace reelq {

// Time-ordered, URL- and key-safe unique id: 26 characters of Crockford base32 (ULID layout).
std::string NewId();

}  // namespace reelq
