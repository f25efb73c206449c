#include "parse.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <limits>

#include <google/protobuf/util/time_util.h>

namespace reelq::cli {
namespace {

std::string Lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string Upper(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return out;
}

std::string Quote(std::string_view text) { return "'" + std::string(text) + "'"; }

// Parses an unsigned decimal with no sign and no spaces.
template <typename T>
bool ParseUnsigned(std::string_view text, T* value) {
  if (text.empty()) return false;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), *value);
  return ec == std::errc() && ptr == text.data() + text.size();
}

}  // namespace

Parsed<std::chrono::milliseconds> ParseDuration(std::string_view text) {
  const std::string bad = "expected a duration like 90s, 30m, 2h or 1h30m, got " + Quote(text);
  if (text.empty()) return std::unexpected("expected a duration like 90s, 30m or 2h, got nothing");
  // A bare number means seconds.
  uint64_t bare = 0;
  constexpr uint64_t kMaxMs = 100ull * 365 * 24 * 3600 * 1000;  // a century is surely a mistake
  if (ParseUnsigned(text, &bare)) {
    if (bare > kMaxMs / 1000) return std::unexpected("duration " + Quote(text) + " is too long");
    return std::chrono::milliseconds(bare * 1000);
  }
  uint64_t total_ms = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t digits_end = pos;
    while (digits_end < text.size() && std::isdigit(static_cast<unsigned char>(text[digits_end])))
      ++digits_end;
    if (digits_end == pos) return std::unexpected(bad);
    uint64_t number = 0;
    if (!ParseUnsigned(text.substr(pos, digits_end - pos), &number) || number > kMaxMs)
      return std::unexpected("duration " + Quote(text) + " is too long");
    size_t unit_end = digits_end;
    while (unit_end < text.size() && std::isalpha(static_cast<unsigned char>(text[unit_end])))
      ++unit_end;
    const std::string unit = Lower(text.substr(digits_end, unit_end - digits_end));
    uint64_t scale = 0;
    if (unit == "ms") {
      scale = 1;
    } else if (unit == "s") {
      scale = 1000;
    } else if (unit == "m") {
      scale = 60'000;
    } else if (unit == "h") {
      scale = 3'600'000;
    } else if (unit == "d") {
      scale = 86'400'000;
    } else {
      return std::unexpected(bad + (unit.empty() ? "" : " (unknown unit " + Quote(unit) + ")"));
    }
    if (number > (kMaxMs - total_ms) / scale)
      return std::unexpected("duration " + Quote(text) + " is too long");
    total_ms += number * scale;
    pos = unit_end;
  }
  return std::chrono::milliseconds(total_ms);
}

Parsed<google::protobuf::Timestamp> ParseDeadline(std::string_view text,
                                                  std::chrono::system_clock::time_point now) {
  if (text.empty())
    return std::unexpected("expected an RFC 3339 time (2026-11-25T03:00:00Z) or +30m, got nothing");
  if (text.front() == '+') {
    auto rel = ParseDuration(text.substr(1));
    if (!rel) return std::unexpected("relative deadline " + Quote(text) + ": " + rel.error());
    if (rel->count() == 0) return std::unexpected("relative deadline " + Quote(text) + " is zero");
    const auto at = now + *rel;
    const auto ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(at.time_since_epoch()).count();
    return google::protobuf::util::TimeUtil::NanosecondsToTimestamp(ns);
  }
  google::protobuf::Timestamp ts;
  if (!google::protobuf::util::TimeUtil::FromString(std::string(text), &ts)) {
    return std::unexpected(
        "expected an RFC 3339 time like 2026-11-25T03:00:00Z or a relative "
        "time like +30m, got " +
        Quote(text));
  }
  return ts;
}

Parsed<uint32_t> ParseClipSeconds(std::string_view text) {
  std::string_view digits = text;
  if (!digits.empty() && (digits.back() == 's' || digits.back() == 'S')) digits.remove_suffix(1);
  uint32_t value = 0;
  if (!ParseUnsigned(digits, &value))
    return std::unexpected("expected a whole number of seconds like 8, got " + Quote(text));
  if (value == 0 || value > 3600)
    return std::unexpected("clip length must be between 1 and 3600 seconds, got " + Quote(text));
  return value;
}

