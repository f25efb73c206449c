#include "s3_client.h"

#include <random>

#include "reelq/common/random.h"
#include "reelq/storage/s3_errors.h"

namespace reelq::storage::s3 {

namespace {

std::unexpected<Error> BadEndpoint(const std::string& endpoint, std::string_view why) {
  return MakeError(ErrorCategory::kInvalidRequest,
                   "storage.s3.endpoint: \"" + endpoint + "\": " + std::string(why));
}

}  // namespace

Result<Endpoint> ParseEndpoint(const std::string& endpoint) {
  Endpoint out;
  std::string_view rest = endpoint;
  if (rest.starts_with("https://")) {
    out.tls = true;
    rest.remove_prefix(8);
  } else if (rest.starts_with("http://")) {
    rest.remove_prefix(7);
  } else {
    return BadEndpoint(endpoint, "expected http://host[:port] or https://host[:port]");
  }
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  if (rest.empty()) return BadEndpoint(endpoint, "missing host");
  if (rest.find_first_of("/?#@ \t\r\n\\") != std::string_view::npos) {
    return BadEndpoint(endpoint, "only scheme, host and port are allowed (no path or query)");
  }
  out.authority = std::string(rest);
  out.host = out.authority;
  size_t colon = out.authority.rfind(':');
  if (colon != std::string::npos && out.authority.find(']') == std::string::npos) {
    out.host = out.authority.substr(0, colon);
    out.port = out.authority.substr(colon + 1);
    if (out.port.empty() || out.port.size() > 5 ||
        out.port.find_first_not_of("0123456789") != std::string::npos || std::stoi(out.port) == 0 ||
        std::stoi(out.port) > 65535) {
      return BadEndpoint(endpoint, "bad port");
    }
    // The Host header the HTTP client sends omits a default port; sign the same.
    if ((out.tls && out.port == "443") || (!out.tls && out.port == "80")) out.port.clear();
  }
  if (out.host.empty()) return BadEndpoint(endpoint, "missing host");
  return out;
}

Client::Client(S3Config config, Endpoint endpoint, http::ClientPtr http)
    : config_(std::move(config)), endpoint_(std::move(endpoint)), http_(std::move(http)) {}

std::string Client::Host() const {
  std::string host = config_.path_style ? endpoint_.host : config_.bucket + "." + endpoint_.host;
  if (!endpoint_.port.empty()) host += ":" + endpoint_.port;
  return host;
}

std::string Client::BaseUrl() const { return (endpoint_.tls ? "https://" : "http://") + Host(); }

std::string Client::Path(const std::string& key) const {
  std::string path = config_.path_style ? "/" + config_.bucket + "/" : "/";
  return path + sigv4::UriEncode(key, /*encode_slash=*/false);
}

std::string Client::Describe(std::string_view method, const std::string& key) const {
  return std::string(method) + " s3://" + config_.bucket + "/" + key;
}

std::chrono::milliseconds Client::Backoff(int attempt) {
  thread_local std::mt19937_64 rng = NewRng();
  std::chrono::milliseconds cap(config_.retry_base.count() * (1LL << std::min(attempt - 1, 20)));
  return EqualJitter(std::min(cap, config_.retry_max), rng);
}

awaitable<Result<http::Response>> Client::Send(Call call) {
  const std::string payload_hash = Sha256Hex(call.body);
  const std::string path = Path(call.key);
  const std::string query = sigv4::CanonicalQuery(call.query);
  const std::string url = BaseUrl() + path + (query.empty() ? "" : "?" + query);
  Error last;
  for (int attempt = 1; attempt <= std::max(config_.max_attempts, 1); ++attempt) {
    sigv4::Request to_sign{.method = call.method,
                           .path = path,
                           .query = call.query,
                           .headers = {{"host", Host()}},
                           .payload_hash = payload_hash};
    for (const auto& h : call.headers) to_sign.headers.push_back(h);
    auto signed_request = sigv4::SignHeaders(to_sign, config_.credentials, config_.region, "s3",
                                             sigv4::FormatAmzDate(WallTime(*config_.clock)));
    http::Request request{.method = call.method,
                          .url = url,
                          .headers = to_sign.headers,
                          .body = call.body,
                          .timeout = config_.request_timeout};
    for (auto& h : signed_request.headers) request.headers.push_back(std::move(h));

    auto response = co_await http_->Send(std::move(request));
    if (response) {
      if (response->sent_again && call.resent) *call.resent = true;
      const int status = response->status;
      if ((status >= 200 && status < 300) || call.pass_statuses.contains(status)) {
        co_return response;
      }
      last = MapS3Error(
          status, response->body, call.what, config_.bucket,
          {.method = call.method, .region = config_.region, .headers = &response->headers});
    } else {
      last = response.error();
      last.message = call.what + ": " + last.message;
    }
    if (!IsRetryable(last.category) || attempt == config_.max_attempts) break;
    if (call.resent) *call.resent = true;
    asio::steady_timer timer(co_await asio::this_coro::executor);
    timer.expires_after(std::max(Backoff(attempt), last.retry_after));
    co_await timer.async_wait(use_awaitable);
  }
  if (IsRetryable(last.category) && config_.max_attempts > 1) {
    last.message += " (gave up after " + std::to_string(config_.max_attempts) + " attempts)";
  }
  co_return std::unexpected(last);
}

std::string Client::PresignGet(const std::string& key, std::chrono::seconds ttl,
                               std::chrono::system_clock::time_point now) const {
  sigv4::Request r{.method = "GET", .path = Path(key), .headers = {{"host", Host()}}};
  auto p =
      sigv4::Presign(r, config_.credentials, config_.region, "s3", sigv4::FormatAmzDate(now), ttl);
  return BaseUrl() + r.path + "?" + p.query;
}

}  // namespace reelq::storage::s3
