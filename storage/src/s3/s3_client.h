#pragma once

// Signs, sends and retries single S3 requests. Shared by the store and its writers (and by the
// detached aborts a dropped writer leaves behind), hence held by shared_ptr.

#include <memory>
#include <set>
#include <string>

#include "reelq/common/http_client.h"
#include "reelq/storage/s3_store.h"
#include "reelq/storage/sigv4.h"

namespace reelq::storage::s3 {

struct Endpoint {
  bool tls = false;
  std::string authority;  // host[:port] as configured
  std::string host;       // without port
  std::string port;       // empty: the scheme's default
};

// "http(s)://host[:port]" (a trailing '/' is allowed; paths, queries and user info are not).
Result<Endpoint> ParseEndpoint(const std::string& endpoint);

struct Call {
  std::string method;
  std::string key;  // empty: the bucket itself
  sigv4::QueryList query;
  http::Headers headers;  // lower-case names; all are signed
  std::string body;
  std::string what;  // for messages: "PUT s3://bucket/key part 3"
  // Statuses handed back as responses instead of being mapped to errors (404 for HEAD, 412
  // for conditional writes).
  std::set<int> pass_statuses;
  // Set when a try went unanswered or failed and the call was sent again: a 412 answering a
  // conditional write may then be this call's own earlier try having landed.
  bool* resent = nullptr;
};

// A Clock's reading as the time point SigV4 dates are formatted from.
inline std::chrono::system_clock::time_point WallTime(const Clock& clock) {
  return std::chrono::system_clock::time_point(std::chrono::milliseconds(clock.NowMs()));
}

class Client {
 public:
  Client(S3Config config, Endpoint endpoint, http::ClientPtr http);

  const S3Config& config() const { return config_; }

  // The URL path and host for a key (path-style or virtual-hosted).
  std::string Path(const std::string& key) const;
  std::string Host() const;
  std::string BaseUrl() const;  // scheme://host
  std::string Describe(std::string_view method, const std::string& key) const;

  // 2xx and pass_statuses come back as responses; other statuses as MapS3Error errors;
  // retryable failures are retried here with backoff and jitter.
  awaitable<Result<http::Response>> Send(Call call);

  // A presigned GET URL valid for `ttl` from `now`.
  std::string PresignGet(const std::string& key, std::chrono::seconds ttl,
                         std::chrono::system_clock::time_point now) const;

 private:
  std::chrono::milliseconds Backoff(int attempt);

  S3Config config_;
  Endpoint endpoint_;
  http::ClientPtr http_;
};
using ClientPtr = std::shared_ptr<Client>;

}  // namespace reelq::storage::s3
