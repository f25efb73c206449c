#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "reelq/common/asio.h"
#include "reelq/common/error.h"
#include "reelq/common/redis.h"

namespace reelq::queue {

// "$12.345678": micro-dollars as dollars, exactly.
std::string FormatMicros(int64_t micros);

// The largest balance (and the largest total of top-ups) a wallet may hold: $1,000,000,000 in
// micro-dollars, far below 2^53, so the Lua scripts' numbers stay exact.
inline constexpr int64_t kMaxWalletMicros = 1'000'000'000'000'000;

// One movement of a tenant's money (the ledger is append-only, newest last).
struct LedgerEntry {
  std::string id;    // the stream id ("<ms>-<n>")
  std::string kind;  // topup, reserve, reprice, settle, refund
  std::string job_id;
  std::string model;
  int64_t amount_micros = 0;   // the change of the available balance (the amounts sum to it)
  int64_t charge_micros = 0;   // spent by this movement (settle)
  int64_t hold_micros = 0;     // the job's reservation after it
  int64_t balance_micros = 0;  // available after it
  int64_t reserved_micros = 0;
  int64_t at_ms = 0;
};

struct WalletView {
  std::string tenant;
  bool exists = false;         // never topped up: the tenant's jobs are not billed
  int64_t balance_micros = 0;  // available
  int64_t reserved_micros = 0;
  int64_t spent_micros = 0;
  int64_t topped_up_micros = 0;
  int64_t spent_today_micros = 0;       // UTC day
  int64_t spent_this_month_micros = 0;  // UTC month
  std::vector<LedgerEntry> ledger;      // the newest `ledger_limit`, oldest first
};

// Tenants' wallets and submit limits (issue 12). The money itself moves only inside the job
// scripts (common_groups.lua, move_money); this class tops up, sets limits and reads.
// Keys: wallet:<tenant> (hash), ledger:<tenant> (stream), auth:tenant:<name> fields max_queued,
// max_in_flight.
class WalletStore {
 public:
  WalletStore(redis::ConnectionPtr connection, std::string prefix);

  // redis.wait_replicas: a top-up (a retried one too) and a SetLimits are answered only once
  // `replicas` replicas have them (WAIT on this store's connection). When they do not confirm
  // within `timeout`: kRetryable saying the change is made on the master and how to send it
  // again safely (a top-up with the same request id credits once).
  void RequireReplicas(int replicas, std::chrono::milliseconds timeout) {
    wait_replicas_ = replicas;
    wait_timeout_ = timeout;
  }

  // kInvalidRequest for an amount <= 0 or one that would take the wallet past
  // kMaxWalletMicros, or a malformed request id; kNotFound for an unknown tenant. Changes
  // nothing then. A non-empty `request_id` already used for this tenant (within
  // kTopUpRequestIdSeconds) credits nothing again and answers the wallet as it is.
  awaitable<Result<WalletView>> TopUp(std::string tenant, int64_t amount_micros, int64_t now_ms,
                                      std::string request_id = "");
  static constexpr int64_t kTopUpRequestIdSeconds = 7 * 24 * 3600;
  // 0: no limit. kInvalidRequest for a negative one; kNotFound for an unknown tenant.
  awaitable<Result<void>> SetLimits(std::string tenant, int64_t max_queued, int64_t max_in_flight);
  // The wallet at `now_ms` with its newest `ledger_limit` entries (0: none; -1: every entry).
  // A tenant never topped up has an empty wallet (exists false: not billed); with
  // `require_tenant` (authentication on, where tenants are made by the admin), one that is not
  // a tenant at all is kNotFound instead. Without it (authentication off: a tenant is whatever
  // a request names) any name reads.
  awaitable<Result<WalletView>> Get(std::string tenant, int64_t now_ms, int64_t ledger_limit,
                                    bool require_tenant = false);

 private:
  awaitable<Result<redis::Reply>> Run(const redis::Function& script, std::vector<std::string> args);

  // WAIT for the writes sent since `written_in` (a Session()); `what` says what was written
  // and how to send it again, for the error.
  awaitable<Result<void>> Replicated(uint64_t written_in, std::string what);

  redis::ConnectionPtr connection_;
  std::string p_;  // "<prefix>:{q}"
  int wait_replicas_ = 0;
  std::chrono::milliseconds wait_timeout_{0};
};

}  // namespace reelq::queue
