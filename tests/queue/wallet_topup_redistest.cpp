// A top-up sent again with the same request id (an operator's retry after a timeout or a lost
// answer) credits the wallet once, against a real redis-server (wallet_topup.lua); another id,
// or none, credits again; a malformed id is refused naming request_id and changes nothing.
#include <gtest/gtest.h>

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

}  // namespace
}  // namespace reelq::queue
