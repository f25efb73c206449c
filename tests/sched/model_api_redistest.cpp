// ModelApi (the ModelService's logic) against a real redis-server, in process: ListModels and
// GetStats join the catalogue with the queue's typed live view; the effective create rate, the
// cooldown and the day's usage follow the injected clock; the gRPC service answers exactly
// what ModelApi answers. Also the length constraint end to end: admission narrows a job to the
// models that can make its duration, and dispatch keeps to them.
#include <gtest/gtest.h>

#include <google/protobuf/util/message_differencer.h>

#include <map>

#include "in_process_scheduler.h"

namespace reelq::testing {
namespace {

using namespace std::chrono_literals;

class ModelApiTest : public InProcessScheduler {
 protected:
  v1::ListModelsResponse ListModels() {
    auto r = Call(models_->ListModels());
    if (!r) throw std::runtime_error(r.error().Describe());
    return *r;
  }

  v1::GetStatsResponse GetStats() {
    auto r = Call(models_->GetStats());
    if (!r) throw std::runtime_error(r.error().Describe());
    return *r;
  }

  v1::ModelInfo Model(const std::string& id) {
    const auto list = ListModels();
    for (const auto& m : list.models()) {
      if (m.id() == id) return m;
    }
    ADD_FAILURE() << "ListModels has no " << id;
    return {};
  }

  static v1::AccountStats Account(const v1::ModelInfo& model, const std::string& id) {
    for (const auto& a : model.accounts()) {
      if (a.account() == id) return a;
    }
    ADD_FAILURE() << model.id() << " lists no account " << id;
    return {};
  }

