// The auth: config section, the loopback rule and the token helpers (no Redis, no network).
#include <gtest/gtest.h>

#include "reelq/scheduler/authenticator.h"

namespace reelq::scheduler {
namespace {

Result<AuthSettings> Parse(const std::string& yaml, const std::map<std::string, std::string>& env) {
  auto doc = config::LoadFromString(yaml, "/tmp", env);
  if (!doc) return std::unexpected(doc.error());
  return ParseAuthSettings(*doc, env);
}

TEST(AuthSettings, AdminTokensComeFromSecretReferencesOnly) {
  const std::string token(40, 'k');
  auto on = Parse("auth:\n  admin_tokens:\n    - {env: ADMIN}\n", {{"ADMIN", token}});
  ASSERT_TRUE(on) << on.error().message;
  EXPECT_TRUE(on->enabled());

  auto literal = Parse("auth:\n  admin_tokens:\n    - " + token + "\n", {});
  ASSERT_FALSE(literal);
  EXPECT_TRUE(literal.error().message.starts_with("auth.admin_tokens[0]:"))
      << literal.error().message;
  EXPECT_EQ(literal.error().message.find(token), std::string::npos);

  auto unset = Parse("auth:\n  admin_tokens:\n    - {env: NOT_SET}\n", {});
  ASSERT_FALSE(unset);
  EXPECT_TRUE(unset.error().message.starts_with("auth.admin_tokens[0]: resolves to an empty"))
      << unset.error().message;

  auto short_token = Parse("auth:\n  admin_tokens:\n    - {env: ADMIN}\n", {{"ADMIN", "short"}});
  ASSERT_FALSE(short_token);
  EXPECT_EQ(short_token.error().message.find("short"), std::string::npos);

  auto typo = Parse("auth:\n  admin_token: {env: ADMIN}\n", {{"ADMIN", token}});
  ASSERT_FALSE(typo);
  EXPECT_TRUE(typo.error().message.starts_with("auth.admin_token: unknown key"))
      << typo.error().message;

  auto off = Parse("redis:\n  port: 6379\n", {});
  ASSERT_TRUE(off);
  EXPECT_FALSE(off->enabled());
  auto slow_cache = Parse("auth:\n  cache_ms: 5000\n", {});
  EXPECT_FALSE(slow_cache) << "a revoked token must be refused within a second";
}

TEST(AuthSettings, NonLoopbackNeedsAuthenticationOrExplicitConsent) {
  AuthSettings off;
  EXPECT_TRUE(CheckListenAllowed(off, "127.0.0.1:50051"));
  EXPECT_TRUE(CheckListenAllowed(off, "localhost:50051"));
  EXPECT_TRUE(CheckListenAllowed(off, "[::1]:50051"));
  auto refused = CheckListenAllowed(off, "0.0.0.0:50051");
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("auth.allow_unauthenticated_non_loopback"),
            std::string::npos);
  EXPECT_FALSE(CheckListenAllowed(off, "10.0.0.5:50051"));
  AuthSettings consent;
  consent.allow_unauthenticated_non_loopback = true;
  EXPECT_TRUE(CheckListenAllowed(consent, "0.0.0.0:50051"));
  AuthSettings on;
  on.admin_tokens.push_back(std::string(32, 'a'));
  EXPECT_TRUE(CheckListenAllowed(on, "0.0.0.0:50051"));
}

TEST(AuthSettings, TokensAreRandomAndStoredAsSha256) {
  auto a = NewTenantToken();
  auto b = NewTenantToken();
  ASSERT_TRUE(a && b);
  EXPECT_NE(*a, *b);
  EXPECT_EQ(a->size(), 3u + 64u);  // "rq_" + 256 bits in hex
  EXPECT_TRUE(a->starts_with("rq_"));
  // SHA-256("abc"), FIPS 180-2.
  EXPECT_EQ(HashToken("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(TokenId(HashToken("abc")), "ba7816bf8f01cfea");
}

TEST(AuthSettings, OpenAuthenticatorActsAsBeforeTokens) {
  Authenticator open(AuthSettings{}, nullptr, std::make_shared<SystemClock>());
  asio::io_context io;
  Result<Principal> who = MakeError(ErrorCategory::kInternal, "not run");
  asio::co_spawn(io, open.AuthenticateHeader(""),
                 [&](std::exception_ptr, Result<Principal> r) { who = std::move(r); });
  io.run();
  ASSERT_TRUE(who);
  EXPECT_TRUE(who->open);
  EXPECT_TRUE(who->is_admin);
}

TEST(AuthSettings, AdminTokenIsKnownWithoutRedisAndOthersAreRefused) {
  AuthSettings settings;
  const std::string admin(40, 'z');
  settings.admin_tokens.push_back(admin);
  Authenticator auth(settings, nullptr, std::make_shared<SystemClock>());
  asio::io_context io;
  std::vector<Result<Principal>> results;
  for (std::string header : {"Bearer " + admin, "bearer " + admin, std::string(""),
                             "Basic " + admin, "Bearer " + std::string(40, 'y')}) {
    asio::co_spawn(io, auth.AuthenticateHeader(header),
                   [&](std::exception_ptr, Result<Principal> r) { results.push_back(r); });
  }
  io.run();
  ASSERT_EQ(results.size(), 5u);
  EXPECT_TRUE(results[0] && results[0]->is_admin && !results[0]->open);
  EXPECT_TRUE(results[1] && results[1]->is_admin);
  for (size_t i = 2; i < results.size(); ++i) {
    ASSERT_FALSE(results[i]) << i;
    EXPECT_EQ(results[i].error().category, ErrorCategory::kAuthFailed) << i;
    EXPECT_EQ(results[i].error().message.find(admin), std::string::npos) << i;
    EXPECT_TRUE(results[i].error().message.starts_with("authorization:")) << i;
  }
}

}  // namespace
}  // namespace reelq::scheduler
