// A top-up sent again with the same request id (an operator's retry after a timeout or a lost
// answer) credits the wallet once, against a real redis-server (wallet_topup.lua); another id,
// or none, credits again; a malformed id is refused naming request_id and changes nothing.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <thread>

#include "reelq/queue/wallet_store.h"
#include "store_fixture.h"

namespace reelq::queue {
namespace {

using testing::RunAsync;

class WalletTopUpTest : public StoreTest {};

TEST_F(WalletTopUpTest, ATopUpRetriedWithItsRequestIdCreditsOnce) {
  server_->Run({"SADD", "t:{q}:auth:tenants", "studio"});
  WalletStore wallets(NewConnection(), "t");
  auto first = RunAsync(io_, wallets.TopUp("studio", 500'000'000, 1, "topup-2026-12-07-a"));
  ASSERT_TRUE(first) << first.error().Describe();
  EXPECT_EQ(first->balance_micros, 500'000'000);
  auto again = RunAsync(io_, wallets.TopUp("studio", 500'000'000, 2, "topup-2026-12-07-a"));
  ASSERT_TRUE(again) << again.error().Describe();
  EXPECT_EQ(again->balance_micros, 500'000'000);
  EXPECT_EQ(again->topped_up_micros, 500'000'000);

  auto other = RunAsync(io_, wallets.TopUp("studio", 1'000'000, 3, "topup-2026-12-07-b"));
  ASSERT_TRUE(other);
  EXPECT_EQ(other->balance_micros, 501'000'000);
  auto plain = RunAsync(io_, wallets.TopUp("studio", 1'000'000, 4));
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->balance_micros, 502'000'000);

  // The same id with another amount is not the same top-up: refused, naming both amounts.
  auto conflict = RunAsync(io_, wallets.TopUp("studio", 7'000'000, 5, "topup-2026-12-07-b"));
  ASSERT_FALSE(conflict);
  EXPECT_EQ(conflict.error().category, ErrorCategory::kFailedPrecondition);
  EXPECT_NE(conflict.error().message.find("already used for a top-up of $1.000000"),
            std::string::npos)
      << conflict.error().message;

  auto bad = RunAsync(io_, wallets.TopUp("studio", 1'000'000, 5, "has space"));
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().category, ErrorCategory::kInvalidRequest);
  EXPECT_NE(bad.error().message.find("request_id"), std::string::npos) << bad.error().message;
  auto wallet = RunAsync(io_, wallets.Get("studio", 6, -1));
  ASSERT_TRUE(wallet);
  EXPECT_EQ(wallet->balance_micros, 502'000'000);
  EXPECT_EQ(wallet->ledger.size(), 3u);  // one entry a credit
}

