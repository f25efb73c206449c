// The watch loops (scheduler/src/watch.cpp) through the JobService in process: WatchJob replays
// a job's history and follows it to its end, each transition exactly once; WatchBatch reports
// progress until every job is terminal; bad targets get a clear status. The test moves jobs
// with JobStore itself (dispatch, lease, complete, fail, cancel), as the scheduler and workers
// would.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <tuple>
#include <vector>

#include "in_process_scheduler.h"

namespace reelq::testing {
namespace {

using namespace std::chrono_literals;

class WatchTest : public InProcessScheduler {
 protected:
  // An open WatchJob stream.
  struct Watch {
    std::unique_ptr<grpc::ClientContext> context;
    std::unique_ptr<grpc::ClientReader<v1::JobEvent>> reader;

    v1::JobEvent Next() {
      v1::JobEvent event;
      if (!reader->Read(&event)) throw std::runtime_error("the watch ended early");
      return event;
    }
    // Reads to the end of the stream; returns what came and the final status.
    std::pair<std::vector<v1::JobEvent>, grpc::Status> Rest() {
      std::vector<v1::JobEvent> events;
      v1::JobEvent event;
      while (reader->Read(&event)) events.push_back(event);
      return {events, reader->Finish()};
    }
  };

  Watch Open(v1::WatchJobRequest request) {
    Watch w;
    w.context = std::make_unique<grpc::ClientContext>();
    w.context->set_deadline(std::chrono::system_clock::now() + 20s);
    w.reader = stub_->WatchJob(w.context.get(), request);
    return w;
  }

  Watch WatchJob(const std::string& id) {
    v1::WatchJobRequest request;
    request.set_job_id(id);
    return Open(request);
  }

  Watch WatchBatch(const std::string& id) {
    v1::WatchJobRequest request;
    request.set_batch_id(id);
    return Open(request);
  }

