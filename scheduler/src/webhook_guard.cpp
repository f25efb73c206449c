// Webhook settings, the SSRF guard, signatures and secrets (webhooks.h).
#include <algorithm>
#include <cctype>
#include <charconv>
#include <memory>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "reelq/common/utf8.h"
#include "reelq/scheduler/webhooks.h"

namespace reelq::scheduler {
namespace {

std::unexpected<Error> Invalid(std::string message) {
  return MakeError(ErrorCategory::kInvalidRequest, std::move(message));
}

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string Base64(const unsigned char* data, size_t size) {
  std::string out(4 * ((size + 2) / 3), '\0');
  const int n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(size));
  out.resize(static_cast<size_t>(std::max(0, n)));
  return out;
}

// Base64 decoding that drops the padding bytes EVP_DecodeBlock leaves as zeros; nullopt when
// `text` is not base64.
std::optional<std::string> Unbase64(std::string_view text) {
  if (text.empty() || text.size() % 4 != 0) return std::nullopt;
  std::string out(3 * text.size() / 4, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  if (n < 0) return std::nullopt;
  size_t pad = 0;
  if (text.back() == '=') ++pad;
  if (text.size() > 1 && text[text.size() - 2] == '=') ++pad;
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

}  // namespace

Result<WebhookSettings> ParseWebhookSettings(const config::Document& doc,
                                             const std::map<std::string, std::string>& env) {
  WebhookSettings s;
  const auto sec = doc.root["webhooks"];
  const std::string n = "webhooks";
  if (auto k =
          config::CheckKeys(sec, n,
                            {"allow_hosts", "max_retry_hours", "retry_initial_ms", "retry_max_ms",
                             "timeout_ms", "lease_ms", "poll_interval_ms", "max_in_flight",
                             "max_in_flight_per_tenant", "keep_hours", "secret", "deliver"});
      !k) {
    return std::unexpected(k.error());
  }
#define REELQ_READ(var, expr)                                      \
  {                                                                \
    auto r = (expr);                                               \
    if (!r) return std::unexpected(r.error());                     \
    var = static_cast<std::remove_reference_t<decltype(var)>>(*r); \
  }
  REELQ_READ(s.max_retry_hours,
             config::GetNumber(sec, n, "max_retry_hours", 24, 1.0 / 3600, 24 * 30));
  REELQ_READ(s.retry_initial_ms, config::GetInt(sec, n, "retry_initial_ms", 10'000, 1, 86'400'000));
  REELQ_READ(s.retry_max_ms, config::GetInt(sec, n, "retry_max_ms", 3'600'000, 1, 86'400'000));
  REELQ_READ(s.timeout_ms, config::GetInt(sec, n, "timeout_ms", 10'000, 100, 600'000));
  REELQ_READ(s.lease_ms, config::GetInt(sec, n, "lease_ms", 60'000, 200, 3'600'000));
  REELQ_READ(s.poll_interval_ms, config::GetInt(sec, n, "poll_interval_ms", 1'000, 10, 60'000));
  REELQ_READ(s.max_in_flight, config::GetInt(sec, n, "max_in_flight", 32, 1, 10'000));
  // A quarter of the slots by default: one tenant's silent receiver leaves the rest to others.
  REELQ_READ(s.max_in_flight_per_tenant,
             config::GetInt(sec, n, "max_in_flight_per_tenant", std::max(1, s.max_in_flight / 4), 1,
                            10'000));
  REELQ_READ(s.keep_hours, config::GetInt(sec, n, "keep_hours", 168, 1, 24 * 365));
  REELQ_READ(s.deliver, config::GetBool(sec, n, "deliver", true));
  REELQ_READ(s.secret, config::GetSecret(sec, n, "secret", env));
#undef REELQ_READ
  if (s.lease_ms <= s.timeout_ms) {
    return Invalid("webhooks.lease_ms: must exceed webhooks.timeout_ms (" +
                   std::to_string(s.timeout_ms) + "), or two schedulers may send at once");
  }
  if (s.max_in_flight_per_tenant > s.max_in_flight) {
    return Invalid(
        "webhooks.max_in_flight_per_tenant: " + std::to_string(s.max_in_flight_per_tenant) +
        " is more than webhooks.max_in_flight (" + std::to_string(s.max_in_flight) +
        "), the deliveries one scheduler makes at once over all tenants");
  }
  if (const auto ref = sec ? sec["secret"] : YAML::Node(); ref && ref.IsMap()) {
    // A secret set but resolving to nothing would sign every tenant with a random secret of
    // its own instead, silently.
    if (s.secret.empty()) {
      const std::string from =
          ref["env"] ? "the variable " + ref["env"].as<std::string>("") + " is unset or empty"
                     : "the file " + ref["file"].as<std::string>("") + " is empty";
      return Invalid("webhooks.secret: " + from + "; set it, or leave webhooks.secret out");
    }
    // With authentication on (auth.admin_tokens) each tenant signs with its own secret, and
    // webhooks.secret would never be used.
    const auto admin_tokens = doc.root["auth"] ? doc.root["auth"]["admin_tokens"] : YAML::Node();
    if (admin_tokens && admin_tokens.IsSequence() && admin_tokens.size() > 0) {
      return Invalid(
          "webhooks.secret: not used with authentication on (auth.admin_tokens): each tenant "
          "signs with a secret of its own (reelq admin webhook-secret <tenant>); leave "
          "webhooks.secret out");
    }
  }
  if (!s.secret.empty() && (!s.secret.starts_with("whsec_") || !Unbase64(s.secret.substr(6)))) {
    return Invalid("webhooks.secret: expected whsec_<base64>");
  }
  if (sec && sec["allow_hosts"]) {
    const auto list = sec["allow_hosts"];
    if (!list.IsSequence()) {
      return Invalid("webhooks.allow_hosts: expected a list of host names, addresses or CIDRs");
    }
    for (size_t i = 0; i < list.size(); ++i) {
      const auto entry = list[i].as<std::string>("");
      const std::string where = "webhooks.allow_hosts[" + std::to_string(i) + "]";
      if (entry.empty()) return Invalid(where + ": empty");
      const bool looks_numeric = entry.find_first_of(":/") != std::string::npos ||
                                 std::all_of(entry.begin(), entry.end(), [](char c) {
                                   return std::isdigit(static_cast<unsigned char>(c)) || c == '.';
                                 });
      if (looks_numeric) {
        auto range = ParseAddressRange(entry);
        if (!range) return Invalid(where + ": " + range.error().message);
        s.allow_ranges.push_back(*range);
      } else {
        s.allow_hosts.push_back(Lower(entry));
      }
    }
  }
  return s;
}

Result<WebhookUrl> ParseWebhookUrl(std::string_view url, std::string_view field) {
  const std::string f(field);
  // The HTTP client sends the path as given: a space or control byte could never be delivered
  // (every attempt would fail until the delivery is given up), so it is refused here, named.
  for (size_t i = 0; i < url.size(); ++i) {
    const auto c = static_cast<unsigned char>(url[i]);
    if (c <= 0x20 || c == 0x7f) {
      return Invalid(f + ": the URL has a space or control character at byte " + std::to_string(i) +
                     " (percent-encode it)");
    }
  }
  const auto colon = url.find("://");
  if (colon == std::string_view::npos) {
    return Invalid(f + ": " + QuoteForMessage(url) + " is not an absolute http(s) URL");
  }
  const std::string scheme = Lower(url.substr(0, colon));
  if (scheme != "http" && scheme != "https") {
    return Invalid(f + ": scheme " + QuoteForMessage(scheme) +
                   " is not allowed (only http and https)");
  }
  WebhookUrl out;
  out.tls = scheme == "https";
  auto rest = url.substr(colon + 3);
  auto authority = rest.substr(0, rest.find_first_of("/?#"));
  if (authority.find('@') != std::string_view::npos) {
    return Invalid(f + ": user information in the URL is not allowed");
  }
  std::string_view port_text;
  if (authority.starts_with("[")) {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return Invalid(f + ": unclosed '[' in the host");
    out.host = Lower(authority.substr(1, close - 1));
    auto after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return Invalid(f + ": unexpected text after the IPv6 host");
      port_text = after.substr(1);
    }
  } else {
    const auto c = authority.rfind(':');
    out.host = Lower(authority.substr(0, c));
    if (c != std::string_view::npos) port_text = authority.substr(c + 1);
  }
  if (out.host.empty()) return Invalid(f + ": the URL has no host");
  for (char c : out.host) {
    if (std::isspace(static_cast<unsigned char>(c)) || static_cast<unsigned char>(c) < 0x21) {
      return Invalid(f + ": the host contains a space or control character");
    }
  }
  out.port = out.tls ? 443 : 80;
  if (!port_text.empty()) {
    int port = 0;
    auto [end, err] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (err != std::errc() || end != port_text.data() + port_text.size() || port < 1 ||
        port > 65535) {
      return Invalid(f + ": bad port " + QuoteForMessage(port_text));
    }
    out.port = static_cast<uint16_t>(port);
  }
  return out;
}

std::optional<std::string> WebhookGuard::Refusal(const asio::ip::address& address) const {
  for (const auto& range : settings_.allow_ranges) {
    if (range.Contains(address)) return std::nullopt;
  }
  if (address.is_v6() && address.to_v6().is_v4_mapped()) {
    const asio::ip::address v4 = asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6());
    for (const auto& range : settings_.allow_ranges) {
      if (range.Contains(v4)) return std::nullopt;
    }
  }
  return net::NonPublicAddress(address);
}

bool WebhookGuard::HostAllowlisted(std::string_view host) const {
  const auto lower = Lower(host);
  return std::find(settings_.allow_hosts.begin(), settings_.allow_hosts.end(), lower) !=
         settings_.allow_hosts.end();
}

awaitable<Result<void>> WebhookGuard::Check(std::string url, std::string field) const {
  auto parsed = ParseWebhookUrl(url, field);
  if (!parsed) co_return std::unexpected(parsed.error());
  if (HostAllowlisted(parsed->host)) co_return Result<void>{};
  boost::system::error_code ec;
  const auto literal = asio::ip::make_address(parsed->host, ec);
  if (!ec) {
    if (auto reason = Refusal(literal)) {
      co_return Invalid(field + ": " + parsed->host + " is " + *reason +
                        " (allow it in webhooks.allow_hosts)");
    }
    co_return Result<void>{};
  }
  auto executor = co_await asio::this_coro::executor;
  auto resolver = std::make_shared<asio::ip::tcp::resolver>(executor);
  auto timer = std::make_shared<asio::steady_timer>(executor, std::chrono::seconds(5));
  timer->async_wait([resolver](boost::system::error_code e) {
    if (!e) resolver->cancel();
  });
  auto [resolve_ec, endpoints] = co_await resolver->async_resolve(
      parsed->host, std::to_string(parsed->port), use_nothrow_awaitable);
  timer->cancel();
  if (resolve_ec) {
    co_return Invalid(field + ": host " + QuoteForMessage(parsed->host) +
                      " does not resolve: " + resolve_ec.message());
  }
  for (const auto& entry : endpoints) {
    const auto address = entry.endpoint().address();
    if (auto reason = Refusal(address)) {
      co_return Invalid(field + ": " + parsed->host + " resolves to " + address.to_string() + ", " +
                        *reason + " (allow it in webhooks.allow_hosts)");
    }
  }
  co_return Result<void>{};
}

std::string SignWebhook(std::string_view secret, std::string_view id, int64_t timestamp_s,
                        std::string_view body) {
  std::string key(secret);
  if (key.starts_with("whsec_")) {
    if (auto decoded = Unbase64(key.substr(6))) key = std::move(*decoded);
  }
  std::string content;
  content.reserve(id.size() + body.size() + 24);
  content.append(id).append(".").append(std::to_string(timestamp_s)).append(".").append(body);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_size = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(content.data()), content.size(), mac, &mac_size);
  return "v1," + Base64(mac, mac_size);
}

std::string SignWebhook(const std::vector<std::string>& secrets, std::string_view id,
                        int64_t timestamp_s, std::string_view body) {
  std::string header;
  for (const auto& secret : secrets) {
    if (!header.empty()) header += ' ';
    header += SignWebhook(secret, id, timestamp_s, body);
  }
  return header;
}

std::string NewWebhookSecret() {
  unsigned char bytes[24];
  if (RAND_bytes(bytes, sizeof bytes) != 1) {
    throw std::runtime_error("RAND_bytes failed: no entropy for a webhook secret");
  }
  return "whsec_" + Base64(bytes, sizeof bytes);
}

awaitable<Result<std::string>> WebhookSecrets::Get(std::string tenant) {
  if (!per_tenant_ && !configured_.empty()) co_return configured_;
  co_return co_await store_.Secret(std::move(tenant), NewWebhookSecret());
}

awaitable<Result<std::string>> WebhookSecrets::Rotate(std::string tenant) {
  if (!per_tenant_ && !configured_.empty()) {
    co_return Invalid(
        "rotate: with authentication off every tenant signs with webhooks.secret; change it in "
        "the config");
  }
  co_return co_await store_.RotateSecret(
      std::move(tenant), NewWebhookSecret(), clock_->NowMs(),
      std::chrono::duration_cast<std::chrono::milliseconds>(kRotationOverlap).count());
}

awaitable<Result<std::vector<std::string>>> WebhookSecrets::ForSigning(std::string tenant) {
  auto current = co_await Get(tenant);
  if (!current) co_return std::unexpected(current.error());
  std::vector<std::string> out{std::move(*current)};
  if (!per_tenant_ && !configured_.empty()) co_return out;
  auto previous = co_await store_.PreviousSecret(std::move(tenant), clock_->NowMs());
  // Without it the delivery is still signed (with the current secret): not worth failing.
  if (previous && *previous) out.push_back(std::move(**previous));
  co_return out;
}

http::ClientPtr MakeWebhookHttpClient(asio::any_io_executor executor, const WebhookGuard& guard) {
  http::ClientOptions options;
  options.max_idle_connections_per_host = 2;
  options.max_body_bytes = 64 * 1024;  // a receiver's answer is not read beyond this
  // A host the operator allowed by name passes at its connections too, whatever it resolves to
  // (Check lets its URL in at submit without looking at its addresses).
  options.refuse_address = [&guard](
                               std::string_view host,
                               const asio::ip::address& address) -> std::optional<std::string> {
    if (guard.HostAllowlisted(host)) return std::nullopt;
    return guard.Refusal(address);
  };
  return http::MakeClient(std::move(executor), std::move(options));
}

}  // namespace reelq::scheduler
