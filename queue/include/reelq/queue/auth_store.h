#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "reelq/common/asio.h"
#include "reelq/common/error.h"
#include "reelq/common/redis.h"

namespace reelq::queue {

struct TokenEntry {
  std::string id;  // public name: the first 16 hex digits of the hash
  int64_t created_ms = 0;
};

struct TenantEntry {
  std::string name;
  double weight = 0;  // 0: the configured default
  int64_t created_ms = 0;
  std::vector<TokenEntry> tokens;
  int64_t max_queued = 0, max_in_flight = 0;  // submit limits (WalletStore::SetLimits); 0: none
};

// Tenants, their API tokens and which tenant owns each batch id, under "<prefix>:{q}:auth:"
// (the queue's hash tag, so a script can set a tenant's dispatch weight with its record).
// Tokens are stored only as their SHA-256 (hex); this class never sees a token itself.
// Multi-key changes are Lua scripts (queue/lua/auth_*.lua).
//
// Keys: auth:tenants (set of names); auth:tenant:<name> (hash created_ms, weight);
// auth:tokens:<name> (hash token id -> "<hash> <created_ms>"); auth:token:<hash> (hash tenant,
// id); auth:batch:<batch id> (the owning tenant).
class AuthStore {
 public:
  AuthStore(redis::ConnectionPtr connection, std::string prefix);

  // kFailedPrecondition "tenant '<name>' already exists".
  awaitable<Result<TenantEntry>> CreateTenant(std::string name, double weight, int64_t now_ms);
  awaitable<Result<std::vector<TenantEntry>>> ListTenants();
  // Adds a token to `tenant`; with `replaces_id`, removes that token in the same step (rotation).
  // kNotFound naming the tenant or the token id.
  awaitable<Result<TokenEntry>> AddToken(std::string tenant, std::string token_hash,
                                         std::string replaces_id, int64_t now_ms);
  // kNotFound naming the tenant or the token id.
  awaitable<Result<void>> RevokeToken(std::string tenant, std::string token_id);
  // Sets the tenant's dispatch weight (also in the queue's weights hash). kNotFound.
  awaitable<Result<void>> SetWeight(std::string tenant, double weight);
  // Copies every tenant's stored weight into the queue's weights hash (after a scheduler has
  // published its configured weights: an admin's later choice wins).
  awaitable<Result<void>> ApplyWeights();

  // The tenant of a token hash; nullopt when no such token (never issued, or revoked).
  awaitable<Result<std::optional<std::string>>> TenantOfToken(std::string token_hash);

  // Claims `batch_id` for `tenant` if nobody owns it yet; returns the owner (maybe another).
  // `ttl_ms` > 0: a new claim expires after that long unless a job is stored under the id
  // first (auth_claim_batch.lua). kInvalidRequest naming the id when nobody owns it but its
  // batch already holds jobs (stored while authentication was off).
  awaitable<Result<std::string>> ClaimBatch(std::string batch_id, std::string tenant,
                                            int64_t ttl_ms = 0);
  // The owner of a batch id; empty when unclaimed.
  awaitable<Result<std::string>> BatchOwner(std::string batch_id);

 private:
  awaitable<Result<redis::Reply>> Run(const redis::Function& script, std::vector<std::string> args);

  redis::ConnectionPtr connection_;
  std::string p_;  // "<prefix>:{q}"
};

}  // namespace reelq::queue
