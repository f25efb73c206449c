#pragma once

// Who is calling: a bearer token in, a Principal out. The one place a token is resolved, for the
// gRPC services and for anything else that serves the same API (a dashboard's token cookie).
//
//   scheduler::Authenticator auth(settings, &auth_store, clock);
//   auto who = co_await auth.Authenticate(token);          // the token itself
//   auto who = co_await auth.AuthenticateHeader(header);   // "Bearer <token>"
//   if (!who) ...  // who.error().category == kAuthFailed: answer UNAUTHENTICATED
//
// Tokens are never logged, echoed in an error or kept in memory: only their SHA-256 is.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "reelq/common/asio.h"
#include "reelq/common/clock.h"
#include "reelq/common/config.h"
#include "reelq/common/error.h"

namespace reelq::queue {
class AuthStore;
}

namespace reelq::scheduler {

struct Principal {
  // The tenant every request of this caller acts for; empty for an admin.
  std::string tenant;
  // Sees and manages every tenant (an admin token, or authentication off).
  bool is_admin = false;
  // Authentication is off: the caller acts for whatever tenant its request names (the
  // behaviour before tokens existed).
  bool open = false;

  // True when this caller may see something owned by `owner_tenant`.
  bool CanSee(std::string_view owner_tenant) const { return is_admin || owner_tenant == tenant; }
};

// The `auth:` config section.
struct AuthSettings {
  // Resolved admin tokens (from {env: NAME} / {file: PATH} references; never literal in YAML).
  // Authentication is on when at least one is configured.
  std::vector<std::string> admin_tokens;
  // Serve without authentication on an address other than loopback (refused otherwise).
  bool allow_unauthenticated_non_loopback = false;
  // How long a resolved token is remembered; a revoked token is refused within this time by
  // every scheduler (at most 1 s).
  std::chrono::milliseconds cache_ttl{500};

  bool enabled() const { return !admin_tokens.empty(); }
};

// Reads `auth:` (admin_tokens: a list of secret references, allow_unauthenticated_non_loopback,
// cache_ms). Errors name the key and never contain a secret.
Result<AuthSettings> ParseAuthSettings(const config::Document& doc,
                                       const std::map<std::string, std::string>& env);

// kInvalidRequest when `listen` (host:port) is not a loopback address and authentication is off
// without allow_unauthenticated_non_loopback.
Result<void> CheckListenAllowed(const AuthSettings& settings, const std::string& listen);

// Lower-case hex SHA-256 of a token: what Redis holds.
std::string HashToken(std::string_view token);
// A new tenant token: "rq_" + 64 hex digits (256 bits from the OpenSSL CSPRNG).
Result<std::string> NewTenantToken();
// The public name of a token (shown in lists, used to revoke): the first 16 hex digits of its
// hash. Reveals nothing that helps to forge the token.
std::string TokenId(std::string_view token_hash);

class Authenticator {
 public:
  // `store` may be null when authentication is off (tests of the open mode).
  Authenticator(AuthSettings settings, queue::AuthStore* store, ClockPtr clock);

  bool enabled() const { return settings_.enabled(); }

  // The principal of a bearer token (without "Bearer "). With authentication off, an open
  // admin principal whatever the token. kAuthFailed when the token is missing, unknown or
  // revoked (the message never contains it); kRetryable when Redis cannot answer.
  awaitable<Result<Principal>> Authenticate(std::string token);

  // The same from an `authorization` header or gRPC metadata value ("Bearer <token>"; empty when
  // the caller sent none).
  awaitable<Result<Principal>> AuthenticateHeader(std::string authorization);

  // Forgets every remembered token (after a revoke on this scheduler, so it refuses at once).
  void ForgetCached() { cache_.clear(); }

 private:
  struct Cached {
    Principal principal;
    bool known = false;
    int64_t until_ms = 0;
  };

  AuthSettings settings_;
  std::vector<std::string> admin_hashes_;
  queue::AuthStore* store_;
  ClockPtr clock_;
  std::map<std::string, Cached> cache_;  // by token hash; io executor only
};

}  // namespace reelq::scheduler
