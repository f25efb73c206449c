#include "reelq/queue/webhook_store.h"

#include <charconv>
#include <map>

#include "lua_library.h"
#include "lua_scripts.h"

namespace reelq::queue {
namespace {

int64_t ToInt(std::string_view s) {
  int64_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

const char* OutcomeName(DeliveryOutcome outcome) {
  switch (outcome) {
    case DeliveryOutcome::kDelivered:
      return "delivered";
    case DeliveryOutcome::kRetry:
      return "retry";
    case DeliveryOutcome::kFailed:
      return "failed";
  }
  return "retry";
}

Error ScriptError(std::string_view script, const std::string& message) {
  return Error{ErrorCategory::kInternal, "redis script " + std::string(script) + ": " + message};
}

}  // namespace

WebhookStore::WebhookStore(redis::ConnectionPtr connection, std::string prefix)
    : connection_(std::move(connection)), p_(std::move(prefix) + ":{q}") {}

awaitable<Result<ClaimResult>> WebhookStore::Claim(int64_t now_ms, int64_t lease_ms, int limit,
                                                   ClaimFairness fairness) {
  std::vector<std::string> keys{p_ + ":whdue"};
  std::vector<std::string> args{p_,
                                std::to_string(now_ms),
                                std::to_string(lease_ms),
                                std::to_string(limit),
                                std::to_string(fairness.per_tenant),
                                std::to_string(fairness.defer_ms),
                                std::to_string(fairness.scan)};
  for (const auto& [tenant, n] : fairness.in_flight) {
    if (n <= 0) continue;
    args.push_back(tenant);
    args.push_back(std::to_string(n));
  }
  auto reply = co_await LuaFunction(lua::k_webhook_claim)
                   .Call(*connection_, std::move(keys), std::move(args));
  if (!reply) co_return std::unexpected(reply.error());
  if (reply->IsError()) co_return std::unexpected(ScriptError("webhook_claim", reply->str));
  ClaimResult out;
  const auto& e = reply->elements;
  auto text = [](const redis::Reply& r) {
    return r.type == redis::Reply::Type::kInteger ? std::to_string(r.integer) : r.str;
  };
  if (e.empty()) co_return out;
  out.more = text(e[0]) == "1";
  for (size_t i = 1; i + 5 < e.size(); i += 6) {
    ClaimedDelivery d;
    d.id = text(e[i]);
    d.url = text(e[i + 1]);
    d.tenant = text(e[i + 2]);
    d.body = text(e[i + 3]);
    d.attempts = static_cast<int>(ToInt(text(e[i + 4])));
    d.created_ms = ToInt(text(e[i + 5]));
    out.deliveries.push_back(std::move(d));
  }
  co_return out;
}

awaitable<Result<void>> WebhookStore::Settle(std::string id, DeliveryOutcome outcome, int status,
                                             std::string error, int64_t now_ms, int64_t next_at_ms,
                                             int64_t keep_s) {
  std::vector<std::string> keys{p_ + ":whdue"};
  std::vector<std::string> args{p_,
                                std::to_string(now_ms),
                                std::move(id),
                                OutcomeName(outcome),
                                std::to_string(status),
                                std::move(error),
                                std::to_string(next_at_ms),
                                std::to_string(keep_s)};
  auto reply = co_await LuaFunction(lua::k_webhook_settle)
                   .Call(*connection_, std::move(keys), std::move(args));
  if (!reply) co_return std::unexpected(reply.error());
  if (reply->IsError()) co_return std::unexpected(ScriptError("webhook_settle", reply->str));
  co_return Result<void>{};
}

awaitable<Result<std::optional<DeliveryState>>> WebhookStore::Latest(std::string kind,
                                                                     std::string id) {
  std::vector<std::string> keys{p_ + ":whdue"};
  std::vector<std::string> args{p_, std::move(kind), std::move(id)};
  auto reply =
      co_await LuaFunction(lua::k_webhook_get).Call(*connection_, std::move(keys), std::move(args));
  if (!reply) co_return std::unexpected(reply.error());
  if (reply->IsError()) co_return std::unexpected(ScriptError("webhook_get", reply->str));
  if (reply->elements.empty()) co_return std::optional<DeliveryState>{};
  std::map<std::string, std::string> f;
  for (size_t i = 0; i + 1 < reply->elements.size(); i += 2) {
    f[reply->elements[i].str] = reply->elements[i + 1].str;
  }
  DeliveryState s;
  s.id = f["id"];
  s.url = f["url"];
  s.type = f["type"];
  s.state = f["state"];
  s.attempts = static_cast<int>(ToInt(f["attempts"]));
  s.last_status = static_cast<int>(ToInt(f["last_status"]));
  s.last_error = f["last_error"];
  s.next_at_ms = ToInt(f["next_at"]);
  s.last_at_ms = ToInt(f["last_at"]);
  co_return s;
}

awaitable<Result<void>> WebhookStore::SetBatchWebhook(std::string batch_id, std::string url,
                                                      std::string tenant, bool all,
                                                      int64_t unused_ms) {
  const std::string batch_for_message = "'" + batch_id + "'";
  std::vector<std::string> keys{p_ + ":batch:" + batch_id};
  std::vector<std::string> args{p_,
                                std::move(batch_id),
                                std::move(url),
                                std::move(tenant),
                                all ? "1" : "0",
                                std::to_string(unused_ms)};
  auto reply = co_await LuaFunction(lua::k_batch_webhook)
                   .Call(*connection_, std::move(keys), std::move(args));
  if (!reply) co_return std::unexpected(reply.error());
  if (reply->IsError() && reply->str.starts_with("HASJOBS ")) {
    // "HASJOBS <total> <the webhook it has, or nothing>"
    const std::string rest = reply->str.substr(8);
    const auto space = rest.find(' ');
    const std::string total = rest.substr(0, space);
    const std::string had = space == std::string::npos ? "" : rest.substr(space + 1);
    co_return MakeError(
        ErrorCategory::kInvalidRequest,
        "batch_webhook_url: batch " + batch_for_message + " already holds " + total +
            " jobs, stored " +
            (had.empty() ? std::string("without a webhook")
                         : "with another webhook (or other batch_webhook_events)") +
            ", which would not report to this one; name the webhook with the batch's first "
            "items, or use a new batch id");
  }
  if (reply->IsError()) co_return std::unexpected(ScriptError("batch_webhook", reply->str));
  co_return Result<void>{};
}

awaitable<Result<std::string>> WebhookStore::Secret(std::string tenant, std::string fresh) {
  const std::string key = p_ + ":whsecret";
  std::vector<std::string> get{"HGET", key, tenant};
  auto stored = co_await connection_->Command(std::move(get));
  if (!stored) co_return std::unexpected(stored.error());
  if (!stored->IsNil() && !stored->IsError() && !stored->str.empty()) co_return stored->str;
  // The first use: another scheduler may make one at the same moment; HSETNX keeps one.
  std::vector<std::string> set{"HSETNX", key, tenant, fresh};
  auto written = co_await connection_->Command(std::move(set));
  if (!written) co_return std::unexpected(written.error());
  if (written->IsError()) {
    co_return MakeError(ErrorCategory::kInternal, "redis HSETNX webhook secret: " + written->str);
  }
  if (written->integer == 1) co_return fresh;
  std::vector<std::string> again{"HGET", key, tenant};
  auto kept = co_await connection_->Command(std::move(again));
  if (!kept) co_return std::unexpected(kept.error());
  if (kept->IsNil() || kept->str.empty()) {
    co_return MakeError(ErrorCategory::kInternal,
                        "webhook secret of tenant '" + tenant + "' vanished from redis");
  }
  co_return kept->str;
}

awaitable<Result<std::string>> WebhookStore::RotateSecret(std::string tenant, std::string fresh,
                                                          int64_t now_ms, int64_t overlap_ms) {
  std::vector<std::string> keys{p_ + ":whsecret", p_ + ":whsecret_prev"};
  std::vector<std::string> args{p_, std::move(tenant), std::move(fresh), std::to_string(now_ms),
                                std::to_string(overlap_ms)};
  auto reply = co_await LuaFunction(lua::k_webhook_rotate)
                   .Call(*connection_, std::move(keys), std::move(args));
  if (!reply) co_return std::unexpected(reply.error());
  if (reply->IsError()) co_return std::unexpected(ScriptError("webhook_rotate", reply->str));
  co_return reply->str;
}

awaitable<Result<std::optional<std::string>>> WebhookStore::PreviousSecret(std::string tenant,
                                                                           int64_t now_ms) {
  std::vector<std::string> get{"HGET", p_ + ":whsecret_prev", std::move(tenant)};
  auto stored = co_await connection_->Command(std::move(get));
  if (!stored) co_return std::unexpected(stored.error());
  if (stored->IsNil() || stored->IsError()) co_return std::optional<std::string>();
  const auto bar = stored->str.rfind('|');
  if (bar == std::string::npos || ToInt(stored->str.substr(bar + 1)) <= now_ms) {
    co_return std::optional<std::string>();
  }
  co_return std::optional<std::string>(stored->str.substr(0, bar));
}

}  // namespace reelq::queue
