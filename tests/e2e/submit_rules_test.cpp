// Issue 5 parts through the public API: idempotent submit in SubmitJob and SubmitBatch, and a
// job's start and finish deadlines ending it with that reason.
#include <google/protobuf/util/time_util.h>
#include <gtest/gtest.h>

#include <map>
#include <thread>

#include "e2e_util.h"
#include "stack.h"

namespace reelq::testing {
namespace {

namespace v1 = reelq::v1;
using google::protobuf::util::TimeUtil;
using namespace std::chrono_literals;

v1::JobSpec Keyed(const std::string& tenant, const std::string& key, const std::string& prompt) {
  auto spec = MakeSpec(prompt, "seedance-2.0", 5);
  spec.set_tenant(tenant);
  spec.set_idempotency_key(key);
  return spec;
}

google::protobuf::Timestamp In(std::chrono::milliseconds from_now) {
  const auto at = std::chrono::system_clock::now() + from_now;
  return TimeUtil::MillisecondsToTimestamp(
      std::chrono::duration_cast<std::chrono::milliseconds>(at.time_since_epoch()).count());
}

v1::JobStatus Get(v1::JobService::Stub& stub, const std::string& id) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 10s);
  v1::GetJobRequest req;
  req.set_job_id(id);
  v1::JobStatus status;
  EXPECT_TRUE(stub.GetJob(&ctx, req, &status).ok());
  return status;
}

class SubmitRulesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto missing = E2eStack::MissingBinaries(); !missing.empty()) GTEST_SKIP() << missing;
    // One upstream slot per account: two slow Sora jobs hold every Sora slot.
    stack_ = std::make_unique<E2eStack>(E2eStackOptions{
        .schedulers = 1, .workers = 1, .latency_scale = 0.01, .account_max_concurrent = 1});
    stub_ = stack_->JobStub();
  }
  std::unique_ptr<E2eStack> stack_;
  std::unique_ptr<v1::JobService::Stub> stub_;
};

