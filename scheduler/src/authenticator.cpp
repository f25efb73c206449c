#include "reelq/scheduler/authenticator.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "reelq/queue/auth_store.h"

namespace reelq::scheduler {
namespace {

constexpr size_t kMinAdminTokenBytes = 16;

std::string Hex(const unsigned char* bytes, size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  for (size_t i = 0; i < size; ++i) {
    out.push_back(kDigits[bytes[i] >> 4]);
    out.push_back(kDigits[bytes[i] & 0xF]);
  }
  return out;
}

bool SameHash(const std::string& a, const std::string& b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

bool IsLoopbackHost(std::string host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

}  // namespace

std::string HashToken(std::string_view token) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_Digest(token.data(), token.size(), digest, &size, EVP_sha256(), nullptr);
  return Hex(digest, size);
}

Result<std::string> NewTenantToken() {
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof bytes) != 1) {
    return MakeError(ErrorCategory::kInternal, "the random generator failed to make a token");
  }
  return "rq_" + Hex(bytes, sizeof bytes);
}

std::string TokenId(std::string_view token_hash) { return std::string(token_hash.substr(0, 16)); }

Result<AuthSettings> ParseAuthSettings(const config::Document& doc,
                                       const std::map<std::string, std::string>& env) {
  AuthSettings s;
  const auto sec = doc.root["auth"];
  if (auto k = config::CheckKeys(
          sec, "auth", {"admin_tokens", "allow_unauthenticated_non_loopback", "cache_ms"});
      !k) {
    return std::unexpected(k.error());
  }
  auto allow = config::GetBool(sec, "auth", "allow_unauthenticated_non_loopback", false);
  if (!allow) return std::unexpected(allow.error());
  s.allow_unauthenticated_non_loopback = *allow;
  auto cache_ms = config::GetInt(sec, "auth", "cache_ms", 500, 0, 1000);
  if (!cache_ms) return std::unexpected(cache_ms.error());
  s.cache_ttl = std::chrono::milliseconds(*cache_ms);
  if (!sec || !sec["admin_tokens"]) return s;
  const auto list = sec["admin_tokens"];
  if (!list.IsSequence()) {
    return MakeError(ErrorCategory::kInvalidRequest,
                     "auth.admin_tokens: expected a list of {env: VAR} or {file: /path}");
  }
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string name = "auth.admin_tokens[" + std::to_string(i) + "]";
    YAML::Node holder;
    holder["ref"] = list[i];
    auto secret = config::GetSecret(holder, name, "ref", env);
    if (!secret) {
      auto e = secret.error();
      // GetSecret names "<section>.ref"; say where it really is.
      if (auto at = e.message.find(".ref"); at != std::string::npos) e.message.erase(at, 4);
      return std::unexpected(e);
    }
    if (secret->empty()) {
      return MakeError(ErrorCategory::kInvalidRequest,
                       name + ": resolves to an empty secret (is the variable or file set?)");
    }
    if (secret->size() < kMinAdminTokenBytes) {
      return MakeError(ErrorCategory::kInvalidRequest, name + ": an admin token must be at least " +
                                                           std::to_string(kMinAdminTokenBytes) +
                                                           " bytes");
    }
    s.admin_tokens.push_back(*secret);
  }
  return s;
}

Result<void> CheckListenAllowed(const AuthSettings& settings, const std::string& listen) {
  if (settings.enabled() || settings.allow_unauthenticated_non_loopback) return {};
  const auto colon = listen.rfind(':');
  const std::string host = colon == std::string::npos ? listen : listen.substr(0, colon);
  if (IsLoopbackHost(host)) return {};
  return MakeError(ErrorCategory::kInvalidRequest,
                   "scheduler.listen: " + listen +
                       " is not a loopback address and authentication is off; configure "
                       "auth.admin_tokens, or set auth.allow_unauthenticated_non_loopback: true "
                       "to serve anyone who reaches the port");
}

Authenticator::Authenticator(AuthSettings settings, queue::AuthStore* store, ClockPtr clock)
    : settings_(std::move(settings)), store_(store), clock_(std::move(clock)) {
  for (const auto& token : settings_.admin_tokens) admin_hashes_.push_back(HashToken(token));
  // Only the hashes are needed from here on.
  for (auto& token : settings_.admin_tokens) {
    OPENSSL_cleanse(token.data(), token.size());
    token = "-";
  }
}

awaitable<Result<Principal>> Authenticator::AuthenticateHeader(std::string authorization) {
  if (!enabled()) co_return Principal{.tenant = "", .is_admin = true, .open = true};
  constexpr std::string_view kBearer = "Bearer ";
  if (authorization.empty()) {
    co_return MakeError(ErrorCategory::kAuthFailed,
                        "authorization: no bearer token (send 'authorization: Bearer <token>')");
  }
  if (authorization.size() <= kBearer.size() ||
      !std::equal(kBearer.begin(), kBearer.end(), authorization.begin(),
                  [](char a, char b) { return std::tolower(a) == std::tolower(b); })) {
    co_return MakeError(ErrorCategory::kAuthFailed, "authorization: expected 'Bearer <token>'");
  }
  auto result = co_await Authenticate(authorization.substr(kBearer.size()));
  OPENSSL_cleanse(authorization.data(), authorization.size());
  co_return result;
}

awaitable<Result<Principal>> Authenticator::Authenticate(std::string token) {
  if (!enabled()) co_return Principal{.tenant = "", .is_admin = true, .open = true};
  if (token.empty()) co_return MakeError(ErrorCategory::kAuthFailed, "authorization: empty token");
  const std::string hash = HashToken(token);
  OPENSSL_cleanse(token.data(), token.size());
  for (const auto& admin : admin_hashes_) {
    if (SameHash(hash, admin)) co_return Principal{.tenant = "", .is_admin = true, .open = false};
  }
  const int64_t now = clock_->NowMs();
  if (auto it = cache_.find(hash); it != cache_.end() && it->second.until_ms > now) {
    if (!it->second.known) {
      co_return MakeError(ErrorCategory::kAuthFailed, "authorization: unknown or revoked token");
    }
    co_return it->second.principal;
  }
  if (store_ == nullptr) {
    co_return MakeError(ErrorCategory::kAuthFailed, "authorization: unknown or revoked token");
  }
  auto tenant = co_await store_->TenantOfToken(hash);
  if (!tenant) {
    co_return MakeError(ErrorCategory::kRetryable,
                        "cannot check the token now (redis: " + tenant.error().message + ")");
  }
  // Bounded: a flood of wrong tokens must not grow memory without end.
  if (cache_.size() > 10'000) cache_.clear();
  Cached entry;
  entry.until_ms = now + settings_.cache_ttl.count();
  entry.known = tenant->has_value();
  if (entry.known)
    entry.principal = Principal{.tenant = **tenant, .is_admin = false, .open = false};
  if (settings_.cache_ttl.count() > 0) cache_[hash] = entry;
  if (!entry.known) {
    co_return MakeError(ErrorCategory::kAuthFailed, "authorization: unknown or revoked token");
  }
  co_return entry.principal;
}

}  // namespace reelq::scheduler
