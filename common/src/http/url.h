#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "reelq/common/error.h"

namespace reelq::http::internal {

// An absolute http(s) URL split into what a connection and a request line need.
// Boost 1.74 has no Boost.URL, and we only need the authority and the target.
struct Url {
  bool tls = false;
  std::string host;  // without brackets for IPv6 literals
  uint16_t port = 0;
  std::string target;  // path + query, always starting with '/'

  // "host:port" (brackets around IPv6), used as the pool key part and in error messages.
  std::string Authority() const;
  // The Host header value: the port is omitted when it is the scheme's default.
  std::string HostHeader() const;
  // "http" / "https" + authority: connections are reused only within one origin.
  std::string Origin() const;
};

// Parses "http://host[:port][/path][?query]" / "https://..."; kInvalidRequest naming the URL
// part that is wrong. User info and fragments are rejected / dropped.
Result<Url> ParseUrl(std::string_view url);

// Resolves a redirect Location (absolute, scheme-relative "//host/p" or absolute-path "/p",
// or a relative path) against the URL it came from.
Result<Url> ResolveLocation(const Url& base, std::string_view location);

std::string ToString(const Url& url);

}  // namespace reelq::http::internal
