#include "reelq/scheduler/admin_api.h"

#include <algorithm>
#include <cmath>

#include <google/protobuf/util/time_util.h>

#include "reelq/scheduler/admission.h"
#include "reelq/scheduler/grpc_auth.h"

namespace reelq::scheduler {
namespace {

using google::protobuf::util::TimeUtil;

constexpr size_t kMaxTenantBytes = 64;
constexpr double kMinWeight = 0.001;
constexpr double kMaxWeight = 1e6;

// The same rule admission applies to a job's tenant: it is the first part of object keys.
Result<void> CheckTenantName(std::string_view field, const std::string& name) {
  if (name.empty())
    return MakeError(ErrorCategory::kInvalidRequest, std::string(field) + ": required");
  if (name.size() > kMaxTenantBytes) {
    return MakeError(ErrorCategory::kInvalidRequest,
                     std::string(field) + ": " + std::to_string(name.size()) + " bytes — at most " +
                         std::to_string(kMaxTenantBytes) + " allowed");
  }
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) {
      return MakeError(ErrorCategory::kInvalidRequest,
                       std::string(field) + ": has a character outside [A-Za-z0-9._-] at byte " +
                           std::to_string(i));
    }
  }
  if (name.front() == '.') {
    return MakeError(ErrorCategory::kInvalidRequest,
                     std::string(field) + ": must not start with '.'");
  }
  if (name == Admission::kReservedTenant) {
    return MakeError(ErrorCategory::kInvalidRequest, Admission::ReservedTenantMessage(field));
  }
  return {};
}

Result<void> CheckTokenId(const std::string& id) {
  bool ok = id.size() == 16;
  for (char c : id) ok = ok && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
  if (!ok) {
    return MakeError(ErrorCategory::kInvalidRequest,
                     "token_id: expected 16 lower-case hex digits, as `reelq admin tenants` lists "
                     "them (the id, not the token)");
  }
  return {};
}

Result<void> CheckWeight(double weight, bool zero_allowed) {
  if (zero_allowed && weight == 0) return {};
  if (!std::isfinite(weight) || weight < kMinWeight || weight > kMaxWeight) {
    return MakeError(ErrorCategory::kInvalidRequest,
                     std::string("weight: expected a number from 0.001 to 1000000") +
                         (zero_allowed ? " (or 0 for the default)" : ""));
  }
  return {};
}

Result<void> RequireAdmin(const Principal& who) {
  if (who.is_admin) return {};
  return MakeError(ErrorCategory::kAuthFailed,
                   "authorization: the AdminService needs an admin token, not a tenant's");
}

#define REELQ_CHECK(expr)                       \
  if (auto checked = (expr); !checked) {        \
    co_return std::unexpected(checked.error()); \
  }

}  // namespace

AdminApi::AdminApi(queue::AuthStore& store, Authenticator& auth, const Settings& settings,
                   ClockPtr clock, queue::WalletStore* wallets)
    : store_(store),
      auth_(auth),
      settings_(settings),
      clock_(std::move(clock)),
      wallets_(wallets) {}

v1::Tenant AdminApi::ToTenant(const queue::TenantEntry& entry) const {
  v1::Tenant t;
  t.set_name(entry.name);
  double weight = entry.weight;
  if (weight <= 0) {
    auto configured = settings_.tenant_weights.find(entry.name);
    weight = configured == settings_.tenant_weights.end() ? settings_.default_weight
                                                          : configured->second;
  }
  t.set_weight(weight);
  *t.mutable_created_at() = TimeUtil::MillisecondsToTimestamp(entry.created_ms);
  for (const auto& token : entry.tokens) {
    auto* info = t.add_tokens();
    info->set_token_id(token.id);
    *info->mutable_created_at() = TimeUtil::MillisecondsToTimestamp(token.created_ms);
  }
  t.set_max_queued(entry.max_queued);
  t.set_max_in_flight(entry.max_in_flight);
  return t;
}

awaitable<Result<v1::Tenant>> AdminApi::CreateTenant(Principal who,
                                                     v1::CreateTenantRequest request) {
  REELQ_CHECK(RequireAdmin(who));
  REELQ_CHECK(CheckTenantName("name", request.name()));
  REELQ_CHECK(CheckWeight(request.weight(), true));
  auto created = co_await store_.CreateTenant(request.name(), request.weight(), clock_->NowMs());
  if (!created) co_return std::unexpected(created.error());
  co_return ToTenant(*created);
}

awaitable<Result<v1::ListTenantsResponse>> AdminApi::ListTenants(Principal who) {
  REELQ_CHECK(RequireAdmin(who));
  auto tenants = co_await store_.ListTenants();
  if (!tenants) co_return std::unexpected(tenants.error());
  v1::ListTenantsResponse response;
  for (const auto& t : *tenants) *response.add_tenants() = ToTenant(t);
  co_return response;
}

awaitable<Result<v1::IssuedToken>> AdminApi::Issue(std::string tenant, std::string replaces_id) {
  auto token = NewTenantToken();
  if (!token) co_return std::unexpected(token.error());
  auto added = co_await store_.AddToken(tenant, HashToken(*token), replaces_id, clock_->NowMs());
  if (!added) co_return std::unexpected(added.error());
  if (!replaces_id.empty()) auth_.ForgetCached();
  v1::IssuedToken issued;
  issued.set_tenant(tenant);
  issued.set_token_id(added->id);
  issued.set_token(std::move(*token));
  co_return issued;
}

awaitable<Result<v1::IssuedToken>> AdminApi::CreateToken(Principal who,
                                                         v1::CreateTokenRequest request) {
  REELQ_CHECK(RequireAdmin(who));
  REELQ_CHECK(CheckTenantName("tenant", request.tenant()));
  co_return co_await Issue(request.tenant(), "");
}

