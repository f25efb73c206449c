// A failure after the upstream task finished (the object store refusing the sidecar) against a
// real redis-server: the provider has made the clip and bills it, so the retry fetches it again
// from the same task (fail.lua keep_task, reap.lua) instead of paying for a second generation,
// and the retries stay bounded by the job's attempts.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <filesystem>

#include "reelq/providers/fake_provider.h"
#include "reelq/storage/sha256.h"
#include "worker_harness.h"

namespace reelq::worker {
namespace {

using namespace std::chrono_literals;
using testing::RedisServer;
using testing::RunAsync;
using testing::RunFor;

using providers::FakeProvider;

// A writer whose commit reports an object already there without its checksum, as the S3 store's
// does (its HEAD carries none).
class ChecksumlessWriter final : public storage::ObjectWriter {
 public:
  explicit ChecksumlessWriter(storage::ObjectWriterPtr inner) : inner_(std::move(inner)) {}
  awaitable<Result<void>> Write(std::span<const std::byte> chunk) override {
    co_return co_await inner_->Write(chunk);
  }
  awaitable<Result<storage::CommitResult>> Commit() override {
    auto committed = co_await inner_->Commit();
    if (committed && committed->already_existed) committed->info.sha256.clear();
    co_return committed;
  }
  awaitable<void> Abort() override { co_await inner_->Abort(); }

 private:
  storage::ObjectWriterPtr inner_;
};

// The filesystem store, refusing to open a writer for a sidecar while `sidecar_failures` lasts
// (as an S3 bucket answering 503).
class FlakyStore final : public storage::ObjectStore {
 public:
  explicit FlakyStore(storage::ObjectStorePtr inner) : inner_(std::move(inner)) {}
  int sidecar_failures = 0;
  int sidecar_refusals = 0;
  ErrorCategory sidecar_error = ErrorCategory::kRetryable;
  bool checksumless = false;  // commits answer as the S3 store's do

  std::string_view name() const override { return inner_->name(); }
  awaitable<Result<storage::ObjectWriterPtr>> OpenWriter(std::string key,
                                                         storage::PutOptions options) override {
    if (key.ends_with(".json") && sidecar_failures > 0) {
      --sidecar_failures;
      ++sidecar_refusals;
      co_return std::unexpected(Error{sidecar_error, "store answered 503"});
    }
    auto writer = co_await inner_->OpenWriter(std::move(key), std::move(options));
    if (writer && checksumless) {
      co_return std::make_unique<ChecksumlessWriter>(std::move(*writer));
    }
    co_return writer;
  }
  awaitable<Result<storage::ObjectInfo>> Head(std::string key) override {
    co_return co_await inner_->Head(std::move(key));
  }
  awaitable<Result<void>> Delete(std::string key) override {
    co_return co_await inner_->Delete(std::move(key));
  }
  awaitable<Result<std::string>> ReadSmall(std::string key, size_t max_bytes) override {
    co_return co_await inner_->ReadSmall(std::move(key), max_bytes);
  }
  Result<std::string> PresignGet(const std::string& key, std::chrono::seconds ttl) const override {
    return inner_->PresignGet(key, ttl);
  }

 private:
  storage::ObjectStorePtr inner_;
};

struct Fixture : WorkerHarness {
  std::shared_ptr<FakeProvider> provider = std::make_shared<FakeProvider>();
  std::shared_ptr<FlakyStore> flaky;

  Fixture() : WorkerHarness(/*max_concurrent=*/10) {
    flaky = std::make_shared<FlakyStore>(objects);
    objects = flaky;
    deps.objects = flaky.get();
    deps.settings.transfer_attempts = 1;  // one refusal fails the attempt
    deps.settings.retry_backoff_initial = 50ms;
    deps.settings.retry_backoff_max = 100ms;
    Start(provider);
  }

  // Runs job "x" to its end and checks it succeeded from the one task it created ("task-1"):
  // nothing was paid for twice. The record, for the test's own checks.
  queue::JobRecord RunToEndMadeOnce() {
    EXPECT_TRUE(RunToEnd("x"));
    auto job = Get("x");
    EXPECT_EQ(job.state, queue::JobState::kSucceeded) << job.error_message;
    EXPECT_EQ(provider->creates, 1) << "a second generation was paid for";
    EXPECT_EQ(job.upstream, "task-1");
    return job;
  }

