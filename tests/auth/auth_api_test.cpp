// Issue 12 at the gRPC edge, against the whole stack with authentication on: every RPC refuses a
// missing, wrong or revoked token; tenants see only their own jobs, batches and watches; the
// admin surface refuses bad input without changing anything; no secret reaches a log line.
#include <gtest/gtest.h>

#include <set>
#include <thread>

#include <google/protobuf/descriptor.h>
#include "auth_util.h"

#include "reelq/v1/admin.grpc.pb.h"
#include "reelq/v1/jobs.grpc.pb.h"
#include "reelq/v1/models.grpc.pb.h"
#include "stack.h"

namespace reelq::testing {
namespace {

namespace v1 = reelq::v1;
using grpc::StatusCode;

constexpr const char* kAdminToken = "admin-token-for-auth-tests-7f3a9c2e51";

// Everything the run used that must never be logged; checked by the last test.
std::vector<std::string>& Secrets() {
  static std::vector<std::string> secrets{
      kAdminToken,      "sim-kling-ak-a",     "sim-kling-sk-a",    "sim-kling-ak-b",
      "sim-kling-sk-b", "sim-sora-key-a",     "sim-sora-key-b",    "sim-veo-key-a",
      "sim-veo-key-b",  "sim-seedance-key-a", "sim-seedance-key-b"};
  return secrets;
}

class AuthApi : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!E2eStack::MissingBinaries().empty()) return;
    E2eStackOptions options{.schedulers = 2, .workers = 1};
    options.log_level = "debug";
    options.extra_yaml = "auth:\n  admin_tokens:\n    - {env: REELQ_TEST_ADMIN_TOKEN}\n";
    options.env["REELQ_TEST_ADMIN_TOKEN"] = kAdminToken;
    stack_ = new E2eStack(options);
  }
  static void TearDownTestSuite() {
    delete stack_;
    stack_ = nullptr;
  }
  void SetUp() override {
    if (auto missing = E2eStack::MissingBinaries(); !missing.empty()) GTEST_SKIP() << missing;
  }

  static v1::Tenant CreateTenant(const std::string& name) {
    auto admin = v1::AdminService::NewStub(stack_->Channel(0));
    v1::CreateTenantRequest req;
    req.set_name(name);
    v1::Tenant resp;
    auto status = admin->CreateTenant(Authed(kAdminToken).get(), req, &resp);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return resp;
  }

  static v1::IssuedToken Issue(const std::string& tenant) {
    auto admin = v1::AdminService::NewStub(stack_->Channel(0));
    v1::CreateTokenRequest req;
    req.set_tenant(tenant);
    v1::IssuedToken resp;
    auto status = admin->CreateToken(Authed(kAdminToken).get(), req, &resp);
    EXPECT_TRUE(status.ok()) << status.error_message();
    Secrets().push_back(resp.token());
    return resp;
  }

  static v1::JobSpec Spec(const std::string& prompt) {
    v1::JobSpec spec;
    spec.set_prompt(prompt);
    spec.add_models("seedance-2.0");
    spec.set_duration_seconds(5);
    return spec;
  }

  static E2eStack* stack_;
};

E2eStack* AuthApi::stack_ = nullptr;

void ExpectEveryRpc(const std::vector<RpcOutcome>& outcomes, StatusCode code,
                    const std::string& what) {
  // Every RPC of the three services is called: one added to a .proto must be added to
  // CallEveryRpc too, or this count fails.
  size_t rpcs = 0;
  for (const char* service :
       {"reelq.v1.JobService", "reelq.v1.ModelService", "reelq.v1.AdminService"}) {
    const auto* found =
        google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(service);
    ASSERT_NE(found, nullptr) << service;
    rpcs += static_cast<size_t>(found->method_count());
  }
  EXPECT_EQ(outcomes.size(), rpcs);
  for (const auto& o : outcomes) {
    EXPECT_EQ(o.status.error_code(), code)
        << what << ": " << o.rpc << " answered " << o.status.error_code() << " "
        << o.status.error_message();
  }
}

