#include "reelq/queue/wallet_store.h"

#include <algorithm>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <map>
#include <optional>

#include "job_codec.h"
#include "lua_library.h"
#include "lua_scripts.h"
#include "script_replies.h"

namespace reelq::queue {
namespace {

using redis::Reply;

std::map<std::string, std::string> FlatToMap(const Reply& flat) {
  std::map<std::string, std::string> out;
  for (size_t i = 0; i + 1 < flat.elements.size(); i += 2) {
    out[flat.elements[i].str] = flat.elements[i + 1].type == Reply::Type::kInteger
                                    ? std::to_string(flat.elements[i + 1].integer)
                                    : flat.elements[i + 1].str;
  }
  return out;
}

// The month key common_groups.lua writes ("sm:YYYY-MM") for the UTC day of `now_ms`.
std::string MonthKey(int64_t now_ms) {
  const std::chrono::sys_days day{std::chrono::days{now_ms / 86'400'000}};
  const std::chrono::year_month_day ymd{day};
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%04d-%02u", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()));
  return buf;
}

Error NoTenant(const std::string& tenant) {
  return Error{ErrorCategory::kNotFound, "tenant: no tenant named '" + tenant + "'"};
}

}  // namespace

std::string FormatMicros(int64_t micros) {
  const bool negative = micros < 0;
  const uint64_t v = negative ? 0 - static_cast<uint64_t>(micros) : static_cast<uint64_t>(micros);
  char buf[48];
  std::snprintf(buf, sizeof(buf), "%s$%llu.%06llu", negative ? "-" : "",
                static_cast<unsigned long long>(v / 1'000'000),
                static_cast<unsigned long long>(v % 1'000'000));
  return buf;
}

WalletStore::WalletStore(redis::ConnectionPtr connection, std::string prefix)
    : connection_(std::move(connection)), p_(std::move(prefix) + ":{q}") {}

awaitable<Result<Reply>> WalletStore::Run(const redis::Function& script,
                                          std::vector<std::string> args) {
  args.insert(args.begin(), p_);
  // (A named vector: g++ 12 miscompiles braced lists inside co_await expressions.)
  std::vector<std::string> keys{p_ + ":meta"};
  auto reply = co_await script.Call(*connection_, std::move(keys), std::move(args));
  co_return reply;
}

awaitable<Result<WalletView>> WalletStore::TopUp(std::string tenant, int64_t amount_micros,
                                                 int64_t now_ms, std::string request_id) {
  if (request_id.size() > 128 ||
      std::any_of(request_id.begin(), request_id.end(),
                  [](unsigned char c) { return c < 0x21 || c > 0x7e; })) {
    co_return MakeError(ErrorCategory::kInvalidRequest,
                        "request_id: at most 128 printable ASCII characters without spaces");
  }
  if (amount_micros <= 0) {
    co_return MakeError(ErrorCategory::kInvalidRequest,
                        "amount_micros: must be positive, got " + std::to_string(amount_micros));
  }
  if (amount_micros > kMaxWalletMicros) {
    co_return MakeError(ErrorCategory::kInvalidRequest,
                        "amount_micros: at most " + std::to_string(kMaxWalletMicros) + " (" +
                            FormatMicros(kMaxWalletMicros) + ") per wallet");
  }
  std::vector<std::string> args{tenant,
                                std::to_string(amount_micros),
                                std::to_string(now_ms),
                                std::to_string(kMaxWalletMicros),
                                request_id,
                                std::to_string(kTopUpRequestIdSeconds),
                                "sd:" + std::to_string(now_ms / 86'400'000),
                                "sm:" + MonthKey(now_ms)};
  const uint64_t written_in = connection_->Session();
  auto r = co_await Run(LuaFunction(lua::k_wallet_topup), std::move(args));
  if (!r) co_return std::unexpected(r.error());
  if (r->IsError()) {
    if (r->str.find("NOTENANT") != std::string::npos) co_return std::unexpected(NoTenant(tenant));
    if (const auto at = r->str.find("OVERFLOW "); at != std::string::npos) {
      co_return MakeError(ErrorCategory::kInvalidRequest,
                          "amount_micros: the wallet of '" + tenant + "' holds " +
                              FormatMicros(ToInt(r->str.substr(at + 9))) + "; adding " +
                              FormatMicros(amount_micros) +
                              " would pass the most a wallet holds (" +
                              FormatMicros(kMaxWalletMicros) + ")");
    }
    if (const auto at = r->str.find("IDCONFLICT "); at != std::string::npos) {
      co_return MakeError(ErrorCategory::kFailedPrecondition,
                          "request_id: '" + request_id + "' was already used for a top-up of " +
                              FormatMicros(ToInt(r->str.substr(at + 11))) + " to '" + tenant +
                              "', not " + FormatMicros(amount_micros) +
                              "; use a new request id for a different top-up");
    }
    // Anything else as every script's refusal reads (Redis out of memory: retryable).
    co_return std::unexpected(detail::ScriptError("wallet_topup", r->str));
  }
  // The answer is the script's own: the credit is made, and no second read may fail after it
  // and tell the operator it was not.
  if (r->elements.size() < 6) {
    co_return MakeError(ErrorCategory::kInternal,
                        "redis script wallet_topup answered " + std::to_string(r->elements.size()) +
                            " values, not 6; the top-up is applied: read the wallet of '" + tenant +
                            "' before sending it again");
  }
  WalletView view;
  view.tenant = tenant;
  view.exists = true;
  view.balance_micros = r->elements[0].integer;
  view.reserved_micros = r->elements[1].integer;
  view.spent_micros = r->elements[2].integer;
  view.topped_up_micros = r->elements[3].integer;
  view.spent_today_micros = r->elements[4].integer;
  view.spent_this_month_micros = r->elements[5].integer;
  // A retried top-up waits too: the first answer may have failed in this very wait. (The script
  // writes its id's key again, so that this connection's WAIT covers the credit.)
  std::string what = "the top-up of " + FormatMicros(amount_micros) + " to '" + tenant +
                     "' is applied on the master; ";
  what +=
      request_id.empty()
          ? "it had no request id: read the wallet before sending it again, or it is "
            "credited twice"
          : "send it again with the same request id ('" + request_id + "'), which credits it once";
  auto replicated = co_await Replicated(written_in, std::move(what));
  if (!replicated) co_return std::unexpected(replicated.error());
  co_return view;
}

awaitable<Result<void>> WalletStore::Replicated(uint64_t written_in, std::string what) {
  if (wait_replicas_ <= 0) co_return Result<void>{};
  // (Named: g++ 12 miscompiles temporaries passed to a coroutine inside co_await.)
  const std::optional<uint64_t> session = written_in;
  auto replicated =
      co_await redis::WaitForReplicas(*connection_, wait_replicas_, wait_timeout_, session);
  if (!replicated) {
    co_return MakeError(replicated.error().category, replicated.error().message + ": " + what);
  }
  co_return Result<void>{};
}

awaitable<Result<void>> WalletStore::SetLimits(std::string tenant, int64_t max_queued,
                                               int64_t max_in_flight) {
  if (max_queued < 0) {
    co_return MakeError(
        ErrorCategory::kInvalidRequest,
        "max_queued: must be 0 (no limit) or positive, got " + std::to_string(max_queued));
  }
  if (max_in_flight < 0) {
    co_return MakeError(
        ErrorCategory::kInvalidRequest,
        "max_in_flight: must be 0 (no limit) or positive, got " + std::to_string(max_in_flight));
  }
  std::vector<std::string> args{tenant, std::to_string(max_queued), std::to_string(max_in_flight)};
  const uint64_t written_in = connection_->Session();
  auto r = co_await Run(LuaFunction(lua::k_tenant_limits), std::move(args));
  if (!r) co_return std::unexpected(r.error());
  if (r->IsError()) {
    if (r->str.find("NOTENANT") != std::string::npos) co_return std::unexpected(NoTenant(tenant));
    co_return std::unexpected(detail::ScriptError("tenant_limits", r->str));
  }
  std::string what = "the limits of '" + tenant +
                     "' are set on the master; send them again (setting them twice is harmless)";
  co_return co_await Replicated(written_in, std::move(what));
}

awaitable<Result<WalletView>> WalletStore::Get(std::string tenant, int64_t now_ms,
                                               int64_t ledger_limit, bool require_tenant) {
  WalletView view;
  view.tenant = tenant;
  std::vector<std::string> read{"HGETALL", p_ + ":wallet:" + tenant};
  auto r = co_await connection_->Command(std::move(read));
  if (!r) co_return std::unexpected(r.error());
  if (r->IsError())
    co_return MakeError(ErrorCategory::kInternal, "redis: reading a wallet: " + r->str);
  auto fields = FlatToMap(*r);
  view.exists = fields.contains("balance");
  if (!view.exists && require_tenant) {
    // No wallet: a tenant never topped up, or no tenant at all (a typo must not read as an
    // unbilled tenant).
    std::vector<std::string> member{"SISMEMBER", p_ + ":auth:tenants", tenant};
    auto known = co_await connection_->Command(std::move(member));
    if (!known) co_return std::unexpected(known.error());
    if (known->IsError())
      co_return MakeError(ErrorCategory::kInternal, "redis: reading the tenants: " + known->str);
    if (known->integer == 0) co_return std::unexpected(NoTenant(tenant));
  }
  view.balance_micros = ToInt(fields["balance"]);
  view.reserved_micros = ToInt(fields["reserved"]);
  view.spent_micros = ToInt(fields["spent"]);
  view.topped_up_micros = ToInt(fields["topups"]);
  view.spent_today_micros = ToInt(fields["sd:" + std::to_string(now_ms / 86'400'000)]);
  view.spent_this_month_micros = ToInt(fields["sm:" + MonthKey(now_ms)]);
  if (ledger_limit == 0) co_return view;
  std::vector<std::string> range{"XREVRANGE", p_ + ":ledger:" + tenant, "+", "-"};
  if (ledger_limit > 0) {
    range.push_back("COUNT");
    range.push_back(std::to_string(ledger_limit));
  }
  auto entries = co_await connection_->Command(std::move(range));
  if (!entries) co_return std::unexpected(entries.error());
  for (auto it = entries->elements.rbegin(); it != entries->elements.rend(); ++it) {
    if (it->elements.size() < 2) continue;
    auto e = FlatToMap(it->elements[1]);
    view.ledger.push_back(LedgerEntry{.id = it->elements[0].str,
                                      .kind = e["kind"],
                                      .job_id = e["job"],
                                      .model = e["model"],
                                      .amount_micros = ToInt(e["amount"]),
                                      .charge_micros = ToInt(e["charge"]),
                                      .hold_micros = ToInt(e["hold"]),
                                      .balance_micros = ToInt(e["balance"]),
                                      .reserved_micros = ToInt(e["reserved"]),
                                      .at_ms = ToInt(e["at"])});
  }
  co_return view;
}

}  // namespace reelq::queue
