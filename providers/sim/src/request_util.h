#pragma once

#include <charconv>

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "http_server.h"

namespace reelq::sim {

// The token of an `Authorization: Bearer <token>` header; nullopt when absent or another scheme.
inline std::optional<std::string> BearerToken(const HttpRequest& req) {
  const std::string auth = req.Header("Authorization");
  constexpr std::string_view kPrefix = "Bearer ";
  if (auth.size() <= kPrefix.size() || auth.compare(0, kPrefix.size(), kPrefix) != 0) {
    return std::nullopt;
  }
  return auth.substr(kPrefix.size());
}

// Parses a JSON request body without throwing; discarded on error.
// A decimal query parameter in [lo, hi]; `fallback` when absent, std::nullopt when malformed or
// out of range.
inline std::optional<int64_t> QueryInt(const HttpRequest& req, const std::string& name,
                                       int64_t fallback, int64_t lo, int64_t hi) {
  auto it = req.query.find(name);
  if (it == req.query.end() || it->second.empty()) return fallback;
  int64_t v = 0;
  const auto& s = it->second;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size() || v < lo || v > hi) return std::nullopt;
  return v;
}

inline nlohmann::json ParseBody(const std::string& body) {
  return nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
}

// Splits "a/b/c" (no leading slash) into parts.
inline std::vector<std::string> SplitPath(std::string_view path) {
  std::vector<std::string> parts;
  while (!path.empty()) {
    if (path.front() == '/') {
      path.remove_prefix(1);
      continue;
    }
    const auto slash = path.find('/');
    parts.emplace_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash);
  }
  return parts;
}

// Applies the [sim:truncate] / [sim:badjson] triggers to a poll answer.
inline void BreakPollResponse(HttpResponse& res, bool truncate, bool badjson) {
  if (truncate) {
    res.mode = HttpResponse::Mode::kTruncate;
  } else if (badjson) {
    res.body = res.body.substr(0, res.body.size() / 2) + "<<sim:badjson";
  }
}

}  // namespace reelq::sim