awaitable<Result<v1::IssuedToken>> AdminApi::RotateToken(Principal who,
                                                         v1::RotateTokenRequest request) {
  REELQ_CHECK(RequireAdmin(who));
  REELQ_CHECK(CheckTenantName("tenant", request.tenant()));
  REELQ_CHECK(CheckTokenId(request.token_id()));
  co_return co_await Issue(request.tenant(), request.token_id());
}

awaitable<Result<v1::RevokeTokenResponse>> AdminApi::RevokeToken(Principal who,
                                                                 v1::RevokeTokenRequest request) {
  REELQ_CHECK(RequireAdmin(who));
  REELQ_CHECK(CheckTenantName("tenant", request.tenant()));
  REELQ_CHECK(CheckTokenId(request.token_id()));
  auto revoked = co_await store_.RevokeToken(request.tenant(), request.token_id());
  if (!revoked) co_return std::unexpected(revoked.error());
  // This scheduler refuses the token at once; the others when their cache entry expires.
  auth_.ForgetCached();
  co_return v1::RevokeTokenResponse{};
}

awaitable<Result<v1::Tenant>> AdminApi::SetWeight(Principal who, v1::SetWeightRequest request) {
  REELQ_CHECK(RequireAdmin(who));
  REELQ_CHECK(CheckTenantName("tenant", request.tenant()));
  REELQ_CHECK(CheckWeight(request.weight(), false));
  auto set = co_await store_.SetWeight(request.tenant(), request.weight());
  if (!set) co_return std::unexpected(set.error());
  auto tenants = co_await store_.ListTenants();
  if (!tenants) co_return std::unexpected(tenants.error());
  for (const auto& t : *tenants) {
    if (t.name == request.tenant()) co_return ToTenant(t);
  }
  co_return MakeError(ErrorCategory::kNotFound,
                      "tenant: no tenant named '" + request.tenant() + "'");
}

awaitable<Result<v1::WebhookSecret>> AdminApi::GetWebhookSecret(Principal who,
                                                                v1::WebhookSecretRequest request) {
  REELQ_CHECK(RequireAdmin(who));
  REELQ_CHECK(CheckTenantName("tenant", request.tenant()));
  if (!webhook_secrets_) {
    co_return MakeError(ErrorCategory::kInvalidRequest, "webhooks are not enabled");
  }
  // A misspelt name would get a secret of its own, and the receiver set up with it would refuse
  // every delivery of the real tenant. With authentication off any name is a tenant.
  if (!who.open) {
    auto tenants = co_await store_.ListTenants();
    if (!tenants) co_return std::unexpected(tenants.error());
    const bool known = std::any_of(tenants->begin(), tenants->end(),
                                   [&](const auto& t) { return t.name == request.tenant(); });
    if (!known) {
      co_return MakeError(ErrorCategory::kNotFound,
                          "tenant: no tenant named '" + request.tenant() + "'");
    }
  }
  Result<std::string> secret;
  if (request.rotate()) {
    secret = co_await webhook_secrets_->Rotate(request.tenant());
  } else {
    secret = co_await webhook_secrets_->Get(request.tenant());
  }
  if (!secret) co_return std::unexpected(secret.error());
  v1::WebhookSecret out;
  out.set_tenant(request.tenant());
  out.set_secret(*secret);
  co_return out;
}

#undef REELQ_CHECK

AdminServiceImpl::AdminServiceImpl(asio::any_io_executor io, AdminApi& api, Authenticator& auth)
    : io_(std::move(io)), api_(api), auth_(auth) {}

grpc::ServerUnaryReactor* AdminServiceImpl::CreateTenant(grpc::CallbackServerContext* context,
                                                         const v1::CreateTenantRequest* request,
                                                         v1::Tenant* response) {
  return AuthedUnary(context, io_, auth_, response, [this, request = *request](Principal who) {
    return api_.CreateTenant(who, request);
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::ListTenants(grpc::CallbackServerContext* context,
                                                        const v1::ListTenantsRequest* /*request*/,
                                                        v1::ListTenantsResponse* response) {
  return AuthedUnary(context, io_, auth_, response,
                     [this](Principal who) { return api_.ListTenants(who); });
}

grpc::ServerUnaryReactor* AdminServiceImpl::CreateToken(grpc::CallbackServerContext* context,
                                                        const v1::CreateTokenRequest* request,
                                                        v1::IssuedToken* response) {
  return AuthedUnary(context, io_, auth_, response, [this, request = *request](Principal who) {
    return api_.CreateToken(who, request);
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::RotateToken(grpc::CallbackServerContext* context,
                                                        const v1::RotateTokenRequest* request,
                                                        v1::IssuedToken* response) {
  return AuthedUnary(context, io_, auth_, response, [this, request = *request](Principal who) {
    return api_.RotateToken(who, request);
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::RevokeToken(grpc::CallbackServerContext* context,
                                                        const v1::RevokeTokenRequest* request,
                                                        v1::RevokeTokenResponse* response) {
  return AuthedUnary(context, io_, auth_, response, [this, request = *request](Principal who) {
    return api_.RevokeToken(who, request);
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::SetWeight(grpc::CallbackServerContext* context,
                                                      const v1::SetWeightRequest* request,
                                                      v1::Tenant* response) {
  return AuthedUnary(context, io_, auth_, response, [this, request = *request](Principal who) {
    return api_.SetWeight(who, request);
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::GetWebhookSecret(
    grpc::CallbackServerContext* context, const v1::WebhookSecretRequest* request,
    v1::WebhookSecret* response) {
  return AuthedUnary(context, io_, auth_, response, [this, request = *request](Principal who) {
    return api_.GetWebhookSecret(who, request);
  });
}

}  // namespace reelq::scheduler
