#include "reelq/providers/factory.h"

#include "kling/kling_provider.h"
#include "reelq/providers/noop_provider.h"
#include "seedance/seedance_provider.h"
#include "sora/sora_provider.h"
#include "veo/veo_provider.h"

namespace reelq::providers {
namespace {

// The key's location goes into the message, never its value.
Result<std::string> ResolveKey(const AccountSpec& account, const SecretRef& ref,
                               std::string_view field) {
  auto key = ref.Resolve();
  if (!key) {
    Error error = key.error();
    error.message = "account " + account.id + " " + std::string(field) + ": " + error.message;
    return std::unexpected(error);
  }
  return key;
}

}  // namespace

Result<ProviderPtr> MakeProvider(const AccountSpec& account, http::ClientPtr client, ClockPtr clock,
                                 AdapterOptions options) {
  if (!client) return MakeError(ErrorCategory::kInternal, "MakeProvider: no http client");
  if (!clock) clock = std::make_shared<SystemClock>();
  // Benchmarks and tests: no keys, no HTTP.
  if (account.provider == "noop") return MakeNoopProvider(account);
  auto api_key = ResolveKey(account, account.api_key, "api_key");
  if (!api_key) return std::unexpected(api_key.error());
  if (account.provider == "kling") {
    auto secret = ResolveKey(account, account.secret_key, "secret_key");
    if (!secret) return std::unexpected(secret.error());
    return std::make_shared<kling::KlingProvider>(account, std::move(*api_key), std::move(*secret),
                                                  std::move(client), std::move(clock), options);
  }
  if (account.provider == "sora") {
    return std::make_shared<sora::SoraProvider>(account, std::move(*api_key), std::move(client),
                                                std::move(clock), options);
  }
  if (account.provider == "veo") {
    return std::make_shared<veo::VeoProvider>(account, std::move(*api_key), std::move(client),
                                              std::move(clock), options);
  }
  if (account.provider == "seedance") {
    return std::make_shared<seedance::SeedanceProvider>(
        account, std::move(*api_key), std::move(client), std::move(clock), options);
  }
  return MakeError(ErrorCategory::kInvalidRequest,
                   "account " + account.id + ": unknown provider '" + account.provider + "'");
}

}  // namespace reelq::providers
