// CancelBatch and RetryBatch through the JobService in process (scheduler/src/batch_actions.cpp):
// every job of the batch that has not ended is cancelled, wherever it is (queued, dispatched,
// running), across pages, and nothing of another batch; every FAILED or CANCELLED job runs again
// and nothing that succeeded; sent again, each changes nothing more; an unknown or missing batch
// id gets a clear status.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <set>
#include <vector>

#include "in_process_scheduler.h"

namespace reelq::testing {
namespace {

using namespace std::chrono_literals;

class BatchActionsTest : public InProcessScheduler {
 protected:
  void SetUp() override {
    InProcessScheduler::SetUp();
    stub_ = v1::JobService::NewStub(channel_);
  }

  std::vector<std::string> SubmitMany(int n, const std::string& batch) {
    std::vector<v1::JobSpec> specs(n, Spec("seedance-2.0", 5, batch));
    auto results = Call(jobs_->SubmitMany(OpenPrincipal(), specs));
    std::vector<std::string> ids;
    for (auto& r : results) {
      if (!r) throw std::runtime_error(r.error().Describe());
      ids.push_back(r->job_id());
    }
    return ids;
  }

  grpc::Status Act(bool cancel, const std::string& batch, v1::BatchActionResponse& out) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 60s);
    if (cancel) {
      v1::CancelBatchRequest request;
      request.set_batch_id(batch);
      return stub_->CancelBatch(&context, request, &out);
    }
    v1::RetryBatchRequest request;
    request.set_batch_id(batch);
    return stub_->RetryBatch(&context, request, &out);
  }

  v1::JobState StateOf(const std::string& id) {
    auto job = Call(jobs_->Get(OpenPrincipal(), id));
    if (!job) throw std::runtime_error(job.error().Describe());
    return job->state();
  }

  std::unique_ptr<v1::JobService::Stub> stub_;
};

// A compare whose take failed ends SUCCEEDED with a sheet of the others; RetryBatch runs that
// take again, as RetryJob of the compare does (it was passed over: the compare had succeeded).
TEST_F(BatchActionsTest, RetryBatchRunsAgainTheFailedTakeOfACompareThatSucceeded) {
  const std::string id = Submit(CompareSpec("bc"));
  ASSERT_EQ(Dispatch(), 2);
  auto takes = Lease(10);
  ASSERT_EQ(takes.size(), 2u);
  ASSERT_TRUE(Call(
      store().Complete({.job_id = takes[0].id, .token = takes[0].token, .output_key = "clip-0"})));
  queue::FailRequest fail{.job_id = takes[1].id,
                          .token = takes[1].token,
                          .category = ErrorCategory::kPolicyRejected,
                          .message = "refused"};
  ASSERT_TRUE(Call(store().Fail(fail)));
  auto sheet = Lease(10);
  ASSERT_EQ(sheet.size(), 1u);
  ASSERT_EQ(sheet[0].id, id);
  ASSERT_TRUE(
      Call(store().Complete({.job_id = id, .token = sheet[0].token, .output_key = "grid.mp4"})));
  ASSERT_EQ(StateOf(id), v1::JOB_STATE_SUCCEEDED);

  v1::BatchActionResponse response;
  const auto status = Act(/*cancel=*/false, "bc", response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.jobs_changed(), 1);
  EXPECT_EQ(StateOf(takes[1].id), v1::JOB_STATE_PENDING);
  EXPECT_EQ(StateOf(takes[0].id), v1::JOB_STATE_SUCCEEDED);
}

