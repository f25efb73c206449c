#include "reelq/common/logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>

namespace reelq {

void InitLogging(const std::string& component, const std::string& level, bool json) {
  auto logger = spdlog::stderr_color_mt(component);
  if (json) {
    // One JSON object per line; messages are written with key=value pairs already escaped by
    // callers that log user text through spdlog's {} formatting.
    logger->set_pattern(
        R"({"ts":"%Y-%m-%dT%H:%M:%S.%e%z","level":"%l","component":"%n","msg":"%v"})");
  } else {
    logger->set_pattern("%H:%M:%S.%e %^%-5l%$ [%n] %v");
  }
  logger->set_level(spdlog::level::from_str(level));
  spdlog::set_default_logger(logger);
}

}  // namespace reelq
