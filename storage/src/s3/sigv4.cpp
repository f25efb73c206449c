#include "reelq/storage/sigv4.h"

#include <algorithm>
#include <ctime>
#include <map>

namespace reelq::storage::sigv4 {

namespace {

bool IsUnreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.' || c == '~';
}

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// Trimall: strip, and turn every run of whitespace inside into one space.
std::string TrimAll(std::string_view v) {
  std::string out;
  bool pending_space = false;
  for (char c : v) {
    if (IsSpace(c)) {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out.push_back(' ');
    pending_space = false;
    out.push_back(c);
  }
  return out;
}

// RFC 3986 5.2.4 plus collapsing of empty segments, as AWS's generic services expect.
std::string RemoveDotSegments(std::string_view path) {
  if (path.empty()) return "/";
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t next = path.find('/', pos);
    if (next == std::string_view::npos) next = path.size();
    std::string_view seg = path.substr(pos, next - pos);
    if (!seg.empty() && seg != ".") {
      if (seg == "..") {
        if (!out.empty()) out.pop_back();
      } else {
        out.push_back(seg);
      }
    }
    pos = next + 1;
  }
  std::string result = path.front() == '/' ? "/" : "";
  for (size_t i = 0; i < out.size(); ++i) {
    if (i > 0) result.push_back('/');
    result.append(out[i]);
  }
  if (path.back() == '/' && !out.empty()) result.push_back('/');
  return result;
}

// Lower-case name → values in order of appearance (std::map sorts names bytewise).
std::map<std::string, std::vector<std::string>> GroupHeaders(const HeaderList& headers) {
  std::map<std::string, std::vector<std::string>> grouped;
  for (const auto& [name, value] : headers) grouped[Lower(TrimAll(name))].push_back(value);
  return grouped;
}

void RemoveHeader(HeaderList& headers, std::string_view lower_name) {
  std::erase_if(headers, [&](const auto& h) { return Lower(h.first) == lower_name; });
}

}  // namespace

std::string Scope::ToString() const {
  return date + "/" + region + "/" + service + "/aws4_request";
}

