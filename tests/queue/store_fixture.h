// The set-up the queue's Redis tests share: one real redis-server per test suite, emptied
// before each test, a ManualClock, and a JobStore on prefix "t" over its own connection.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "redis_server.h"
#include "reelq/common/clock.h"
#include "reelq/common/redis.h"
#include "reelq/queue/job_store.h"
#include "reelq/queue/wallet_store.h"
#include "run_async.h"

namespace reelq::queue {

class StoreTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = std::make_unique<testing::RedisServer>(); }
  static void TearDownTestSuite() { server_.reset(); }

  void SetUp() override {
    server_->Run({"FLUSHALL"});
    clock_ = std::make_shared<ManualClock>();
    store_ = NewStore();
  }

  // A connection of its own, for stores that race the test's store_.
  redis::ConnectionPtr NewConnection() {
    auto connected =
        testing::RunAsync(io_, redis::Connect(io_.get_executor(), server_->ClientOptions()));
    if (!connected) throw std::runtime_error(connected.error().Describe());
    return *connected;
  }

  std::unique_ptr<JobStore> NewStore() {
    return std::make_unique<JobStore>(NewConnection(), "t", clock_);
  }

  // The job as the API reads it; a failed read throws (the test fails naming it).
  JobRecord Get(const std::string& id) {
    auto r = testing::RunAsync(io_, store_->Get(id));
    if (!r) throw std::runtime_error(r.error().Describe());
    return *r;
  }

  void Sync(const QueueSettings& settings) {
    auto r = testing::RunAsync(io_, store_->SyncSettings(settings));
    ASSERT_TRUE(r) << r.error().Describe();
  }

  // Fails a leased job for good (a refusal no retry changes).
  void FailForGood(const LeasedJob& job) {
    auto r = testing::RunAsync(io_, store_->Fail({.job_id = job.id,
                                                  .token = job.token,
                                                  .category = ErrorCategory::kInvalidRequest,
                                                  .message = "refused"}));
    ASSERT_TRUE(r) << r.error().Describe();
    ASSERT_EQ(*r, FailOutcome::kFailed);
  }

  // A leased job whose upstream task ("up-<id>") finished, but whose clip the store refused on
  // every attempt (fail.lua keep_task): each retry is reaped back to `ready` and leased again
  // until its attempts run out and it ends FAILED, charged for the task it kept.
  void FailAfterGenerationForGood(LeasedJob job) {
    ASSERT_NO_FATAL_FAILURE(SetPhaseGathered({job}, JobPhase::kGenerating, 1));
    for (int round = 0; round < 20; ++round) {
      auto r = testing::RunAsync(io_, store_->Fail({.job_id = job.id,
                                                    .token = job.token,
                                                    .category = ErrorCategory::kRetryable,
                                                    .message = "the store refused the clip",
                                                    .retry = true,
                                                    .retry_at_ms = clock_->NowMs(),
                                                    .keep_task = true}));
      ASSERT_TRUE(r) << r.error().Describe();
      if (*r == FailOutcome::kFailed) return;
      ASSERT_TRUE(testing::RunAsync(io_, store_->Reap(100)));
      auto leased = Run();
      ASSERT_TRUE(leased.contains(job.id)) << job.id << " was not leased again";
      job = leased[job.id];
      ASSERT_EQ(job.upstream, "up-" + job.id);
    }
    FAIL() << job.id << " never ran out of attempts";
  }

  // RetryJob of `group` whose child `child` ended as FailAfterGenerationForGood left it: the
  // child is back in `ready` with its finished task and nothing reserved (fetched again, not
  // made again), then leased again with that task. The lease.
  LeasedJob RetryFetchesAgain(const std::string& group, const std::string& child) {
    auto retried = testing::RunAsync(io_, store_->Retry(group));
    EXPECT_TRUE(retried) << retried.error().Describe();
    const auto job = Get(child);
    EXPECT_EQ(job.state, JobState::kDispatched);
    EXPECT_EQ(job.upstream, "up-" + child);
    EXPECT_EQ(job.reserved_micros, 0);
    auto leased = Run();
    EXPECT_TRUE(leased.contains(child));
    EXPECT_EQ(leased[child].upstream, "up-" + child);
    return leased[child];
  }

  // Tenant "studio"'s wallet: topped up (made a tenant first), and read.
  void TopUp(int64_t micros) {
    server_->Run({"SADD", "t:{q}:auth:tenants", "studio"});
    WalletStore wallets(NewConnection(), "t");
    auto r = testing::RunAsync(io_, wallets.TopUp("studio", micros, clock_->NowMs()));
    ASSERT_TRUE(r) << r.error().Describe();
  }
  WalletView Wallet() {
    WalletStore wallets(NewConnection(), "t");
    auto r = testing::RunAsync(io_, wallets.Get("studio", clock_->NowMs(), 0));
    if (!r) throw std::runtime_error(r.error().Describe());
    return *r;
  }

  // An account whose rate and concurrency never hold a test's jobs back.
  static AccountSetting UnboundedAccount(std::string id) {
    return {
        .id = std::move(id), .provider = "p", .requests_per_minute = 1e9, .max_concurrent = 100000};
  }

  // One model "m1" served by `accounts`.
  // A storyboard `id` of `shots` children "<id>-s<k>" (or `child_ids` when given) on model m1,
  // the parent first: as JobApi::SubmitMany sends a group.
  static std::vector<NewJob> Storyboard(const std::string& id, int shots,
                                        const std::string& batch = "",
                                        std::vector<std::string> child_ids = {}) {
    if (child_ids.empty()) {
      for (int k = 0; k < shots; ++k) child_ids.push_back(id + "-s" + std::to_string(k));
    }
    std::vector<NewJob> jobs;
    jobs.push_back(NewJob{.id = id,
                          .tenant = "studio",
                          .batch = batch,
                          .spec_bytes = "spec",
                          .candidate_models = {"m1"},
                          .kind = std::string(kKindStoryboard),
                          .children = child_ids});
    for (size_t k = 0; k < child_ids.size(); ++k) {
      jobs.push_back(NewJob{.id = child_ids[k],
                            .tenant = "studio",
                            .batch = batch,
                            .spec_bytes = "spec",
                            .candidate_models = {"m1"},
                            .parent = id,
                            .child_index = static_cast<int>(k),
                            .billed_seconds = 4,
                            .resolution = "720p"});
    }
    return jobs;
  }

  // Dispatches and leases (as worker "w1") everything there is; the leased jobs by id.
  std::map<std::string, LeasedJob> Run() {
    auto d = testing::RunAsync(io_, store_->Dispatch(1000, 1000, 1));
    if (!d) throw std::runtime_error(d.error().Describe());
    auto leased = testing::RunAsync(io_, store_->Lease("w1", 1000, std::chrono::seconds(3600)));
    if (!leased) throw std::runtime_error(leased.error().Describe());
    std::map<std::string, LeasedJob> out;
    for (auto& j : *leased) out[j.id] = j;
    return out;
  }

  static QueueSettings OneModel(std::vector<AccountSetting> accounts = {UnboundedAccount("a1")}) {
    QueueSettings s;
    ModelSetting m{.id = "m1"};
    for (const auto& a : accounts) m.accounts.push_back(a.id);
    s.models.push_back(std::move(m));
    s.accounts = std::move(accounts);
    return s;
  }

  // The worker's writes as it gathers them (worker/src/store_writer.h): `per_call` jobs of
  // `leased` a call, every answer OK. The cost tests drive a job's life with these.
  void TakePermitsGathered(const std::vector<LeasedJob>& leased, size_t per_call) {
    for (size_t at = 0; at < leased.size(); at += per_call) {
      std::vector<PermitRequest> permits;
      for (size_t i = at; i < std::min(leased.size(), at + per_call); ++i) {
        permits.push_back({leased[i].id, leased[i].token, clock_->NowMs(), leased[i].attempt});
      }
      auto r = testing::RunAsync(
          io_, store_->TakeCreatePermitMany(std::chrono::milliseconds(1000), permits));
      ASSERT_TRUE(r) << r.error().Describe();
      for (const auto& one : *r) {
        ASSERT_TRUE(one) << one.error().Describe();
        ASSERT_EQ(one->count(), 0);
      }
    }
  }

  // GENERATING records the upstream id "up-<job id>".
  void SetPhaseGathered(const std::vector<LeasedJob>& leased, JobPhase phase, size_t per_call) {
    for (size_t at = 0; at < leased.size(); at += per_call) {
      std::vector<PhaseChange> changes;
      for (size_t i = at; i < std::min(leased.size(), at + per_call); ++i) {
        const auto& j = leased[i];
        changes.push_back({j.id, j.token, phase,
                           phase == JobPhase::kGenerating ? "up-" + j.id : std::string(), ""});
      }
      auto r = testing::RunAsync(io_, store_->SetPhaseMany(changes));
      ASSERT_TRUE(r) << r.error().Describe();
      for (const auto& one : *r) ASSERT_TRUE(one) << one.error().Describe();
    }
  }

  void CompleteGathered(const std::vector<LeasedJob>& leased, size_t per_call) {
    for (size_t at = 0; at < leased.size(); at += per_call) {
      std::vector<CompleteRequest> done;
      for (size_t i = at; i < std::min(leased.size(), at + per_call); ++i) {
        done.push_back({.job_id = leased[i].id, .token = leased[i].token, .output_key = "k"});
      }
      auto r = testing::RunAsync(io_, store_->CompleteMany(done));
      ASSERT_TRUE(r) << r.error().Describe();
      for (const auto& one : *r) ASSERT_TRUE(one) << one.error().Describe();
    }
  }

  inline static std::unique_ptr<testing::RedisServer> server_;
  asio::io_context io_;
  std::shared_ptr<ManualClock> clock_;
  std::unique_ptr<JobStore> store_;
};

}  // namespace reelq::queue
