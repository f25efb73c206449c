// Issue 11 retention against a real redis-server: finished jobs past queue.retention_hours leave
// Redis with every key and index entry that names them (history is inside the job hash), the
// batch record goes with its last job, younger and unfinished jobs stay, idempotency keys keep
// their own window, and GetJob then says the job expired.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "redis_server.h"
#include "reelq/common/clock.h"
#include "reelq/common/redis.h"
#include "reelq/queue/job_store.h"
#include "run_async.h"

namespace reelq::queue {
namespace {

using namespace std::chrono_literals;
using testing::RedisServer;
using testing::RunAsync;

class RetentionTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = std::make_unique<RedisServer>(); }
  static void TearDownTestSuite() { server_.reset(); }

  void SetUp() override {
    server_->Run({"FLUSHALL"});
    clock_ = std::make_shared<ManualClock>();
    auto connected = RunAsync(io_, redis::Connect(io_.get_executor(), server_->ClientOptions()));
    ASSERT_TRUE(connected) << connected.error().Describe();
    store_ = std::make_unique<JobStore>(*connected, "t", clock_);
    QueueSettings s;
    s.models.push_back({.id = "m1", .accounts = {"a1"}});
    s.accounts.push_back(
        {.id = "a1", .provider = "p", .requests_per_minute = 1e9, .max_concurrent = 100000});
    auto synced = RunAsync(io_, store_->SyncSettings(s));
    ASSERT_TRUE(synced) << synced.error().Describe();
  }

  void Submit(const std::vector<std::string>& ids, const std::string& batch,
              const std::string& idempotency_key = "") {
    std::vector<NewJob> jobs;
    for (const auto& id : ids) {
      jobs.push_back(NewJob{.id = id,
                            .tenant = "studio",
                            .batch = batch,
                            .idempotency_key = idempotency_key.empty() ? "" : idempotency_key + id,
                            .spec_bytes = "spec",
                            .candidate_models = {"m1"}});
    }
    auto r = RunAsync(io_, store_->SubmitMany(jobs, 30 * 24 * 3600));
    ASSERT_TRUE(r) << r.error().Describe();
  }

  // Dispatches and leases everything pending; returns the leased jobs by id.
  std::map<std::string, LeasedJob> Run() {
    auto d = RunAsync(io_, store_->Dispatch(1000, 1000, 1));
    if (!d) throw std::runtime_error(d.error().Describe());
    auto leased = RunAsync(io_, store_->Lease("w1", 1000, 3600s));
    if (!leased) throw std::runtime_error(leased.error().Describe());
    std::map<std::string, LeasedJob> out;
    for (auto& j : *leased) out[j.id] = j;
    return out;
  }

  void Succeed(const LeasedJob& job) {
    auto r =
        RunAsync(io_, store_->Complete({.job_id = job.id, .token = job.token, .output_key = "k"}));
    ASSERT_TRUE(r) << r.error().Describe();
  }

  int Sweep(std::chrono::milliseconds retention) {
    int removed = 0;
    for (int call = 0; call < 100; ++call) {
      // Chunks of two: the sweep must carry on where a full chunk stopped.
      auto r = RunAsync(io_, store_->ExpireFinished(retention, 2));
      if (!r) throw std::runtime_error(r.error().Describe());
      removed += r->jobs_removed;
      if (!r->more) return removed;
    }
    throw std::runtime_error("retention sweep never finished");
  }

  // Every key that names `id`, or holds it as a member, anywhere in the keyspace.
  std::vector<std::string> KeysMentioning(const std::string& id) {
    std::vector<std::string> found;
    std::string cursor = "0";
    do {
      auto page = server_->Run({"SCAN", cursor, "COUNT", "1000"});
      cursor = page.elements.at(0).str;
      for (const auto& k : page.elements.at(1).elements) {
        const std::string key = k.str;
        if (key.find(id) != std::string::npos) {
          found.push_back(key);
          continue;
        }
        const std::string type = server_->Run({"TYPE", key}).str;
        bool holds = false;
        if (type == "zset") holds = !server_->Run({"ZSCORE", key, id}).IsNil();
        if (type == "set") holds = server_->Run({"SISMEMBER", key, id}).integer == 1;
        if (type == "list") holds = !server_->Run({"LPOS", key, id}).IsNil();
        if (type == "hash") holds = !server_->Run({"HGET", key, id}).IsNil();
        if (type == "string") holds = server_->Run({"GET", key}).str == id;
        if (holds) found.push_back(key + " (member)");
      }
    } while (cursor != "0");
    return found;
  }

  bool Exists(const std::string& key) { return server_->Run({"EXISTS", key}).integer == 1; }

  static std::unique_ptr<RedisServer> server_;
  asio::io_context io_;
  std::shared_ptr<ManualClock> clock_;
  std::unique_ptr<JobStore> store_;
};

std::unique_ptr<RedisServer> RetentionTest::server_;