  // Runs one sora-2 job to the point where sora-a answered its create with a 429.
  void RateLimitSoraA(std::chrono::milliseconds cooldown) {
    Submit(Spec("sora-2", 4));
    ASSERT_EQ(Dispatch(), 1);
    auto leased = Lease();
    ASSERT_EQ(leased.size(), 1u);
    ASSERT_EQ(leased[0].account, "sora-a");
    queue::FailRequest f{.job_id = leased[0].id,
                         .token = leased[0].token,
                         .category = ErrorCategory::kRateLimited,
                         .message = "429",
                         .retry = true,
                         .retry_at_ms = clock_->NowMs() + 3'600'000,
                         .count_attempt = false,
                         .cooldown_ms = cooldown.count()};
    auto failed = Call(store().Fail(f));
    ASSERT_TRUE(failed) << failed.error().Describe();
  }
};

TEST_F(ModelApiTest, ListModelsIsTheCatalogueWithItsLiveStateBeforeAnyWork) {
  auto list = ListModels();
  ASSERT_EQ(list.models_size(), 4);
  const std::vector<std::string> order = {"kling-3.0", "sora-2", "veo-3.1", "seedance-2.0"};
  for (int i = 0; i < 4; ++i) EXPECT_EQ(list.models(i).id(), order[i]);
  const auto& sora = list.models(1);
  EXPECT_EQ(sora.provider(), "sora");
  EXPECT_EQ(sora.max_clip_seconds(), 12u);
  EXPECT_EQ(sora.durations_size(), 3);
  EXPECT_DOUBLE_EQ(sora.latency_estimate_seconds(), 180);  // the catalogue's p50 seed
  EXPECT_EQ(sora.queue_depth(), 0u);
  ASSERT_EQ(sora.accounts_size(), 2);
  const auto b = Account(sora, "sora-b");
  EXPECT_EQ(b.provider(), "sora");
  EXPECT_DOUBLE_EQ(b.requests_per_minute(), 30);
  EXPECT_DOUBLE_EQ(b.learned_requests_per_minute(), 30);
  EXPECT_EQ(b.max_concurrent(), 2u);
  EXPECT_EQ(b.learned_max_concurrent(), 2u);  // as configured: nothing refused for concurrency
  EXPECT_EQ(b.daily_cap(), 100u);
  EXPECT_DOUBLE_EQ(b.polls_per_minute(), 60);
  EXPECT_FALSE(b.cooling_down());
  EXPECT_EQ(b.in_flight(), 0u);
}

// Kling's 1303: the account runs more tasks than its resource pack allows. The account learns
// the concurrency it had when refused, one less for each refusal of a burst, keeps its create
// rate, and dispatch keeps to the learned number, which grows back by one a minute.
TEST_F(ModelApiTest, AConcurrencyRefusalTeachesALowerConcurrencyAndLeavesTheRate) {
  for (int i = 0; i < 5; ++i) Submit(Spec("kling-3.0", 5));
  // kling-main: 60 creates a minute (a bucket of one), 5 at once: one dispatch a second.
  int dispatched = 0;
  for (int i = 0; i < 4; ++i) {
    dispatched += Dispatch();
    clock_->Advance(1s);
  }
  ASSERT_EQ(dispatched, 4);
  auto leased = Lease();
  ASSERT_EQ(leased.size(), 4u);
  auto refuse = [&](const queue::LeasedJob& job) {
    queue::FailRequest f{.job_id = job.id,
                         .token = job.token,
                         .category = ErrorCategory::kRateLimited,
                         .message = "parallel task over resource pack limit",
                         .code = "1303",
                         .retry = true,
                         .retry_at_ms = clock_->NowMs() + 3'600'000,
                         .count_attempt = false,
                         .cooldown_ms = 1000,
                         .over_concurrency = true};
    auto failed = Call(store().Fail(f));
    ASSERT_TRUE(failed) << failed.error().Describe();
  };
  refuse(leased[3]);  // refused with 4 running: the pack allows 3 at most
  auto a = Account(Model("kling-3.0"), "kling-main");
  EXPECT_EQ(a.max_concurrent(), 5u);
  EXPECT_EQ(a.learned_max_concurrent(), 3u);
  EXPECT_EQ(a.in_flight(), 3u);
  EXPECT_DOUBLE_EQ(a.learned_requests_per_minute(), 60);  // the rate is not what was wrong
  EXPECT_EQ(a.rate_limited_total(), 1u);
  refuse(leased[2]);  // a second refusal of the same burst: one fewer again
  a = Account(Model("kling-3.0"), "kling-main");
  EXPECT_EQ(a.learned_max_concurrent(), 2u);
  EXPECT_EQ(a.in_flight(), 2u);

  // Past the cooldown, with tokens to spare, the fifth job still waits: 2 run of the 2 allowed.
  clock_->Advance(5s);
  EXPECT_EQ(Dispatch(), 0);
  // A minute after the last refusal the account may run one more, and dispatch sends the job.
  clock_->Advance(55s);
  EXPECT_EQ(Account(Model("kling-3.0"), "kling-main").learned_max_concurrent(), 3u);
  EXPECT_EQ(Dispatch(), 1);
  // Two more minutes: back to the configured 5.
  clock_->Advance(120s);
  EXPECT_EQ(Account(Model("kling-3.0"), "kling-main").learned_max_concurrent(), 5u);
}

TEST_F(ModelApiTest, DepthCountersAndAccountUseFollowTheJobs) {
  for (int i = 0; i < 3; ++i) Submit(Spec("sora-2", 4));
  Submit(Spec("kling-3.0", 5));
  auto sora = Model("sora-2");
  EXPECT_EQ(sora.queue_depth(), 3u);
  EXPECT_EQ(Model("kling-3.0").queue_depth(), 1u);
  // sora-2's creates are rate-bound (30 a minute: a bucket of one create per account), so one
  // dispatch round lets two sora jobs (one per account) and the kling job go.
  ASSERT_EQ(Dispatch(), 3);
  sora = Model("sora-2");
  EXPECT_EQ(sora.queue_depth(), 1u);
  EXPECT_EQ(sora.dispatched(), 2u);
  for (const auto& a : sora.accounts()) {
    EXPECT_EQ(a.in_flight(), 1u) << a.account();
    EXPECT_EQ(a.used_today(), 1u) << a.account();
  }
  ASSERT_EQ(Lease().size(), 3u);
  sora = Model("sora-2");
  EXPECT_EQ(sora.dispatched(), 0u);
  EXPECT_EQ(sora.in_flight(), 2u);
}

TEST_F(ModelApiTest, ARateLimitShowsTheLearnedRateAndCooldownOnTheInjectedClock) {
  RateLimitSoraA(30s);
  auto a = Account(Model("sora-2"), "sora-a");
  EXPECT_DOUBLE_EQ(a.requests_per_minute(), 30);
  EXPECT_DOUBLE_EQ(a.learned_requests_per_minute(), 15);  // halved by the 429
  EXPECT_TRUE(a.cooling_down());
  EXPECT_DOUBLE_EQ(a.cooldown_remaining_seconds(), 30);
  EXPECT_EQ(a.rate_limited_total(), 1u);
  EXPECT_DOUBLE_EQ(Account(Model("sora-2"), "sora-b").learned_requests_per_minute(), 30);

  // 10 s later: 20 s of cooldown left; the rate has climbed a tenth of 30 rpm per minute.
  clock_->Advance(10s);
  a = Account(Model("sora-2"), "sora-a");
  EXPECT_TRUE(a.cooling_down());
  EXPECT_DOUBLE_EQ(a.cooldown_remaining_seconds(), 20);
  EXPECT_NEAR(a.learned_requests_per_minute(), 15 + 30.0 / 60, 1e-9);

  // 150 s on: no cooldown, the rate halfway back; 300 s on: fully back.
  clock_->Advance(140s);
  a = Account(Model("sora-2"), "sora-a");
  EXPECT_FALSE(a.cooling_down());
  EXPECT_DOUBLE_EQ(a.cooldown_remaining_seconds(), 0);
  EXPECT_NEAR(a.learned_requests_per_minute(), 22.5, 1e-9);
  clock_->Advance(150s);
  EXPECT_DOUBLE_EQ(Account(Model("sora-2"), "sora-a").learned_requests_per_minute(), 30);
  // GetStats shows the same account the same way.
  const auto stats = GetStats();
  for (const auto& s : stats.accounts()) {
    if (s.account() == "sora-a") {
      EXPECT_DOUBLE_EQ(s.learned_requests_per_minute(), 30);
    }
  }
}

TEST_F(ModelApiTest, TheDaysUsageStartsAgainAfterUtcMidnight) {
  Submit(Spec("sora-2", 4));
  ASSERT_EQ(Dispatch(), 1);
  uint32_t used = 0;
  const auto today = Model("sora-2");
  for (const auto& a : today.accounts()) used += a.used_today();
  EXPECT_EQ(used, 1u);
  // The ManualClock starts at 22:13 UTC: two hours on is the next day.
  clock_->Advance(2h);
  const auto tomorrow = Model("sora-2");
  for (const auto& a : tomorrow.accounts()) EXPECT_EQ(a.used_today(), 0u) << a.account();
}

TEST_F(ModelApiTest, ASlowCompletionMovesTheEstimateOnlyAsFarAsTheProfileAllows) {
  // sora-2's profile: min 90 s, max 360 s, so a sample counts at most 720 s.
  Submit(Spec("sora-2", 4));
  ASSERT_EQ(Dispatch(), 1);
  auto leased = Lease();
  ASSERT_EQ(leased.size(), 1u);
  queue::CompleteRequest done{
      .job_id = leased[0].id, .token = leased[0].token, .generation_ms = 3'600'000};
  ASSERT_TRUE(Call(store().Complete(done)));
  const auto sora = Model("sora-2");
  EXPECT_NEAR(sora.latency_estimate_seconds(), 0.8 * 180 + 0.2 * 720, 1e-9);
  EXPECT_EQ(sora.succeeded(), 1u);
  EXPECT_EQ(sora.in_flight(), 0u);
}

TEST_F(ModelApiTest, GetStatsTotalsTenantsWithWeightsAndModelsById) {
  Submit(Spec("sora-2", 4, "", "studio"));
  Submit(Spec("sora-2", 4, "", "studio"));
  Submit(Spec("veo-3.1", 4));  // tenant "default"
  auto stats = GetStats();
  std::map<std::string, std::pair<double, uint64_t>> tenants;
  for (const auto& t : stats.tenants()) tenants[t.tenant()] = {t.weight(), t.pending()};
  EXPECT_EQ(tenants["studio"], (std::pair<double, uint64_t>{3, 2}));
  EXPECT_EQ(tenants["default"], (std::pair<double, uint64_t>{1, 1}));
  // An admin's SetWeight is what dispatch uses from then on, and what GetStats shows.
  queue::AuthStore auth(connection_, "t");
  ASSERT_TRUE(Call(auth.CreateTenant("studio", 3, clock_->NowMs())));
  ASSERT_TRUE(Call(auth.SetWeight("studio", 5)));
  const auto weighted = GetStats();
  bool shown = false;
  for (const auto& t : weighted.tenants()) {
    if (t.tenant() == "studio") {
      EXPECT_EQ(t.weight(), 5);
      shown = true;
    }
  }
  EXPECT_TRUE(shown);
  EXPECT_EQ(stats.pending(), 3u);
  EXPECT_EQ(stats.accounts_size(), 5);
  ASSERT_EQ(stats.models_size(), 4);
  for (int i = 1; i < stats.models_size(); ++i) {
    EXPECT_LT(stats.models(i - 1).model(), stats.models(i).model());
  }
  ASSERT_EQ(Dispatch(), 3);
  ASSERT_EQ(Lease(1).size(), 1u);
  stats = GetStats();
  EXPECT_EQ(stats.pending(), 0u);
  EXPECT_EQ(stats.tenants_size(), 0);  // nothing left to wait for
  EXPECT_EQ(stats.dispatched(), 2u);
  EXPECT_EQ(stats.running(), 1u);
}

TEST_F(ModelApiTest, TheGrpcServiceAnswersWhatModelApiAnswers) {
  Submit(Spec("sora-2", 4));
  ASSERT_EQ(Dispatch(), 1);
  auto stub = v1::ModelService::NewStub(channel_);
  {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 10s);
    v1::ListModelsResponse over_grpc;
    auto status = stub->ListModels(&context, v1::ListModelsRequest(), &over_grpc);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(over_grpc, ListModels()))
        << over_grpc.DebugString();
  }
  {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 10s);
    v1::GetStatsResponse over_grpc;
    auto status = stub->GetStats(&context, v1::GetStatsRequest(), &over_grpc);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(over_grpc, GetStats()))
        << over_grpc.DebugString();
  }
}

