// JobStore's reads at depth and its housekeeping beyond leases: ListJobs pages by cursor
// (queue/lua/list.lua), retention (queue/lua/retention.lua), and the dispatch wake-up list.
#include <openssl/rand.h>

#include <algorithm>

#include <spdlog/spdlog.h>

#include "job_codec.h"
#include "list_cursor.h"
#include "lua_library.h"
#include "lua_scripts.h"
#include "reelq/queue/job_store.h"

namespace reelq::queue {
namespace {

using redis::Reply;

int64_t Int(const Reply& r) {
  if (r.type == Reply::Type::kInteger) return r.integer;
  return std::strtoll(r.str.c_str(), nullptr, 10);
}

Fields ToFields(const Reply& flat) {
  Fields out;
  out.reserve(flat.elements.size() / 2);
  for (size_t i = 0; i + 1 < flat.elements.size(); i += 2) {
    out.emplace_back(flat.elements[i].str, flat.elements[i + 1].type == Reply::Type::kInteger
                                               ? std::to_string(flat.elements[i + 1].integer)
                                               : flat.elements[i + 1].str);
  }
  return out;
}

// Filters scanned per page at most, beyond what the chosen index covers.
constexpr int kListScanLimit = 5000;

// What a page token is bound to: the listing's filter (its page size may change between pages).
std::string Listing(const ListFilter& filter) {
  return "t=" + filter.tenant + "\x1f" + "b=" + filter.batch + "\x1f" + "m=" + filter.model +
         "\x1f" + "s=" + (filter.state ? std::string(ToString(*filter.state)) : "");
}

}  // namespace

awaitable<Result<std::string>> JobStore::ListKey(bool reread) {
  if (!list_key_.empty() && !list_key_provisional_ && !reread) co_return list_key_;
  const std::string name = p_ + ":listkey";
  // A provisional key (see below) is offered again, so it becomes the deployment's when it can.
  std::string offer = list_key_provisional_ ? list_key_ : std::string(kListKeyBytes, '\0');
  if (!list_key_provisional_ &&
      RAND_bytes(reinterpret_cast<unsigned char*>(offer.data()), kListKeyBytes) != 1) {
    co_return MakeError(ErrorCategory::kInternal, "no random bytes for the list key (OpenSSL)");
  }
  std::vector<std::string> set{"SET", name, offer, "NX"};
  auto made = co_await connection_->Command(std::move(set));
  if (!made) co_return std::unexpected(made.error());
  std::vector<std::string> get{"GET", name};
  auto r = co_await connection_->Command(std::move(get));
  if (!r) co_return std::unexpected(r.error());
  if (r->IsNil()) {
    // No key, and Redis refused to store one (out of memory: listings must still answer). This
    // process seals under its own key meanwhile; its tokens open here, and stop opening only if
    // another process stores a different key first (their listing then starts again).
    list_key_ = std::move(offer);
    list_key_provisional_ = true;
    co_return list_key_;
  }
  if (r->IsError() || r->str.size() != kListKeyBytes) {
    co_return MakeError(ErrorCategory::kFailedPrecondition,
                        "redis key " + name + " is not a list key of " +
                            std::to_string(kListKeyBytes) +
                            " bytes: delete it (a new one is made; page tokens given out before "
                            "then stop opening, and their listings start again)");
  }
  list_key_ = r->str;
  list_key_provisional_ = false;
  co_return list_key_;
}

awaitable<Result<ListPage>> JobStore::List(ListFilter filter) {
  const int size = std::clamp(filter.page_size, 1, 1000);
  auto key = co_await ListKey();
  if (!key) co_return std::unexpected(key.error());
  const std::string listing = Listing(filter);
  ListCursor after;
  if (!filter.page_token.empty()) {
    auto decoded = OpenListCursor(filter.page_token, *key, listing);
    if (!decoded) {
      // The key this process remembers may be out of date (the key in Redis lost and made
      // again by another scheduler): read it once more before refusing the token.
      auto reread = co_await ListKey(/*reread=*/true);
      if (!reread) co_return std::unexpected(reread.error());
      if (*reread != *key) {
        key = std::move(reread);
        decoded = OpenListCursor(filter.page_token, *key, listing);
      }
    }
    if (!decoded) co_return std::unexpected(decoded.error());
    after = std::move(*decoded);
  }
  // The narrowest index the filter names; what it does not cover is checked per job.
  std::string state = filter.state ? std::string(ToString(*filter.state)) : "";
  std::string model = filter.model, tenant = filter.tenant;
  std::string index;
  std::string mode = filter.batch.empty() ? "" : "batch";
  std::string index_tenant;
  if (!filter.batch.empty()) {
    // The batch's sorted set when the previous layout made it, else its ids list (list.lua).
    index = p_ + ":batch:" + filter.batch + ":jobs";
  } else if (!state.empty()) {
    // PENDING: the dispatch queues, then state:PENDING (list.lua, pending_page).
    if (*filter.state == JobState::kPending) mode = "pending";
    index = p_ + ":state:" + state;
    state.clear();
  } else if (!model.empty()) {
    index = p_ + ":model:" + model + ":jobs";
    model.clear();
  } else if (!tenant.empty()) {
    // The tenant's calls (and the previous layout's sorted set), merged by list.lua.
    index = p_ + ":tenant:" + tenant + ":jobs";
    mode = "tenant";
    index_tenant = std::move(tenant);
    tenant.clear();
  } else {
    index = "";  // every job: list.lua merges the tenants' indexes (no all-jobs index)
  }
  std::vector<std::string> args{std::move(index),
                                after.score,
                                after.id,
                                std::to_string(size),
                                state,
                                model,
                                tenant,
                                std::to_string(kListScanLimit),
                                std::move(mode),
                                std::move(index_tenant)};
  auto r = co_await Run(LuaFunction(lua::k_list), std::move(args));
  if (!r) co_return std::unexpected(r.error());
  ListPage page;
  if (r->elements.size() < 2) co_return page;
  if (!r->elements[0].str.empty()) {
    page.next_page_token = SealListCursor({r->elements[0].str, r->elements[1].str}, *key, listing);
    if (page.next_page_token.empty()) {
      co_return MakeError(ErrorCategory::kInternal, "could not seal the page token (OpenSSL)");
    }
  }
  std::vector<std::string> ids;
  for (size_t i = 2; i < r->elements.size(); ++i) ids.push_back(r->elements[i].str);
  if (ids.empty()) co_return page;
  auto rows = co_await Run(LuaFunction(lua::k_get), ids);
  if (!rows) co_return std::unexpected(rows.error());
  for (size_t i = 0; i < ids.size() && i < rows->elements.size(); ++i) {
    if (rows->elements[i].elements.empty()) continue;  // removed between the two reads
    auto job = JobRecord::Decode(ids[i], ToFields(rows->elements[i]));
    if (!job) {
      spdlog::error("ListJobs: job {} left out of its page: {}", ids[i], job.error().message);
      page.unreadable.push_back(ids[i]);
      continue;
    }
    page.jobs.push_back(std::move(*job));
  }
  co_return page;
}

awaitable<Result<RetentionOutcome>> JobStore::ExpireFinished(std::chrono::milliseconds retention,
                                                             int max) {
  const int64_t now = clock_->NowMs();
  std::vector<std::string> args{std::to_string(now), std::to_string(now - retention.count()),
                                std::to_string(std::max(1, max))};
  auto r = co_await Run(LuaFunction(lua::k_retention), std::move(args));
  if (!r) co_return std::unexpected(r.error());
  RetentionOutcome out;
  if (r->elements.size() >= 3) {
    out.jobs_removed = static_cast<int>(Int(r->elements[0]));
    out.batches_removed = static_cast<int>(Int(r->elements[1]));
    out.more = Int(r->elements[2]) != 0;
  }
  co_return out;
}

awaitable<Result<bool>> JobStore::WaitForDispatchWake(redis::Connection& blocking,
                                                      std::chrono::milliseconds timeout) {
  const double seconds = std::max<double>(0.01, timeout.count() / 1000.0);
  std::vector<std::string> command{"BLPOP", p_ + ":dwake", FormatNumber(seconds)};
  auto r = co_await blocking.Command(std::move(command), timeout + std::chrono::milliseconds(2000));
  if (!r) co_return std::unexpected(r.error());
  co_return !r->IsNil() && r->elements.size() >= 2;
}

}  // namespace reelq::queue
