#pragma once

// Parsers for flag values. Each returns the value or a message that says what was wrong with the
// text (the caller prefixes the flag name), so every bad flag gets a clear error.

#include <chrono>
#include <cstdint>
#include <expected>
#include <string>
#include <string_view>
#include <utility>

#include <google/protobuf/timestamp.pb.h>

#include "reelq/v1/jobs.pb.h"

namespace reelq::cli {

template <typename T>
using Parsed = std::expected<T, std::string>;

// "90", "90s", "1500ms", "30m", "2h", "1d", "1h30m". A bare number is seconds.
Parsed<std::chrono::milliseconds> ParseDuration(std::string_view text);

// An absolute RFC 3339 time ("2026-11-25T03:00:00Z", "...+01:00") or a time relative to `now`
// ("+30m", "+1h30m").
Parsed<google::protobuf::Timestamp> ParseDeadline(std::string_view text,
                                                  std::chrono::system_clock::time_point now);

// Clip length in whole seconds: "8" or "8s"; 1..3600.
Parsed<uint32_t> ParseClipSeconds(std::string_view text);

// "16:9": two positive integers.
Parsed<std::string> ParseAspectRatio(std::string_view text);

// "720p", "1080p", "4k" (case-insensitive; returned lowercase).
Parsed<std::string> ParseResolution(std::string_view text);

// on|off, true|false, yes|no, 1|0.
Parsed<bool> ParseOnOff(std::string_view text);

// "key=value", key non-empty.
Parsed<std::pair<std::string, std::string>> ParseLabel(std::string_view text);

// "photorealism", "fast-social", "FAST_SOCIAL", "USE_CASE_FAST_SOCIAL".
Parsed<v1::UseCase> ParseUseCase(std::string_view text);

// "succeeded", "SUCCEEDED", "JOB_STATE_SUCCEEDED".
Parsed<v1::JobState> ParseJobState(std::string_view text);

// A signed 32-bit integer (for --priority).
Parsed<int32_t> ParseInt32(std::string_view text);

// The lowercase names that ParseUseCase accepts, for help texts.
std::string UseCaseNames();

}  // namespace reelq::cli
