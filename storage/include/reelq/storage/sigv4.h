#pragma once

// AWS Signature Version 4 as a pure library: no I/O, no clock (the caller passes the
// timestamp), so every step can be checked against AWS's published examples and against
// botocore (tests/storage/sigv4_*_test.cpp).

#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "reelq/storage/sha256.h"

namespace reelq::storage::sigv4 {

using HeaderList = std::vector<std::pair<std::string, std::string>>;
using QueryList = std::vector<std::pair<std::string, std::string>>;  // decoded names/values

inline constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";
inline constexpr std::string_view kUnsignedPayload = "UNSIGNED-PAYLOAD";

struct Credentials {
  std::string access_key;
  std::string secret_key;
  std::string session_token;  // optional (temporary credentials)
};

struct Scope {
  std::string date;              // YYYYMMDD, the first 8 characters of the x-amz-date
  std::string region;            // "us-east-1"
  std::string service;           // "s3"
  std::string ToString() const;  // "<date>/<region>/<service>/aws4_request"
};

struct Request {
  std::string method;  // "GET"
  // The path exactly as sent on the wire (already URI-encoded), starting with '/'.
  std::string path;
  QueryList query;     // decoded; encoded and sorted by the signer
  HeaderList headers;  // every header to sign, including "host" (any case)
  // Hex SHA-256 of the body, or kUnsignedPayload. Ignored by S3 presigning.
  std::string payload_hash = std::string(kEmptySha256);
  // S3 rules: the path is neither normalised nor encoded a second time, and header signing
  // adds x-amz-content-sha256. Other services (the generic test suite): both.
  bool s3 = true;
};

// AWS UriEncode: every byte except A-Z a-z 0-9 '-' '_' '.' '~' becomes %XX (upper-case hex).
// With encode_slash=false '/' is kept (object key paths).
std::string UriEncode(std::string_view in, bool encode_slash = true);

// Canonical URI from the wire path (see Request::s3).
std::string CanonicalUri(std::string_view encoded_path, bool s3);
// Names and values encoded, sorted by name then value, "a=1&b=" (also a valid URL query).
std::string CanonicalQuery(const QueryList& query);
// Lower-case names, values trimmed with inner whitespace runs collapsed, repeated headers
// joined with ','; sorted; each line ends with '\n'.
std::string CanonicalHeaders(const HeaderList& headers);
std::string SignedHeaders(const HeaderList& headers);  // "host;x-amz-date"

std::string CanonicalRequest(const Request& request);
std::string StringToSign(std::string_view amz_date, const Scope& scope,
                         std::string_view canonical_request);
Digest256 SigningKey(std::string_view secret_key, const Scope& scope);
std::string Signature(std::string_view secret_key, const Scope& scope,
                      std::string_view string_to_sign);
std::string AuthorizationHeader(std::string_view access_key, const Scope& scope,
                                std::string_view signed_headers, std::string_view signature);

// "20130524T000000Z"
std::string FormatAmzDate(std::chrono::system_clock::time_point time);

struct SignedHeaderResult {
  // What to add to the outgoing request: x-amz-date, x-amz-content-sha256 (S3),
  // x-amz-security-token (with a session token) and authorization, lower-case names.
  HeaderList headers;
  std::string canonical_request;
  std::string string_to_sign;
  std::string signature;
  std::string authorization;
};

// Signs with an Authorization header. Any x-amz-date / x-amz-content-sha256 /
// x-amz-security-token / authorization already in request.headers is replaced.
SignedHeaderResult SignHeaders(Request request, const Credentials& credentials,
                               std::string_view region, std::string_view service,
                               std::string_view amz_date);

struct PresignResult {
  std::string query;  // the complete URL query: the request's own parameters, the X-Amz-*
                      // parameters, and X-Amz-Signature last
  std::string canonical_request;
  std::string string_to_sign;
  std::string signature;
};

// Query-string signing (presigned URLs). S3 signs the payload as UNSIGNED-PAYLOAD.
PresignResult Presign(Request request, const Credentials& credentials, std::string_view region,
                      std::string_view service, std::string_view amz_date,
                      std::chrono::seconds expires);

}  // namespace reelq::storage::sigv4
