#pragma once

#include <string>

#include <spdlog/spdlog.h>

namespace reelq {

// Sets up the default spdlog logger: JSON lines on stderr when `json` is true (production),
// human-readable otherwise. `level` is one of trace, debug, info, warn, error.
void InitLogging(const std::string& component, const std::string& level, bool json);

}  // namespace reelq
