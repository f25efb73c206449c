// A batch id freed by retention and then claimed by another tenant, through one scheduler with
// authentication on: the first tenant's batch webhook, which that scheduler remembers, must not
// reach the second tenant's jobs (it would carry their ids, keys and presigned clip URLs), and
// the first tenant can no longer add jobs to the batch it lost.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "../wallet/wallet_util.h"
#include "auth_util.h"
#include "e2e_util.h"
#include "receiver.h"
#include "stack.h"

namespace reelq::testing {
namespace {

namespace v1 = reelq::v1;
using namespace std::chrono_literals;

// One SubmitBatch stream of one item into `batch`, with a batch webhook when `hook` is set.
v1::SubmitBatchResponse SubmitInto(v1::JobService::Stub& jobs, const std::string& token,
                                   const std::string& batch, const std::string& hook,
                                   grpc::Status* status) {
  auto ctx = Authed(token);
  v1::SubmitBatchResponse response;
  auto writer = jobs.SubmitBatch(ctx.get(), &response);
  v1::SubmitBatchRequest request;
  *request.mutable_spec() = MakeSpec("shot for " + batch, "seedance-2.0", 5);
  request.mutable_spec()->set_batch_id(batch);
  if (!hook.empty()) {
    request.set_batch_webhook_url(hook);
    request.set_batch_webhook_events("all");
  }
  writer->Write(request);
  writer->WritesDone();
  *status = writer->Finish();
  return response;
}

// One scheduler and one worker, authentication on (the admin token wallet::kAdminToken),
// webhooks to loopback polled every 100 ms; `webhooks` more lines of the webhooks section,
// `more` more sections.
E2eStackOptions AuthedWebhookStack(const std::string& webhooks, const std::string& more = "") {
  E2eStackOptions o;
  o.schedulers = 1;
  o.workers = 1;
  o.extra_yaml =
      "webhooks:\n"
      "  allow_hosts: [\"127.0.0.0/8\"]\n"
      "  poll_interval_ms: 100\n" +
      webhooks +
      "auth:\n"
      "  admin_tokens:\n"
      "    - {env: REELQ_TEST_ADMIN_TOKEN}\n" +
      more;
  o.env["REELQ_TEST_ADMIN_TOKEN"] = wallet::kAdminToken;
  return o;
}

bool Ended(v1::JobService::Stub& jobs, const std::string& token, const std::string& id) {
  v1::GetJobRequest get;
  get.set_job_id(id);
  v1::JobStatus job;
  if (!jobs.GetJob(Authed(token).get(), get, &job).ok()) return false;
  return job.state() == v1::JOB_STATE_SUCCEEDED || job.state() == v1::JOB_STATE_FAILED ||
         job.state() == v1::JOB_STATE_CANCELLED;
}

TEST(WebhookTenants, ABatchIdReusedAfterRetentionCarriesNoWebhookOfItsFormerOwner) {
  if (auto missing = E2eStack::MissingBinaries(); !missing.empty()) GTEST_SKIP() << missing;
  WebhookReceiver receiver([](int) { return 200; });
  E2eStack stack(AuthedWebhookStack("", "queue:\n  retention_hours: 0.0005\n"));  // 1.8 s
  auto jobs = stack.JobStub();
  const auto first = wallet::NewTenant(stack, "first-studio", 0);  // no wallet
  const auto second = wallet::NewTenant(stack, "second-studio", 0);

  // The first tenant's batch, with a webhook for every job's end, runs to its end.
  grpc::Status status;
  auto a = SubmitInto(*jobs, first, "nightly", receiver.Url(), &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(a.accepted(), 1u) << (a.items_size() > 0 ? a.items(0).message() : "");
  auto delivered = receiver.WaitFor(2, 30s);  // the job's end and batch.completed
  ASSERT_EQ(delivered.size(), 2u) << stack.Logs();

  // Retention removes the batch, and its id is free again.
  bool gone = false;
  for (int i = 0; i < 100 && !gone; ++i) {
    v1::GetBatchRequest get;
    get.set_batch_id("nightly");
    v1::BatchProgress progress;
    gone = jobs->GetBatch(Authed(first).get(), get, &progress).error_code() ==
           grpc::StatusCode::NOT_FOUND;
    if (!gone) std::this_thread::sleep_for(200ms);
  }
  ASSERT_TRUE(gone) << "retention did not remove the batch";

  // The second tenant takes the id once the first's claim has lapsed (a grace after the batch
  // went: here the retention's 1.8 s), without a webhook; its job ends.
  v1::SubmitBatchResponse b;
  for (int i = 0; i < 50; ++i) {
    b = SubmitInto(*jobs, second, "nightly", "", &status);
    ASSERT_TRUE(status.ok()) << status.error_message();
    if (b.accepted() == 1u) break;
    std::this_thread::sleep_for(200ms);
  }
  ASSERT_EQ(b.accepted(), 1u) << (b.items_size() > 0 ? b.items(0).message() : "");
  const std::string b_job = b.items(0).job_id();
  bool ended = false;
  for (int i = 0; i < 150 && !ended; ++i) {
    ended = Ended(*jobs, second, b_job);
    if (!ended) std::this_thread::sleep_for(200ms);
  }
  ASSERT_TRUE(ended) << stack.Logs();
  std::this_thread::sleep_for(1500ms);  // deliveries are polled every 100 ms
  for (const auto& r : receiver.Received()) {
    EXPECT_EQ(r.body.find(b_job), std::string::npos)
        << "the second tenant's job reached the first tenant's webhook: " << r.body;
  }
  EXPECT_EQ(receiver.Received().size(), 2u);

  // The first tenant can no longer add to the batch it lost.
  auto again = SubmitInto(*jobs, first, "nightly", "", &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(again.accepted(), 0u);
  ASSERT_EQ(again.items_size(), 1);
  EXPECT_NE(again.items(0).message().find("batch_id"), std::string::npos)
      << again.items(0).message();

  // An admin asking for the webhook secret of a misspelt tenant is told there is none, and no
  // secret is made for the misspelling (its receiver would refuse the real tenant's deliveries).
  auto admin = v1::AdminService::NewStub(stack.Channel(0));
  for (const bool rotate : {false, true}) {
    v1::WebhookSecretRequest request;
    request.set_tenant("first-studoi");
    request.set_rotate(rotate);
    v1::WebhookSecret secret;
    auto refused = admin->GetWebhookSecret(Authed(wallet::kAdminToken).get(), request, &secret);
    EXPECT_EQ(refused.error_code(), grpc::StatusCode::NOT_FOUND) << refused.error_message();
    EXPECT_NE(refused.error_message().find("first-studoi"), std::string::npos);
  }
  EXPECT_EQ(
      stack.redis()
          .Run({"HEXISTS", std::string(E2eStack::kRedisPrefix) + ":{q}:whsecret", "first-studoi"})
          .integer,
      0);
  v1::WebhookSecretRequest known;
  known.set_tenant("first-studio");
  v1::WebhookSecret secret;
  auto shown = admin->GetWebhookSecret(Authed(wallet::kAdminToken).get(), known, &secret);
  EXPECT_TRUE(shown.ok()) << shown.error_message();
  EXPECT_FALSE(secret.secret().empty());
}

// A tenant whose receiver never answers holds at most webhooks.max_in_flight_per_tenant of a
// scheduler's delivery slots: another tenant's deliveries, due after it took all it may, go out
// at once instead of waiting out its timeouts; its own further deliveries wait, unattempted.
TEST(WebhookTenants, ASilentReceiverDoesNotHoldBackAnotherTenantsDeliveries) {
  if (auto missing = E2eStack::MissingBinaries(); !missing.empty()) GTEST_SKIP() << missing;
  WebhookReceiver silent([](int) { return WebhookReceiver::kHold; });
  WebhookReceiver quick([](int) { return 200; });
  // Four slots, two a tenant; an attempt waits a minute for its answer, longer than the test.
  E2eStack stack(
      AuthedWebhookStack("  max_in_flight: 4\n"
                         "  max_in_flight_per_tenant: 2\n"
                         "  timeout_ms: 60000\n"
                         "  lease_ms: 120000\n"));
  auto jobs = stack.JobStub();
  const auto slow = wallet::NewTenant(stack, "slow-studio", 0);
  const auto fast = wallet::NewTenant(stack, "fast-studio", 0);
  auto submit = [&](const std::string& token, const std::string& url, const std::string& prompt) {
    v1::SubmitJobRequest request;
    *request.mutable_spec() = MakeSpec(prompt, "seedance-2.0", 5);
    request.mutable_spec()->set_webhook_url(url);
    v1::SubmitJobResponse response;
    auto status = jobs->SubmitJob(Authed(token).get(), request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.job_id();
  };
  auto wait_ended = [&](const std::string& token, const std::vector<std::string>& ids) {
    for (const auto& id : ids) {
      bool ended = false;
      for (int i = 0; i < 300 && !ended; ++i) {
        ended = Ended(*jobs, token, id);
        if (!ended) std::this_thread::sleep_for(100ms);
      }
      ASSERT_TRUE(ended) << id << "\n" << stack.Logs();
    }
  };

  // Six deliveries of the silent receiver's tenant are due before any of the other's.
  std::vector<std::string> slow_jobs;
  for (int i = 0; i < 6; ++i) {
    slow_jobs.push_back(submit(slow, silent.Url("/slow"), "slow shot " + std::to_string(i)));
  }
  wait_ended(slow, slow_jobs);
  ASSERT_GE(silent.WaitFor(2, 10s).size(), 2u) << stack.Logs();
  std::this_thread::sleep_for(1000ms);  // ten polls: it would have taken every slot by now
  EXPECT_EQ(silent.Received().size(), 2u) << "the silent tenant holds more than its 2 slots";

  std::vector<std::string> fast_jobs;
  for (int i = 0; i < 3; ++i) {
    fast_jobs.push_back(submit(fast, quick.Url("/fast"), "fast shot " + std::to_string(i)));
  }
  wait_ended(fast, fast_jobs);
  EXPECT_EQ(quick.WaitFor(3, 10s).size(), 3u)
      << "the other tenant's deliveries waited behind the silent receiver\n"
      << stack.Logs();

  // The silent tenant's other four wait, pending and not attempted.
  int waiting = 0, attempted = 0;
  for (const auto& id : slow_jobs) {
    v1::GetJobRequest get;
    get.set_job_id(id);
    v1::JobStatus job;
    ASSERT_TRUE(jobs->GetJob(Authed(slow).get(), get, &job).ok());
    EXPECT_EQ(job.webhook().state(), "pending") << id;
    if (job.webhook().attempts() == 0) ++waiting;
    if (job.webhook().attempts() == 1) ++attempted;
  }
  EXPECT_EQ(waiting, 4);
  EXPECT_EQ(attempted, 2);
  EXPECT_EQ(silent.Received().size(), 2u);
}

}  // namespace
}  // namespace reelq::testing
