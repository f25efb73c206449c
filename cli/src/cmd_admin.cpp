// `reelq admin ...`: tenants, their API tokens and weights (reelq.v1.AdminService; needs an
// admin token).

#include <google/protobuf/util/time_util.h>

#include "context.h"
#include "format.h"

namespace reelq::cli {
namespace {

using google::protobuf::util::TimeUtil;

std::string When(const google::protobuf::Timestamp& at) {
  return at.seconds() == 0 ? "-" : TimeUtil::ToString(at).substr(0, 19) + "Z";
}

void PrintTenant(Context& context, const v1::Tenant& t) {
  auto& out = context.io().out;
  out << t.name() << "  weight " << t.weight() << "  created " << When(t.created_at()) << "  "
      << t.tokens_size() << (t.tokens_size() == 1 ? " token" : " tokens") << "\n";
  for (const auto& token : t.tokens()) {
    out << "  token " << token.token_id() << "  created " << When(token.created_at()) << "\n";
  }
}

int PrintIssued(Context& context, const v1::IssuedToken& issued) {
  if (context.json()) {
    context.io().out << ToJson(issued, true) << "\n";
  } else {
    // The token alone on stdout, so `TOKEN=$(reelq admin create-token studio)` works.
    context.io().out << issued.token() << "\n";
  }
  context.io().err << "token " << issued.token_id() << " for tenant " << issued.tenant()
                   << ": shown this once; reelq keeps only its hash\n";
  return kExitOk;
}

template <class Request, class Response, class Method>
int Call(Context& context, std::string_view what, Method method, const Request& request,
         Response& response) {
  grpc::ClientContext rpc;
  context.SetDeadline(rpc);
  const auto status = (context.Admin().*method)(&rpc, request, &response);
  if (!status.ok()) return context.RpcError(status, what);
  return kExitOk;
}

}  // namespace

void AddAdminCommands(CLI::App& root, Context& context, Commands& commands) {
  auto* admin = root.add_subcommand(
      "admin", "Tenants, API tokens and weights (needs an admin token: --token or $REELQ_TOKEN)");
  admin->require_subcommand(1);
  AddWalletCommands(root, *admin, context, commands);

  auto* create_tenant = admin->add_subcommand("create-tenant", "Create a tenant");
  auto name = std::make_shared<std::string>();
  auto weight = std::make_shared<double>(0);
  create_tenant->add_option("name", *name, "Tenant name ([A-Za-z0-9._-], at most 64 bytes)")
      ->required();
  create_tenant->add_option("--weight", *weight, "Dispatch weight (default: the configured one)");
  commands.push_back({create_tenant, [&context, name, weight] {
                        v1::CreateTenantRequest request;
                        request.set_name(*name);
                        request.set_weight(*weight);
                        v1::Tenant tenant;
                        if (int rc = Call(context, "create-tenant",
                                          &v1::AdminService::Stub::CreateTenant, request, tenant)) {
                          return rc;
                        }
                        if (context.json()) {
                          context.io().out << ToJson(tenant, true) << "\n";
                        } else {
                          PrintTenant(context, tenant);
                        }
                        return static_cast<int>(kExitOk);
                      }});

  auto* tenants = admin->add_subcommand("tenants", "List tenants and their token ids");
  commands.push_back({tenants, [&context] {
                        v1::ListTenantsResponse response;
                        if (int rc = Call(context, "tenants", &v1::AdminService::Stub::ListTenants,
                                          v1::ListTenantsRequest(), response)) {
                          return rc;
                        }
                        if (context.json()) {
                          context.io().out << ToJson(response, true) << "\n";
                        } else {
                          for (const auto& t : response.tenants()) PrintTenant(context, t);
                        }
                        return static_cast<int>(kExitOk);
                      }});

  auto* create_token = admin->add_subcommand(
      "create-token", "Issue an API token for a tenant (printed once on stdout)");
  auto token_tenant = std::make_shared<std::string>();
  create_token->add_option("tenant", *token_tenant, "Tenant name")->required();
  commands.push_back({create_token, [&context, token_tenant] {
                        v1::CreateTokenRequest request;
                        request.set_tenant(*token_tenant);
                        v1::IssuedToken issued;
                        if (int rc = Call(context, "create-token",
                                          &v1::AdminService::Stub::CreateToken, request, issued)) {
                          return rc;
                        }
                        return PrintIssued(context, issued);
                      }});

  auto* rotate = admin->add_subcommand("rotate-token",
                                       "Issue a new token and revoke the old one in the same step");
  auto rotate_tenant = std::make_shared<std::string>();
  auto rotate_id = std::make_shared<std::string>();
  rotate->add_option("tenant", *rotate_tenant, "Tenant name")->required();
  rotate->add_option("token_id", *rotate_id, "Id of the token to replace (reelq admin tenants)")
      ->required();
  commands.push_back({rotate, [&context, rotate_tenant, rotate_id] {
                        v1::RotateTokenRequest request;
                        request.set_tenant(*rotate_tenant);
                        request.set_token_id(*rotate_id);
                        v1::IssuedToken issued;
                        if (int rc = Call(context, "rotate-token",
                                          &v1::AdminService::Stub::RotateToken, request, issued)) {
                          return rc;
                        }
                        return PrintIssued(context, issued);
                      }});

  auto* revoke = admin->add_subcommand(
      "revoke-token", "Revoke a token (every scheduler refuses it within a second)");
  auto revoke_tenant = std::make_shared<std::string>();
  auto revoke_id = std::make_shared<std::string>();
  revoke->add_option("tenant", *revoke_tenant, "Tenant name")->required();
  revoke->add_option("token_id", *revoke_id, "Id of the token (reelq admin tenants)")->required();
  commands.push_back({revoke, [&context, revoke_tenant, revoke_id] {
                        v1::RevokeTokenRequest request;
                        request.set_tenant(*revoke_tenant);
                        request.set_token_id(*revoke_id);
                        v1::RevokeTokenResponse response;
                        if (int rc =
                                Call(context, "revoke-token", &v1::AdminService::Stub::RevokeToken,
                                     request, response)) {
                          return rc;
                        }
                        context.io().err << "revoked token " << *revoke_id << " of tenant "
                                         << *revoke_tenant << "\n";
                        return static_cast<int>(kExitOk);
                      }});

  auto* set_weight = admin->add_subcommand("set-weight", "Set a tenant's dispatch weight");
  auto weight_tenant = std::make_shared<std::string>();
  auto weight_value = std::make_shared<double>(0);
  set_weight->add_option("tenant", *weight_tenant, "Tenant name")->required();
  set_weight->add_option("weight", *weight_value, "Weight, 0.001 to 1000000")->required();
  commands.push_back({set_weight, [&context, weight_tenant, weight_value] {
                        v1::SetWeightRequest request;
                        request.set_tenant(*weight_tenant);
                        request.set_weight(*weight_value);
                        v1::Tenant tenant;
                        if (int rc = Call(context, "set-weight", &v1::AdminService::Stub::SetWeight,
                                          request, tenant)) {
                          return rc;
                        }
                        if (context.json()) {
                          context.io().out << ToJson(tenant, true) << "\n";
                        } else {
                          PrintTenant(context, tenant);
                        }
                        return static_cast<int>(kExitOk);
                      }});

  auto* webhook_secret = admin->add_subcommand(
      "webhook-secret", "Print a tenant's webhook signing secret (made on first use)");
  auto secret_tenant = std::make_shared<std::string>();
  auto secret_rotate = std::make_shared<bool>(false);
  webhook_secret->add_option("tenant", *secret_tenant, "Tenant name")->required();
  webhook_secret->add_flag("--rotate", *secret_rotate,
                           "Replace it with a new one (deliveries from now on use the new one)");
  commands.push_back({webhook_secret, [&context, secret_tenant, secret_rotate] {
                        v1::WebhookSecretRequest request;
                        request.set_tenant(*secret_tenant);
                        request.set_rotate(*secret_rotate);
                        v1::WebhookSecret secret;
                        if (int rc =
                                Call(context, "webhook-secret",
                                     &v1::AdminService::Stub::GetWebhookSecret, request, secret)) {
                          return rc;
                        }
                        if (context.json()) {
                          context.io().out << ToJson(secret, true) << "\n";
                        } else {
                          context.io().out << secret.secret() << "\n";
                        }
                        return static_cast<int>(kExitOk);
                      }});
}

}  // namespace reelq::cli