// The answer to a top-up is the script's: a read after the credit that fails (here HGETALL,
// refused to the connection's user) cannot turn a committed credit into an error that an
// operator would answer by sending the top-up again.
TEST_F(WalletTopUpTest, ATopUpAnswersWithTheWalletTheScriptLeftWithoutReadingItAgain) {
  server_->Run({"SADD", "t:{q}:auth:tenants", "studio"});
  const int64_t now = 1'780'000'000'000;  // 2026-05-28 UTC
  const std::string day = "sd:" + std::to_string(now / 86'400'000);
  server_->Run({"HSET", "t:{q}:wallet:studio", "balance", "7000000", "reserved", "2000000", "spent",
                "1000000", "topups", "10000000", day, "400000", "sm:2026-05", "900000"});
  WalletStore wallets(NewConnection(), "t");
  ASSERT_EQ(server_->Run({"ACL", "SETUSER", "default", "-hgetall"}).str, "OK");
  struct Restore {
    testing::RedisServer& server;
    ~Restore() { server.Run({"ACL", "SETUSER", "default", "+hgetall"}); }
  } restore{*server_};
  auto topped = RunAsync(io_, wallets.TopUp("studio", 5'000'000, now, "topup-acl"));
  ASSERT_TRUE(topped) << topped.error().Describe();
  EXPECT_TRUE(topped->exists);
  EXPECT_EQ(topped->balance_micros, 12'000'000);
  EXPECT_EQ(topped->reserved_micros, 2'000'000);
  EXPECT_EQ(topped->spent_micros, 1'000'000);
  EXPECT_EQ(topped->topped_up_micros, 15'000'000);
  EXPECT_EQ(topped->spent_today_micros, 400'000);
  EXPECT_EQ(topped->spent_this_month_micros, 900'000);
  // Sent again with its id: credits nothing, and answers the same wallet.
  auto again = RunAsync(io_, wallets.TopUp("studio", 5'000'000, now + 1, "topup-acl"));
  ASSERT_TRUE(again) << again.error().Describe();
  EXPECT_EQ(again->balance_micros, 12'000'000);
  EXPECT_EQ(again->topped_up_micros, 15'000'000);
  EXPECT_EQ(again->spent_today_micros, 400'000);
}

// redis.wait_replicas: a top-up and a SetLimits are answered only once the replicas have them.
// With none to confirm (this server has no replica), each is made on the master and answered
// kRetryable (UNAVAILABLE) saying so and how to send it again without crediting twice.
TEST_F(WalletTopUpTest, WithReplicasRequiredAnUnconfirmedTopUpSaysToResendItWithItsId) {
  server_->Run({"SADD", "t:{q}:auth:tenants", "studio"});
  WalletStore wallets(NewConnection(), "t");
  wallets.RequireReplicas(1, std::chrono::milliseconds(50));
  auto topped = RunAsync(io_, wallets.TopUp("studio", 2'000'000, 1, "po-4711"));
  ASSERT_FALSE(topped);
  EXPECT_EQ(topped.error().category, ErrorCategory::kRetryable);
  EXPECT_NE(topped.error().message.find("0 of 1 replicas"), std::string::npos)
      << topped.error().message;
  EXPECT_NE(topped.error().message.find("the top-up of $2.000000 to 'studio' is applied on the "
                                        "master; send it again with the same request id "
                                        "('po-4711'), which credits it once"),
            std::string::npos)
      << topped.error().message;
  // Sent again with its id: still unconfirmed, and still credited once.
  auto again = RunAsync(io_, wallets.TopUp("studio", 2'000'000, 2, "po-4711"));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().category, ErrorCategory::kRetryable);
  auto anonymous = RunAsync(io_, wallets.TopUp("studio", 1'000'000, 3));
  ASSERT_FALSE(anonymous);
  EXPECT_NE(anonymous.error().message.find("it had no request id: read the wallet before "
                                           "sending it again"),
            std::string::npos)
      << anonymous.error().message;
  auto limits = RunAsync(io_, wallets.SetLimits("studio", 10, 5));
  ASSERT_FALSE(limits);
  EXPECT_EQ(limits.error().category, ErrorCategory::kRetryable);
  EXPECT_NE(limits.error().message.find("the limits of 'studio' are set on the master; send them "
                                        "again"),
            std::string::npos)
      << limits.error().message;
  // Refusals changed nothing and are answered at once, without waiting.
  auto unknown = RunAsync(io_, wallets.TopUp("nobody", 1'000'000, 4, "po-1"));
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().category, ErrorCategory::kNotFound);

  WalletStore reader(NewConnection(), "t");
  auto wallet = RunAsync(io_, reader.Get("studio", 5, 0));
  ASSERT_TRUE(wallet) << wallet.error().Describe();
  EXPECT_EQ(wallet->balance_micros, 3'000'000);  // on the master, each top-up once
  EXPECT_EQ(server_->Run({"HGET", "t:{q}:auth:tenant:studio", "max_queued"}).str, "10");
}

// The same with a real replica, stopped (SIGSTOP: still connected, acknowledging nothing). From
// Redis 7.2 a WAIT counts only its own connection's writes: a retry on another connection (after
// a reconnect, or through a second scheduler) that wrote nothing would be confirmed at once by
// the replica online while it still lacks the original; the master dies and the credit or the
// job is gone. A duplicate top-up or submit therefore writes its id's key again (replication is
// ordered: a replica that has that write has the original). Redis 7.0 (Debian's, on the test
// machines) stamps a connection's WAIT offset after any command, so there the lagging replica
// is caught either way; that the duplicate itself went into the replication stream is what
// these tests check on every version.
class ReplicatedDuplicateTest : public StoreTest {
 protected:
  static void SetUpTestSuite() {
    StoreTest::SetUpTestSuite();
    // The first sync at once, not after the default 5 s wait for more replicas.
    server_->Run({"CONFIG", "SET", "repl-diskless-sync-delay", "0"});
    replica_ = std::make_unique<testing::RedisServer>(testing::RedisServerOptions{
        .extra_args = {"--replicaof", "127.0.0.1", std::to_string(server_->port())}});
  }
  static void TearDownTestSuite() {
    replica_.reset();
    StoreTest::TearDownTestSuite();
  }
  void SetUp() override {
    StoreTest::SetUp();
    CaughtUp();
  }
  // Waits until the replica holds everything written so far.
  void CaughtUp() {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (replica_->InfoField("master_link_status", "replication") != "up" ||
           replica_->InfoField("slave_repl_offset", "replication") !=
               server_->InfoField("master_repl_offset", "replication")) {
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the replica did not catch up";
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  void TearDown() override { ::kill(replica_->pid(), SIGCONT); }

  static int64_t ReplicationOffset() {
    return std::stoll(server_->InfoField("master_repl_offset", "replication").value_or("-1"));
  }

  inline static std::unique_ptr<testing::RedisServer> replica_;
};

TEST_F(ReplicatedDuplicateTest, ATopUpResentOnAnotherConnectionIsNotConfirmedByALaggingReplica) {
  server_->Run({"SADD", "t:{q}:auth:tenants", "studio"});
  ASSERT_NO_FATAL_FAILURE(CaughtUp());
  ASSERT_EQ(::kill(replica_->pid(), SIGSTOP), 0);
  WalletStore first(NewConnection(), "t");
  first.RequireReplicas(1, std::chrono::milliseconds(200));
  auto topped = RunAsync(io_, first.TopUp("studio", 2'000'000, 1, "po-9"));
  ASSERT_FALSE(topped);
  EXPECT_NE(topped.error().message.find("0 of 1 replicas"), std::string::npos)
      << topped.error().message;

  WalletStore resent(NewConnection(), "t");
  resent.RequireReplicas(1, std::chrono::milliseconds(200));
  auto again = RunAsync(io_, resent.TopUp("studio", 2'000'000, 2, "po-9"));
  ASSERT_FALSE(again) << "a resent top-up was confirmed while the replica lacks its credit";
  EXPECT_EQ(again.error().category, ErrorCategory::kRetryable);
  EXPECT_NE(again.error().message.find("0 of 1 replicas"), std::string::npos)
      << again.error().message;

  // The resend itself went into the replication stream (measured without a WAIT, whose
  // REPLCONF GETACK to the replicas moves the offset too).
  WalletStore unwaited(NewConnection(), "t");
  const int64_t offset = ReplicationOffset();
  auto unconfirmed = RunAsync(io_, unwaited.TopUp("studio", 2'000'000, 3, "po-9"));
  ASSERT_TRUE(unconfirmed) << unconfirmed.error().Describe();
  EXPECT_EQ(unconfirmed->balance_micros, 2'000'000);
  EXPECT_GT(ReplicationOffset(), offset) << "the resent top-up wrote nothing for its WAIT to cover";

  // Once the replica catches up, the resend is confirmed, and credited once.
  ASSERT_EQ(::kill(replica_->pid(), SIGCONT), 0);
  resent.RequireReplicas(1, std::chrono::milliseconds(5000));
  auto confirmed = RunAsync(io_, resent.TopUp("studio", 2'000'000, 4, "po-9"));
  ASSERT_TRUE(confirmed) << confirmed.error().Describe();
  EXPECT_EQ(confirmed->balance_micros, 2'000'000);
  EXPECT_EQ(replica_->Run({"HGET", "t:{q}:wallet:studio", "balance"}).str, "2000000");
}

TEST_F(ReplicatedDuplicateTest, ASubmitResentOnAnotherConnectionIsNotConfirmedByALaggingReplica) {
  Sync(OneModel());
  ASSERT_NO_FATAL_FAILURE(CaughtUp());
  ASSERT_EQ(::kill(replica_->pid(), SIGSTOP), 0);
  const NewJob job{.id = "j-first",
                   .tenant = "studio",
                   .idempotency_key = "shot-12",
                   .spec_bytes = "spec",
                   .candidate_models = {"m1"}};
  auto first = RunAsync(io_, store_->SubmitMany({job}, 3600));
  ASSERT_TRUE(first) << first.error().Describe();
  ASSERT_FALSE((*first)[0].duplicate);

  auto connection = NewConnection();
  JobStore resent(connection, "t", clock_);
  NewJob again = job;
  again.id = "j-again";
  const int64_t offset = ReplicationOffset();
  auto second = RunAsync(io_, resent.SubmitMany({again}, 3600));
  EXPECT_GT(ReplicationOffset(), offset) << "the duplicate wrote nothing for its WAIT to cover";
  ASSERT_TRUE(second) << second.error().Describe();
  ASSERT_TRUE((*second)[0].duplicate);
  EXPECT_EQ((*second)[0].job_id, "j-first");
  // What JobApi does before answering it: WAIT on the connection it was sent on.
  auto replicated =
      RunAsync(io_, redis::WaitForReplicas(*connection, 1, std::chrono::milliseconds(200)));
  ASSERT_FALSE(replicated) << "a duplicate was confirmed while the replica lacks the original";
  EXPECT_NE(replicated.error().message.find("0 of 1 replicas"), std::string::npos)
      << replicated.error().message;
}

}  // namespace
}  // namespace reelq::queue
