// The webhook guard (which targets are refused), URL parsing, settings and signatures, with
// literal addresses; and the delivery client's guard at the connection, against a server on
// loopback.
#include <gtest/gtest.h>

#include <optional>

#include "reelq/common/config.h"
#include "reelq/scheduler/webhooks.h"
#include "test_server.h"

namespace reelq::scheduler {
namespace {

asio::ip::address Addr(const char* text) { return asio::ip::make_address(text); }

WebhookSettings Parse(const std::string& yaml) {
  auto doc = config::LoadFromString(yaml, "", {});
  EXPECT_TRUE(doc) << doc.error().message;
  auto settings = ParseWebhookSettings(*doc, {});
  EXPECT_TRUE(settings) << settings.error().message;
  return settings ? *settings : WebhookSettings{};
}

TEST(WebhookGuard, RefusesInternalRangesByDefault) {
  WebhookSettings settings;
  WebhookGuard guard(settings);
  for (const char* a : {"127.0.0.1", "10.0.0.5", "172.16.0.1", "172.31.255.255", "192.168.1.1",
                        "169.254.169.254", "169.254.10.10", "0.0.0.0", "::1", "fc00::1",
                        "fd00:ec2::254", "fe80::1", "::ffff:10.0.0.1", "::"}) {
    EXPECT_TRUE(guard.Refusal(Addr(a))) << a;
  }
  EXPECT_EQ(*guard.Refusal(Addr("169.254.169.254")), "a cloud metadata address");
  EXPECT_EQ(*guard.Refusal(Addr("fd00:ec2::254")), "a cloud metadata address");
  for (const char* a : {"93.184.216.34", "172.32.0.1", "8.8.8.8", "2606:4700::1111"}) {
    EXPECT_FALSE(guard.Refusal(Addr(a))) << a;
  }
}

TEST(WebhookGuard, AllowlistedRangesAndHostsPass) {
  auto settings = Parse(
      "webhooks:\n  allow_hosts: [\"127.0.0.0/8\", \"::1\", \"hooks.internal\", "
      "\"10.1.0.0/16\"]\n");
  WebhookGuard guard(settings);
  EXPECT_FALSE(guard.Refusal(Addr("127.0.0.1")));
  EXPECT_FALSE(guard.Refusal(Addr("127.9.9.9")));
  EXPECT_FALSE(guard.Refusal(Addr("::1")));
  EXPECT_FALSE(guard.Refusal(Addr("10.1.200.3")));
  EXPECT_TRUE(guard.Refusal(Addr("10.2.0.1")));
  EXPECT_TRUE(guard.Refusal(Addr("169.254.169.254")));
  EXPECT_TRUE(guard.HostAllowlisted("Hooks.Internal"));
  EXPECT_FALSE(guard.HostAllowlisted("hooks.internal.evil.com"));
}

TEST(WebhookGuard, UrlFormNamesTheField) {
  EXPECT_TRUE(ParseWebhookUrl("https://example.com/x", "webhook_url"));
  auto parsed = ParseWebhookUrl("HTTP://[::1]:8080/p?q", "webhook_url");
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->host, "::1");
  EXPECT_EQ(parsed->port, 8080);
  for (const char* bad :
       {"ftp://example.com/", "example.com/hook", "file:///etc/passwd",
        "http://user:pw@example.com/", "http:///path", "http://h:99999/", "gopher://x",
        "http://[::1/", "https://example.com/a b", "https://example.com/a\r\nX-Injected: 1"}) {
    auto r = ParseWebhookUrl(bad, "webhook_url");
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().category, ErrorCategory::kInvalidRequest);
    EXPECT_TRUE(r.error().message.starts_with("webhook_url: ")) << r.error().message;
  }
}

TEST(WebhookSettings, BadValuesNameTheKey) {
  for (auto [yaml, key] : std::vector<std::pair<std::string, std::string>>{
           {"webhooks:\n  allow_hosts: [\"10.0.0.0/40\"]\n", "webhooks.allow_hosts[0]"},
           {"webhooks:\n  max_retry_hour: 3\n", "webhooks.max_retry_hour"},
           {"webhooks:\n  timeout_ms: 5000\n  lease_ms: 1000\n", "webhooks.lease_ms"},
           {"webhooks:\n  secret: plain\n", "webhooks.secret"},
           {"webhooks:\n  max_in_flight_per_tenant: 0\n", "webhooks.max_in_flight_per_tenant"},
           {"webhooks:\n  max_in_flight: 4\n  max_in_flight_per_tenant: 5\n",
            "webhooks.max_in_flight_per_tenant: 5 is more than webhooks.max_in_flight (4)"},
       }) {
    auto doc = config::LoadFromString(yaml, "", {});
    ASSERT_TRUE(doc) << doc.error().message;
    auto settings = ParseWebhookSettings(*doc, {});
    ASSERT_FALSE(settings) << yaml;
    EXPECT_NE(settings.error().message.find(key), std::string::npos) << settings.error().message;
  }
  EXPECT_EQ(Parse("webhooks: {}\n").max_retry_hours, 24);
  // A tenant's share of the delivery slots: a quarter by default, at least one.
  EXPECT_EQ(Parse("webhooks: {}\n").max_in_flight_per_tenant, 8);
  EXPECT_EQ(Parse("webhooks:\n  max_in_flight: 100\n").max_in_flight_per_tenant, 25);
  EXPECT_EQ(Parse("webhooks:\n  max_in_flight: 3\n").max_in_flight_per_tenant, 1);
  EXPECT_EQ(Parse("webhooks:\n  max_in_flight: 4\n  max_in_flight_per_tenant: 4\n")
                .max_in_flight_per_tenant,
            4);
}