std::string UriEncode(std::string_view in, bool encode_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(in.size() * 3 / 2);
  for (char ch : in) {
    auto c = static_cast<unsigned char>(ch);
    if (IsUnreserved(c) || (c == '/' && !encode_slash)) {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
  return out;
}

std::string CanonicalUri(std::string_view encoded_path, bool s3) {
  if (encoded_path.empty()) return "/";
  if (s3) return std::string(encoded_path);
  return UriEncode(RemoveDotSegments(encoded_path), /*encode_slash=*/false);
}

std::string CanonicalQuery(const QueryList& query) {
  std::vector<std::pair<std::string, std::string>> encoded;
  encoded.reserve(query.size());
  for (const auto& [k, v] : query) encoded.emplace_back(UriEncode(k), UriEncode(v));
  std::sort(encoded.begin(), encoded.end());
  std::string out;
  for (const auto& [k, v] : encoded) {
    if (!out.empty()) out.push_back('&');
    out += k;
    out.push_back('=');
    out += v;
  }
  return out;
}

std::string CanonicalHeaders(const HeaderList& headers) {
  std::string out;
  for (const auto& [name, values] : GroupHeaders(headers)) {
    out += name;
    out.push_back(':');
    for (size_t i = 0; i < values.size(); ++i) {
      if (i > 0) out.push_back(',');
      out += TrimAll(values[i]);
    }
    out.push_back('\n');
  }
  return out;
}

std::string SignedHeaders(const HeaderList& headers) {
  std::string out;
  for (const auto& [name, values] : GroupHeaders(headers)) {
    if (!out.empty()) out.push_back(';');
    out += name;
  }
  return out;
}

std::string CanonicalRequest(const Request& request) {
  std::string out;
  out += request.method;
  out.push_back('\n');
  out += CanonicalUri(request.path, request.s3);
  out.push_back('\n');
  out += CanonicalQuery(request.query);
  out.push_back('\n');
  out += CanonicalHeaders(request.headers);
  out.push_back('\n');
  out += SignedHeaders(request.headers);
  out.push_back('\n');
  out += request.payload_hash;
  return out;
}

std::string StringToSign(std::string_view amz_date, const Scope& scope,
                         std::string_view canonical_request) {
  std::string out(kAlgorithm);
  out.push_back('\n');
  out += amz_date;
  out.push_back('\n');
  out += scope.ToString();
  out.push_back('\n');
  out += Sha256Hex(canonical_request);
  return out;
}

Digest256 SigningKey(std::string_view secret_key, const Scope& scope) {
  std::string k = "AWS4";
  k += secret_key;
  auto as_span = [](const std::string& s) {
    return std::span<const unsigned char>(reinterpret_cast<const unsigned char*>(s.data()),
                                          s.size());
  };
  Digest256 k_date = HmacSha256(as_span(k), scope.date);
  Digest256 k_region = HmacSha256(k_date, scope.region);
  Digest256 k_service = HmacSha256(k_region, scope.service);
  return HmacSha256(k_service, "aws4_request");
}

std::string Signature(std::string_view secret_key, const Scope& scope,
                      std::string_view string_to_sign) {
  return ToHex(HmacSha256(SigningKey(secret_key, scope), string_to_sign));
}

std::string AuthorizationHeader(std::string_view access_key, const Scope& scope,
                                std::string_view signed_headers, std::string_view signature) {
  std::string out(kAlgorithm);
  out += " Credential=";
  out += access_key;
  out.push_back('/');
  out += scope.ToString();
  out += ", SignedHeaders=";
  out += signed_headers;
  out += ", Signature=";
  out += signature;
  return out;
}

std::string FormatAmzDate(std::chrono::system_clock::time_point time) {
  std::time_t t = std::chrono::system_clock::to_time_t(time);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

SignedHeaderResult SignHeaders(Request request, const Credentials& credentials,
                               std::string_view region, std::string_view service,
                               std::string_view amz_date) {
  SignedHeaderResult result;
  for (std::string_view name :
       {"authorization", "x-amz-date", "x-amz-content-sha256", "x-amz-security-token"}) {
    RemoveHeader(request.headers, name);
  }
  result.headers.emplace_back("x-amz-date", std::string(amz_date));
  if (request.s3) result.headers.emplace_back("x-amz-content-sha256", request.payload_hash);
  if (!credentials.session_token.empty()) {
    result.headers.emplace_back("x-amz-security-token", credentials.session_token);
  }
  request.headers.insert(request.headers.end(), result.headers.begin(), result.headers.end());

  Scope scope{std::string(amz_date.substr(0, 8)), std::string(region), std::string(service)};
  result.canonical_request = CanonicalRequest(request);
  result.string_to_sign = StringToSign(amz_date, scope, result.canonical_request);
  result.signature = Signature(credentials.secret_key, scope, result.string_to_sign);
  result.authorization = AuthorizationHeader(credentials.access_key, scope,
                                             SignedHeaders(request.headers), result.signature);
  result.headers.emplace_back("authorization", result.authorization);
  return result;
}

PresignResult Presign(Request request, const Credentials& credentials, std::string_view region,
                      std::string_view service, std::string_view amz_date,
                      std::chrono::seconds expires) {
  Scope scope{std::string(amz_date.substr(0, 8)), std::string(region), std::string(service)};
  request.query.emplace_back("X-Amz-Algorithm", std::string(kAlgorithm));
  request.query.emplace_back("X-Amz-Credential", credentials.access_key + "/" + scope.ToString());
  request.query.emplace_back("X-Amz-Date", std::string(amz_date));
  request.query.emplace_back("X-Amz-Expires", std::to_string(expires.count()));
  request.query.emplace_back("X-Amz-SignedHeaders", SignedHeaders(request.headers));
  if (!credentials.session_token.empty()) {
    request.query.emplace_back("X-Amz-Security-Token", credentials.session_token);
  }
  // The payload is unknown when a URL is handed out.
  if (request.s3) request.payload_hash = std::string(kUnsignedPayload);

  PresignResult result;
  result.canonical_request = CanonicalRequest(request);
  result.string_to_sign = StringToSign(amz_date, scope, result.canonical_request);
  result.signature = Signature(credentials.secret_key, scope, result.string_to_sign);
  result.query = CanonicalQuery(request.query) + "&X-Amz-Signature=" + result.signature;
  return result;
}

}  // namespace reelq::storage::sigv4
