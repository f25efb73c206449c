// Issue 12's wallet against the whole stack with authentication on (2 schedulers, 2 workers, the
// simulator): a wallet that holds exactly N jobs' price lets exactly N of many racing
// submissions in; refunds where the provider does not bill; settlement at the chosen model's
// price; batch budgets and tenant limits refuse at submit naming themselves; the admin surface
// refuses bad input and changes nothing; no key or token reaches a log line.
#include <gtest/gtest.h>

#include <thread>

#include "wallet_util.h"

namespace reelq::testing::wallet {
namespace {

using grpc::StatusCode;

std::vector<std::string>& Secrets() {
  static std::vector<std::string> secrets{
      kAdminToken,      "sim-kling-ak-a",     "sim-kling-sk-a",    "sim-kling-ak-b",
      "sim-kling-sk-b", "sim-sora-key-a",     "sim-sora-key-b",    "sim-veo-key-a",
      "sim-veo-key-b",  "sim-seedance-key-a", "sim-seedance-key-b"};
  return secrets;
}

class WalletApi : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!E2eStack::MissingBinaries().empty()) return;
    auto options = AuthedOptions(2, 2);
    options.log_level = "debug";
    options.max_attempts = 2;
    stack_ = new E2eStack(options);
  }
  static void TearDownTestSuite() {
    delete stack_;
    stack_ = nullptr;
  }
  void SetUp() override {
    if (auto missing = E2eStack::MissingBinaries(); !missing.empty()) GTEST_SKIP() << missing;
  }

  static std::string Tenant(const std::string& name, int64_t micros) {
    auto token = NewTenant(*stack_, name, micros);
    Secrets().push_back(token);
    return token;
  }

  static E2eStack* stack_;
};

E2eStack* WalletApi::stack_ = nullptr;

TEST_F(WalletApi, RacingBatchesThroughTwoSchedulersTakeExactlyWhatTheWalletHolds) {
  constexpr int kAffordable = 12;
  constexpr int64_t kJobPrice = 5 * kSeedancePerSecond;
  const auto token = Tenant("race-studio", kAffordable * kJobPrice);
  constexpr int kStreams = 8, kPerStream = 5;
  std::vector<v1::SubmitBatchResponse> responses(kStreams);
  std::vector<grpc::Status> statuses(kStreams);
  std::vector<std::thread> threads;
  for (int s = 0; s < kStreams; ++s) {
    threads.emplace_back([&, s] {
      auto stub = v1::JobService::NewStub(stack_->Channel(s % 2));
      std::vector<v1::JobSpec> specs;
      for (int i = 0; i < kPerStream; ++i) {
        specs.push_back(
            Spec("seedance-2.0", 5, "race " + std::to_string(s) + "/" + std::to_string(i)));
      }
      responses[s] = SubmitBatchAs(*stub, token, specs, &statuses[s]);
    });
  }
  for (auto& t : threads) t.join();
  std::vector<std::string> accepted;
  int refused = 0;
  for (int s = 0; s < kStreams; ++s) {
    ASSERT_TRUE(statuses[s].ok()) << statuses[s].error_message();
    for (const auto& item : responses[s].items()) {
      if (item.code() == 0) {
        accepted.push_back(item.job_id());
      } else {
        ++refused;
        EXPECT_EQ(item.code(), StatusCode::RESOURCE_EXHAUSTED) << item.message();
        EXPECT_EQ(item.message().rfind("wallet: tenant 'race-studio' has ", 0), 0u)
            << item.message();
      }
    }
  }
  EXPECT_EQ(accepted.size(), static_cast<size_t>(kAffordable));
  EXPECT_EQ(refused, kStreams * kPerStream - kAffordable);

  auto done = WaitEnded(*stack_, accepted, std::chrono::seconds(60));
  for (const auto& id : accepted) {
    ASSERT_TRUE(done.contains(id));
    EXPECT_EQ(done[id].state(), v1::JOB_STATE_SUCCEEDED) << id;
    EXPECT_EQ(done[id].cost_micros(), kJobPrice) << id;
    EXPECT_EQ(done[id].reserved_micros(), 0) << id;
  }
  auto w = WalletOf(*stack_, "race-studio");
  EXPECT_TRUE(w.enforced());
  EXPECT_EQ(w.spent_micros(), kAffordable * kJobPrice);
  EXPECT_EQ(w.available_micros(), 0);
  EXPECT_EQ(w.spent_today_micros(), kAffordable * kJobPrice);
  EXPECT_EQ(w.spent_this_month_micros(), kAffordable * kJobPrice);
  ExpectSettled(w);
}

