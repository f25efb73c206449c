#include "reelq/queue/auth_store.h"

#include <algorithm>
#include <charconv>
#include <map>
#include <sstream>

#include "job_codec.h"
#include "lua_library.h"
#include "lua_scripts.h"
#include "script_replies.h"

namespace reelq::queue {
namespace {

using redis::Reply;

std::string Num(double v) {
  std::ostringstream out;
  out.precision(17);
  out << v;
  return out.str();
}

std::map<std::string, std::string> FlatToMap(const Reply& flat) {
  std::map<std::string, std::string> out;
  for (size_t i = 0; i + 1 < flat.elements.size(); i += 2) {
    out[flat.elements[i].str] = flat.elements[i + 1].str;
  }
  return out;
}

// The one place the auth scripts' error replies become reelq errors.
Error AuthScriptError(std::string_view script, const std::string& message,
                      const std::string& tenant, const std::string& token_id) {
  auto has = [&](std::string_view word) { return message.find(word) != std::string::npos; };
  if (has("EXISTS")) {
    return Error{ErrorCategory::kInvalidRequest, "name: tenant '" + tenant + "' already exists"};
  }
  if (has("NOTENANT"))
    return Error{ErrorCategory::kNotFound, "tenant: no tenant named '" + tenant + "'"};
  if (has("NOTOKEN")) {
    return Error{ErrorCategory::kNotFound,
                 "token_id: tenant '" + tenant + "' has no token '" + token_id + "'"};
  }
  // Anything else as every script's refusal reads: Redis out of memory is retryable
  // (RESOURCE_EXHAUSTED), so a batch item refused by it reads as "not stored, send it again".
  return detail::ScriptError(script, message);
}

}  // namespace

AuthStore::AuthStore(redis::ConnectionPtr connection, std::string prefix)
    : connection_(std::move(connection)), p_(std::move(prefix) + ":{q}") {}

awaitable<Result<Reply>> AuthStore::Run(const redis::Function& script,
                                        std::vector<std::string> args) {
  args.insert(args.begin(), p_);
  // (A named vector: g++ 12 miscompiles braced lists inside co_await expressions.)
  std::vector<std::string> keys{p_ + ":meta"};
  auto reply = co_await script.Call(*connection_, std::move(keys), std::move(args));
  co_return reply;
}

awaitable<Result<TenantEntry>> AuthStore::CreateTenant(std::string name, double weight,
                                                       int64_t now_ms) {
  std::vector<std::string> args{name, Num(weight), std::to_string(now_ms)};
  auto r = co_await Run(LuaFunction(lua::k_auth_create_tenant), std::move(args));
  if (!r) co_return std::unexpected(r.error());
  if (r->IsError()) co_return std::unexpected(AuthScriptError("create_tenant", r->str, name, ""));
  co_return TenantEntry{.name = name, .weight = weight, .created_ms = now_ms, .tokens = {}};
}

awaitable<Result<std::vector<TenantEntry>>> AuthStore::ListTenants() {
  std::vector<std::string> members{"SMEMBERS", p_ + ":auth:tenants"};
  auto names = co_await connection_->Command(std::move(members));
  if (!names) co_return std::unexpected(names.error());
  std::vector<TenantEntry> out;
  for (const auto& n : names->elements) {
    TenantEntry t;
    t.name = n.str;
    std::vector<std::string> get_tenant{"HGETALL", p_ + ":auth:tenant:" + t.name};
    auto fields = co_await connection_->Command(std::move(get_tenant));
    if (!fields) co_return std::unexpected(fields.error());
    auto m = FlatToMap(*fields);
    t.created_ms = ToInt(m["created_ms"]);
    t.weight = ToDouble(m["weight"]);
    t.max_queued = ToInt(m["max_queued"]);
    t.max_in_flight = ToInt(m["max_in_flight"]);
    std::vector<std::string> get_tokens{"HGETALL", p_ + ":auth:tokens:" + t.name};
    auto tokens = co_await connection_->Command(std::move(get_tokens));
    if (!tokens) co_return std::unexpected(tokens.error());
    for (const auto& [id, entry] : FlatToMap(*tokens)) {
      const auto space = entry.find(' ');
      t.tokens.push_back(TokenEntry{
          .id = id, .created_ms = space == std::string::npos ? 0 : ToInt(entry.substr(space + 1))});
    }
    std::sort(t.tokens.begin(), t.tokens.end(),
              [](const auto& a, const auto& b) { return a.created_ms < b.created_ms; });
    out.push_back(std::move(t));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  co_return out;
}

awaitable<Result<TokenEntry>> AuthStore::AddToken(std::string tenant, std::string token_hash,
                                                  std::string replaces_id, int64_t now_ms) {
  const std::string id = token_hash.substr(0, 16);
  std::vector<std::string> args{tenant, token_hash, id, std::to_string(now_ms), replaces_id};
  auto r = co_await Run(LuaFunction(lua::k_auth_add_token), std::move(args));
  if (!r) co_return std::unexpected(r.error());
  if (r->IsError()) {
    co_return std::unexpected(AuthScriptError("add_token", r->str, tenant, replaces_id));
  }
  co_return TokenEntry{.id = id, .created_ms = now_ms};
}

awaitable<Result<void>> AuthStore::RevokeToken(std::string tenant, std::string token_id) {
  std::vector<std::string> args{tenant, token_id};
  auto r = co_await Run(LuaFunction(lua::k_auth_revoke_token), std::move(args));
  if (!r) co_return std::unexpected(r.error());
  if (r->IsError()) {
    co_return std::unexpected(AuthScriptError("revoke_token", r->str, tenant, token_id));
  }
  co_return Result<void>{};
}

awaitable<Result<void>> AuthStore::SetWeight(std::string tenant, double weight) {
  std::vector<std::string> args{tenant, Num(weight)};
  auto r = co_await Run(LuaFunction(lua::k_auth_set_weight), std::move(args));
  if (!r) co_return std::unexpected(r.error());
  if (r->IsError()) co_return std::unexpected(AuthScriptError("set_weight", r->str, tenant, ""));
  co_return Result<void>{};
}

awaitable<Result<void>> AuthStore::ApplyWeights() {
  std::vector<std::string> args;
  auto r = co_await Run(LuaFunction(lua::k_auth_apply_weights), std::move(args));
  if (!r) co_return std::unexpected(r.error());
  if (r->IsError()) co_return std::unexpected(AuthScriptError("apply_weights", r->str, "", ""));
  co_return Result<void>{};
}

awaitable<Result<std::optional<std::string>>> AuthStore::TenantOfToken(std::string token_hash) {
  std::vector<std::string> command{"HGET", p_ + ":auth:token:" + token_hash, "tenant"};
  auto r = co_await connection_->Command(std::move(command));
  if (!r) co_return std::unexpected(r.error());
  if (r->IsError()) {
    co_return MakeError(ErrorCategory::kInternal, "redis: reading a token: " + r->str);
  }
  if (r->IsNil() || r->str.empty()) co_return std::optional<std::string>{};
  co_return std::optional<std::string>{r->str};
}

awaitable<Result<std::string>> AuthStore::ClaimBatch(std::string batch_id, std::string tenant,
                                                     int64_t ttl_ms) {
  std::vector<std::string> args{batch_id, tenant, std::to_string(ttl_ms)};
  auto r = co_await Run(LuaFunction(lua::k_auth_claim_batch), std::move(args));
  if (!r) co_return std::unexpected(r.error());
  if (r->IsError() && r->str.find("HASJOBS") != std::string::npos) {
    co_return MakeError(ErrorCategory::kInvalidRequest,
                        "batch_id: '" + batch_id +
                            "' already holds jobs stored without an owning tenant (submitted "
                            "while authentication was off); choose another batch id");
  }
  if (r->IsError()) co_return std::unexpected(AuthScriptError("claim_batch", r->str, tenant, ""));
  co_return r->str;
}

awaitable<Result<std::string>> AuthStore::BatchOwner(std::string batch_id) {
  std::vector<std::string> command{"GET", p_ + ":auth:batch:" + batch_id};
  auto r = co_await connection_->Command(std::move(command));
  if (!r) co_return std::unexpected(r.error());
  if (r->IsError()) {
    co_return MakeError(ErrorCategory::kInternal, "redis: reading a batch owner: " + r->str);
  }
  co_return r->IsNil() ? std::string() : r->str;
}

}  // namespace reelq::queue