// webhooks.secret set but resolving to nothing, or set where it is never used (authentication
// on): refused at start naming the key, not replaced by random per-tenant secrets silently.
TEST(WebhookSettings, ASecretThatWouldNotSignIsRefused) {
  const std::string secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
  auto parse = [](const std::string& yaml, const std::map<std::string, std::string>& env) {
    auto doc = config::LoadFromString(yaml, "", env);
    EXPECT_TRUE(doc) << doc.error().message;
    return ParseWebhookSettings(*doc, env);
  };
  const std::string by_env = "webhooks:\n  secret: {env: HOOK_SECRET}\n";
  auto unset = parse(by_env, {});
  ASSERT_FALSE(unset);
  EXPECT_EQ(unset.error().category, ErrorCategory::kInvalidRequest);
  EXPECT_NE(unset.error().message.find("webhooks.secret"), std::string::npos)
      << unset.error().message;
  EXPECT_NE(unset.error().message.find("HOOK_SECRET"), std::string::npos) << unset.error().message;
  EXPECT_FALSE(parse(by_env, {{"HOOK_SECRET", ""}}));
  auto set = parse(by_env, {{"HOOK_SECRET", secret}});
  ASSERT_TRUE(set) << set.error().message;
  EXPECT_EQ(set->secret, secret);

  const std::string with_auth = "auth:\n  admin_tokens: [{env: ADMIN_TOKEN}]\n" + by_env;
  const std::map<std::string, std::string> env{{"HOOK_SECRET", secret},
                                               {"ADMIN_TOKEN", std::string(40, 'a')}};
  auto unused = parse(with_auth, env);
  ASSERT_FALSE(unused);
  EXPECT_NE(unused.error().message.find("webhooks.secret"), std::string::npos)
      << unused.error().message;
  EXPECT_NE(unused.error().message.find("auth.admin_tokens"), std::string::npos)
      << unused.error().message;
  // Authentication on without webhooks.secret is fine.
  EXPECT_TRUE(parse("auth:\n  admin_tokens: [{env: ADMIN_TOKEN}]\nwebhooks: {}\n", env));
}

// The example of the Standard Webhooks specification's reference libraries.
TEST(WebhookSignature, MatchesTheStandardWebhooksExample) {
  EXPECT_EQ(SignWebhook("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek",
                        1614265330, R"({"test": 2432232314})"),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  const auto a = NewWebhookSecret();
  EXPECT_TRUE(a.starts_with("whsec_"));
  EXPECT_EQ(a.size(), 6u + 32u);
  EXPECT_NE(a, NewWebhookSecret());
}

// A host allowed by name in webhooks.allow_hosts passes at its connections too, whatever it
// resolves to: "localhost" (loopback) is delivered to when listed, refused when not.
TEST(WebhookGuard, AHostAllowedByNameIsDeliveredToAtItsPrivateAddress) {
  reelq::testing::TestServer receiver(
      [](const reelq::testing::ReceivedRequest&) { return reelq::testing::Reply{.body = "ok"}; });
  const std::string url =
      "http://localhost:" + receiver.Url("/").substr(receiver.Url("/").rfind(':') + 1) + "hook";
  auto post = [&](const WebhookSettings& settings) {
    WebhookGuard guard(settings);
    asio::io_context io;
    auto client = MakeWebhookHttpClient(io.get_executor(), guard);
    http::Request request;
    request.method = "POST";
    request.url = url;
    request.body = "{}";
    request.timeout = std::chrono::seconds(5);
    std::optional<Result<http::Response>> out;
    asio::co_spawn(io, client->Send(request), [&](std::exception_ptr e, Result<http::Response> r) {
      if (e) std::rethrow_exception(e);
      out = std::move(r);
    });
    io.run();
    return std::move(*out);
  };
  auto refused = post(WebhookSettings{});
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("a loopback address"), std::string::npos)
      << refused.error().message;
  EXPECT_TRUE(receiver.requests().empty());

  auto delivered = post(Parse("webhooks:\n  allow_hosts: [\"LocalHost\"]\n"));
  ASSERT_TRUE(delivered) << delivered.error().Describe();
  EXPECT_EQ(delivered->status, 200);
  EXPECT_EQ(receiver.requests().size(), 1u);
}

}  // namespace
}  // namespace reelq::scheduler
