#pragma once

#include <grpcpp/grpcpp.h>

#include "reelq/common/asio.h"
#include "reelq/common/clock.h"
#include "reelq/common/error.h"
#include "reelq/queue/auth_store.h"
#include "reelq/queue/wallet_store.h"
#include "reelq/scheduler/authenticator.h"
#include "reelq/scheduler/settings.h"
#include "reelq/scheduler/webhooks.h"
#include "reelq/v1/admin.grpc.pb.h"

namespace reelq::scheduler {

// The AdminService's logic: tenants, their tokens and weights. Every call needs an admin
// principal (kAuthFailed -> PERMISSION_DENIED otherwise). Bad input is refused before anything
// changes, with kInvalidRequest or kNotFound naming the field.
class AdminApi {
 public:
  // `wallets`: null leaves TopUp and SetLimits answering FAILED_PRECONDITION.
  AdminApi(queue::AuthStore& store, Authenticator& auth, const Settings& settings, ClockPtr clock,
           queue::WalletStore* wallets = nullptr);

  awaitable<Result<v1::Tenant>> CreateTenant(Principal who, v1::CreateTenantRequest request);
  awaitable<Result<v1::ListTenantsResponse>> ListTenants(Principal who);
  awaitable<Result<v1::IssuedToken>> CreateToken(Principal who, v1::CreateTokenRequest request);
  awaitable<Result<v1::IssuedToken>> RotateToken(Principal who, v1::RotateTokenRequest request);
  awaitable<Result<v1::RevokeTokenResponse>> RevokeToken(Principal who,
                                                         v1::RevokeTokenRequest request);
  awaitable<Result<v1::Tenant>> SetWeight(Principal who, v1::SetWeightRequest request);
  // wallet_api.cpp. Bad input (an amount <= 0 or past the most a wallet holds, a negative
  // limit, an unknown tenant) changes nothing.
  awaitable<Result<v1::Wallet>> TopUp(Principal who, v1::TopUpRequest request);
  awaitable<Result<v1::Tenant>> SetLimits(Principal who, v1::SetLimitsRequest request);
  // The tenant's webhook signing secret (made on first use), or a new one (rotate).
  awaitable<Result<v1::WebhookSecret>> GetWebhookSecret(Principal who,
                                                        v1::WebhookSecretRequest request);
  void EnableWebhooks(WebhookSecrets* secrets) { webhook_secrets_ = secrets; }

 private:
  WebhookSecrets* webhook_secrets_ = nullptr;
  awaitable<Result<v1::IssuedToken>> Issue(std::string tenant, std::string replaces_id);
  v1::Tenant ToTenant(const queue::TenantEntry& entry) const;

  queue::AuthStore& store_;
  Authenticator& auth_;
  const Settings& settings_;
  ClockPtr clock_;
  queue::WalletStore* wallets_;
};

// The thin gRPC shell around AdminApi.
class AdminServiceImpl final : public v1::AdminService::CallbackService {
 public:
  AdminServiceImpl(asio::any_io_executor io, AdminApi& api, Authenticator& auth);

  grpc::ServerUnaryReactor* CreateTenant(grpc::CallbackServerContext* context,
                                         const v1::CreateTenantRequest* request,
                                         v1::Tenant* response) override;
  grpc::ServerUnaryReactor* ListTenants(grpc::CallbackServerContext* context,
                                        const v1::ListTenantsRequest* request,
                                        v1::ListTenantsResponse* response) override;
  grpc::ServerUnaryReactor* CreateToken(grpc::CallbackServerContext* context,
                                        const v1::CreateTokenRequest* request,
                                        v1::IssuedToken* response) override;
  grpc::ServerUnaryReactor* RotateToken(grpc::CallbackServerContext* context,
                                        const v1::RotateTokenRequest* request,
                                        v1::IssuedToken* response) override;
  grpc::ServerUnaryReactor* RevokeToken(grpc::CallbackServerContext* context,
                                        const v1::RevokeTokenRequest* request,
                                        v1::RevokeTokenResponse* response) override;
  grpc::ServerUnaryReactor* SetWeight(grpc::CallbackServerContext* context,
                                      const v1::SetWeightRequest* request,
                                      v1::Tenant* response) override;
  grpc::ServerUnaryReactor* TopUp(grpc::CallbackServerContext* context,
                                  const v1::TopUpRequest* request, v1::Wallet* response) override;
  grpc::ServerUnaryReactor* SetLimits(grpc::CallbackServerContext* context,
                                      const v1::SetLimitsRequest* request,
                                      v1::Tenant* response) override;
  grpc::ServerUnaryReactor* GetWebhookSecret(grpc::CallbackServerContext* context,
                                             const v1::WebhookSecretRequest* request,
                                             v1::WebhookSecret* response) override;

 private:
  asio::any_io_executor io_;
  AdminApi& api_;
  Authenticator& auth_;
};

}  // namespace reelq::scheduler