TEST_F(BatchActionsTest, CancelBatchEndsEveryUnendedJobAcrossPagesAndNothingElse) {
  const auto ids = SubmitMany(2'500, "b1");  // more than one page of the walk (1,000)
  const auto other = SubmitMany(3, "b2");
  // Two of b1's jobs are dispatched and leased: one ends, one stays running.
  ASSERT_GT(Dispatch(), 0);
  auto leased = Lease(100);
  std::set<std::string> b1(ids.begin(), ids.end());
  const queue::LeasedJob* done = nullptr;
  const queue::LeasedJob* running = nullptr;
  for (const auto& j : leased) {
    if (!b1.contains(j.id)) continue;
    if (done == nullptr) {
      done = &j;
    } else if (running == nullptr) {
      running = &j;
    }
  }
  ASSERT_TRUE(done && running);
  queue::CompleteRequest complete{.job_id = done->id, .token = done->token};
  ASSERT_TRUE(Call(store().Complete(complete)));

  v1::BatchActionResponse response;
  auto status = Act(/*cancel=*/true, "b1", response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.jobs_changed(), 2'499u);
  EXPECT_EQ(response.progress().total(), 2'500u);
  EXPECT_EQ(response.progress().cancelled(), 2'499u);
  EXPECT_EQ(response.progress().succeeded(), 1u);
  EXPECT_EQ(StateOf(running->id), v1::JOB_STATE_CANCELLED);
  EXPECT_EQ(StateOf(done->id), v1::JOB_STATE_SUCCEEDED);
  // The running job's worker learns it at once (its cancel list), as for CancelJob.
  auto told = redis_->Run({"LRANGE", "t:{q}:wcancel:w1", "0", "-1"});
  std::vector<std::string> cancel_list;
  for (const auto& e : told.elements) cancel_list.push_back(e.str);
  EXPECT_NE(std::find(cancel_list.begin(), cancel_list.end(), running->id), cancel_list.end());
  for (const auto& id : other) EXPECT_NE(StateOf(id), v1::JOB_STATE_CANCELLED) << id;

  // Sent again: nothing left to cancel.
  status = Act(true, "b1", response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.jobs_changed(), 0u);

  // RetryBatch runs the cancelled ones again, not the one that succeeded.
  status = Act(/*cancel=*/false, "b1", response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.jobs_changed(), 2'499u);
  EXPECT_EQ(response.progress().pending(), 2'499u);
  EXPECT_EQ(response.progress().succeeded(), 1u);
  EXPECT_EQ(StateOf(running->id), v1::JOB_STATE_PENDING);
  status = Act(false, "b1", response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.jobs_changed(), 0u);
}

TEST_F(BatchActionsTest, AnUnknownOrMissingBatchIdGetsAClearStatus) {
  v1::BatchActionResponse response;
  for (const bool cancel : {true, false}) {
    auto unknown = Act(cancel, "no-such-batch", response);
    EXPECT_EQ(unknown.error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_NE(unknown.error_message().find("no-such-batch"), std::string::npos);
    auto missing = Act(cancel, "", response);
    EXPECT_EQ(missing.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(missing.error_message().find("batch_id"), std::string::npos);
  }
}

// "b:ids" names the batch's id list, a key of another type: a batch id no submit could have
// stored is refused naming the field, never run against Redis (it answered INTERNAL WRONGTYPE
// when b existed and NOT_FOUND otherwise, which told a tenant whether another's batch exists).
TEST_F(BatchActionsTest, ABatchIdOrListFilterThatNoSubmitAllowsIsRefusedNamingIt) {
  SubmitMany(2, "b");
  v1::BatchActionResponse response;
  for (const bool cancel : {true, false}) {
    auto refused = Act(cancel, "b:ids", response);
    EXPECT_EQ(refused.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << refused.error_message();
    EXPECT_NE(refused.error_message().find("batch_id"), std::string::npos);
  }
  auto progress = Call(jobs_->GetBatch(OpenPrincipal(), "b:ids"));
  ASSERT_FALSE(progress);
  EXPECT_EQ(progress.error().category, ErrorCategory::kInvalidRequest);
  auto list = [&](const std::string& tenant, const std::string& batch, const std::string& model) {
    v1::ListJobsRequest request;
    request.set_tenant(tenant);
    request.set_batch_id(batch);
    request.set_model(model);
    return Call(jobs_->List(OpenPrincipal(), request));
  };
  for (const auto& [tenant, batch, model, field] :
       std::vector<std::array<std::string, 4>>{{"", "b:ids", "", "batch_id"},
                                               {"acme:x", "", "", "tenant"},
                                               {"", "", "kling:3", "model"}}) {
    auto page = list(tenant, batch, model);
    ASSERT_FALSE(page) << field;
    EXPECT_EQ(page.error().category, ErrorCategory::kInvalidRequest) << page.error().Describe();
    EXPECT_TRUE(page.error().message.starts_with(field + ":")) << page.error().Describe();
  }
  // The real filters still list.
  auto page = list("", "b", "");
  ASSERT_TRUE(page) << page.error().Describe();
  EXPECT_EQ(page->jobs_size(), 2);
}

// A SubmitBatch stream far past scheduler.max_batch_items: the items past it are refused one by
// one for a while, then the call ends (RESOURCE_EXHAUSTED, saying what was stored), instead of
// reading on and answering for every item sent, which would grow without bound.
TEST_F(BatchActionsTest, AStreamFarPastTheItemLimitIsEndedNotReadOn) {
  settings_.max_batch_items = 5;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 60s);
  v1::SubmitBatchResponse response;
  auto writer = stub_->SubmitBatch(&context, &response);
  int written = 0;
  for (int message = 0; message < 100; ++message) {
    v1::SubmitBatchRequest request;
    for (int k = 0; k < 100; ++k) *request.add_specs() = Spec("seedance-2.0", 5, "long-batch");
    if (!writer->Write(request)) break;  // the scheduler ended the call
    written += 100;
  }
  writer->WritesDone();
  const auto status = writer->Finish();
  EXPECT_LT(written, 10'000) << "the scheduler read the whole stream";
  ASSERT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();
  EXPECT_NE(status.error_message().find("more than 5 items"), std::string::npos)
      << status.error_message();
  // The first five were stored and run.
  v1::GetBatchRequest get;
  get.set_batch_id("long-batch");
  v1::BatchProgress progress;
  grpc::ClientContext get_context;
  ASSERT_TRUE(stub_->GetBatch(&get_context, get, &progress).ok());
  EXPECT_EQ(progress.total(), 5u);
}

// Big items (a 90 KB prompt standing in for inline images) with Settings::batch_chunk_bytes at
// 256 KB: the stream stores them in chunks sealed by bytes (3 items each, one submit call per
// chunk), not 200 at a time, and every item is answered and stored.
TEST_F(BatchActionsTest, BigItemsAreStoredInChunksSealedByBytes) {
  settings_.batch_chunk_bytes = 256 << 10;
  // Every command goes to the slow log: the submit calls are counted there.
  redis_->Run({"CONFIG", "SET", "slowlog-log-slower-than", "0"});
  redis_->Run({"CONFIG", "SET", "slowlog-max-len", "100000"});
  redis_->Run({"SLOWLOG", "RESET"});
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 60s);
  v1::SubmitBatchResponse response;
  auto writer = stub_->SubmitBatch(&context, &response);
  constexpr int kItems = 30;
  for (int i = 0; i < kItems; ++i) {
    v1::SubmitBatchRequest request;
    *request.mutable_spec() = Spec("seedance-2.0", 5, "big-batch");
    request.mutable_spec()->set_prompt(std::string(90'000, 'a' + i % 26));
    ASSERT_TRUE(writer->Write(request)) << i;
  }
  writer->WritesDone();
  const auto status = writer->Finish();
  auto log = redis_->Run({"SLOWLOG", "GET", "-1"});
  redis_->Run({"CONFIG", "SET", "slowlog-log-slower-than", "10000"});
  ASSERT_TRUE(status.ok()) << status.error_code() << ": " << status.error_message();
  ASSERT_EQ(response.items_size(), kItems);
  EXPECT_EQ(response.accepted(), static_cast<uint32_t>(kItems));
  for (const auto& item : response.items()) EXPECT_FALSE(item.job_id().empty()) << item.index();
  int submit_calls = 0;
  for (const auto& entry : log.elements) {
    if (entry.elements.size() < 4 || entry.elements[3].elements.size() < 2) continue;
    const auto& args = entry.elements[3].elements;
    const std::string& function = args[1].str;
    if ((args[0].str == "FCALL" || args[0].str == "fcall") && function.size() >= 6 &&
        function.compare(function.size() - 6, 6, "submit") == 0) {
      ++submit_calls;
    }
  }
  EXPECT_EQ(submit_calls, kItems / 3);
  v1::GetBatchRequest get;
  get.set_batch_id("big-batch");
  v1::BatchProgress progress;
  grpc::ClientContext get_context;
  ASSERT_TRUE(stub_->GetBatch(&get_context, get, &progress).ok());
  EXPECT_EQ(progress.total(), static_cast<uint32_t>(kItems));
}

// Items whose fields hold bytes that are not UTF-8 are refused one by one, and the answer (proto
// strings, which a client refuses to parse when they are not UTF-8) still reaches the client
// with every good item's job id: no refusal echoes the raw bytes. A long value is echoed cut.
TEST_F(BatchActionsTest, BadBytesInAnItemAreRefusedWithoutBreakingTheAnswer) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 60s);
  v1::SubmitBatchResponse response;
  auto writer = stub_->SubmitBatch(&context, &response);
  v1::SubmitBatchRequest request;
  *request.add_specs() = Spec("seedance-2.0", 5, "bytes-batch");
  auto events = Spec("seedance-2.0", 5, "bytes-batch");
  events.set_webhook_events("\xff");
  *request.add_specs() = events;
  auto compare = Spec("", 5, "bytes-batch");
  compare.set_compare(true);
  compare.add_models("veo-3.1");
  compare.add_models(std::string(100'000, 'x') + "\xc3");
  *request.add_specs() = compare;
  auto shot = Spec("", 8, "bytes-batch");
  shot.set_storyboard(true);
  shot.clear_prompt();
  for (int k = 0; k < 2; ++k) {
    auto* s = shot.add_shots();
    s->set_prompt("shot");
    s->set_duration_seconds(4);
    s->set_model("veo\xfe");
  }
  *request.add_specs() = shot;
  *request.add_specs() = Spec("seedance-2.0", 5, "bytes-batch");
  ASSERT_TRUE(writer->Write(request));
  writer->WritesDone();
  const auto status = writer->Finish();
  ASSERT_TRUE(status.ok()) << status.error_code() << ": " << status.error_message();
  ASSERT_EQ(response.items_size(), 5);
  EXPECT_EQ(response.accepted(), 2u);
  EXPECT_FALSE(response.items(0).job_id().empty());
  EXPECT_FALSE(response.items(4).job_id().empty());
  for (int i = 1; i <= 3; ++i) {
    EXPECT_EQ(response.items(i).code(), grpc::StatusCode::INVALID_ARGUMENT) << i;
    EXPECT_LT(response.items(i).message().size(), 2000u) << i;
    EXPECT_NE(response.items(i).message().find(i == 1 ? "webhook_events" : "model"),
              std::string::npos)
        << response.items(i).message();
  }
}

}  // namespace
}  // namespace reelq::testing
