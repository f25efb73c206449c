#include "url.h"

#include <cctype>
#include <charconv>

namespace reelq::http::internal {
namespace {

bool IsIpv6(const std::string& host) { return host.find(':') != std::string::npos; }

std::string Bracketed(const std::string& host) { return IsIpv6(host) ? "[" + host + "]" : host; }

uint16_t DefaultPort(bool tls) { return tls ? 443 : 80; }

}  // namespace

std::string Url::Authority() const { return Bracketed(host) + ":" + std::to_string(port); }

std::string Url::HostHeader() const {
  if (port == DefaultPort(tls)) return Bracketed(host);
  return Authority();
}

std::string Url::Origin() const { return (tls ? "https://" : "http://") + Authority(); }

std::string ToString(const Url& url) { return url.Origin() + url.target; }

Result<Url> ParseUrl(std::string_view url) {
  auto bad = [&](std::string_view what) {
    return MakeError(ErrorCategory::kInvalidRequest,
                     "bad URL '" + std::string(url) + "': " + std::string(what));
  };
  Url out;
  std::string_view rest;
  // Schemes are case-insensitive (RFC 3986 3.1): "HTTPS://" is https.
  auto scheme_is = [&](std::string_view scheme) {
    if (url.size() < scheme.size()) return false;
    for (size_t i = 0; i < scheme.size(); ++i) {
      if (std::tolower(static_cast<unsigned char>(url[i])) != scheme[i]) return false;
    }
    return true;
  };
  if (scheme_is("http://")) {
    rest = url.substr(7);
  } else if (scheme_is("https://")) {
    out.tls = true;
    rest = url.substr(8);
  } else {
    return bad("scheme must be http or https");
  }
  if (auto hash = rest.find('#'); hash != std::string_view::npos) rest = rest.substr(0, hash);
  size_t end = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, end);
  std::string_view target = end == std::string_view::npos ? "" : rest.substr(end);
  if (authority.find('@') != std::string_view::npos) return bad("user info is not supported");
  if (authority.empty()) return bad("missing host");

  std::string_view port_text;
  if (authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return bad("unterminated IPv6 literal");
    out.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return bad("junk after IPv6 literal");
      port_text = after.substr(1);
    }
  } else {
    size_t colon = authority.rfind(':');
    if (colon != std::string_view::npos) {
      out.host = std::string(authority.substr(0, colon));
      port_text = authority.substr(colon + 1);
    } else {
      out.host = std::string(authority);
    }
  }
  if (out.host.empty()) return bad("missing host");
  if (out.host.find_first_of(" \t\r\n/\\") != std::string::npos) return bad("bad host");
  if (port_text.empty()) {
    out.port = DefaultPort(out.tls);
  } else {
    unsigned port = 0;
    auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || ptr != port_text.data() + port_text.size() || port == 0 ||
        port > 65535) {
      return bad("bad port");
    }
    out.port = static_cast<uint16_t>(port);
  }
  if (target.empty()) {
    out.target = "/";
  } else if (target.front() == '?') {
    out.target = "/" + std::string(target);
  } else {
    out.target = std::string(target);
  }
  if (out.target.find_first_of(" \r\n") != std::string::npos) return bad("bad path");
  return out;
}

Result<Url> ResolveLocation(const Url& base, std::string_view location) {
  if (location.starts_with("http://") || location.starts_with("https://")) {
    return ParseUrl(location);
  }
  if (location.starts_with("//")) {
    return ParseUrl(std::string(base.tls ? "https:" : "http:") + std::string(location));
  }
  if (location.empty()) {
    return MakeError(ErrorCategory::kInvalidRequest, "redirect with an empty Location");
  }
  std::string target;
  if (location.front() == '/') {
    target = std::string(location);
  } else {
    // Relative to the directory of the current path (query dropped).
    std::string path = base.target.substr(0, base.target.find('?'));
    target = path.substr(0, path.rfind('/') + 1) + std::string(location);
  }
  return ParseUrl(base.Origin() + target);
}

}  // namespace reelq::http::internal