TEST_F(AuthApi, EveryRpcRefusesMissingWrongAndRevokedTokens) {
  ExpectEveryRpc(CallEveryRpc(stack_->Channel(0), ""), StatusCode::UNAUTHENTICATED, "no token");
  ExpectEveryRpc(CallEveryRpc(stack_->Channel(1), "rq_" + std::string(64, '0')),
                 StatusCode::UNAUTHENTICATED, "wrong token");
  ExpectEveryRpc(CallEveryRpc(stack_->Channel(0), "not a token at all"),
                 StatusCode::UNAUTHENTICATED, "malformed token");

  CreateTenant("revoked-studio");
  auto issued = Issue("revoked-studio");
  // Used on scheduler 1 first, so that scheduler remembers it; revoked through scheduler 0.
  auto jobs1 = v1::JobService::NewStub(stack_->Channel(1));
  {
    v1::ListJobsResponse resp;
    auto status = jobs1->ListJobs(Authed(issued.token()).get(), {}, &resp);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }
  auto admin = v1::AdminService::NewStub(stack_->Channel(0));
  v1::RevokeTokenRequest revoke;
  revoke.set_tenant("revoked-studio");
  revoke.set_token_id(issued.token_id());
  v1::RevokeTokenResponse revoked;
  ASSERT_TRUE(admin->RevokeToken(Authed(kAdminToken).get(), revoke, &revoked).ok());
  const auto revoked_at = std::chrono::steady_clock::now();
  // Refused by scheduler 0 at once, and by scheduler 1 within a second.
  {
    v1::ListJobsResponse resp;
    auto jobs0 = v1::JobService::NewStub(stack_->Channel(0));
    EXPECT_EQ(jobs0->ListJobs(Authed(issued.token()).get(), {}, &resp).error_code(),
              StatusCode::UNAUTHENTICATED);
  }
  for (;;) {
    v1::ListJobsResponse resp;
    auto status = jobs1->ListJobs(Authed(issued.token()).get(), {}, &resp);
    if (status.error_code() == StatusCode::UNAUTHENTICATED) break;
    ASSERT_LT(std::chrono::steady_clock::now() - revoked_at, std::chrono::seconds(1))
        << "scheduler 1 still accepts a revoked token";
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_LT(std::chrono::steady_clock::now() - revoked_at, std::chrono::seconds(1));
  for (int s = 0; s < 2; ++s) {
    ExpectEveryRpc(CallEveryRpc(stack_->Channel(s), issued.token()), StatusCode::UNAUTHENTICATED,
                   "revoked token on scheduler " + std::to_string(s));
  }

  // Rotation: the new token works, the old one is refused.
  auto second = Issue("revoked-studio");
  v1::RotateTokenRequest rotate;
  rotate.set_tenant("revoked-studio");
  rotate.set_token_id(second.token_id());
  v1::IssuedToken third;
  ASSERT_TRUE(admin->RotateToken(Authed(kAdminToken).get(), rotate, &third).ok());
  Secrets().push_back(third.token());
  auto jobs0 = v1::JobService::NewStub(stack_->Channel(0));
  v1::ListJobsResponse resp;
  EXPECT_EQ(jobs0->ListJobs(Authed(second.token()).get(), {}, &resp).error_code(),
            StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(jobs0->ListJobs(Authed(third.token()).get(), {}, &resp).ok());
}

TEST_F(AuthApi, TenantsSeeOnlyTheirOwnJobsBatchesAndWatches) {
  CreateTenant("studio-a");
  CreateTenant("studio-b");
  const auto a = Issue("studio-a").token();
  const auto b = Issue("studio-b").token();
  auto jobs = v1::JobService::NewStub(stack_->Channel(0));

  grpc::Status status;
  std::vector<v1::JobSpec> b_batch{Spec("b's first shot"), Spec("b's second shot")};
  for (auto& s : b_batch) s.set_batch_id("b-night-batch");
  auto b_items = SubmitBatchAs(*jobs, b, b_batch, &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(b_items.accepted(), 2u) << b_items.DebugString();
  const std::string b_job = b_items.items(0).job_id();
  const auto a_job = SubmitAs(*jobs, a, Spec("a's shot"), &status).job_id();
  ASSERT_TRUE(status.ok()) << status.error_message();

  // What "no such job" looks like, to compare with.
  v1::JobStatus out;
  v1::GetJobRequest missing;
  missing.set_job_id("01NOSUCHJOB");
  const auto absent = jobs->GetJob(Authed(a).get(), missing, &out);
  ASSERT_EQ(absent.error_code(), StatusCode::NOT_FOUND);

  v1::GetJobRequest get;
  get.set_job_id(b_job);
  auto got = jobs->GetJob(Authed(a).get(), get, &out);
  EXPECT_EQ(got.error_code(), StatusCode::NOT_FOUND);
  // Word for word the answer for a job that does not exist (the id aside).
  std::string absent_message = absent.error_message();
  absent_message.replace(absent_message.find("01NOSUCHJOB"), 11, b_job);
  EXPECT_EQ(got.error_message(), absent_message);
  v1::CancelJobRequest cancel;
  cancel.set_job_id(b_job);
  EXPECT_EQ(jobs->CancelJob(Authed(a).get(), cancel, &out).error_code(), StatusCode::NOT_FOUND);
  v1::RetryJobRequest retry;
  retry.set_job_id(b_job);
  EXPECT_EQ(jobs->RetryJob(Authed(a).get(), retry, &out).error_code(), StatusCode::NOT_FOUND);
  v1::WatchJobRequest watch_job;
  watch_job.set_job_id(b_job);
  int events = -1;
  EXPECT_EQ(WatchAs(*jobs, a, watch_job, std::chrono::seconds(10), &events).error_code(),
            StatusCode::NOT_FOUND);
  EXPECT_EQ(events, 0);
  v1::WatchJobRequest watch_batch;
  watch_batch.set_batch_id("b-night-batch");
  EXPECT_EQ(WatchAs(*jobs, a, watch_batch, std::chrono::seconds(10), &events).error_code(),
            StatusCode::NOT_FOUND);
  EXPECT_EQ(events, 0);
  v1::GetBatchRequest get_batch;
  get_batch.set_batch_id("b-night-batch");
  v1::BatchProgress progress;
  auto batch_status = jobs->GetBatch(Authed(a).get(), get_batch, &progress);
  EXPECT_EQ(batch_status.error_code(), StatusCode::NOT_FOUND);
  EXPECT_EQ(batch_status.error_message(), "no batch with id 'b-night-batch'");
  // Nor can A cancel or re-run B's batch: the same answer as for no such batch.
  v1::CancelBatchRequest cancel_batch;
  cancel_batch.set_batch_id("b-night-batch");
  v1::BatchActionResponse acted;
  auto cancel_status = jobs->CancelBatch(Authed(a).get(), cancel_batch, &acted);
  EXPECT_EQ(cancel_status.error_code(), StatusCode::NOT_FOUND);
  EXPECT_EQ(cancel_status.error_message(), "no batch with id 'b-night-batch'");
  v1::RetryBatchRequest retry_batch;
  retry_batch.set_batch_id("b-night-batch");
  EXPECT_EQ(jobs->RetryBatch(Authed(a).get(), retry_batch, &acted).error_code(),
            StatusCode::NOT_FOUND);

  // A's lists hold only A's jobs, whatever the filter.
  for (const std::string batch : {"", "b-night-batch"}) {
    v1::ListJobsRequest list;
    list.set_batch_id(batch);
    v1::ListJobsResponse page;
    ASSERT_TRUE(jobs->ListJobs(Authed(a).get(), list, &page).ok());
    for (const auto& j : page.jobs()) {
      EXPECT_EQ(j.spec().tenant(), "studio-a") << j.job_id();
      EXPECT_NE(j.job_id(), b_job);
    }
    if (batch.empty()) {
      EXPECT_EQ(page.jobs_size(), 1);
    }
  }
  // Naming another tenant is refused, naming the field.
  v1::ListJobsRequest list_b;
  list_b.set_tenant("studio-b");
  v1::ListJobsResponse page;
  auto denied = jobs->ListJobs(Authed(a).get(), list_b, &page);
  EXPECT_EQ(denied.error_code(), StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(denied.error_message().rfind("tenant:", 0), 0u) << denied.error_message();
  auto as_b = Spec("a pretending to be b");
  as_b.set_tenant("studio-b");
  SubmitAs(*jobs, a, as_b, &status);
  EXPECT_EQ(status.error_code(), StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(status.error_message().rfind("tenant:", 0), 0u) << status.error_message();
  // B's batch id is not A's to add to.
  auto into_b = Spec("a into b's batch");
  into_b.set_batch_id("b-night-batch");
  auto a_items = SubmitBatchAs(*jobs, a, {into_b}, &status);
  ASSERT_TRUE(status.ok());
  ASSERT_EQ(a_items.items_size(), 1);
  EXPECT_EQ(a_items.items(0).code(), static_cast<int>(StatusCode::INVALID_ARGUMENT));
  EXPECT_EQ(a_items.items(0).message().rfind("batch_id:", 0), 0u) << a_items.items(0).message();
  // Stats: A sees its own tenant line only.
  auto models = v1::ModelService::NewStub(stack_->Channel(1));
  v1::GetStatsResponse stats;
  ASSERT_TRUE(models->GetStats(Authed(a).get(), {}, &stats).ok());
  for (const auto& t : stats.tenants()) EXPECT_EQ(t.tenant(), "studio-a");
  // The provider accounts are the operator's: an admin sees them, a tenant does not.
  EXPECT_EQ(stats.accounts_size(), 0);
  v1::GetStatsResponse admin_stats;
  ASSERT_TRUE(models->GetStats(Authed(kAdminToken).get(), {}, &admin_stats).ok());
  EXPECT_GT(admin_stats.accounts_size(), 0);
  v1::ListModelsResponse listed, admin_listed;
  ASSERT_TRUE(models->ListModels(Authed(a).get(), {}, &listed).ok());
  ASSERT_TRUE(models->ListModels(Authed(kAdminToken).get(), {}, &admin_listed).ok());
  ASSERT_GT(listed.models_size(), 0);
  for (const auto& m : listed.models()) EXPECT_EQ(m.accounts_size(), 0) << m.id();
  int admin_accounts = 0;
  for (const auto& m : admin_listed.models()) admin_accounts += m.accounts_size();
  EXPECT_GT(admin_accounts, 0);

  // B sees its own; the admin sees both.
  EXPECT_TRUE(jobs->GetJob(Authed(b).get(), get, &out).ok());
  EXPECT_NE(out.state(), v1::JOB_STATE_CANCELLED) << "A's CancelBatch reached B's job";
  EXPECT_TRUE(jobs->GetBatch(Authed(b).get(), get_batch, &progress).ok());
  EXPECT_EQ(progress.total(), 2u);
  EXPECT_TRUE(jobs->GetJob(Authed(kAdminToken).get(), get, &out).ok());
  EXPECT_TRUE(jobs->GetBatch(Authed(kAdminToken).get(), get_batch, &progress).ok());
  v1::ListJobsResponse all;
  v1::ListJobsRequest list_all;
  list_all.set_page_size(1000);
  ASSERT_TRUE(jobs->ListJobs(Authed(kAdminToken).get(), list_all, &all).ok());
  std::set<std::string> seen;
  for (const auto& j : all.jobs()) seen.insert(j.job_id());
  EXPECT_TRUE(seen.contains(a_job));
  EXPECT_TRUE(seen.contains(b_job));

  // B's own watch follows its job to the end (the worker runs it).
  EXPECT_TRUE(WatchAs(*jobs, b, watch_job, std::chrono::seconds(60), &events).ok());
  ASSERT_TRUE(jobs->GetJob(Authed(b).get(), get, &out).ok());
  EXPECT_EQ(out.state(), v1::JOB_STATE_SUCCEEDED) << out.DebugString() << stack_->Logs();
}

// A batch id claimed by a submission that stored nothing (here an input image that is not in
// the store) is not held for good: the claim lasts a retention unless a job is stored under
// it, and another tenant may use the id once it has lapsed. A claim with a job lasts.
TEST_F(AuthApi, ABatchIdClaimedWithoutAJobLapses) {
  CreateTenant("studio-e");
  CreateTenant("studio-f");
  const auto e = Issue("studio-e").token();
  const auto f = Issue("studio-f").token();
  auto jobs = v1::JobService::NewStub(stack_->Channel(0));
  const std::string claim = std::string(E2eStack::kRedisPrefix) + ":{q}:auth:batch:";

  grpc::Status status;
  auto refused = Spec("e's shot from an image never stored");
  refused.set_batch_id("contested-batch");
  refused.mutable_first_frame()->set_key("inputs/studio-e/never-stored.png");
  SubmitAs(*jobs, e, refused, &status);
  ASSERT_FALSE(status.ok());
  const auto ttl = stack_->redis().Run({"PTTL", claim + "contested-batch"});
  EXPECT_GT(ttl.integer, 0) << "the claim of a submission that stored nothing never lapses";
  EXPECT_LE(ttl.integer, 168 * 3600 * 1000);

  // Until it lapses the id stays e's; then f may take it.
  auto into = Spec("f's shot");
  into.set_batch_id("contested-batch");
  SubmitAs(*jobs, f, into, &status);
  EXPECT_EQ(status.error_code(), StatusCode::INVALID_ARGUMENT) << status.error_message();
  stack_->redis().Run({"PEXPIRE", claim + "contested-batch", "1"});
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  auto taken = SubmitAs(*jobs, f, into, &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(stack_->redis().Run({"GET", claim + "contested-batch"}).str, "studio-f");
  EXPECT_EQ(stack_->redis().Run({"PTTL", claim + "contested-batch"}).integer, -1)
      << "a claim with a job stored under it must last until the batch leaves";
  EXPECT_FALSE(taken.job_id().empty());
  // e's claim, checked by this scheduler for its refused submission, is not trusted past its
  // lapse: e cannot add to f's batch now.
  auto back = Spec("e's shot into f's batch");
  back.set_batch_id("contested-batch");
  SubmitAs(*jobs, e, back, &status);
  EXPECT_EQ(status.error_code(), StatusCode::INVALID_ARGUMENT) << status.error_message();
}

// A watch stream is checked again as it goes: revoking its token ends it, job and batch alike.
TEST_F(AuthApi, AWatchStreamEndsWhenItsTokenIsRevoked) {
  CreateTenant("studio-w");
  const auto issued = Issue("studio-w");
  auto jobs = v1::JobService::NewStub(stack_->Channel(1));
  // Kling's keys get no running slots, so this tenant's Kling job waits upstream for as long
  // as the test needs (no other test uses Kling).
  stack_->SimConfigure({{"providers",
                         {{"kling",
                           {{"keys",
                             {{{"access_key", "sim-kling-ak-a"}, {"max_concurrent", 0}},
                              {{"access_key", "sim-kling-ak-b"}, {"max_concurrent", 0}}}}}}}}});
  auto spec = Spec("a shot that waits upstream");
  spec.clear_models();
  spec.add_models("kling-3.0");
  spec.set_batch_id("watched-batch");
  grpc::Status status;
  const std::string job = SubmitAs(*jobs, issued.token(), spec, &status).job_id();
  ASSERT_TRUE(status.ok()) << status.error_message();

  v1::WatchJobRequest watch_job;
  watch_job.set_job_id(job);
  v1::WatchJobRequest watch_batch;
  watch_batch.set_batch_id("watched-batch");
  const auto opened = std::chrono::steady_clock::now();
  grpc::Status job_end, batch_end;
  std::thread job_watch(
      [&] { job_end = WatchAs(*jobs, issued.token(), watch_job, std::chrono::seconds(30)); });
  std::thread batch_watch(
      [&] { batch_end = WatchAs(*jobs, issued.token(), watch_batch, std::chrono::seconds(30)); });
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  auto admin = v1::AdminService::NewStub(stack_->Channel(0));
  v1::RevokeTokenRequest revoke;
  revoke.set_tenant("studio-w");
  revoke.set_token_id(issued.token_id());
  v1::RevokeTokenResponse revoked;
  ASSERT_TRUE(admin->RevokeToken(Authed(kAdminToken).get(), revoke, &revoked).ok());
  job_watch.join();
  batch_watch.join();
  const auto open_for = std::chrono::steady_clock::now() - opened;
  EXPECT_EQ(job_end.error_code(), StatusCode::UNAUTHENTICATED) << job_end.error_message();
  EXPECT_EQ(batch_end.error_code(), StatusCode::UNAUTHENTICATED) << batch_end.error_message();
  EXPECT_LT(open_for, std::chrono::seconds(10)) << "the streams outlived the revoke";

  v1::CancelJobRequest cancel;
  cancel.set_job_id(job);
  v1::JobStatus cancelled;
  EXPECT_TRUE(jobs->CancelJob(Authed(kAdminToken).get(), cancel, &cancelled).ok());
}

TEST_F(AuthApi, AdminSurfaceRefusesBadInputAndChangesNothing) {
  CreateTenant("studio-c");
  const auto c = Issue("studio-c");
  auto admin = v1::AdminService::NewStub(stack_->Channel(1));
  v1::ListTenantsResponse before;
  ASSERT_TRUE(admin->ListTenants(Authed(kAdminToken).get(), {}, &before).ok());

  struct Case {
    std::string what;
    grpc::Status status;
    StatusCode code;
    std::string prefix;
  };
  std::vector<Case> cases;
  auto create = [&](const std::string& name, double weight) {
    v1::CreateTenantRequest req;
    req.set_name(name);
    req.set_weight(weight);
    v1::Tenant resp;
    return admin->CreateTenant(Authed(kAdminToken).get(), req, &resp);
  };
  cases.push_back({"duplicate tenant", create("studio-c", 0), StatusCode::INVALID_ARGUMENT,
                   "name: tenant 'studio-c' already exists"});
  cases.push_back({"empty name", create("", 0), StatusCode::INVALID_ARGUMENT, "name:"});
  cases.push_back({"bad name", create("studio/../x", 0), StatusCode::INVALID_ARGUMENT, "name:"});
  cases.push_back({"reserved name", create("inputs", 0), StatusCode::INVALID_ARGUMENT,
                   "name: \"inputs\" is reserved"});
  cases.push_back(
      {"long name", create(std::string(65, 'x'), 0), StatusCode::INVALID_ARGUMENT, "name:"});
  cases.push_back(
      {"negative weight", create("studio-d", -1), StatusCode::INVALID_ARGUMENT, "weight:"});
  cases.push_back(
      {"huge weight", create("studio-d", 1e300), StatusCode::INVALID_ARGUMENT, "weight:"});
  {
    v1::CreateTokenRequest req;
    req.set_tenant("nobody");
    v1::IssuedToken resp;
    cases.push_back({"token for unknown tenant",
                     admin->CreateToken(Authed(kAdminToken).get(), req, &resp),
                     StatusCode::NOT_FOUND, "tenant: no tenant named 'nobody'"});
  }
  auto revoke = [&](const std::string& tenant, const std::string& id) {
    v1::RevokeTokenRequest req;
    req.set_tenant(tenant);
    req.set_token_id(id);
    v1::RevokeTokenResponse resp;
    return admin->RevokeToken(Authed(kAdminToken).get(), req, &resp);
  };
  cases.push_back({"malformed token id", revoke("studio-c", "not-an-id"),
                   StatusCode::INVALID_ARGUMENT, "token_id:"});
  // The token itself where its id belongs: refused, and the message does not echo it.
  cases.push_back({"token instead of id", revoke("studio-c", c.token()),
                   StatusCode::INVALID_ARGUMENT, "token_id:"});
  cases.push_back({"unknown token id", revoke("studio-c", "0123456789abcdef"),
                   StatusCode::NOT_FOUND, "token_id:"});
  cases.push_back({"revoke for unknown tenant", revoke("nobody", c.token_id()),
                   StatusCode::NOT_FOUND, "tenant:"});
  {
    v1::RotateTokenRequest req;
    req.set_tenant("studio-c");
    req.set_token_id("0123456789abcdef");
    v1::IssuedToken resp;
    cases.push_back({"rotate unknown id", admin->RotateToken(Authed(kAdminToken).get(), req, &resp),
                     StatusCode::NOT_FOUND, "token_id:"});
  }
  auto weight = [&](const std::string& tenant, double w) {
    v1::SetWeightRequest req;
    req.set_tenant(tenant);
    req.set_weight(w);
    v1::Tenant resp;
    return admin->SetWeight(Authed(kAdminToken).get(), req, &resp);
  };
  cases.push_back(
      {"weight of unknown tenant", weight("nobody", 2), StatusCode::NOT_FOUND, "tenant:"});
  cases.push_back({"zero weight", weight("studio-c", 0), StatusCode::INVALID_ARGUMENT, "weight:"});
  cases.push_back(
      {"NaN weight", weight("studio-c", std::nan("")), StatusCode::INVALID_ARGUMENT, "weight:"});
  {
    // A tenant's token is not an admin's.
    v1::CreateTenantRequest req;
    req.set_name("studio-e");
    v1::Tenant resp;
    cases.push_back({"tenant token on admin",
                     admin->CreateTenant(Authed(c.token()).get(), req, &resp),
                     StatusCode::PERMISSION_DENIED, "authorization:"});
  }
  for (const auto& k : cases) {
    EXPECT_EQ(k.status.error_code(), k.code) << k.what << ": " << k.status.error_message();
    EXPECT_EQ(k.status.error_message().rfind(k.prefix, 0), 0u)
        << k.what << ": " << k.status.error_message();
    EXPECT_EQ(k.status.error_message().find(c.token()), std::string::npos) << k.what;
  }

  v1::ListTenantsResponse after;
  ASSERT_TRUE(admin->ListTenants(Authed(kAdminToken).get(), {}, &after).ok());
  EXPECT_EQ(after.SerializeAsString(), before.SerializeAsString())
      << "before:\n"
      << before.DebugString() << "after:\n"
      << after.DebugString();
  // The token still works.
  auto jobs = v1::JobService::NewStub(stack_->Channel(0));
  v1::ListJobsResponse page;
  EXPECT_TRUE(jobs->ListJobs(Authed(c.token()).get(), {}, &page).ok());

  // A good weight change shows in the listing.
  auto set = weight("studio-c", 3);
  EXPECT_TRUE(set.ok()) << set.error_message();
  v1::ListTenantsResponse weighted;
  ASSERT_TRUE(admin->ListTenants(Authed(kAdminToken).get(), {}, &weighted).ok());
  for (const auto& t : weighted.tenants()) {
    if (t.name() == "studio-c") {
      EXPECT_EQ(t.weight(), 3);
    }
  }
}

// Last: every line every process of this suite logged, searched for every key and token used.
TEST_F(AuthApi, NoKeyOrTokenInAnyLogLine) {
  // Make sure the run has logged something worth searching: a finished job used provider keys.
  ASSERT_GE(Secrets().size(), 15u) << "the tests before this one issue the tokens it looks for";
  for (const auto& secret : Secrets()) {
    auto hits = LinesContaining(stack_->log_dir().string(), secret);
    EXPECT_TRUE(hits.empty()) << "a secret (" << secret.size() << " bytes) was logged:\n"
                              << hits.front();
  }
}

}  // namespace
}  // namespace reelq::testing
