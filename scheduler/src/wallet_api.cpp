// The wallet's edge (issue 12): a tenant reads its wallet and ledger (JobService.GetWallet); an
// admin tops wallets up and sets a tenant's submit limits (AdminService.TopUp, SetLimits).
// Money moves only in the queue's scripts (queue/lua/common_groups.lua, move_money).
#include <google/protobuf/util/time_util.h>

#include "reelq/scheduler/admin_api.h"
#include "reelq/scheduler/grpc_auth.h"
#include "reelq/scheduler/grpc_services.h"
#include "reelq/scheduler/job_api.h"

namespace reelq::scheduler {
namespace {

using google::protobuf::util::TimeUtil;

constexpr uint32_t kDefaultLedgerEntries = 50;
constexpr uint32_t kMaxLedgerEntries = 10000;

v1::Wallet ToWallet(const queue::WalletView& w) {
  v1::Wallet out;
  out.set_tenant(w.tenant);
  out.set_enforced(w.exists);
  out.set_available_micros(w.balance_micros);
  out.set_reserved_micros(w.reserved_micros);
  out.set_spent_micros(w.spent_micros);
  out.set_topped_up_micros(w.topped_up_micros);
  out.set_spent_today_micros(w.spent_today_micros);
  out.set_spent_this_month_micros(w.spent_this_month_micros);
  for (const auto& e : w.ledger) {
    auto* entry = out.add_ledger();
    entry->set_kind(e.kind);
    entry->set_job_id(e.job_id);
    entry->set_model(e.model);
    entry->set_amount_micros(e.amount_micros);
    entry->set_charge_micros(e.charge_micros);
    entry->set_hold_micros(e.hold_micros);
    entry->set_balance_micros(e.balance_micros);
    entry->set_reserved_micros(e.reserved_micros);
    *entry->mutable_at() = TimeUtil::MillisecondsToTimestamp(e.at_ms);
  }
  return out;
}

Result<void> RequireWalletAdmin(const Principal& who, queue::WalletStore* wallets,
                                const std::string& tenant) {
  if (!who.is_admin) {
    return MakeError(ErrorCategory::kAuthFailed,
                     "authorization: the AdminService needs an admin token, not a tenant's");
  }
  if (wallets == nullptr) {
    return MakeError(ErrorCategory::kFailedPrecondition, "this scheduler has no wallet store");
  }
  if (tenant.empty()) return MakeError(ErrorCategory::kInvalidRequest, "tenant: required");
  return {};
}

}  // namespace

awaitable<Result<v1::Wallet>> JobApi::GetWallet(Principal who, v1::GetWalletRequest request) {
  if (wallets_ == nullptr) {
    co_return MakeError(ErrorCategory::kFailedPrecondition, "this scheduler has no wallet store");
  }
  std::string tenant = request.tenant();
  if (!who.is_admin) {
    if (!tenant.empty() && tenant != who.tenant) {
      co_return MakeError(ErrorCategory::kAuthFailed,
                          "tenant: the request names another tenant than the token's ('" +
                              who.tenant + "'); leave tenant empty or name your own");
    }
    tenant = who.tenant;
  }
  if (tenant.empty()) co_return MakeError(ErrorCategory::kInvalidRequest, "tenant: required");
  if (request.ledger_limit() > kMaxLedgerEntries) {
    co_return MakeError(ErrorCategory::kInvalidRequest,
                        "ledger_limit: at most " + std::to_string(kMaxLedgerEntries));
  }
  const int64_t limit =
      request.ledger_limit() == 0 ? kDefaultLedgerEntries : request.ledger_limit();
  // With authentication on, tenants are the admin's: a name that is none is NOT_FOUND, not an
  // unbilled wallet. Off, a tenant is whatever a request names, and nothing is billed.
  const bool require_tenant = !who.open;
  auto view = co_await wallets_->Get(tenant, clock_->NowMs(), limit, require_tenant);
  if (!view) co_return std::unexpected(view.error());
  co_return ToWallet(*view);
}

awaitable<Result<v1::Wallet>> AdminApi::TopUp(Principal who, v1::TopUpRequest request) {
  if (auto ok = RequireWalletAdmin(who, wallets_, request.tenant()); !ok) {
    co_return std::unexpected(ok.error());
  }
  auto view = co_await wallets_->TopUp(request.tenant(), request.amount_micros(), clock_->NowMs(),
                                       request.request_id());
  if (!view) co_return std::unexpected(view.error());
  co_return ToWallet(*view);
}

awaitable<Result<v1::Tenant>> AdminApi::SetLimits(Principal who, v1::SetLimitsRequest request) {
  if (auto ok = RequireWalletAdmin(who, wallets_, request.tenant()); !ok) {
    co_return std::unexpected(ok.error());
  }
  auto set =
      co_await wallets_->SetLimits(request.tenant(), request.max_queued(), request.max_in_flight());
  if (!set) co_return std::unexpected(set.error());
  auto tenants = co_await store_.ListTenants();
  if (!tenants) co_return std::unexpected(tenants.error());
  for (const auto& t : *tenants) {
    if (t.name == request.tenant()) co_return ToTenant(t);
  }
  co_return MakeError(ErrorCategory::kNotFound,
                      "tenant: no tenant named '" + request.tenant() + "'");
}

grpc::ServerUnaryReactor* JobServiceImpl::GetWallet(grpc::CallbackServerContext* context,
                                                    const v1::GetWalletRequest* request,
                                                    v1::Wallet* response) {
  return AuthedUnary(context, io_, auth_, response, [this, request = *request](Principal who) {
    return api_.GetWallet(who, request);
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::TopUp(grpc::CallbackServerContext* context,
                                                  const v1::TopUpRequest* request,
                                                  v1::Wallet* response) {
  return AuthedUnary(context, io_, auth_, response, [this, request = *request](Principal who) {
    return api_.TopUp(who, request);
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::SetLimits(grpc::CallbackServerContext* context,
                                                      const v1::SetLimitsRequest* request,
                                                      v1::Tenant* response) {
  return AuthedUnary(context, io_, auth_, response, [this, request = *request](Principal who) {
    return api_.SetLimits(who, request);
  });
}

}  // namespace reelq::scheduler
