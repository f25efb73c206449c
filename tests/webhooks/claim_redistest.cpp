// Claiming webhook deliveries against a real redis-server (webhook_claim.lua): a tenant at its
// cap of deliveries in flight is passed over, unclaimed and with no attempt counted, while the
// deliveries behind it are taken; when such deliveries fill a whole scan they are made due a
// little later, so that the next claim reaches the ones behind them.
#include <gtest/gtest.h>

#include <set>

#include "redis_server.h"
#include "reelq/common/redis.h"
#include "reelq/queue/webhook_store.h"
#include "run_async.h"

namespace reelq::queue {
namespace {

using reelq::testing::RedisServer;
using reelq::testing::RunAsync;

struct Fixture {
  RedisServer server;
  asio::io_context io;
  redis::ConnectionPtr connection;
  std::unique_ptr<WebhookStore> store;

  Fixture() {
    auto connected = RunAsync(io, redis::Connect(io.get_executor(), server.ClientOptions()));
    if (!connected) throw std::runtime_error(connected.error().Describe());
    connection = *connected;
    store = std::make_unique<WebhookStore>(connection, "t");
  }

  // A pending delivery as common_webhook.lua records it, due at `due_ms`.
  void Record(const std::string& id, const std::string& tenant, int64_t due_ms) {
    server.Run({"HSET", "t:{q}:wh:" + id, "url", "http://127.0.0.1:9/" + tenant, "tenant", tenant,
                "type", "job.succeeded", "body", "{}", "state", "pending", "attempts", "0",
                "created", std::to_string(due_ms), "next_at", std::to_string(due_ms)});
    server.Run({"ZADD", "t:{q}:whdue", std::to_string(due_ms), id});
  }
  std::string Field(const std::string& id, const std::string& field) {
    return server.Run({"HGET", "t:{q}:wh:" + id, field}).str;
  }
  std::string Due(const std::string& id) { return server.Run({"ZSCORE", "t:{q}:whdue", id}).str; }
  ClaimResult Claim(int64_t now, int limit, ClaimFairness fairness) {
    auto r = RunAsync(io, store->Claim(now, /*lease_ms=*/1000, limit, std::move(fairness)));
    if (!r) throw std::runtime_error(r.error().Describe());
    return *r;
  }
};

std::set<std::string> Ids(const ClaimResult& r) {
  std::set<std::string> out;
  for (const auto& d : r.deliveries) out.insert(d.id);
  return out;
}

TEST(WebhookClaimTest, ATenantAtItsCapIsPassedOverWithoutAnAttempt) {
  if (!RedisServer::Available()) GTEST_SKIP() << "redis-server is not installed";
  Fixture f;
  for (int i = 1; i <= 5; ++i) f.Record("a" + std::to_string(i), "slow", i);
  f.Record("b1", "quick", 6);
  f.Record("b2", "quick", 7);

  // Two of the slow tenant's, then the quick tenant's behind the other three.
  ClaimFairness fairness;
  fairness.per_tenant = 2;
  fairness.defer_ms = 500;
  fairness.scan = 10;
  auto first = f.Claim(100, 4, fairness);
  EXPECT_EQ(Ids(first), (std::set<std::string>{"a1", "a2", "b1", "b2"}));
  EXPECT_FALSE(first.more);
  for (const auto& d : first.deliveries) {
    EXPECT_EQ(d.attempts, 1) << d.id;
    EXPECT_EQ(d.tenant, d.id[0] == 'a' ? "slow" : "quick");
  }
  // The passed-over ones stay due as they were, with no attempt counted.
  for (const char* id : {"a3", "a4", "a5"}) {
    EXPECT_EQ(f.Field(id, "attempts"), "0") << id;
    EXPECT_EQ(f.Field(id, "state"), "pending") << id;
  }
  EXPECT_EQ(f.Due("a3"), "3");

  // The deliverer still has two of the slow tenant's in flight: nothing more of it is taken,
  // even with room; a scan filled by them defers them and asks to be called again.
  fairness.in_flight = {{"slow", 2}};
  fairness.scan = 3;
  auto second = f.Claim(200, 4, fairness);
  EXPECT_TRUE(second.deliveries.empty());
  EXPECT_TRUE(second.more);
  for (const char* id : {"a3", "a4", "a5"}) {
    EXPECT_EQ(f.Field(id, "attempts"), "0") << id;
    EXPECT_EQ(f.Due(id), "700") << id;
    EXPECT_EQ(f.Field(id, "next_at"), "700") << id;
  }
  // Called again at once: nothing of theirs is due, nothing is lost.
  auto third = f.Claim(200, 4, fairness);
  EXPECT_TRUE(third.deliveries.empty());
  EXPECT_FALSE(third.more);
  EXPECT_EQ(f.server.Run({"ZCARD", "t:{q}:whdue"}).integer, 7);

  // Once its attempts have ended, the slow tenant's deferred deliveries go out, two at a time.
  fairness.in_flight.clear();
  auto fourth = f.Claim(700, 4, fairness);
  EXPECT_EQ(Ids(fourth), (std::set<std::string>{"a3", "a4"}));
  for (const auto& d : fourth.deliveries) EXPECT_EQ(d.attempts, 1) << d.id;
}

}  // namespace
}  // namespace reelq::queue