TEST_F(ModelApiTest, AQueueReadThatFailsIsAnErrorStatusNotACrash) {
  asio::post(io_, [c = connection_] { c->Close(); });
  auto list = Call(models_->ListModels());
  ASSERT_FALSE(list);
  EXPECT_FALSE(list.error().message.empty());
  auto stub = v1::ModelService::NewStub(channel_);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 10s);
  v1::GetStatsResponse response;
  auto status = stub->GetStats(&context, v1::GetStatsRequest(), &response);
  EXPECT_FALSE(status.ok());
  EXPECT_FALSE(status.error_message().empty());
}

// --- Length constraints, admission to dispatch ---------------------------------------------

TEST_F(ModelApiTest, AdmissionNarrowsByLengthAndDispatchKeepsToIt) {
  // `auto` jobs. 3 s: only kling-3.0 makes it, so it goes there although seedance-2.0 (45 s
  // against 120 s) is idle. 10 s: kling-3.0 or seedance-2.0, and seedance finishes first.
  const std::string three = Submit(Spec("", 3));
  const std::string ten = Submit(Spec("", 10));
  ASSERT_EQ(Dispatch(), 2);
  auto model_of = [&](const std::string& id) {
    auto status = Call(jobs_->Get(OpenPrincipal(), id));
    if (!status) throw std::runtime_error(status.error().Describe());
    return status->model();
  };
  EXPECT_EQ(model_of(three), "kling-3.0");
  EXPECT_EQ(model_of(ten), "seedance-2.0");
  // 20 s: no model makes it; admission refuses and names the field.
  auto refused = Call(jobs_->Submit(OpenPrincipal(), Spec("", 20)));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().category, ErrorCategory::kInvalidRequest);
  EXPECT_NE(refused.error().message.find("duration_seconds"), std::string::npos)
      << refused.error().message;
}

}  // namespace
}  // namespace reelq::testing