TEST_F(WalletApi, RefundsWhereTheProviderDoesNotBillAndSettlesAtTheChosenModel) {
  constexpr int64_t kTopUp = 20'000'000;
  const auto token = Tenant("refund-studio", kTopUp);
  auto jobs = v1::JobService::NewStub(stack_->Channel(0));

  // Cancelled before the create: the workers are frozen, so the job never reaches a provider.
  stack_->PauseWorker(0);
  stack_->PauseWorker(1);
  grpc::Status status;
  auto early = SubmitAs(*jobs, token, Spec("seedance-2.0", 5, "cancel me early"), &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  {
    v1::CancelJobRequest cancel;
    cancel.set_job_id(early.job_id());
    v1::JobStatus cancelled;
    status = jobs->CancelJob(Authed(token).get(), cancel, &cancelled);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(cancelled.state(), v1::JOB_STATE_CANCELLED);
    EXPECT_EQ(cancelled.cost_micros(), 0);
    EXPECT_EQ(cancelled.reserved_micros(), 0);
  }
  stack_->ResumeWorker(0);
  stack_->ResumeWorker(1);

  // Failures the provider does not bill: a create refused for content policy (nothing made), a
  // task rejected by policy after the create (billing.policy_rejections is off), a task that
  // fails every attempt (billing.failed_tasks is off).
  auto refused_at_create =
      SubmitAs(*jobs, token, Spec("kling-3.0", 5, "a castle [sim:policy]"), &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  auto rejected_output =
      SubmitAs(*jobs, token, Spec("seedance-2.0", 5, "a lake [sim:policy-output]"), &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  auto failing = SubmitAs(*jobs, token, Spec("seedance-2.0", 5, "a storm [sim:fail]"), &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  // Success at the chosen model's price, not the most its candidates could cost.
  auto spec = Spec("seedance-2.0", 4, "a quiet harbour at dawn");
  spec.add_models("veo-3.1");
  auto chosen = SubmitAs(*jobs, token, spec, &status);
  ASSERT_TRUE(status.ok()) << status.error_message();

  auto done = WaitEnded(
      *stack_,
      {refused_at_create.job_id(), rejected_output.job_id(), failing.job_id(), chosen.job_id()},
      std::chrono::seconds(60));
  const auto& a = done[refused_at_create.job_id()];
  EXPECT_EQ(a.state(), v1::JOB_STATE_FAILED);
  EXPECT_EQ(a.error().category(), v1::ERROR_CATEGORY_POLICY_REJECTED) << a.error().message();
  EXPECT_TRUE(a.upstream_task_id().empty());
  const auto& b = done[rejected_output.job_id()];
  EXPECT_EQ(b.state(), v1::JOB_STATE_FAILED);
  EXPECT_EQ(b.error().category(), v1::ERROR_CATEGORY_POLICY_REJECTED) << b.error().message();
  EXPECT_FALSE(b.upstream_task_id().empty()) << "the rejection should come after the create";
  const auto& c = done[failing.job_id()];
  EXPECT_EQ(c.state(), v1::JOB_STATE_FAILED);
  EXPECT_EQ(c.attempt(), 2u);
  for (const auto* job : {&a, &b, &c}) {
    EXPECT_EQ(job->cost_micros(), 0) << job->job_id();
    EXPECT_EQ(job->reserved_micros(), 0) << job->job_id();
  }
  const auto& d = done[chosen.job_id()];
  ASSERT_EQ(d.state(), v1::JOB_STATE_SUCCEEDED) << d.DebugString();
  const int64_t price = d.model() == "veo-3.1" ? 4 * kVeoPerSecond : 4 * kSeedancePerSecond;
  EXPECT_EQ(d.model(), "seedance-2.0") << "the first choice, free and faster, was not taken";
  EXPECT_EQ(d.cost_micros(), price);

  auto w = WalletOf(*stack_, "refund-studio");
  ExpectSettled(w);
  EXPECT_EQ(w.spent_micros(), price);
  EXPECT_EQ(w.available_micros(), kTopUp - price);
  const auto fee = std::to_string(5 * kSeedancePerSecond);
  EXPECT_EQ(LedgerOf(w, early.job_id()),
            (std::vector<std::string>{"reserve:-" + fee + ":0", "refund:" + fee + ":0"}))
      << "reserved, then refunded whole (it may have been re-priced in between at the same price)";
  EXPECT_EQ(LedgerOf(w, failing.job_id()).back(), "refund:" + fee + ":0");
  EXPECT_EQ(LedgerOf(w, chosen.job_id()),
            (std::vector<std::string>{"reserve:-" + std::to_string(4 * kVeoPerSecond) + ":0",
                                      "reprice:" + std::to_string(4 * kVeoPerSecond - price) + ":0",
                                      "settle:0:" + std::to_string(price)}));
}

TEST_F(WalletApi, BatchBudgetRefusesTheItemsPastItNamingTheBudget) {
  const auto token = Tenant("budget-studio", 50'000'000);
  auto stub = v1::JobService::NewStub(stack_->Channel(1));
  auto ctx = Authed(token);
  v1::SubmitBatchResponse resp;
  auto writer = stub->SubmitBatch(ctx.get(), &resp);
  for (int i = 0; i < 5; ++i) {
    v1::SubmitBatchRequest item;
    *item.mutable_spec() = Spec("seedance-2.0", 5, "budgeted " + std::to_string(i));
    item.mutable_spec()->set_batch_id("budget-batch-1");
    if (i == 0) item.set_budget_micros(5 * kSeedancePerSecond * 5 / 2);  // 2.5 jobs
    ASSERT_TRUE(writer->Write(item));
  }
  writer->WritesDone();
  ASSERT_TRUE(writer->Finish().ok());
  EXPECT_EQ(resp.accepted(), 2u);
  EXPECT_EQ(resp.rejected(), 3u);
  for (int i = 2; i < 5; ++i) {
    EXPECT_EQ(resp.items(i).code(), StatusCode::RESOURCE_EXHAUSTED);
    EXPECT_EQ(resp.items(i).message().rfind("budget: batch 'budget-batch-1' has a budget of "
                                            "$1.250000",
                                            0),
              0u)
        << resp.items(i).message();
  }
  std::vector<std::string> ids{resp.items(0).job_id(), resp.items(1).job_id()};
  WaitEnded(*stack_, ids, std::chrono::seconds(60));
  v1::GetBatchRequest get;
  get.set_batch_id("budget-batch-1");
  v1::BatchProgress progress;
  ASSERT_TRUE(stub->GetBatch(Authed(token).get(), get, &progress).ok());
  EXPECT_EQ(progress.budget_micros(), 1'250'000);
  EXPECT_EQ(progress.cost_micros(), 2 * 5 * kSeedancePerSecond);
  EXPECT_EQ(progress.spent_micros_by_model().at("seedance-2.0"), 2 * 5 * kSeedancePerSecond);

  // A negative budget is bad input, named.
  std::vector<v1::JobSpec> one{Spec("seedance-2.0", 5, "negative")};
  auto ctx2 = Authed(token);
  v1::SubmitBatchResponse bad;
  auto writer2 = stub->SubmitBatch(ctx2.get(), &bad);
  v1::SubmitBatchRequest item;
  *item.mutable_spec() = one[0];
  item.set_budget_micros(-1);
  ASSERT_TRUE(writer2->Write(item));
  writer2->WritesDone();
  ASSERT_TRUE(writer2->Finish().ok());
  ASSERT_EQ(bad.items_size(), 1);
  EXPECT_EQ(bad.items(0).code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(bad.items(0).message().rfind("budget_micros:", 0), 0u) << bad.items(0).message();
}

TEST_F(WalletApi, TenantLimitsRefuseAtSubmitNamingTheLimit) {
  const auto token_a = Tenant("limited-a", 0);
  const auto token_b = Tenant("limited-b", 0);
  auto admin = v1::AdminService::NewStub(stack_->Channel(0));
  auto set = [&](const std::string& tenant, int64_t queued, int64_t in_flight) {
    v1::SetLimitsRequest req;
    req.set_tenant(tenant);
    req.set_max_queued(queued);
    req.set_max_in_flight(in_flight);
    v1::Tenant resp;
    auto status = admin->SetLimits(Authed(kAdminToken).get(), req, &resp);
    EXPECT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(resp.max_queued(), queued);
    EXPECT_EQ(resp.max_in_flight(), in_flight);
  };
  set("limited-a", 0, 3);
  set("limited-b", 1, 0);
  auto stub = v1::JobService::NewStub(stack_->Channel(0));
  for (const auto& [token, name, limit] :
       {std::tuple{token_a, "max_in_flight", 3}, std::tuple{token_b, "max_queued", 1}}) {
    std::vector<v1::JobSpec> specs;
    for (int i = 0; i < 6; ++i) specs.push_back(Spec("seedance-2.0", 5, "limited [sim:slow]"));
    grpc::Status status;
    auto resp = SubmitBatchAs(*stub, token, specs, &status);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(resp.accepted(), static_cast<uint32_t>(limit)) << name;
    for (const auto& item : resp.items()) {
      if (item.code() == 0) continue;
      EXPECT_EQ(item.code(), StatusCode::RESOURCE_EXHAUSTED);
      EXPECT_EQ(item.message().rfind(std::string("limit ") + name + ":", 0), 0u) << item.message();
    }
  }
}

TEST_F(WalletApi, AdminBadInputIsRefusedNamingTheFieldAndChangesNothing) {
  const auto token = Tenant("careful-studio", 3'000'000);
  auto admin = v1::AdminService::NewStub(stack_->Channel(1));
  const auto before = WalletOf(*stack_, "careful-studio");
  v1::ListTenantsResponse tenants_before;
  ASSERT_TRUE(admin->ListTenants(Authed(kAdminToken).get(), {}, &tenants_before).ok());
  auto top_up = [&](const std::string& tenant, int64_t micros, const std::string& as) {
    v1::TopUpRequest req;
    req.set_tenant(tenant);
    req.set_amount_micros(micros);
    v1::Wallet resp;
    return admin->TopUp(Authed(as).get(), req, &resp);
  };
  auto limits = [&](const std::string& tenant, int64_t queued, int64_t in_flight) {
    v1::SetLimitsRequest req;
    req.set_tenant(tenant);
    req.set_max_queued(queued);
    req.set_max_in_flight(in_flight);
    v1::Tenant resp;
    return admin->SetLimits(Authed(kAdminToken).get(), req, &resp);
  };
  struct Case {
    std::string what;
    grpc::Status status;
    StatusCode code;
    std::string prefix;
  };
  const int64_t max = 1'000'000'000'000'000;
  std::vector<Case> cases{
      {"negative", top_up("careful-studio", -5, kAdminToken), StatusCode::INVALID_ARGUMENT,
       "amount_micros:"},
      {"zero", top_up("careful-studio", 0, kAdminToken), StatusCode::INVALID_ARGUMENT,
       "amount_micros:"},
      {"past the most", top_up("careful-studio", max + 1, kAdminToken),
       StatusCode::INVALID_ARGUMENT, "amount_micros:"},
      {"overflowing the wallet", top_up("careful-studio", max, kAdminToken),
       StatusCode::INVALID_ARGUMENT, "amount_micros: the wallet of 'careful-studio' holds $3."},
      {"int64 max", top_up("careful-studio", INT64_MAX, kAdminToken), StatusCode::INVALID_ARGUMENT,
       "amount_micros:"},
      {"unknown tenant", top_up("nobody", 5, kAdminToken), StatusCode::NOT_FOUND, "tenant:"},
      {"no tenant", top_up("", 5, kAdminToken), StatusCode::INVALID_ARGUMENT, "tenant:"},
      {"tenant token", top_up("careful-studio", 5, token), StatusCode::PERMISSION_DENIED,
       "authorization:"},
      {"negative queued", limits("careful-studio", -1, 0), StatusCode::INVALID_ARGUMENT,
       "max_queued:"},
      {"negative in flight", limits("careful-studio", 0, -2), StatusCode::INVALID_ARGUMENT,
       "max_in_flight:"},
      {"limits of unknown tenant", limits("nobody", 1, 1), StatusCode::NOT_FOUND, "tenant:"},
  };
  {
    // A tenant reading another tenant's wallet.
    auto jobs = v1::JobService::NewStub(stack_->Channel(0));
    v1::GetWalletRequest req;
    req.set_tenant("race-studio");
    v1::Wallet resp;
    cases.push_back({"another tenant's wallet", jobs->GetWallet(Authed(token).get(), req, &resp),
                     StatusCode::PERMISSION_DENIED, "tenant:"});
    // An admin reading the wallet of no tenant: not an empty "not billed" wallet.
    req.set_tenant("nobody");
    cases.push_back({"wallet of unknown tenant",
                     jobs->GetWallet(Authed(kAdminToken).get(), req, &resp), StatusCode::NOT_FOUND,
                     "tenant: no tenant named 'nobody'"});
  }
  for (const auto& k : cases) {
    EXPECT_EQ(k.status.error_code(), k.code) << k.what << ": " << k.status.error_message();
    EXPECT_EQ(k.status.error_message().rfind(k.prefix, 0), 0u)
        << k.what << ": " << k.status.error_message();
    EXPECT_EQ(k.status.error_message().find(token), std::string::npos) << k.what;
  }
  const auto after = WalletOf(*stack_, "careful-studio");
  EXPECT_EQ(after.SerializeAsString(), before.SerializeAsString()) << after.DebugString();
  v1::ListTenantsResponse tenants_after;
  ASSERT_TRUE(admin->ListTenants(Authed(kAdminToken).get(), {}, &tenants_after).ok());
  EXPECT_EQ(tenants_after.SerializeAsString(), tenants_before.SerializeAsString());

  // A tenant never topped up reads as one: an empty wallet, not billed.
  Tenant("unbilled-studio", 0);
  const auto unbilled = WalletOf(*stack_, "unbilled-studio");
  EXPECT_EQ(unbilled.tenant(), "unbilled-studio");
  EXPECT_FALSE(unbilled.enforced());
  EXPECT_EQ(unbilled.available_micros(), 0);

  // The tenant reads its own wallet with its token.
  auto jobs = v1::JobService::NewStub(stack_->Channel(1));
  v1::Wallet own;
  ASSERT_TRUE(jobs->GetWallet(Authed(token).get(), {}, &own).ok());
  EXPECT_EQ(own.tenant(), "careful-studio");
  EXPECT_EQ(own.available_micros(), 3'000'000);
  ASSERT_EQ(own.ledger_size(), 1);
  EXPECT_EQ(own.ledger(0).kind(), "topup");
}

// Last: every line every process of this suite logged, searched for every key and token used.
TEST_F(WalletApi, NoKeyOrTokenInAnyLogLine) {
  ASSERT_GT(Secrets().size(), 11u) << "the earlier tests issued no tenant token";
  for (const auto& secret : Secrets()) {
    const auto hits = LinesContaining(stack_->log_dir().string(), secret);
    EXPECT_TRUE(hits.empty()) << hits.size() << " log line(s) hold a secret, e.g. " << hits[0];
  }
}

// redis.wait_replicas with no replica to confirm: a top-up and a SetLimits are made on the
// master and answered UNAVAILABLE saying so and how to send them again (a top-up with the same
// request id credits once), as a submit is; a refusal still answers what was wrong.
TEST(WalletReplicas, AnUnconfirmedTopUpIsUnavailableSayingToResendItWithItsRequestId) {
  if (auto missing = E2eStack::MissingBinaries(); !missing.empty()) GTEST_SKIP() << missing;
  auto options = AuthedOptions(1, 0);
  options.redis_section_extra = [](RedisServer&) {
    return std::string("  wait_replicas: 1\n  wait_timeout_ms: 100\n");
  };
  E2eStack stack(options);
  NewTenant(stack, "replicated-studio", 0);
  auto admin = v1::AdminService::NewStub(stack.Channel(0));
  v1::TopUpRequest top_up;
  top_up.set_tenant("replicated-studio");
  top_up.set_amount_micros(4'000'000);
  top_up.set_request_id("po-77");
  v1::Wallet wallet;
  auto status = admin->TopUp(Authed(kAdminToken).get(), top_up, &wallet);
  EXPECT_EQ(status.error_code(), StatusCode::UNAVAILABLE) << status.error_message();
  EXPECT_NE(status.error_message().find("0 of 1 replicas"), std::string::npos)
      << status.error_message();
  EXPECT_NE(status.error_message().find("send it again with the same request id ('po-77')"),
            std::string::npos)
      << status.error_message();
  status = admin->TopUp(Authed(kAdminToken).get(), top_up, &wallet);  // resent: credits once
  EXPECT_EQ(status.error_code(), StatusCode::UNAVAILABLE) << status.error_message();

  v1::SetLimitsRequest limits;
  limits.set_tenant("replicated-studio");
  limits.set_max_queued(7);
  v1::Tenant tenant;
  status = admin->SetLimits(Authed(kAdminToken).get(), limits, &tenant);
  EXPECT_EQ(status.error_code(), StatusCode::UNAVAILABLE) << status.error_message();
  EXPECT_NE(status.error_message().find("send them again"), std::string::npos)
      << status.error_message();

  top_up.set_tenant("nobody");
  status = admin->TopUp(Authed(kAdminToken).get(), top_up, &wallet);
  EXPECT_EQ(status.error_code(), StatusCode::NOT_FOUND) << status.error_message();

  const auto after = WalletOf(stack, "replicated-studio");
  EXPECT_EQ(after.available_micros(), 4'000'000);  // made on the master, once
  EXPECT_EQ(after.topped_up_micros(), 4'000'000);
}

}  // namespace
}  // namespace reelq::testing::wallet
