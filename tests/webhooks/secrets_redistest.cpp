// A tenant's webhook signing secret rotated against a real redis-server: the secret it replaces
// still signs deliveries for a day (the webhook-signature header carries both entries, the new
// one first), so a receiver switching to the new secret loses no event; after the day, and for a
// configured secret, only one entry.
#include <gtest/gtest.h>

#include "redis_server.h"
#include "reelq/common/clock.h"
#include "reelq/common/redis.h"
#include "reelq/queue/webhook_store.h"
#include "reelq/scheduler/webhooks.h"
#include "run_async.h"

namespace reelq::scheduler {
namespace {

using namespace std::chrono_literals;
using reelq::testing::RedisServer;
using reelq::testing::RunAsync;

struct Fixture {
  RedisServer server;
  asio::io_context io;
  std::shared_ptr<ManualClock> clock = std::make_shared<ManualClock>();
  redis::ConnectionPtr connection;
  std::unique_ptr<queue::WebhookStore> store;

  Fixture() {
    auto connected = RunAsync(io, redis::Connect(io.get_executor(), server.ClientOptions()));
    if (!connected) throw std::runtime_error(connected.error().Describe());
    connection = *connected;
    store = std::make_unique<queue::WebhookStore>(connection, "t");
  }

  std::vector<std::string> ForSigning(WebhookSecrets& secrets, const std::string& tenant) {
    auto r = RunAsync(io, secrets.ForSigning(tenant));
    if (!r) throw std::runtime_error(r.error().Describe());
    return *r;
  }
};

TEST(WebhookSecretsTest, ARotatedSecretSignsBesideTheNewOneForADay) {
  if (!RedisServer::Available()) GTEST_SKIP() << "redis-server is not installed";
  Fixture f;
  WebhookSecrets secrets(*f.store, "", /*per_tenant=*/true, f.clock);
  auto first = RunAsync(f.io, secrets.Get("studio"));
  ASSERT_TRUE(first) << first.error().Describe();
  EXPECT_EQ(*RunAsync(f.io, secrets.Get("studio")), *first);
  EXPECT_EQ(f.ForSigning(secrets, "studio"), std::vector<std::string>{*first});

  auto second = RunAsync(f.io, secrets.Rotate("studio"));
  ASSERT_TRUE(second) << second.error().Describe();
  EXPECT_NE(*second, *first);
  EXPECT_EQ(*RunAsync(f.io, secrets.Get("studio")), *second);
  const auto both = f.ForSigning(secrets, "studio");
  EXPECT_EQ(both, (std::vector<std::string>{*second, *first}));
  // One header entry per secret, each verifying with its own.
  EXPECT_EQ(SignWebhook(both, "msg_1", 1'700'000'000, "{}"),
            SignWebhook(*second, "msg_1", 1'700'000'000, "{}") + " " +
                SignWebhook(*first, "msg_1", 1'700'000'000, "{}"));
  // Another tenant is not touched.
  auto other = RunAsync(f.io, secrets.Get("other"));
  ASSERT_TRUE(other);
  EXPECT_EQ(f.ForSigning(secrets, "other"), std::vector<std::string>{*other});

  // Rotated again within the day: the newest replaced secret signs beside the new one.
  auto third = RunAsync(f.io, secrets.Rotate("studio"));
  ASSERT_TRUE(third);
  EXPECT_EQ(f.ForSigning(secrets, "studio"), (std::vector<std::string>{*third, *second}));

  f.clock->Advance(WebhookSecrets::kRotationOverlap + 1ms);
  EXPECT_EQ(f.ForSigning(secrets, "studio"), std::vector<std::string>{*third});
}

TEST(WebhookSecretsTest, AConfiguredSecretSignsAloneAndIsNotRotated) {
  if (!RedisServer::Available()) GTEST_SKIP() << "redis-server is not installed";
  Fixture f;
  WebhookSecrets secrets(*f.store, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", /*per_tenant=*/false,
                         f.clock);
  EXPECT_EQ(f.ForSigning(secrets, "studio"),
            std::vector<std::string>{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"});
  auto rotated = RunAsync(f.io, secrets.Rotate("studio"));
  ASSERT_FALSE(rotated);
  EXPECT_EQ(rotated.error().category, ErrorCategory::kInvalidRequest);
}

}  // namespace
}  // namespace reelq::scheduler