TEST_F(RetentionTest, FinishedJobsPastRetentionVanishWithEveryKeyYoungerAndUnfinishedStay) {
  // At T0: batch "old" ends whole (two succeed, one is cancelled); in batch "mixed" one job
  // fails for good and one keeps running; one job waits unfinished.
  Submit({"old1", "old2", "old3"}, "old", "key-");
  Submit({"mix-failed", "mix-running"}, "mixed");
  auto leased = Run();
  ASSERT_EQ(leased.size(), 5u);
  Succeed(leased["old1"]);
  Succeed(leased["old2"]);
  ASSERT_TRUE(RunAsync(io_, store_->Cancel("old3")));
  auto failed = RunAsync(io_, store_->Fail({.job_id = "mix-failed",
                                            .token = leased["mix-failed"].token,
                                            .category = ErrorCategory::kInvalidRequest,
                                            .message = "refused by the provider"}));
  ASSERT_TRUE(failed) << failed.error().Describe();
  ASSERT_EQ(*failed, FailOutcome::kFailed);
  Submit({"waiting"}, "");

  // Two hours later a young batch finishes.
  clock_->Advance(2h);
  Submit({"young1"}, "young");
  auto young = Run();
  ASSERT_EQ(young.size(), 2u);  // young1 and "waiting"
  Succeed(young["young1"]);

  // Nothing is due under a three-hour retention yet.
  EXPECT_EQ(Sweep(3h), 0);
  // Under 90 minutes the four jobs that ended at T0 go, in chunks of two.
  EXPECT_EQ(Sweep(90min), 4);

  for (const std::string id : {"old1", "old2", "old3", "mix-failed"}) {
    auto mentions = KeysMentioning(id);
    // The idempotency keys keep their own window (30 days here).
    std::erase_if(mentions,
                  [](const std::string& k) { return k.find(":idem:") != std::string::npos; });
    EXPECT_TRUE(mentions.empty()) << id << " still in " << ::testing::PrintToString(mentions);
    auto got = RunAsync(io_, store_->Get(id));
    ASSERT_FALSE(got) << id;
    EXPECT_EQ(got.error().category, ErrorCategory::kNotFound);
    EXPECT_NE(got.error().message.find("retention"), std::string::npos) << got.error().message;
  }
  EXPECT_TRUE(Exists("t:{q}:idem:studio:key-old1"));
  // The batch whose last job went is gone; the one with a running job keeps its record.
  EXPECT_FALSE(Exists("t:{q}:batch:old"));
  EXPECT_FALSE(Exists("t:{q}:batch:old:jobs"));
  auto old_batch = RunAsync(io_, store_->GetBatch("old"));
  EXPECT_FALSE(old_batch);
  auto mixed = RunAsync(io_, store_->GetBatch("mixed"));
  ASSERT_TRUE(mixed) << mixed.error().Describe();
  for (const std::string id : {"mix-running", "waiting", "young1"}) {
    auto got = RunAsync(io_, store_->Get(id));
    ASSERT_TRUE(got) << id << ": " << got.error().Describe();
    EXPECT_FALSE(got->history.empty()) << id;
  }
  // The running job finishes now; it stays until its own retention has passed.
  Succeed(leased["mix-running"]);
  clock_->Advance(80min);
  EXPECT_EQ(Sweep(90min), 0);
  clock_->Advance(11min);
  EXPECT_EQ(Sweep(90min), 2);  // young1 (ended 91 min ago) and mix-running
  EXPECT_FALSE(Exists("t:{q}:batch:young"));
  EXPECT_FALSE(Exists("t:{q}:batch:mixed"));
  EXPECT_TRUE(KeysMentioning("young1").empty());
  EXPECT_TRUE(KeysMentioning("mix-running").empty());
  // The unfinished job is untouched by any retention.
  EXPECT_TRUE(RunAsync(io_, store_->Get("waiting")));
  EXPECT_EQ(Sweep(0ms), 0);
}

TEST_F(RetentionTest, TheClaimOnAnUpstreamTaskLeavesWithItsJob) {
  // Each job records its upstream task (phase.lua claims owner:<account>:<task> for 48 h); one
  // ends old, one young. Under a one-hour retention the old job's claim must go with it, not
  // outlive it by two days (bench/scale --retention saw one such key per job pile up).
  Submit({"old", "young"}, "b");
  auto leased = Run();
  ASSERT_EQ(leased.size(), 2u);
  for (const auto& [id, job] : leased) {
    auto r =
        RunAsync(io_, store_->SetPhase(id, job.token, JobPhase::kGenerating, "task-" + id, ""));
    ASSERT_TRUE(r) << r.error().Describe();
  }
  ASSERT_TRUE(Exists("t:{q}:owner:a1:task-old"));
  Succeed(leased["old"]);
  clock_->Advance(2h);
  Succeed(leased["young"]);
  EXPECT_EQ(Sweep(1h), 1);
  EXPECT_FALSE(Exists("t:{q}:owner:a1:task-old"));
  EXPECT_TRUE(KeysMentioning("old").empty()) << ::testing::PrintToString(KeysMentioning("old"));
  // The young job keeps its claim while it is kept.
  EXPECT_TRUE(Exists("t:{q}:owner:a1:task-young"));
  // A claim that names another job (the same task stored by another job) is not ours to drop.
  server_->Run({"SET", "t:{q}:owner:a1:task-young", "someone-else"});
  clock_->Advance(2h);
  EXPECT_EQ(Sweep(1h), 1);
  EXPECT_EQ(server_->Run({"GET", "t:{q}:owner:a1:task-young"}).str, "someone-else");
}

TEST_F(RetentionTest, RetriedJobLeavesTheFinishedIndexAndIsKept) {
  Submit({"j1"}, "b");
  auto leased = Run();
  ASSERT_TRUE(RunAsync(io_, store_->Cancel("j1")));
  // Retried (PENDING again) before retention: the sweep must not take it.
  ASSERT_TRUE(RunAsync(io_, store_->Retry("j1")));
  clock_->Advance(5h);
  EXPECT_EQ(Sweep(1h), 0);
  auto got = RunAsync(io_, store_->Get("j1"));
  ASSERT_TRUE(got) << got.error().Describe();
  EXPECT_EQ(got->state, JobState::kPending);
}

}  // namespace
}  // namespace reelq::queue
