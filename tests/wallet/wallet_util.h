#pragma once

// Shared by the wallet_ tests: an authenticated stack, tenants with topped-up wallets, and the
// wallet's invariants.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "auth_util.h"
#include "stack.h"

namespace reelq::testing::wallet {

namespace v1 = reelq::v1;

inline constexpr const char* kAdminToken = "admin-token-for-wallet-tests-5d1b8e7a20";
// deploy/catalogue.yaml: seedance-2.0 $0.10/s, kling-3.0 $0.112/s, veo-3.1 $0.40/s.
inline constexpr int64_t kSeedancePerSecond = 100'000;
inline constexpr int64_t kKlingPerSecond = 112'000;
inline constexpr int64_t kVeoPerSecond = 400'000;

inline E2eStackOptions AuthedOptions(int schedulers, int workers) {
  E2eStackOptions options{.schedulers = schedulers, .workers = workers};
  options.extra_yaml = "auth:\n  admin_tokens:\n    - {env: REELQ_TEST_ADMIN_TOKEN}\n";
  options.env["REELQ_TEST_ADMIN_TOKEN"] = kAdminToken;
  return options;
}

// Creates the tenant, issues a token (returned) and tops its wallet up by `micros` (0: none).
inline std::string NewTenant(E2eStack& stack, const std::string& name, int64_t micros) {
  auto admin = v1::AdminService::NewStub(stack.Channel(0));
  v1::CreateTenantRequest create;
  create.set_name(name);
  v1::Tenant tenant;
  auto status = admin->CreateTenant(Authed(kAdminToken).get(), create, &tenant);
  EXPECT_TRUE(status.ok()) << status.error_message();
  v1::CreateTokenRequest issue;
  issue.set_tenant(name);
  v1::IssuedToken token;
  status = admin->CreateToken(Authed(kAdminToken).get(), issue, &token);
  EXPECT_TRUE(status.ok()) << status.error_message();
  if (micros > 0) {
    v1::TopUpRequest top_up;
    top_up.set_tenant(name);
    top_up.set_amount_micros(micros);
    v1::Wallet wallet;
    status = admin->TopUp(Authed(kAdminToken).get(), top_up, &wallet);
    EXPECT_TRUE(status.ok()) << status.error_message();
  }
  return token.token();
}

inline v1::Wallet WalletOf(E2eStack& stack, const std::string& tenant, uint32_t ledger = 10000) {
  auto jobs = v1::JobService::NewStub(stack.Channel(0));
  v1::GetWalletRequest req;
  req.set_tenant(tenant);
  req.set_ledger_limit(ledger);
  v1::Wallet wallet;
  auto status = jobs->GetWallet(Authed(kAdminToken).get(), req, &wallet);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return wallet;
}

inline v1::JobSpec Spec(const std::string& model, int seconds, const std::string& prompt) {
  v1::JobSpec spec;
  spec.set_prompt(prompt);
  spec.add_models(model);
  spec.set_duration_seconds(seconds);
  return spec;
}

// GetJob (as the admin) until every id has ended or `timeout` passes; the last status seen per
// id. (E2eStack::WaitTerminal calls without a token.)
inline std::map<std::string, v1::JobStatus> WaitEnded(E2eStack& stack,
                                                      const std::vector<std::string>& ids,
                                                      std::chrono::seconds timeout) {
  auto jobs = v1::JobService::NewStub(stack.Channel(0));
  std::map<std::string, v1::JobStatus> last;
  const auto give_up = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    bool all = true;
    for (const auto& id : ids) {
      auto& seen = last[id];
      if (seen.state() == v1::JOB_STATE_SUCCEEDED || seen.state() == v1::JOB_STATE_FAILED ||
          seen.state() == v1::JOB_STATE_CANCELLED) {
        continue;
      }
      v1::GetJobRequest req;
      req.set_job_id(id);
      v1::JobStatus status;
      if (jobs->GetJob(Authed(kAdminToken).get(), req, &status).ok()) seen = status;
      all =
          all && (seen.state() == v1::JOB_STATE_SUCCEEDED || seen.state() == v1::JOB_STATE_FAILED ||
                  seen.state() == v1::JOB_STATE_CANCELLED);
    }
    if (all || std::chrono::steady_clock::now() > give_up) return last;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

// Once every job has ended: nothing reserved, available + spent = top-ups to the micro-dollar,
// the ledger's amounts sum to the balance and its charges to what was spent.
inline void ExpectSettled(const v1::Wallet& w) {
  EXPECT_EQ(w.reserved_micros(), 0);
  EXPECT_EQ(w.available_micros() + w.spent_micros(), w.topped_up_micros());
  int64_t amounts = 0, charges = 0, topups = 0;
  for (const auto& e : w.ledger()) {
    amounts += e.amount_micros();
    charges += e.charge_micros();
    if (e.kind() == "topup") topups += e.amount_micros();
  }
  EXPECT_EQ(amounts, w.available_micros()) << "the ledger's amounts do not sum to the balance";
  EXPECT_EQ(charges, w.spent_micros()) << "the ledger's charges do not sum to what was spent";
  EXPECT_EQ(topups, w.topped_up_micros());
  if (!w.ledger().empty()) {
    EXPECT_EQ(w.ledger(w.ledger_size() - 1).balance_micros(), w.available_micros());
  }
}

// The ledger entries of one job, oldest first, as "kind:amount:charge".
inline std::vector<std::string> LedgerOf(const v1::Wallet& w, const std::string& job) {
  std::vector<std::string> out;
  for (const auto& e : w.ledger()) {
    if (e.job_id() == job) {
      out.push_back(e.kind() + ":" + std::to_string(e.amount_micros()) + ":" +
                    std::to_string(e.charge_micros()));
    }
  }
  return out;
}

}  // namespace reelq::testing::wallet