  void Complete(const queue::LeasedJob& job) {
    queue::CompleteRequest done{.job_id = job.id, .token = job.token, .generation_ms = 40'000};
    auto r = Call(store().Complete(done));
    ASSERT_TRUE(r) << r.error().Describe();
  }

  void SetUp() override {
    InProcessScheduler::SetUp();
    stub_ = v1::JobService::NewStub(channel_);
  }

  std::unique_ptr<v1::JobService::Stub> stub_;
};

TEST_F(WatchTest, FollowsAJobFromSubmitToSuccessEachTransitionOnce) {
  const std::string id = Submit(Spec("seedance-2.0", 5));
  auto watch = WatchJob(id);
  auto first = watch.Next();  // replayed: it was submitted before the watch began
  EXPECT_EQ(first.job_id(), id);
  EXPECT_EQ(first.state(), v1::JOB_STATE_PENDING);

  ASSERT_EQ(Dispatch(), 1);
  EXPECT_EQ(watch.Next().state(), v1::JOB_STATE_DISPATCHED);
  auto leased = Lease();
  ASSERT_EQ(leased.size(), 1u);
  auto running = watch.Next();
  EXPECT_EQ(running.state(), v1::JOB_STATE_RUNNING);
  EXPECT_EQ(running.phase(), v1::JOB_PHASE_SUBMITTING);
  auto phased = Call(
      store().SetPhase(id, leased[0].token, queue::JobPhase::kGenerating, "task-1", "created"));
  ASSERT_TRUE(phased) << phased.error().Describe();
  auto generating = watch.Next();
  EXPECT_EQ(generating.state(), v1::JOB_STATE_RUNNING);
  EXPECT_EQ(generating.phase(), v1::JOB_PHASE_GENERATING);
  Complete(leased[0]);
  auto [rest, status] = watch.Rest();
  EXPECT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(rest.size(), 1u);  // the stream ends right after the terminal event
  EXPECT_EQ(rest[0].state(), v1::JOB_STATE_SUCCEEDED);
}

TEST_F(WatchTest, AFinishedJobIsReplayedAndTheStreamEnds) {
  const std::string id = Submit(Spec("seedance-2.0", 5));
  ASSERT_EQ(Dispatch(), 1);
  auto leased = Lease();
  ASSERT_EQ(leased.size(), 1u);
  Complete(leased[0]);
  auto [events, status] = WatchJob(id).Rest();
  EXPECT_TRUE(status.ok()) << status.error_message();
  std::vector<v1::JobState> states;
  for (const auto& e : events) states.push_back(e.state());
  EXPECT_EQ(states, (std::vector<v1::JobState>{v1::JOB_STATE_PENDING, v1::JOB_STATE_DISPATCHED,
                                               v1::JOB_STATE_RUNNING, v1::JOB_STATE_SUCCEEDED}));
  EXPECT_EQ(events.back().model(), "seedance-2.0");
}

// Each event carries what held at its own transition: the model its attempt ran on, the
// attempt, and on a failure the error. Here attempt 1 fails on one model (a retry) and attempt
// 2 fails for good on the other; a watch open through it all and one opened afterwards show
// the same, and neither stamps the job's last model and attempt on earlier transitions.
TEST_F(WatchTest, EventsCarryTheModelAttemptAndErrorOfTheirOwnTransition) {
  v1::JobSpec spec = Spec("kling-3.0", 8);
  spec.add_models("veo-3.1");
  const std::string id = Submit(spec);
  auto watch = WatchJob(id);
  auto submitted = watch.Next();
  EXPECT_EQ(submitted.state(), v1::JOB_STATE_PENDING);
  EXPECT_EQ(submitted.model(), "");
  EXPECT_EQ(submitted.attempt(), 1u);

  ASSERT_EQ(Dispatch(), 1);
  auto dispatched = watch.Next();
  auto leased = Lease();
  ASSERT_EQ(leased.size(), 1u);
  const std::string first = leased[0].model;
  const std::string second = first == "kling-3.0" ? "veo-3.1" : "kling-3.0";
  EXPECT_EQ(dispatched.state(), v1::JOB_STATE_DISPATCHED);
  EXPECT_EQ(dispatched.model(), first);
  EXPECT_EQ(dispatched.attempt(), 1u);
  auto running = watch.Next();
  EXPECT_EQ(running.state(), v1::JOB_STATE_RUNNING);
  EXPECT_EQ(running.model(), first);
  EXPECT_EQ(running.attempt(), 1u);

  // Attempt 1 fails and is retried; its account cools down, so attempt 2 goes to the other model.
  queue::FailRequest retry{.job_id = id,
                           .token = leased[0].token,
                           .category = ErrorCategory::kRetryable,
                           .message = "upstream answered 500",
                           .code = "E500",
                           .retry = true,
                           .retry_at_ms = clock_->NowMs(),
                           .cooldown_ms = 3'600'000};
  ASSERT_TRUE(Call(store().Fail(retry)));
  auto again = watch.Next();
  EXPECT_EQ(again.state(), v1::JOB_STATE_PENDING);
  EXPECT_EQ(again.model(), first);  // the attempt that failed
  EXPECT_EQ(again.attempt(), 1u);
  EXPECT_TRUE(again.has_error());
  EXPECT_EQ(again.error().category(), v1::ERROR_CATEGORY_RETRYABLE);
  EXPECT_EQ(again.error().message(), "upstream answered 500");
  EXPECT_EQ(again.error().provider_code(), "E500");
  EXPECT_EQ(again.error().attempt(), 1u);

  ASSERT_TRUE(Call(store().Reap(100)));
  ASSERT_EQ(Dispatch(), 1);
  auto redispatched = watch.Next();
  EXPECT_EQ(redispatched.state(), v1::JOB_STATE_DISPATCHED);
  EXPECT_EQ(redispatched.model(), second);
  EXPECT_EQ(redispatched.attempt(), 2u);
  EXPECT_FALSE(redispatched.has_error());
  leased = Lease();
  ASSERT_EQ(leased.size(), 1u);
  EXPECT_EQ(watch.Next().attempt(), 2u);  // RUNNING
  queue::FailRequest end{.job_id = id,
                         .token = leased[0].token,
                         .category = ErrorCategory::kPolicyRejected,
                         .message = "the provider refused the prompt",
                         .code = "1301"};
  ASSERT_TRUE(Call(store().Fail(end)));
  auto [rest, status] = watch.Rest();
  EXPECT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(rest.size(), 1u);
  const auto& failed = rest[0];
  EXPECT_EQ(failed.state(), v1::JOB_STATE_FAILED);
  EXPECT_EQ(failed.model(), second);
  EXPECT_EQ(failed.attempt(), 2u);
  EXPECT_TRUE(failed.has_error());
  EXPECT_EQ(failed.error().category(), v1::ERROR_CATEGORY_POLICY_REJECTED);
  EXPECT_EQ(failed.error().message(), "the provider refused the prompt");
  EXPECT_EQ(failed.error().provider_code(), "1301");

  // Watched again, the replay says the same of each transition.
  auto [replayed, done] = WatchJob(id).Rest();
  EXPECT_TRUE(done.ok()) << done.error_message();
  ASSERT_EQ(replayed.size(), 7u);
  const std::vector<std::tuple<v1::JobState, std::string, uint32_t, v1::ErrorCategory>> want = {
      {v1::JOB_STATE_PENDING, "", 1, v1::ERROR_CATEGORY_UNSPECIFIED},
      {v1::JOB_STATE_DISPATCHED, first, 1, v1::ERROR_CATEGORY_UNSPECIFIED},
      {v1::JOB_STATE_RUNNING, first, 1, v1::ERROR_CATEGORY_UNSPECIFIED},
      {v1::JOB_STATE_PENDING, first, 1, v1::ERROR_CATEGORY_RETRYABLE},
      {v1::JOB_STATE_DISPATCHED, second, 2, v1::ERROR_CATEGORY_UNSPECIFIED},
      {v1::JOB_STATE_RUNNING, second, 2, v1::ERROR_CATEGORY_UNSPECIFIED},
      {v1::JOB_STATE_FAILED, second, 2, v1::ERROR_CATEGORY_POLICY_REJECTED},
  };
  for (size_t i = 0; i < want.size(); ++i) {
    const auto& [state, model, attempt, category] = want[i];
    EXPECT_EQ(replayed[i].state(), state) << i;
    EXPECT_EQ(replayed[i].model(), model) << i << " " << replayed[i].detail();
    EXPECT_EQ(replayed[i].attempt(), attempt) << i << " " << replayed[i].detail();
    EXPECT_EQ(replayed[i].error().category(), category) << i << " " << replayed[i].detail();
  }
  EXPECT_EQ(replayed[3].error().provider_code(), "E500");
  EXPECT_EQ(replayed[6].error().provider_code(), "1301");
}

// A rate-limited attempt spends no attempt (fail.lua): the next dispatch is attempt 1 again, as
// the record says, not the failed attempt's number plus one.
TEST_F(WatchTest, ARateLimitedRetryKeepsTheAttemptNumber) {
  const std::string id = Submit(Spec("seedance-2.0", 5));
  auto watch = WatchJob(id);
  EXPECT_EQ(watch.Next().state(), v1::JOB_STATE_PENDING);
  ASSERT_EQ(Dispatch(), 1);
  auto leased = Lease();
  ASSERT_EQ(leased.size(), 1u);
  EXPECT_EQ(watch.Next().state(), v1::JOB_STATE_DISPATCHED);
  EXPECT_EQ(watch.Next().state(), v1::JOB_STATE_RUNNING);
  queue::FailRequest limited{.job_id = id,
                             .token = leased[0].token,
                             .category = ErrorCategory::kRateLimited,
                             .message = "429",
                             .retry = true,
                             .retry_at_ms = clock_->NowMs(),
                             .count_attempt = false};
  ASSERT_TRUE(Call(store().Fail(limited)));
  auto again = watch.Next();
  EXPECT_EQ(again.error().category(), v1::ERROR_CATEGORY_RATE_LIMITED);
  EXPECT_EQ(again.attempt(), 1u);
  ASSERT_TRUE(Call(store().Reap(100)));
  ASSERT_EQ(Dispatch(), 1);
  auto redispatched = watch.Next();
  EXPECT_EQ(redispatched.state(), v1::JOB_STATE_DISPATCHED);
  EXPECT_EQ(redispatched.model(), "seedance-2.0");
  EXPECT_EQ(redispatched.attempt(), 1u);
  ASSERT_TRUE(Call(jobs_->Cancel(OpenPrincipal(), id)));
  auto [rest, status] = watch.Rest();
  EXPECT_TRUE(status.ok()) << status.error_message();
}

// A group's watch shows its children's transitions with what held at each, as for a job.
TEST_F(WatchTest, AGroupsChildEventsCarryTheirModelAttemptAndError) {
  v1::JobSpec spec = ChainSpec({"a fox wakes", "the fox runs"});
  const std::string id = Submit(spec);
  auto watch = WatchJob(id);
  // Replayed: each child's "submitted", then the group's own.
  std::vector<v1::JobEvent> seen;
  for (int i = 0; i < 3; ++i) seen.push_back(watch.Next());
  for (const auto& e : seen) {
    EXPECT_EQ(e.state(), v1::JOB_STATE_PENDING);
    EXPECT_EQ(e.model(), "");
    EXPECT_EQ(e.attempt(), 1u) << e.job_id();
  }
  ASSERT_EQ(Dispatch(), 1);
  auto dispatched = watch.Next();
  EXPECT_EQ(dispatched.parent_job_id(), id);
  EXPECT_EQ(dispatched.child_index(), 0u);
  EXPECT_EQ(dispatched.state(), v1::JOB_STATE_DISPATCHED);
  EXPECT_EQ(dispatched.model(), "seedance-2.0");
  EXPECT_EQ(dispatched.attempt(), 1u);
  auto leased = Lease();
  ASSERT_EQ(leased.size(), 1u);
  EXPECT_EQ(watch.Next().state(), v1::JOB_STATE_RUNNING);
  queue::FailRequest retry{.job_id = leased[0].id,
                           .token = leased[0].token,
                           .category = ErrorCategory::kRetryable,
                           .message = "upstream answered 503",
                           .code = "E503",
                           .retry = true,
                           .retry_at_ms = clock_->NowMs() + 60'000};
  ASSERT_TRUE(Call(store().Fail(retry)));
  auto again = watch.Next();
  EXPECT_EQ(again.parent_job_id(), id);
  EXPECT_EQ(again.state(), v1::JOB_STATE_PENDING);
  EXPECT_EQ(again.model(), "seedance-2.0");
  EXPECT_EQ(again.attempt(), 1u);
  EXPECT_EQ(again.error().category(), v1::ERROR_CATEGORY_RETRYABLE);
  EXPECT_EQ(again.error().provider_code(), "E503");
  ASSERT_TRUE(Call(jobs_->Cancel(OpenPrincipal(), id)));
  auto [rest, status] = watch.Rest();
  EXPECT_TRUE(status.ok()) << status.error_message();
}

TEST_F(WatchTest, ACancelledJobEndsItsWatch) {
  const std::string id = Submit(Spec("seedance-2.0", 5));
  auto watch = WatchJob(id);
  EXPECT_EQ(watch.Next().state(), v1::JOB_STATE_PENDING);
  ASSERT_TRUE(Call(jobs_->Cancel(OpenPrincipal(), id)));
  auto [rest, status] = watch.Rest();
  EXPECT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(rest.size(), 1u);
  EXPECT_EQ(rest[0].state(), v1::JOB_STATE_CANCELLED);
}

TEST_F(WatchTest, BadTargetsGetAClearStatus) {
  auto [none, unknown] = WatchJob("no-such-job").Rest();
  EXPECT_TRUE(none.empty());
  EXPECT_EQ(unknown.error_code(), grpc::StatusCode::NOT_FOUND) << unknown.error_message();
  auto [nothing, missing] = Open(v1::WatchJobRequest()).Rest();
  EXPECT_TRUE(nothing.empty());
  EXPECT_EQ(missing.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(missing.error_message().find("job_id or batch_id"), std::string::npos)
      << missing.error_message();
  auto [no_batch_events, no_batch] = WatchBatch("no-such-batch").Rest();
  EXPECT_TRUE(no_batch_events.empty());
  EXPECT_EQ(no_batch.error_code(), grpc::StatusCode::NOT_FOUND) << no_batch.error_message();
}

TEST_F(WatchTest, ABatchWatchReportsProgressUntilEveryJobHasEnded) {
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) ids.push_back(Submit(Spec("seedance-2.0", 5, "b1")));
  auto watch = WatchBatch("b1");
  auto first = watch.Next();
  EXPECT_EQ(first.batch().batch_id(), "b1");
  EXPECT_EQ(first.batch().total(), 3u);
  EXPECT_EQ(first.batch().pending(), 3u);

  ASSERT_EQ(Dispatch(), 3);
  auto leased = Lease();
  ASSERT_EQ(leased.size(), 3u);
  Complete(leased[0]);
  queue::FailRequest fail{.job_id = leased[1].id,
                          .token = leased[1].token,
                          .category = ErrorCategory::kPolicyRejected,
                          .message = "the provider refused the prompt"};
  ASSERT_TRUE(Call(store().Fail(fail)));
  ASSERT_TRUE(Call(jobs_->Cancel(OpenPrincipal(), leased[2].id)));

  auto [rest, status] = watch.Rest();
  EXPECT_TRUE(status.ok()) << status.error_message();
  ASSERT_FALSE(rest.empty());
  // Transitions come tagged with the batch's progress; the stream's last message is the final
  // progress. (Per-job events are a courtesy: the loop stops as soon as a progress read shows
  // every job ended, which may be before the last job's own event arrived.)
  for (const auto& e : rest) EXPECT_EQ(e.batch().batch_id(), "b1");
  const auto& last = rest.back().batch();
  EXPECT_EQ(last.total(), 3u);
  EXPECT_EQ(last.succeeded(), 1u);
  EXPECT_EQ(last.failed(), 1u);
  EXPECT_EQ(last.cancelled(), 1u);
  EXPECT_EQ(last.pending() + last.running(), 0u);
}

// A batch watch whose client stops reading while the batch moves: the scheduler holds at most
// the bound of messages for it, then ends the stream with RESOURCE_EXHAUSTED saying why and what
// to do; a watch opened again starts from the batch's current progress.
TEST_F(WatchTest, AClientThatReadsTooSlowlyHasItsBatchWatchEndedNotBuffered) {
  constexpr size_t kBound = 20;
  constexpr int kJobs = 2000;
  settings_.watch_max_queued_messages = kBound;
  Submit(Spec("seedance-2.0", 5, "big"));
  auto watch = WatchBatch("big");
  EXPECT_EQ(watch.Next().batch().total(), 1u);  // the loop is running

  // Many jobs move while nobody reads: each is an event carrying the batch's progress.
  std::vector<v1::JobSpec> specs(kJobs, Spec("seedance-2.0", 5, "big"));
  auto submitted = Call(jobs_->SubmitMany(OpenPrincipal(), specs, 0, false));
  ASSERT_EQ(submitted.size(), static_cast<size_t>(kJobs));
  for (const auto& r : submitted) ASSERT_TRUE(r) << r.error().Describe();
  // Until the outbox has filled (what the transport takes before flow control holds it back
  // comes first), then a moment for the events after it.
  const auto until = std::chrono::steady_clock::now() + 10s;
  while (job_service_->WatchMostQueued() < kBound && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(10ms);
  }
  std::this_thread::sleep_for(500ms);

  auto [events, status] = watch.Rest();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();
  EXPECT_NE(status.error_message().find("reads too slowly"), std::string::npos)
      << status.error_message();
  EXPECT_NE(status.error_message().find("open the watch again"), std::string::npos)
      << status.error_message();
  EXPECT_LT(events.size(), static_cast<size_t>(kJobs));  // cut short, not every event
  EXPECT_EQ(job_service_->WatchMostQueued(), kBound);    // never more held than the bound

  auto again = WatchBatch("big");
  EXPECT_EQ(again.Next().batch().total(), static_cast<uint32_t>(kJobs + 1));
}

// Waits (up to 5 s) until the scheduler counts `n` open watches.
bool OpenWatchesReach(const scheduler::JobServiceImpl& service, size_t n) {
  const auto until = std::chrono::steady_clock::now() + 5s;
  while (service.watches().open() != n && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(10ms);
  }
  return service.watches().open() == n;
}

// scheduler.max_watches_per_tenant: past it a new watch is refused with RESOURCE_EXHAUSTED
// naming the setting; a watch the client ends gives its place back, and a new one opens.
TEST_F(WatchTest, WatchesPastThePerTenantLimitAreRefusedUntilOneEnds) {
  settings_.max_watches_per_tenant = 2;
  Submit(Spec("seedance-2.0", 5, "watched"));
  auto first = WatchBatch("watched");
  auto second = WatchBatch("watched");
  EXPECT_EQ(first.Next().batch().total(), 1u);
  EXPECT_EQ(second.Next().batch().total(), 1u);
  auto [none, refused] = WatchBatch("watched").Rest();
  EXPECT_TRUE(none.empty());
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << refused.error_message();
  EXPECT_NE(refused.error_message().find("already has 2 watches open"), std::string::npos)
      << refused.error_message();
  EXPECT_NE(refused.error_message().find("scheduler.max_watches_per_tenant"), std::string::npos)
      << refused.error_message();

  first.context->TryCancel();
  first.Rest();
  ASSERT_TRUE(OpenWatchesReach(*job_service_, 1));
  auto third = WatchBatch("watched");
  EXPECT_EQ(third.Next().batch().total(), 1u);
}

// scheduler.max_watches: the scheduler's limit over every principal; a job watch that ends with
// its job (here a cancel) gives its place back.
TEST_F(WatchTest, WatchesPastTheSchedulersLimitAreRefusedUntilOneEnds) {
  settings_.max_watches = 2;
  const std::string a = Submit(Spec("seedance-2.0", 5));
  const std::string b = Submit(Spec("seedance-2.0", 5));
  auto watch_a = WatchJob(a);
  auto watch_b = WatchJob(b);
  EXPECT_EQ(watch_a.Next().state(), v1::JOB_STATE_PENDING);
  EXPECT_EQ(watch_b.Next().state(), v1::JOB_STATE_PENDING);
  auto [none, refused] = WatchJob(b).Rest();
  EXPECT_TRUE(none.empty());
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << refused.error_message();
  EXPECT_NE(refused.error_message().find("scheduler.max_watches)"), std::string::npos)
      << refused.error_message();

  ASSERT_TRUE(Call(jobs_->Cancel(OpenPrincipal(), a)));
  auto [rest, ended] = watch_a.Rest();
  EXPECT_TRUE(ended.ok()) << ended.error_message();
  ASSERT_TRUE(OpenWatchesReach(*job_service_, 1));
  auto again = WatchJob(b);
  EXPECT_EQ(again.Next().state(), v1::JOB_STATE_PENDING);
  // Refused watches and ended ones hold nothing.
  EXPECT_EQ(job_service_->watches().open(), 2u);
}

// Authentication on: tenants "a" and "b", whose tokens are "token-a" and "token-b".
class AuthedWatchTest : public WatchTest {
 protected:
  void SetUp() override {
    with_auth_ = true;
    WatchTest::SetUp();
    for (const std::string tenant : {"a", "b"}) {
      const std::string hash = scheduler::HashToken("token-" + tenant);
      auto created = Call(auth_store_->CreateTenant(tenant, 1, 0));
      ASSERT_TRUE(created) << created.error().Describe();
      auto token = Call(auth_store_->AddToken(tenant, hash, "", 0));
      ASSERT_TRUE(token) << token.error().Describe();
    }
  }

  Watch WatchBatchAs(const std::string& token, const std::string& batch) {
    Watch w;
    w.context = std::make_unique<grpc::ClientContext>();
    w.context->set_deadline(std::chrono::system_clock::now() + 20s);
    w.context->AddMetadata("authorization", "Bearer " + token);
    v1::WatchJobRequest request;
    request.set_batch_id(batch);
    w.reader = stub_->WatchJob(w.context.get(), request);
    return w;
  }
};

// A batch that holds another tenant's jobs (b's, stored while authentication was off, under an
// id a claimed before such claims were refused): a's batch watch carries a's job's events and
// none of b's.
TEST_F(AuthedWatchTest, ABatchWatchCarriesNoneOfAnotherTenantsJobs) {
  const std::string b_job = Submit(Spec("seedance-2.0", 5, "mixed", "b"));
  redis_->Run({"SET", "t:{q}:auth:batch:mixed", "a"});
  const std::string a_job = Submit(Spec("seedance-2.0", 5, "mixed", "a"));
  auto watch = WatchBatchAs("token-a", "mixed");
  EXPECT_EQ(watch.Next().batch().batch_id(), "mixed");

  ASSERT_EQ(Dispatch(), 2);
  auto leased = Lease();
  ASSERT_EQ(leased.size(), 2u);
  // b's job ends first, and its events have time to reach the watch before a's ends it.
  std::sort(leased.begin(), leased.end(),
            [&](const auto& x, const auto& y) { return x.id == b_job && y.id != b_job; });
  Complete(leased[0]);
  std::this_thread::sleep_for(500ms);
  Complete(leased[1]);
  auto [rest, status] = watch.Rest();
  EXPECT_TRUE(status.ok()) << status.error_message();
  std::set<std::string> seen;
  for (const auto& e : rest) {
    if (!e.job_id().empty()) seen.insert(e.job_id());
  }
  EXPECT_FALSE(seen.contains(b_job)) << "a's batch watch carried b's job";
  EXPECT_TRUE(seen.contains(a_job));
}

// The same batch as seen at submit: a tenant cannot claim an id nobody owns whose batch holds
// jobs already (here b's, stored while authentication was off). The refusal names the id.
TEST_F(AuthedWatchTest, AnUnownedBatchHoldingJobsIsRefusedAtSubmit) {
  Submit(Spec("seedance-2.0", 5, "open-batch", "b"));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 20s);
  context.AddMetadata("authorization", "Bearer token-a");
  v1::SubmitJobRequest request;
  *request.mutable_spec() = Spec("seedance-2.0", 5, "open-batch");
  v1::SubmitJobResponse response;
  const auto status = stub_->SubmitJob(&context, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_EQ(status.error_message(),
            "batch_id: 'open-batch' already holds jobs stored without an owning tenant (submitted "
            "while authentication was off); choose another batch id");
}

TEST_F(WatchTest, AClientThatGoesAwayEndsItsWatch) {
  const std::string id = Submit(Spec("seedance-2.0", 5));
  auto watch = WatchJob(id);
  EXPECT_EQ(watch.Next().state(), v1::JOB_STATE_PENDING);
  const auto start = std::chrono::steady_clock::now();
  watch.context->TryCancel();
  auto [rest, status] = watch.Rest();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  // The job itself is untouched and later events find no dead listener.
  ASSERT_EQ(Dispatch(), 1);
  auto again = Call(jobs_->Get(OpenPrincipal(), id));
  ASSERT_TRUE(again);
  EXPECT_EQ(again->state(), v1::JOB_STATE_DISPATCHED);
}

}  // namespace
}  // namespace reelq::testing