  // Job "x"'s clip key, already holding `bytes` (an earlier attempt's clip).
  std::string StoreEarlierClip(const std::string& bytes) {
    const auto key = JobRunner::ClipKey("t", "b", "x");
    auto writer = RunAsync(io, objects->OpenWriter(key, {}));
    EXPECT_TRUE(writer) << writer.error().Describe();
    if (!writer) return key;
    EXPECT_TRUE(RunAsync(io, (*writer)->Write(std::as_bytes(std::span(bytes)))));
    EXPECT_TRUE(RunAsync(io, (*writer)->Commit()));
    return key;
  }
};

TEST(WorkerKeptTaskTest, AStoreFailureAfterTheGenerationFetchesTheSameTaskAgain) {
  if (!RedisServer::Available()) GTEST_SKIP() << "redis-server is not installed";
  Fixture f;
  f.flaky->sidecar_failures = 1;
  ASSERT_NO_FATAL_FAILURE(f.Submit("x"));
  f.Dispatch(10);
  ASSERT_TRUE(f.RunToEnd("x"));

  const auto job = f.Get("x");
  EXPECT_EQ(job.state, queue::JobState::kSucceeded);
  EXPECT_EQ(f.flaky->sidecar_refusals, 1);
  EXPECT_EQ(f.provider->creates, 1) << "the retry paid for a second generation";
  EXPECT_EQ(f.provider->downloads_finished, 2);  // fetched again from the same task
  EXPECT_EQ(job.upstream, "task-1");
  EXPECT_EQ(job.attempt, 2);
  bool kept = false;
  for (const auto& t : job.history)
    kept = kept || t.detail.ends_with("(the finished task is kept)");
  EXPECT_TRUE(kept);
  EXPECT_TRUE(std::filesystem::exists(f.dir.path() / "store" / job.output_key));
  EXPECT_TRUE(
      std::filesystem::exists(f.dir.path() / "store" / JobRunner::SidecarKey(job.output_key)));
}

// Polls refused as unauthorised (a key rotated while the task generated, a worker clock ahead of
// the provider's) do not end a task that is generating and billed: they are passing errors, and
// the job goes on with the same task once the polls are let in again.
TEST(WorkerKeptTaskTest, PollsRefusedAsUnauthorisedKeepTheTask) {
  if (!RedisServer::Available()) GTEST_SKIP() << "redis-server is not installed";
  Fixture f;
  f.provider->polls_unauthorised = 3;
  ASSERT_NO_FATAL_FAILURE(f.Submit("x"));
  f.Dispatch(10);
  ASSERT_TRUE(f.RunToEnd("x"));
  const auto job = f.Get("x");
  EXPECT_EQ(job.state, queue::JobState::kSucceeded) << job.error_message;
  EXPECT_EQ(f.provider->creates, 1) << "the task was abandoned and made again";
  EXPECT_EQ(job.upstream, "task-1");
  EXPECT_EQ(job.attempt, 1);
}

// A download refused as gone (a result URL that expired) does not make the clip again either:
// the retry's poll of the same task hands out a fresh URL.
TEST(WorkerKeptTaskTest, ADownloadRefusedAsGoneFetchesAFreshUrlFromTheSameTask) {
  if (!RedisServer::Available()) GTEST_SKIP() << "redis-server is not installed";
  Fixture f;
  f.provider->downloads_gone = 1;
  ASSERT_NO_FATAL_FAILURE(f.Submit("x"));
  f.Dispatch(10);
  ASSERT_TRUE(f.RunToEnd("x"));
  const auto job = f.Get("x");
  EXPECT_EQ(job.state, queue::JobState::kSucceeded);
  EXPECT_EQ(f.provider->creates, 1);
  EXPECT_EQ(f.provider->downloads_started, 2);
  EXPECT_EQ(job.upstream, "task-1");
}

// A download refused as unauthorised (a key rotated since the create, an origin that wants the
// key) does not end a job whose clip is made and billed: like a refused poll, it passes, and the
// retry fetches the clip from the same task.
TEST(WorkerKeptTaskTest, ADownloadRefusedAsUnauthorisedIsFetchedAgainFromTheSameTask) {
  if (!RedisServer::Available()) GTEST_SKIP() << "redis-server is not installed";
  Fixture f;
  f.provider->downloads_unauthorised = 1;
  ASSERT_NO_FATAL_FAILURE(f.Submit("x"));
  f.Dispatch(10);
  const auto job = f.RunToEndMadeOnce();
  EXPECT_EQ(f.provider->downloads_started, 2);
  EXPECT_EQ(job.attempt, 2);
}

// So does a store refusing as unauthorised (S3 credentials expired, a directory's permissions),
// once they are renewed.
TEST(WorkerKeptTaskTest, AStoreRefusingAsUnauthorisedOnceKeepsTheTask) {
  if (!RedisServer::Available()) GTEST_SKIP() << "redis-server is not installed";
  Fixture f;
  f.flaky->sidecar_error = ErrorCategory::kAuthFailed;
  f.flaky->sidecar_failures = 1;
  ASSERT_NO_FATAL_FAILURE(f.Submit("x"));
  f.Dispatch(10);
  f.RunToEndMadeOnce();
}

// A download answered 429 (the clip's CDN throttling) says nothing about the account's create
// rate: the job retries its download after the Retry-After, and the account is neither cooled
// down nor has its rate halved.
TEST(WorkerKeptTaskTest, ADownloadRateLimitedLeavesTheAccountAlone) {
  if (!RedisServer::Available()) GTEST_SKIP() << "redis-server is not installed";
  Fixture f;  // transfer_attempts = 1: the 429 fails the attempt
  f.provider->downloads_rate_limited = 1;
  ASSERT_NO_FATAL_FAILURE(f.Submit("x"));
  f.Dispatch(10);
  f.RunToEndMadeOnce();
  EXPECT_EQ(f.provider->downloads_started, 2);
  const auto learned = f.server.Run({"HGET", "rq:{q}:acct:a", "learned_rpm"});
  EXPECT_TRUE(learned.IsNil()) << "the account's rate was halved: " << learned.str;
  const auto cooldown = f.server.Run({"HGET", "rq:{q}:acct:a", "cooldown_until"});
  if (!cooldown.IsNil()) {
    EXPECT_LE(std::stoll(cooldown.str), f.clock->NowMs()) << "the account was cooled down";
  }
}

// Within one attempt, the next try of a throttled download waits for its Retry-After.
TEST(WorkerKeptTaskTest, ADownloadRateLimitedIsTriedAgainAfterItsRetryAfter) {
  if (!RedisServer::Available()) GTEST_SKIP() << "redis-server is not installed";
  Fixture f;
  f.deps.settings.transfer_attempts = 2;
  f.provider->downloads_rate_limited = 1;
  f.provider->download_retry_after = 1500ms;  // far past retry_backoff_initial (50 ms)
  ASSERT_NO_FATAL_FAILURE(f.Submit("x"));
  f.Dispatch(10);
  ASSERT_TRUE(f.PumpUntil([&] { return f.provider->downloads_started == 1; }, 10s));
  const auto first = std::chrono::steady_clock::now();
  ASSERT_TRUE(f.PumpUntil([&] { return f.provider->downloads_started == 2; }, 10s));
  EXPECT_GE(std::chrono::steady_clock::now() - first, 1400ms) << "Retry-After not waited for";
  EXPECT_EQ(f.RunToEndMadeOnce().attempt, 1);
}

// A provider that answers without the clip's length (Veo): the sidecar says the length the spec
// asked for, as the job record does, not 0.
TEST(WorkerKeptTaskTest, TheSidecarOfAClipOfUnstatedLengthSaysTheSpecsDuration) {
  if (!RedisServer::Available()) GTEST_SKIP() << "redis-server is not installed";
  Fixture f;
  f.provider->clip_seconds = 0;
  ASSERT_NO_FATAL_FAILURE(f.Submit("x"));  // 5 s
  f.Dispatch(10);
  ASSERT_TRUE(f.RunToEnd("x"));
  const auto job = f.Get("x");
  ASSERT_EQ(job.state, queue::JobState::kSucceeded) << job.error_message;
  EXPECT_EQ(job.clip_seconds, 5);
  auto sidecar =
      RunAsync(f.io, f.objects->ReadSmall(JobRunner::SidecarKey(job.output_key), 1 << 20));
  ASSERT_TRUE(sidecar) << sidecar.error().Describe();
  const auto doc = nlohmann::json::parse(*sidecar);
  EXPECT_EQ(doc.value("clip_seconds", 0.0), 5.0) << *sidecar;
}

// A clip already stored under the job's key (an earlier attempt's, made from another task, as
// after a RetryJob) is kept; the record then describes that clip, not this attempt's download.
TEST(WorkerKeptTaskTest, AClipAlreadyStoredIsKeptAndTheRecordDescribesIt) {
  if (!RedisServer::Available()) GTEST_SKIP() << "redis-server is not installed";
  Fixture f;
  const std::string earlier = "clip of an earlier task";
  const auto key = f.StoreEarlierClip(earlier);
  ASSERT_NO_FATAL_FAILURE(f.Submit("x"));
  f.Dispatch(10);
  ASSERT_TRUE(f.RunToEnd("x"));
  const auto job = f.Get("x");
  EXPECT_EQ(job.state, queue::JobState::kSucceeded);
  EXPECT_EQ(job.output_key, key);
  EXPECT_EQ(job.sha256, storage::Sha256Hex(earlier));
  EXPECT_EQ(f.provider->downloads_finished, 1);
}

// On a store whose commit cannot tell the kept clip's checksum (S3), the record and the sidecar
// describe the clip that is kept (its size; the checksum left unknown), not the bytes this
// attempt downloaded and did not keep.
TEST(WorkerKeptTaskTest, AClipAlreadyStoredOnAChecksumlessStoreIsNotGivenTheDownloadsChecksum) {
  if (!RedisServer::Available()) GTEST_SKIP() << "redis-server is not installed";
  Fixture f;
  f.flaky->checksumless = true;
  const std::string earlier = "an earlier task's clip, of another length";
  const auto key = f.StoreEarlierClip(earlier);
  ASSERT_NO_FATAL_FAILURE(f.Submit("x"));
  f.Dispatch(10);
  ASSERT_TRUE(f.RunToEnd("x"));
  const auto job = f.Get("x");
  EXPECT_EQ(job.state, queue::JobState::kSucceeded);
  EXPECT_EQ(job.sha256, "") << "the checksum of a download that was not kept";
  auto sidecar = RunAsync(f.io, f.objects->ReadSmall(JobRunner::SidecarKey(key), 1 << 20));
  ASSERT_TRUE(sidecar) << sidecar.error().Describe();
  const auto doc = nlohmann::json::parse(*sidecar);
  EXPECT_EQ(doc.value("size_bytes", uint64_t{0}), earlier.size()) << *sidecar;
}

// The same task fetched again (a kept task's retry, a RetryJob's re-fetch) onto such a store
// finds its own bytes there, of the same size: the record keeps their checksum.
TEST(WorkerKeptTaskTest, TheSameTaskFetchedAgainOntoAChecksumlessStoreKeepsItsChecksum) {
  if (!RedisServer::Available()) GTEST_SKIP() << "redis-server is not installed";
  Fixture f;
  f.flaky->checksumless = true;
  const std::string same = "clip of task-1 second half";  // what the fake provider sends
  const auto key = f.StoreEarlierClip(same);
  ASSERT_NO_FATAL_FAILURE(f.Submit("x"));
  f.Dispatch(10);
  ASSERT_TRUE(f.RunToEnd("x"));
  const auto job = f.Get("x");
  EXPECT_EQ(job.state, queue::JobState::kSucceeded);
  EXPECT_EQ(job.sha256, storage::Sha256Hex(same));
}

// A clip past worker.max_clip_mb is not stored, and the job fails saying so, without another
// download or a second generation (it would be as large again).
TEST(WorkerKeptTaskTest, AClipLargerThanTheCapIsNotStored) {
  if (!RedisServer::Available()) GTEST_SKIP() << "redis-server is not installed";
  Fixture f;
  f.Fund(10'000'000);
  f.bill = true;
  f.deps.settings.max_clip_bytes = 10;  // the fake's clip is about 30 bytes
  ASSERT_NO_FATAL_FAILURE(f.Submit("x"));
  f.Dispatch(10);
  ASSERT_TRUE(f.RunToEnd("x"));
  const auto job = f.Get("x");
  EXPECT_EQ(job.state, queue::JobState::kFailed);
  EXPECT_EQ(job.error_category, ErrorCategory::kInvalidRequest);
  EXPECT_NE(job.error_message.find("larger than worker.max_clip_mb"), std::string::npos)
      << job.error_message;
  EXPECT_EQ(f.provider->creates, 1);
  EXPECT_EQ(f.provider->downloads_started, 1);
  EXPECT_FALSE(std::filesystem::exists(f.dir.path() / "store" / JobRunner::ClipKey("t", "b", "x")));
  EXPECT_EQ(f.Wallet().spent_micros, 5 * Fixture::kPricePerSecond);  // made, so billed
  EXPECT_EQ(f.Wallet().reserved_micros, 0);
}

TEST(WorkerKeptTaskTest, AStoreThatKeepsFailingEndsTheJobAfterItsAttempts) {
  if (!RedisServer::Available()) GTEST_SKIP() << "redis-server is not installed";
  Fixture f;
  f.Fund(10'000'000);
  f.bill = true;
  f.flaky->sidecar_failures = 1000;
  ASSERT_NO_FATAL_FAILURE(f.Submit("x"));  // three attempts
  f.Dispatch(10);
  ASSERT_TRUE(f.RunToEnd("x"));

  const auto job = f.Get("x");
  EXPECT_EQ(job.state, queue::JobState::kFailed);
  EXPECT_EQ(f.flaky->sidecar_refusals, 3);
  EXPECT_EQ(f.provider->creates, 1);
  EXPECT_EQ(job.error_category, ErrorCategory::kRetryable);
  EXPECT_EQ(job.errors.size(), 3u);
  // The provider made the clip and bills it: the job's end charges it, once, not refunds it.
  const auto wallet = f.Wallet();
  EXPECT_EQ(wallet.spent_micros, 5 * Fixture::kPricePerSecond);
  EXPECT_EQ(wallet.reserved_micros, 0);
  EXPECT_EQ(wallet.balance_micros, 10'000'000 - 5 * Fixture::kPricePerSecond);
}

// A job that FAILED after its task finished (the store refused its sidecar: credentials expired,
// a read-only disk) was billed for that task. Once the store is fixed, RetryJob fetches the same
// task's clip: nothing is made or charged again.
TEST(WorkerKeptTaskTest, ARetryOfAJobThatFailedAfterItsTaskFinishedFetchesThatTaskAgain) {
  if (!RedisServer::Available()) GTEST_SKIP() << "redis-server is not installed";
  Fixture f;
  f.Fund(10'000'000);
  f.bill = true;
  f.flaky->sidecar_error = ErrorCategory::kAuthFailed;  // retried until the attempts are spent
  f.flaky->sidecar_failures = 1000;
  ASSERT_NO_FATAL_FAILURE(f.Submit("x"));
  f.Dispatch(10);
  ASSERT_TRUE(f.RunToEnd("x"));
  auto job = f.Get("x");
  ASSERT_EQ(job.state, queue::JobState::kFailed);
  EXPECT_EQ(job.error_category, ErrorCategory::kAuthFailed);
  EXPECT_NE(job.generated_ms, 0);
  EXPECT_EQ(f.Wallet().spent_micros, 5 * Fixture::kPricePerSecond);

  f.flaky->sidecar_failures = 0;  // the operator fixed the store
  ASSERT_TRUE(RunAsync(f.io, f.admin->Retry("x")));
  f.Dispatch(10);
  ASSERT_TRUE(f.RunToEnd("x"));
  job = f.Get("x");
  EXPECT_EQ(job.state, queue::JobState::kSucceeded) << job.error_message;
  EXPECT_EQ(f.provider->creates, 1) << "the retry paid for a second generation";
  EXPECT_EQ(job.upstream, "task-1");
  bool fetched_again = false;
  for (const auto& t : job.history) {
    fetched_again =
        fetched_again || t.detail.find("finished upstream task task-1 again") != std::string::npos;
  }
  EXPECT_TRUE(fetched_again);
  const auto wallet = f.Wallet();
  EXPECT_EQ(wallet.spent_micros, 5 * Fixture::kPricePerSecond) << "charged twice";
  EXPECT_EQ(wallet.reserved_micros, 0);
  EXPECT_EQ(wallet.balance_micros, 10'000'000 - 5 * Fixture::kPricePerSecond);
  EXPECT_TRUE(
      std::filesystem::exists(f.dir.path() / "store" / JobRunner::SidecarKey(job.output_key)));
}

// A job whose upstream task is running, leased by a worker that has no key for its account (a
// key not yet mounted everywhere in a rollout): that worker cannot poll it, and failing the job
// would clear the task so the next attempt paid for a second one. It hands the job back with its
// task kept, and a worker with the key fetches that task's clip.
TEST(WorkerKeptTaskTest, AWorkerWithoutTheAccountsKeyHandsARunningTaskBackKept) {
  if (!RedisServer::Available()) GTEST_SKIP() << "redis-server is not installed";
  Fixture f;
  f.provider->hold_polls = true;  // the task generates until the test lets it end
  ASSERT_NO_FATAL_FAILURE(f.Submit("x"));
  f.Dispatch(10);
  ASSERT_TRUE(f.PumpUntil([&] { return f.Get("x").upstream == "task-1"; }, 10s));

  // This worker loses its key, and the job comes back to it (as after another worker's drain).
  auto provider = f.deps.providers["a"];
  f.deps.providers["a"] = nullptr;
  ASSERT_TRUE(RunAsync(f.io, f.admin->HandBack("x", "", "the test takes it back")));
  bool handed_back_kept = false;
  ASSERT_TRUE(f.PumpUntil(
      [&] {
        (void)RunAsync(f.io, f.admin->Reap(100));
        for (const auto& t : f.Get("x").history) {
          handed_back_kept =
              handed_back_kept ||
              (t.detail.find("has no usable API key on worker w1") != std::string::npos &&
               t.detail.find("upstream task kept") != std::string::npos);
        }
        return handed_back_kept;
      },
      10s));
  auto job = f.Get("x");
  EXPECT_EQ(job.upstream, "task-1") << "the running task was let go";
  EXPECT_EQ(job.attempt, 1);

  f.deps.providers["a"] = provider;  // the key is there again
  f.provider->hold_polls = false;
  ASSERT_TRUE(f.RunToEnd("x"));
  job = f.Get("x");
  EXPECT_EQ(job.state, queue::JobState::kSucceeded) << job.error_message;
  EXPECT_EQ(job.upstream, "task-1");
  EXPECT_EQ(f.provider->creates, 1) << "a second task was paid for";
}

// The jobs of a worker that lacks an account's key, or a model, should run elsewhere (a rollout
// that has not given this worker every key yet): each fresh job it cannot run goes back without
// spending an attempt, and a worker with the key runs it then.
bool HandedBackForACapableWorker(const queue::JobRecord& job) {
  for (const auto& t : job.history) {
    if (t.detail.find("handed back for a worker that can run it") != std::string::npos) {
      return true;
    }
  }
  return false;
}

// Keeps job "x" going as a scheduler would (reap, dispatch) for `how_long`.
void KeepRunning(Fixture& f, std::chrono::milliseconds how_long) {
  (void)f.PumpUntil(
      [&] {
        (void)RunAsync(f.io, f.admin->Reap(100));
        f.Dispatch(10);
        return false;
      },
      how_long);
}

TEST(WorkerKeptTaskTest, AFreshJobOnAWorkerWithoutTheAccountsKeyIsHandedBackNotFailed) {
  if (!RedisServer::Available()) GTEST_SKIP() << "redis-server is not installed";
  Fixture f;
  auto provider = f.deps.providers["a"];
  f.deps.providers["a"] = nullptr;
  ASSERT_NO_FATAL_FAILURE(f.Submit("x"));
  f.Dispatch(10);
  KeepRunning(f, 3s);
  auto job = f.Get("x");
  EXPECT_NE(job.state, queue::JobState::kFailed) << job.error_message;
  EXPECT_EQ(job.attempt, 1) << "an attempt was spent on a worker that cannot run the job";
  EXPECT_TRUE(HandedBackForACapableWorker(job));
  EXPECT_EQ(f.provider->creates, 0);

  f.deps.providers["a"] = provider;  // the key is mounted
  EXPECT_EQ(f.RunToEndMadeOnce().attempt, 1);
}

TEST(WorkerKeptTaskTest, AFreshJobOnAWorkerWithoutItsModelIsHandedBackNotFailed) {
  if (!RedisServer::Available()) GTEST_SKIP() << "redis-server is not installed";
  Fixture f;
  auto models = f.catalogue.models;
  f.catalogue.models.clear();
  ASSERT_NO_FATAL_FAILURE(f.Submit("x"));
  f.Dispatch(10);
  KeepRunning(f, 3s);
  auto job = f.Get("x");
  EXPECT_NE(job.state, queue::JobState::kFailed) << job.error_message;
  EXPECT_EQ(job.attempt, 1);
  EXPECT_TRUE(HandedBackForACapableWorker(job));

  f.catalogue.models = models;
  f.RunToEndMadeOnce();
}

// A key or a model that no worker has: the hand-backs stop after worker.wait_for_capable_worker,
// and the job ends as before (model_gone at once; no key, once its attempts are spent).
TEST(WorkerKeptTaskTest, AModelNoWorkerHasStillEndsTheJob) {
  if (!RedisServer::Available()) GTEST_SKIP() << "redis-server is not installed";
  Fixture f;
  f.deps.settings.wait_for_capable_worker = 500ms;
  f.catalogue.models.clear();
  ASSERT_NO_FATAL_FAILURE(f.Submit("x"));
  f.Dispatch(10);
  ASSERT_TRUE(f.RunToEnd("x"));
  const auto job = f.Get("x");
  EXPECT_EQ(job.state, queue::JobState::kFailed);
  EXPECT_EQ(job.error_category, ErrorCategory::kModelGone);
  EXPECT_NE(job.error_message.find("not in the catalogue of worker w1"), std::string::npos)
      << job.error_message;
  EXPECT_TRUE(HandedBackForACapableWorker(job));
}

// The wait for a capable worker counts from this attempt's first hand-back, not from one of an
// earlier attempt: a job handed back once, then failed retryably on a worker that could run it,
// is handed back again by a worker without its model long after, not failed as model_gone.
TEST(WorkerKeptTaskTest, TheWaitForACapableWorkerCountsOnlyThisAttemptsHandBacks) {
  if (!RedisServer::Available()) GTEST_SKIP() << "redis-server is not installed";
  Fixture f;
  f.deps.settings.wait_for_capable_worker = 500ms;
  auto models = f.catalogue.models;
  f.catalogue.models.clear();
  ASSERT_NO_FATAL_FAILURE(f.Submit("x"));
  f.Dispatch(10);
  ASSERT_TRUE(f.PumpUntil(
      [&] {
        (void)RunAsync(f.io, f.admin->Reap(100));
        f.Dispatch(10);
        return HandedBackForACapableWorker(f.Get("x"));
      },
      5s));
  // Long past the wait, a worker that can run it takes it; its create is refused retryably.
  (void)f.PumpUntil([] { return false; }, 700ms);
  f.catalogue.models = models;
  f.provider->create_refusal = Error{ErrorCategory::kRetryable, "the provider answered 503"};
  ASSERT_TRUE(f.PumpUntil(
      [&] {
        (void)RunAsync(f.io, f.admin->Reap(100));
        f.Dispatch(10);
        return f.Get("x").attempt >= 2;
      },
      5s));
  // Its retry lands on a worker without the model again: handed back, not failed.
  f.provider->create_refusal.reset();
  f.catalogue.models.clear();
  const size_t before = f.Get("x").history.size();
  queue::JobRecord job;
  ASSERT_TRUE(f.PumpUntil(
      [&] {
        (void)RunAsync(f.io, f.admin->Reap(100));
        f.Dispatch(10);
        job = f.Get("x");
        if (queue::IsTerminal(job.state)) return true;
        for (size_t k = before; k < job.history.size(); ++k) {
          if (job.history[k].detail.find("handed back for a worker that can run it") !=
              std::string::npos) {
            return true;
          }
        }
        return false;
      },
      5s));
  EXPECT_NE(job.state, queue::JobState::kFailed) << job.error_message;
  EXPECT_EQ(job.attempt, 2);

  f.catalogue.models = models;
  ASSERT_TRUE(f.RunToEnd("x"));
  job = f.Get("x");
  EXPECT_EQ(job.state, queue::JobState::kSucceeded) << job.error_message;
  EXPECT_EQ(f.provider->creates, 1);
}

TEST(WorkerKeptTaskTest, AKeyNoWorkerHasStillEndsTheJob) {
  if (!RedisServer::Available()) GTEST_SKIP() << "redis-server is not installed";
  Fixture f;
  f.deps.settings.wait_for_capable_worker = 500ms;
  f.deps.providers["a"] = nullptr;
  ASSERT_NO_FATAL_FAILURE(f.Submit("x"));
  f.Dispatch(10);
  ASSERT_TRUE(f.RunToEnd("x"));
  const auto job = f.Get("x");
  EXPECT_EQ(job.state, queue::JobState::kFailed);
  EXPECT_NE(job.error_message.find("has no usable API key on worker w1"), std::string::npos)
      << job.error_message;
  EXPECT_EQ(f.provider->creates, 0);
}

// A kept task whose results expired upstream is not made again: that would pay the provider a
// second time for a generation it already billed. The job fails as result_expired, charged once,
// and RetryJob (the tenant's choice to pay again) makes it anew.
TEST(WorkerKeptTaskTest, AKeptTaskTheProviderNoLongerKnowsEndsTheJobChargedNotMadeAgain) {
  if (!RedisServer::Available()) GTEST_SKIP() << "redis-server is not installed";
  Fixture f;
  f.Fund(10'000'000);
  f.bill = true;
  f.flaky->sidecar_failures = 1;
  f.provider->polls_before_forgetting = 1;  // the first attempt's poll; the retry's finds nothing
  ASSERT_NO_FATAL_FAILURE(f.Submit("x"));
  f.Dispatch(10);
  ASSERT_TRUE(f.RunToEnd("x"));

  auto job = f.Get("x");
  EXPECT_EQ(job.state, queue::JobState::kFailed);
  EXPECT_EQ(job.error_category, ErrorCategory::kNotFound);
  EXPECT_EQ(job.error_code, queue::kResultExpired);
  EXPECT_NE(job.error_message.find("task-1 finished on an earlier attempt"), std::string::npos)
      << job.error_message;
  EXPECT_EQ(f.provider->creates, 1) << "the expired task was paid for again";
  EXPECT_EQ(job.errors.size(), 2u);
  EXPECT_NE(job.generated_ms, 0);
  auto wallet = f.Wallet();
  EXPECT_EQ(wallet.spent_micros, 5 * Fixture::kPricePerSecond);  // made, so billed, once
  EXPECT_EQ(wallet.reserved_micros, 0);

  // The tenant chooses to pay again: a fresh task, its clip stored, a second charge.
  f.provider->polls_before_forgetting = -1;
  ASSERT_TRUE(RunAsync(f.io, f.admin->Retry("x")));
  f.Dispatch(10);
  ASSERT_TRUE(f.RunToEnd("x"));
  job = f.Get("x");
  EXPECT_EQ(job.state, queue::JobState::kSucceeded);
  EXPECT_EQ(f.provider->creates, 2);
  EXPECT_EQ(job.upstream, "task-2");
  EXPECT_EQ(job.generated_ms, 0);
  wallet = f.Wallet();
  EXPECT_EQ(wallet.spent_micros, 2 * 5 * Fixture::kPricePerSecond);
  EXPECT_EQ(wallet.reserved_micros, 0);
}

// A kept task's result URL refused once by its CDN (a 403 read as not found) is not an expired
// task: the next attempt polls the same task for a fresh URL, and nothing is made again.
TEST(WorkerKeptTaskTest, AKeptTasksDownloadRefusedOnceIsFetchedAgainNotExpired) {
  if (!RedisServer::Available()) GTEST_SKIP() << "redis-server is not installed";
  Fixture f;
  f.flaky->sidecar_failures = 1;
  ASSERT_NO_FATAL_FAILURE(f.Submit("x"));
  f.Dispatch(10);
  ASSERT_TRUE(f.PumpUntil([&] { return f.Get("x").generated_ms != 0; }, 10s));
  f.provider->downloads_gone = 1;  // the second attempt's download
  ASSERT_TRUE(f.RunToEnd("x"));
  const auto job = f.Get("x");
  EXPECT_EQ(job.state, queue::JobState::kSucceeded) << job.error_code << " " << job.error_message;
  EXPECT_EQ(f.provider->creates, 1);
  EXPECT_EQ(job.attempt, 3);
}

// The provider billed the finished task whatever ends the job after it: a worker whose catalogue
// no longer has the model fails the kept task as model_gone, and the job is charged, not refunded.
TEST(WorkerKeptTaskTest, AKeptTaskWhoseModelIsGoneIsChargedNotRefunded) {
  if (!RedisServer::Available()) GTEST_SKIP() << "redis-server is not installed";
  Fixture f;
  f.Fund(10'000'000);
  f.bill = true;
  f.flaky->sidecar_failures = 1;
  ASSERT_NO_FATAL_FAILURE(f.Submit("x"));
  f.Dispatch(10);
  // Nothing reaps the kept job back to `ready` but RunToEnd: drop the model before that.
  ASSERT_TRUE(f.PumpUntil([&] { return f.Get("x").generated_ms != 0; }, 10s));
  f.catalogue.models.clear();
  ASSERT_TRUE(f.RunToEnd("x"));

  const auto job = f.Get("x");
  EXPECT_EQ(job.state, queue::JobState::kFailed);
  EXPECT_EQ(job.error_category, ErrorCategory::kModelGone);
  EXPECT_EQ(f.provider->creates, 1);
  const auto wallet = f.Wallet();
  EXPECT_EQ(wallet.spent_micros, 5 * Fixture::kPricePerSecond);
  EXPECT_EQ(wallet.reserved_micros, 0);
}

}  // namespace
}  // namespace reelq::worker