TEST_F(SubmitRulesTest, SameKeySameTenantIsTheSameJobInSubmitJobAndSubmitBatch) {
  grpc::Status status;
  auto first = SubmitJob(*stub_, Keyed("studio-a", "shot-17", "a harbour at dawn"), &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_FALSE(first.duplicate());
  // A client retrying after a lost answer: same key, same tenant.
  auto again = SubmitJob(*stub_, Keyed("studio-a", "shot-17", "a harbour at dawn"), &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(again.duplicate());
  EXPECT_EQ(again.job_id(), first.job_id());
  // Keys are per tenant.
  auto other = SubmitJob(*stub_, Keyed("studio-b", "shot-17", "a harbour at dawn"), &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_FALSE(other.duplicate());
  EXPECT_NE(other.job_id(), first.job_id());
  // In a batch: the known key answers with the existing job, a new key makes a new one.
  auto batch = SubmitBatch(*stub_,
                           {Keyed("studio-a", "shot-17", "a harbour at dawn"),
                            Keyed("studio-a", "shot-18", "a gull lands")},
                           &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(batch.items_size(), 2);
  EXPECT_TRUE(batch.items(0).duplicate());
  EXPECT_EQ(batch.items(0).job_id(), first.job_id());
  EXPECT_FALSE(batch.items(1).duplicate());
  EXPECT_NE(batch.items(1).job_id(), first.job_id());

  auto done = stack_->WaitTerminal({first.job_id(), other.job_id(), batch.items(1).job_id()}, 120s);
  ASSERT_EQ(done.size(), 3u) << stack_->Logs();
  for (const auto& [id, job] : done) EXPECT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << id;
  // Three jobs, three paid generations: the duplicates created nothing.
  EXPECT_EQ(stack_->SimStats()["providers"]["seedance"]["creates"].get<int>(), 3);
}

// SubmitBatchRequest.specs: many items to a message. Items are numbered across the stream in
// the order sent, whatever message carried them; a bad one gets its own error and the others go
// in; a message without `spec` starts with its first `specs`.
TEST_F(SubmitRulesTest, ManyItemsToAMessageAreItemsInStreamOrder) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 60s);
  v1::SubmitBatchResponse response;
  auto writer = stub_->SubmitBatch(&ctx, &response);
  std::vector<std::string> prompts;
  auto item = [&](const std::string& prompt, const std::string& model = "seedance-2.0") {
    prompts.push_back(prompt);
    return MakeSpec(prompt, model, 5);
  };
  v1::SubmitBatchRequest first;  // items 0..249: more than a chunk, 17 refused
  *first.mutable_spec() = item("packed 0");
  for (int i = 1; i < 250; ++i) {
    *first.add_specs() =
        item("packed " + std::to_string(i), i % 15 == 7 ? "no-such-model" : "seedance-2.0");
  }
  ASSERT_TRUE(writer->Write(first));
  v1::SubmitBatchRequest one;  // item 250
  *one.mutable_spec() = item("single 250");
  ASSERT_TRUE(writer->Write(one));
  v1::SubmitBatchRequest no_spec;  // items 251, 252
  *no_spec.add_specs() = item("specs only 251");
  *no_spec.add_specs() = item("specs only 252");
  ASSERT_TRUE(writer->Write(no_spec));
  writer->WritesDone();
  auto status = writer->Finish();
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(response.items_size(), 253);
  EXPECT_EQ(response.accepted(), 253u - 17u);
  EXPECT_EQ(response.rejected(), 17u);
  std::map<uint32_t, v1::BatchItemResult> by_index;
  for (const auto& r : response.items()) by_index[r.index()] = r;
  ASSERT_EQ(by_index.size(), 253u);
  for (uint32_t i = 0; i < 253; ++i) {
    const auto& r = by_index[i];
    if (i < 250 && i % 15 == 7) {
      EXPECT_EQ(r.code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT)) << i;
      EXPECT_TRUE(r.job_id().empty()) << i;
      continue;
    }
    ASSERT_EQ(r.code(), 0) << i << ": " << r.message();
    if (i % 50 == 0 || i > 248) {
      EXPECT_EQ(Get(*stub_, r.job_id()).spec().prompt(), prompts[i]) << i;
    }
  }
}

TEST_F(SubmitRulesTest, MissedStartAndFinishDeadlinesEndTheJobWithThatReason) {
  grpc::Status status;
  // Both Sora accounts busy for many seconds.
  std::vector<std::string> blockers;
  for (int i = 0; i < 2; ++i) {
    auto r = SubmitJob(*stub_, MakeSpec("blocker [sim:slow] " + std::to_string(i), "sora-2", 4),
                       &status);
    ASSERT_TRUE(status.ok()) << status.error_message();
    blockers.push_back(r.job_id());
  }
  for (const auto& id : blockers) {
    const auto until = std::chrono::steady_clock::now() + 30s;
    while (Get(*stub_, id).state() == v1::JOB_STATE_PENDING &&
           std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(50ms);
    }
    ASSERT_NE(Get(*stub_, id).state(), v1::JOB_STATE_PENDING) << stack_->Logs();
  }

  // Cannot start before its start deadline: no Sora slot frees up in time.
  auto late_start = MakeSpec("must start soon", "sora-2", 4);
  *late_start.mutable_start_deadline() = In(1500ms);
  auto started = SubmitJob(*stub_, late_start, &status);
  ASSERT_TRUE(status.ok()) << status.error_message();

  // Starts at once but a slow generation cannot finish before its finish deadline.
  auto late_finish = MakeSpec("must finish soon [sim:slow]", "seedance-2.0", 5);
  *late_finish.mutable_finish_deadline() = In(2000ms);
  auto finished = SubmitJob(*stub_, late_finish, &status);
  ASSERT_TRUE(status.ok()) << status.error_message();

  auto done = stack_->WaitTerminal({started.job_id(), finished.job_id()}, 60s);
  ASSERT_EQ(done.size(), 2u) << stack_->Logs();
  for (const auto& id : {started.job_id(), finished.job_id()}) {
    const auto& job = done[id];
    EXPECT_EQ(job.state(), v1::JOB_STATE_FAILED) << job.DebugString();
    EXPECT_EQ(job.error().category(), v1::ERROR_CATEGORY_DEADLINE_EXCEEDED) << job.DebugString();
    EXPECT_NE(job.error().message().find("deadline"), std::string::npos) << job.error().message();
  }
  // The job that missed its start was never sent upstream: Sora saw only the two blockers.
  EXPECT_EQ(stack_->SimStats()["providers"]["sora"]["creates"].get<int>(), 2);
  EXPECT_TRUE(done[started.job_id()].upstream_task_id().empty());
}

// The retention window is the scheduler's scheduler.idempotency_retention_hours (here 2 s, set
// the way an operator would, from the environment): inside it the key is the same job, after it
// the same key makes a new job (which then holds the key).
TEST(SubmitRetention, AfterTheRetentionWindowTheSameKeyMakesANewJob) {
  if (auto missing = E2eStack::MissingBinaries(); !missing.empty()) GTEST_SKIP() << missing;
  constexpr auto kWindow = 2s;
  E2eStack stack(E2eStackOptions{
      .schedulers = 1,
      .workers = 1,
      .env = {{"REELQ__SCHEDULER__IDEMPOTENCY_RETENTION_HOURS", std::to_string(2.0 / 3600)}}});
  auto stub = stack.JobStub();
  grpc::Status status;
  const auto start = std::chrono::steady_clock::now();
  auto first = SubmitJob(*stub, Keyed("studio-a", "take-1", "a kite over dunes"), &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_FALSE(first.duplicate());
  auto again = SubmitJob(*stub, Keyed("studio-a", "take-1", "a kite over dunes"), &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  auto in_batch = SubmitBatch(*stub, {Keyed("studio-a", "take-1", "a kite over dunes")}, &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(in_batch.items_size(), 1);
  if (std::chrono::steady_clock::now() - start < kWindow - 200ms) {
    EXPECT_TRUE(again.duplicate());
    EXPECT_EQ(again.job_id(), first.job_id());
    EXPECT_TRUE(in_batch.items(0).duplicate());
    EXPECT_EQ(in_batch.items(0).job_id(), first.job_id());
  }

  std::this_thread::sleep_until(start + kWindow + 500ms);
  auto later = SubmitJob(*stub, Keyed("studio-a", "take-1", "a kite over dunes"), &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_FALSE(later.duplicate()) << "the key outlived the retention window";
  EXPECT_NE(later.job_id(), first.job_id());
  auto later_batch =
      SubmitBatch(*stub, {Keyed("studio-a", "take-1", "a kite over dunes")}, &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(later_batch.items_size(), 1);
  EXPECT_TRUE(later_batch.items(0).duplicate());
  EXPECT_EQ(later_batch.items(0).job_id(), later.job_id());

  // Both jobs run: two jobs, two creates upstream.
  auto done = stack.WaitTerminal({first.job_id(), later.job_id()}, 60s);
  EXPECT_EQ(done[first.job_id()].state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(done[later.job_id()].state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(stack.SimStats()["providers"]["seedance"]["creates"].get<int>(), 2);
}

// redis.wait_replicas with no replica: a submission waits in WAIT for its timeout, on the
// connection submissions write with. Reads go on the scheduler's other connection, so a
// ListJobs sent meanwhile answers at once instead of queueing behind the WAIT (Redis serves
// nothing else on a connection blocked in WAIT).
TEST(SubmitReplicas, AReadDoesNotWaitBehindASubmissionWaitingForReplicas) {
  if (auto missing = E2eStack::MissingBinaries(); !missing.empty()) GTEST_SKIP() << missing;
  E2eStackOptions options{.schedulers = 1, .workers = 0};
  options.redis_section_extra = [](RedisServer&) {
    return std::string("  wait_replicas: 1\n  wait_timeout_ms: 4000\n");
  };
  E2eStack stack(options);
  auto stub = stack.JobStub();
  grpc::Status submitted;
  std::thread submit(
      [&] { SubmitJob(*stub, Keyed("studio-a", "held-1", "a lantern on a pier"), &submitted); });
  std::this_thread::sleep_for(500ms);  // the submission is in its WAIT now
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 2s);
  v1::ListJobsRequest request;
  request.set_tenant("studio-a");
  v1::ListJobsResponse page;
  const grpc::Status listed = stub->ListJobs(&context, request, &page);
  submit.join();
  EXPECT_TRUE(listed.ok()) << "ListJobs waited behind the submission's WAIT: "
                           << listed.error_message();
  EXPECT_EQ(page.jobs_size(), 1);  // stored on the master, not yet confirmed by a replica
  EXPECT_EQ(submitted.error_code(), grpc::StatusCode::UNAVAILABLE) << submitted.error_message();
}

}  // namespace
}  // namespace reelq::testing