Parsed<std::string> ParseAspectRatio(std::string_view text) {
  const auto colon = text.find(':');
  uint32_t w = 0;
  uint32_t h = 0;
  if (colon == std::string_view::npos || !ParseUnsigned(text.substr(0, colon), &w) ||
      !ParseUnsigned(text.substr(colon + 1), &h) || w == 0 || h == 0 || w > 100 || h > 100) {
    return std::unexpected("expected an aspect ratio like 16:9, 9:16 or 1:1, got " + Quote(text));
  }
  return std::string(text);
}

Parsed<std::string> ParseResolution(std::string_view text) {
  const std::string lower = Lower(text);
  if (lower == "4k") return lower;
  uint32_t lines = 0;
  if (lower.size() >= 2 && lower.back() == 'p' &&
      ParseUnsigned(std::string_view(lower).substr(0, lower.size() - 1), &lines) && lines >= 144 &&
      lines <= 4320) {
    return lower;
  }
  return std::unexpected("expected a resolution like 480p, 720p, 1080p or 4k, got " + Quote(text));
}

Parsed<bool> ParseOnOff(std::string_view text) {
  const std::string lower = Lower(text);
  if (lower == "on" || lower == "true" || lower == "yes" || lower == "1") return true;
  if (lower == "off" || lower == "false" || lower == "no" || lower == "0") return false;
  return std::unexpected("expected on or off, got " + Quote(text));
}

Parsed<std::pair<std::string, std::string>> ParseLabel(std::string_view text) {
  const auto eq = text.find('=');
  if (eq == std::string_view::npos || eq == 0)
    return std::unexpected("expected key=value, got " + Quote(text));
  return std::pair<std::string, std::string>(text.substr(0, eq), text.substr(eq + 1));
}

Parsed<v1::UseCase> ParseUseCase(std::string_view text) {
  std::string name = Upper(text);
  std::replace(name.begin(), name.end(), '-', '_');
  if (!name.starts_with("USE_CASE_")) name = "USE_CASE_" + name;
  v1::UseCase value = v1::USE_CASE_UNSPECIFIED;
  if (name == "USE_CASE_UNSPECIFIED" || !v1::UseCase_Parse(name, &value))
    return std::unexpected("unknown use case " + Quote(text) + " (one of: " + UseCaseNames() + ")");
  return value;
}

std::string UseCaseNames() {
  std::string names;
  const auto* descriptor = v1::UseCase_descriptor();
  for (int i = 0; i < descriptor->value_count(); ++i) {
    const auto* value = descriptor->value(i);
    if (value->number() == 0) continue;
    if (!names.empty()) names += ", ";
    names += Lower(std::string_view(value->name()).substr(sizeof("USE_CASE_") - 1));
  }
  return names;
}

Parsed<v1::JobState> ParseJobState(std::string_view text) {
  std::string name = Upper(text);
  if (!name.starts_with("JOB_STATE_")) name = "JOB_STATE_" + name;
  v1::JobState value = v1::JOB_STATE_UNSPECIFIED;
  if (name == "JOB_STATE_UNSPECIFIED" || !v1::JobState_Parse(name, &value)) {
    return std::unexpected("unknown job state " + Quote(text) +
                           " (one of: pending, dispatched, running, succeeded, failed, cancelled)");
  }
  return value;
}

Parsed<int32_t> ParseInt32(std::string_view text) {
  int32_t value = 0;
  std::string_view digits = text;
  if (!digits.empty() && digits.front() == '+') digits.remove_prefix(1);
  auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (digits.empty() || ec != std::errc() || ptr != digits.data() + digits.size())
    return std::unexpected("expected a whole number (32-bit), got " + Quote(text));
  return value;
}

}  // namespace reelq::cli
