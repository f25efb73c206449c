// Issue 13, webhooks through the whole stack: a receiver in the test checks every signature
// with its own HMAC; a receiver that fails twice gets the same event id three times; a
// scheduler SIGKILLed while a delivery is due does not lose it; unsafe targets are refused at
// submit, naming the field.
#include <gtest/gtest.h>

#include <chrono>
#include <ctime>
#include <fstream>
#include <set>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "e2e_util.h"
#include "receiver.h"
#include "reelq/v1/admin.grpc.pb.h"
#include "stack.h"

namespace reelq::testing {
namespace {

namespace v1 = reelq::v1;
using namespace std::chrono_literals;

// A fixed secret (webhooks.secret, authentication off): the test signs with it on its own.
constexpr const char* kSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

E2eStackOptions WebhookStack(int schedulers = 1) {
  E2eStackOptions o;
  o.schedulers = schedulers;
  o.workers = 1;
  // Loopback is allowlisted (the receiver is on 127.0.0.1); backoff in milliseconds.
  o.extra_yaml =
      "webhooks:\n"
      "  allow_hosts: [\"127.0.0.0/8\"]\n"
      "  retry_initial_ms: 300\n"
      "  retry_max_ms: 1000\n"
      "  timeout_ms: 1500\n"
      "  lease_ms: 2500\n"
      "  poll_interval_ms: 100\n"
      "  secret: {env: REELQ_TEST_WEBHOOK_SECRET}\n";
  o.env["REELQ_TEST_WEBHOOK_SECRET"] = kSecret;
  return o;
}

// One SubmitBatch stream carrying `requests`, a message each; the call's status in *status.
v1::SubmitBatchResponse SubmitStream(v1::JobService::Stub& jobs,
                                     const std::vector<v1::SubmitBatchRequest>& requests,
                                     grpc::Status* status) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 30s);
  v1::SubmitBatchResponse response;
  auto writer = jobs.SubmitBatch(&ctx, &response);
  for (const auto& request : requests) {
    if (!writer->Write(request)) break;  // the scheduler ended the call; Finish says why
  }
  writer->WritesDone();
  *status = writer->Finish();
  return response;
}

// Every request carries the three headers, a fresh timestamp and a signature that verifies.
void ExpectSigned(const ReceivedRequest& r) {
  EXPECT_EQ(r.method, "POST");
  ASSERT_TRUE(r.headers.contains("webhook-id"));
  ASSERT_TRUE(r.headers.contains("webhook-timestamp"));
  ASSERT_TRUE(r.headers.contains("webhook-signature"));
  const long long ts = std::stoll(r.headers.at("webhook-timestamp"));
  EXPECT_LT(std::llabs(ts - static_cast<long long>(std::time(nullptr))), 300)
      << "timestamp not in unix seconds of now";
  EXPECT_EQ(r.headers.at("webhook-signature"),
            ExpectedSignature(kSecret, r.headers.at("webhook-id"),
                              r.headers.at("webhook-timestamp"), r.body))
      << "signature does not verify for body " << r.body;
}

TEST(WebhookDelivery, FailingReceiverGetsTheSameSignedEventThreeTimes) {
  if (auto missing = E2eStack::MissingBinaries(); !missing.empty()) GTEST_SKIP() << missing;
  WebhookReceiver receiver([](int index) { return index < 2 ? 500 : 200; });
  E2eStack stack(WebhookStack());
  auto jobs = stack.JobStub();

  auto spec = MakeSpec("a webhook's job", "kling-3.0", 5);
  spec.set_webhook_url(receiver.Url("/hooks/reelq?x=1"));
  grpc::Status status;
  auto submitted = SubmitJob(*jobs, spec, &status);
  ASSERT_TRUE(status.ok()) << status.error_message();

  auto got = receiver.WaitFor(3, 30s);
  ASSERT_GE(got.size(), 3u) << stack.Logs();
  const std::string id = got[0].headers["webhook-id"];
  for (size_t i = 0; i < got.size(); ++i) {
    SCOPED_TRACE("request " + std::to_string(i));
    ExpectSigned(got[i]);
    EXPECT_EQ(got[i].headers["webhook-id"], id) << "a retry must carry the same id";
    EXPECT_EQ(got[i].target, "/hooks/reelq?x=1");
    EXPECT_EQ(got[i].body, got[0].body);
  }
  auto body = nlohmann::json::parse(got[0].body);
  EXPECT_EQ(body["type"], "job.succeeded");
  EXPECT_EQ(body["data"]["job_id"], submitted.job_id());
  EXPECT_EQ(body["data"]["state"], "SUCCEEDED");
  EXPECT_FALSE(body["data"]["output_key"].get<std::string>().empty());

  // No fourth attempt after the 200; GetJob shows the delivery.
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(receiver.Received().size(), 3u);
  auto job = GetJob(*jobs, submitted.job_id());
  ASSERT_TRUE(job);
  EXPECT_EQ(job->webhook().delivery_id(), id);
  EXPECT_EQ(job->webhook().state(), "delivered");
  EXPECT_EQ(job->webhook().attempts(), 3u);
  EXPECT_EQ(job->webhook().last_status(), 200);
  EXPECT_EQ(job->webhook().event_type(), "job.succeeded");

  // With authentication off the admin sees the configured secret.
  auto admin = v1::AdminService::NewStub(stack.Channel());
  grpc::ClientContext ctx;
  v1::WebhookSecretRequest request;
  request.set_tenant("default");
  v1::WebhookSecret secret;
  auto admin_status = admin->GetWebhookSecret(&ctx, request, &secret);
  ASSERT_TRUE(admin_status.ok()) << admin_status.error_message();
  EXPECT_EQ(secret.secret(), kSecret);
}

// A receiver that answers 410 Gone has retired the endpoint: the delivery fails at the first
// attempt, saying so, and is not retried.
TEST(WebhookDelivery, GoneStopsTheDeliveryAtOnce) {
  if (auto missing = E2eStack::MissingBinaries(); !missing.empty()) GTEST_SKIP() << missing;
  WebhookReceiver receiver([](int) { return 410; });
  E2eStack stack(WebhookStack());
  auto jobs = stack.JobStub();
  auto spec = MakeSpec("a retired endpoint", "kling-3.0", 5);
  spec.set_webhook_url(receiver.Url("/retired"));
  grpc::Status status;
  auto submitted = SubmitJob(*jobs, spec, &status);
  ASSERT_TRUE(status.ok()) << status.error_message();

  ASSERT_EQ(receiver.WaitFor(1, 30s).size(), 1u) << stack.Logs();
  std::optional<v1::JobStatus> job;
  for (int i = 0; i < 50; ++i) {
    job = GetJob(*jobs, submitted.job_id());
    if (job && job->webhook().state() != "pending") break;
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(job);
  EXPECT_EQ(job->webhook().state(), "failed");
  EXPECT_EQ(job->webhook().attempts(), 1u);
  EXPECT_EQ(job->webhook().last_status(), 410);
  EXPECT_NE(job->webhook().last_error().find("410 Gone"), std::string::npos)
      << job->webhook().last_error();
  // Backoff here is 300 ms to 1 s: a retry would have come by now.
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(receiver.Received().size(), 1u);
}

TEST(WebhookDelivery, BatchCompletedOnceEveryJobEnded) {
  if (auto missing = E2eStack::MissingBinaries(); !missing.empty()) GTEST_SKIP() << missing;
  WebhookReceiver receiver([](int) { return 200; });
  E2eStack stack(WebhookStack());
  auto jobs = stack.JobStub();
  std::vector<v1::SubmitBatchRequest> requests(3);
  for (int i = 0; i < 3; ++i) {
    *requests[i].mutable_spec() = MakeSpec("batch shot " + std::to_string(i), "seedance-2.0", 5);
  }
  requests[0].set_batch_webhook_url(receiver.Url());
  grpc::Status status;
  const auto response = SubmitStream(*jobs, requests, &status);
  ASSERT_TRUE(status.ok()) << status.error_message() << stack.Logs();
  ASSERT_EQ(response.accepted(), 3u);

  auto got = receiver.WaitFor(1, 30s);
  ASSERT_EQ(got.size(), 1u) << stack.Logs();
  ExpectSigned(got[0]);
  auto body = nlohmann::json::parse(got[0].body);
  EXPECT_EQ(body["type"], "batch.completed");
  EXPECT_EQ(body["data"]["batch_id"], response.batch_id());
  EXPECT_EQ(body["data"]["total"], 3);
  EXPECT_EQ(body["data"]["succeeded"], 3);
  std::this_thread::sleep_for(1000ms);
  EXPECT_EQ(receiver.Received().size(), 1u) << "one batch.completed, no job events (end only)";

  grpc::ClientContext get_ctx;
  v1::GetBatchRequest get;
  get.set_batch_id(response.batch_id());
  v1::BatchProgress progress;
  ASSERT_TRUE(jobs->GetBatch(&get_ctx, get, &progress).ok());
  EXPECT_EQ(progress.webhook().state(), "delivered");
  EXPECT_EQ(progress.webhook().event_type(), "batch.completed");
}

// A deliverer claims again as soon as an attempt ends, not after its poll interval: with one
// slot a tenant (a quarter of four) and a 3 s poll, a quick receiver gets a batch's seven events
// (six jobs' ends and the batch's completion) within about one poll of the last job's end. Before,
// each poll sent one and the seven took over 18 s.
TEST(WebhookDelivery, AFreedSlotIsRefilledAtOnceNotAfterThePollInterval) {
  if (auto missing = E2eStack::MissingBinaries(); !missing.empty()) GTEST_SKIP() << missing;
  WebhookReceiver receiver([](int) { return 200; });
  E2eStackOptions o = WebhookStack();
  o.extra_yaml =
      "webhooks:\n"
      "  allow_hosts: [\"127.0.0.0/8\"]\n"
      "  max_in_flight: 4\n"
      "  poll_interval_ms: 3000\n"
      "  secret: {env: REELQ_TEST_WEBHOOK_SECRET}\n";
  E2eStack stack(o);
  auto jobs = stack.JobStub();
  std::vector<v1::SubmitBatchRequest> requests(6);
  for (int i = 0; i < 6; ++i) {
    *requests[i].mutable_spec() = MakeSpec("quick shot " + std::to_string(i), "seedance-2.0", 5);
  }
  requests[0].set_batch_webhook_url(receiver.Url());
  requests[0].set_batch_webhook_events("all");
  grpc::Status status;
  const auto response = SubmitStream(*jobs, requests, &status);
  ASSERT_TRUE(status.ok()) << status.error_message() << stack.Logs();
  ASSERT_EQ(response.accepted(), 6u);
  EXPECT_EQ(receiver.WaitFor(7, 12s).size(), 7u) << "the deliverer sent one event a poll interval\n"
                                                 << stack.Logs();
}

// A batch's webhook is kept with the batch in Redis, not in the scheduler that was told it: a job
// added to the batch through another scheduler (or after a restart) reports its end there too,
// and the batch's completion counts it.
TEST(WebhookDelivery, ABatchWebhookReachesJobsSubmittedThroughAnotherScheduler) {
  if (auto missing = E2eStack::MissingBinaries(); !missing.empty()) GTEST_SKIP() << missing;
  WebhookReceiver receiver([](int) { return 200; });
  E2eStack stack(WebhookStack(/*schedulers=*/2));
  auto first = stack.JobStub(0);
  auto second = stack.JobStub(1);
  v1::SubmitBatchRequest request;
  *request.mutable_spec() = MakeSpec("first shot", "seedance-2.0", 5);
  request.mutable_spec()->set_batch_id("shared-batch");
  request.set_batch_webhook_url(receiver.Url());
  request.set_batch_webhook_events("all");
  grpc::Status status;
  const auto response = SubmitStream(*first, {request}, &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(response.accepted(), 1u);

  auto spec = MakeSpec("second shot", "seedance-2.0", 5);
  spec.set_batch_id("shared-batch");
  auto added = SubmitJob(*second, spec, &status);
  ASSERT_TRUE(status.ok()) << status.error_message();

  // Each job's end (the hook asks for all), and batch.completed once both have ended (and,
  // when the first ended before the second was added, once before that with a total of 1).
  bool second_ended = false;
  int completed_with_both = 0;
  for (int i = 0; i < 150 && (!second_ended || completed_with_both == 0); ++i) {
    second_ended = false;
    completed_with_both = 0;
    for (const auto& r : receiver.Received()) {
      auto body = nlohmann::json::parse(r.body);
      if (body["type"] == "job.succeeded" && body["data"]["job_id"] == added.job_id()) {
        second_ended = true;
      }
      if (body["type"] == "batch.completed" && body["data"]["total"] == 2 &&
          body["data"]["succeeded"] == 2) {
        ++completed_with_both;
      }
    }
    std::this_thread::sleep_for(200ms);
  }
  EXPECT_TRUE(second_ended) << "the job added through the other scheduler did not report to the "
                               "batch's webhook\n"
                            << stack.Logs();
  EXPECT_EQ(completed_with_both, 1);
}

// A batch hook asking for every job's end delivers each job's end keyed by the job: GetJob shows
// that delivery on a job without a webhook of its own, delivered or still being retried.
TEST(WebhookDelivery, GetJobShowsTheBatchHooksDeliveryForTheJob) {
  if (auto missing = E2eStack::MissingBinaries(); !missing.empty()) GTEST_SKIP() << missing;
  WebhookReceiver good([](int) { return 200; });
  WebhookReceiver failing([](int) { return 503; });
  E2eStack stack(WebhookStack());
  auto jobs = stack.JobStub();
  auto submit_into = [&](const WebhookReceiver& receiver, const std::string& prompt) {
    v1::SubmitBatchRequest request;
    *request.mutable_spec() = MakeSpec(prompt, "seedance-2.0", 5);
    request.set_batch_webhook_url(receiver.Url("/batch"));
    request.set_batch_webhook_events("all");
    grpc::Status status;
    const auto response = SubmitStream(*jobs, {request}, &status);
    EXPECT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(response.accepted(), 1u);
    return response.items_size() == 1 ? response.items(0).job_id() : std::string();
  };
  const std::string good_job = submit_into(good, "a batch hook that answers");
  const std::string failing_job = submit_into(failing, "a batch hook that fails");
  ASSERT_FALSE(good_job.empty());
  ASSERT_FALSE(failing_job.empty());

  // The good receiver hears the job's end and batch.completed.
  ASSERT_GE(good.WaitFor(2, 30s).size(), 2u) << stack.Logs();
  std::optional<v1::JobStatus> job;
  for (int i = 0; i < 50; ++i) {
    job = GetJob(*jobs, good_job);
    if (job && job->webhook().state() == "delivered") break;
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(job);
  EXPECT_TRUE(job->spec().webhook_url().empty());
  EXPECT_EQ(job->webhook().state(), "delivered") << job->DebugString();
  EXPECT_EQ(job->webhook().event_type(), "job.succeeded");
  EXPECT_EQ(job->webhook().url(), good.Url("/batch"));
  EXPECT_EQ(job->webhook().last_status(), 200);
  EXPECT_EQ(job->webhook().delivery_id().rfind("msg_" + good_job + "_", 0), 0u)
      << job->webhook().delivery_id();

  // The failing one is retried (backoff 300 ms to 1 s): its attempts and last error show.
  std::optional<v1::JobStatus> failed;
  for (int i = 0; i < 150; ++i) {
    failed = GetJob(*jobs, failing_job);
    if (failed && failed->webhook().attempts() >= 2) break;
    std::this_thread::sleep_for(200ms);
  }
  ASSERT_TRUE(failed);
  EXPECT_EQ(failed->webhook().state(), "pending") << failed->DebugString();
  EXPECT_EQ(failed->webhook().event_type(), "job.succeeded");
  EXPECT_GE(failed->webhook().attempts(), 2u);
  EXPECT_EQ(failed->webhook().last_status(), 503);
  EXPECT_EQ(failed->webhook().last_error(), "HTTP 503");
  EXPECT_TRUE(failed->webhook().has_next_attempt_at());
}

// A batch has one webhook: a later message of the stream naming another has its items refused,
// naming both, instead of being ignored; a message naming the same one again is fine.
TEST(WebhookSubmit, AnotherBatchWebhookLaterInTheStreamIsRefused) {
  if (auto missing = E2eStack::MissingBinaries(); !missing.empty()) GTEST_SKIP() << missing;
  WebhookReceiver receiver([](int) { return 200; });
  E2eStack stack(WebhookStack());
  auto jobs = stack.JobStub();
  std::vector<v1::SubmitBatchRequest> requests;
  for (const std::string path : {"/first", "/first", "/second"}) {
    v1::SubmitBatchRequest request;
    *request.mutable_spec() = MakeSpec("shot for " + path, "seedance-2.0", 5);
    request.set_batch_webhook_url(receiver.Url(path));
    requests.push_back(std::move(request));
  }
  grpc::Status status;
  const auto response = SubmitStream(*jobs, requests, &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(response.items_size(), 3);
  EXPECT_EQ(response.accepted(), 2u);
  EXPECT_EQ(response.items(2).code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(response.items(2).message().find("differs from the webhook this stream named first"),
            std::string::npos)
      << response.items(2).message();

  // A later stream into the batch, which now holds jobs: the same webhook again (a resend) is
  // taken; another one is refused, since the jobs already stored would never report to it.
  auto into_batch = [&](const std::string& path, const std::string& prompt) {
    v1::SubmitBatchRequest request;
    *request.mutable_spec() = MakeSpec(prompt, "seedance-2.0", 5);
    request.mutable_spec()->set_batch_id(response.batch_id());
    if (!path.empty()) request.set_batch_webhook_url(receiver.Url(path));
    return SubmitStream(*jobs, {request}, &status);
  };
  const auto same = into_batch("/first", "one more shot");
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(same.accepted(), 1u) << (same.items_size() ? same.items(0).message() : "");
  const auto other = into_batch("/second", "another shot");
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(other.items_size(), 1);
  EXPECT_EQ(other.accepted(), 0u);
  EXPECT_EQ(other.items(0).code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(other.items(0).message().find("already holds 3 jobs"), std::string::npos)
      << other.items(0).message();
}

// A group (here a compare) names one webhook: its end is delivered once, for the group; its
// takes, ordinary jobs underneath, deliver nothing of their own.
TEST(WebhookDelivery, AGroupDeliversItsOwnEndNotItsChildren) {
  if (auto missing = E2eStack::MissingBinaries(); !missing.empty()) GTEST_SKIP() << missing;
  WebhookReceiver receiver([](int) { return 200; });
  E2eStack stack(WebhookStack());
  auto jobs = stack.JobStub();
  v1::JobSpec spec;
  spec.set_compare(true);
  spec.set_prompt("a compare with a webhook");
  spec.set_duration_seconds(8);
  spec.add_models("sora-2");
  spec.add_models("veo-3.1");
  spec.set_webhook_url(receiver.Url("/group"));
  grpc::Status status;
  auto submitted = SubmitJob(*jobs, spec, &status);
  ASSERT_TRUE(status.ok()) << status.error_message();

  auto got = receiver.WaitFor(1, 60s);
  ASSERT_EQ(got.size(), 1u) << stack.Logs();
  ExpectSigned(got[0]);
  auto body = nlohmann::json::parse(got[0].body);
  EXPECT_EQ(body["type"], "job.succeeded") << got[0].body;
  EXPECT_EQ(body["data"]["job_id"], submitted.job_id()) << got[0].body;
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(receiver.Received().size(), 1u) << "the takes must not deliver events of their own";
  auto job = GetJob(*jobs, submitted.job_id());
  ASSERT_TRUE(job);
  EXPECT_EQ(job->webhook().state(), "delivered");
  ASSERT_EQ(job->children_size(), 2);
  for (const auto& take : job->children()) {
    auto child = GetJob(*jobs, take.job_id());
    ASSERT_TRUE(child);
    EXPECT_TRUE(child->spec().webhook_url().empty()) << take.job_id();
    EXPECT_TRUE(child->webhook().delivery_id().empty()) << take.job_id();
  }
}

TEST(WebhookDelivery, SchedulerKilledWhileDeliveryDueStillDelivers) {
  if (auto missing = E2eStack::MissingBinaries(); !missing.empty()) GTEST_SKIP() << missing;
  // The first attempt is held unanswered: the scheduler dies with the delivery claimed.
  WebhookReceiver receiver([](int index) { return index == 0 ? WebhookReceiver::kHold : 200; });
  E2eStack stack(WebhookStack());
  auto jobs = stack.JobStub();
  auto spec = MakeSpec("delivered after a crash", "veo-3.1", 4);
  spec.set_webhook_url(receiver.Url());
  grpc::Status status;
  auto submitted = SubmitJob(*jobs, spec, &status);
  ASSERT_TRUE(status.ok()) << status.error_message();

  auto first = receiver.WaitFor(1, 30s);
  ASSERT_EQ(first.size(), 1u) << stack.Logs();
  stack.KillScheduler(0);
  EXPECT_EQ(receiver.Received().size(), 1u);
  stack.StartScheduler(0);

  auto got = receiver.WaitFor(2, 30s);
  ASSERT_GE(got.size(), 2u) << "the delivery was lost with the scheduler\n" << stack.Logs();
  EXPECT_EQ(got[1].headers["webhook-id"], got[0].headers["webhook-id"]);
  ExpectSigned(got[1]);
  std::optional<v1::JobStatus> job;
  for (int i = 0; i < 50; ++i) {
    job = GetJob(*stack.JobStub(), submitted.job_id());
    if (job && job->webhook().state() == "delivered") break;
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(job);
  EXPECT_EQ(job->webhook().state(), "delivered");
  EXPECT_GE(job->webhook().attempts(), 2u);
}

TEST(WebhookSubmit, UnsafeTargetsAreRefusedNamingTheField) {
  if (auto missing = E2eStack::MissingBinaries(); !missing.empty()) GTEST_SKIP() << missing;
  E2eStackOptions options = WebhookStack();
  options.workers = 0;
  E2eStack stack(options);
  auto jobs = stack.JobStub();
  struct Case {
    std::string url, events, must_mention;
  };
  const std::vector<Case> cases = {
      {"http://169.254.169.254/latest/meta-data/", "", "metadata"},
      {"ftp://example.com/hook", "", "ftp"},
      {"http://10.1.2.3:8080/hook", "", "private"},
      {"http://[fe80::1]/hook", "", "link-local"},
      {"http://[::ffff:169.254.169.254]/", "", "metadata"},
      {"https://user@127.0.0.1/hook", "", "user"},
      {"http://127.0.0.1:9/hook", "sometimes", "webhook_events"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.url);
    auto spec = MakeSpec("refused", "kling-3.0", 5);
    spec.set_webhook_url(c.url);
    spec.set_webhook_events(c.events);
    grpc::Status status;
    SubmitJob(*jobs, spec, &status);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(status.error_message().find(c.events.empty() ? "webhook_url" : "webhook_events"),
              std::string::npos)
        << status.error_message();
    EXPECT_NE(status.error_message().find(c.must_mention), std::string::npos)
        << status.error_message();
  }
  // A batch's webhook: every item refused, naming batch_webhook_url.
  grpc::ClientContext ctx;
  v1::SubmitBatchResponse response;
  auto writer = jobs->SubmitBatch(&ctx, &response);
  for (int i = 0; i < 2; ++i) {
    v1::SubmitBatchRequest request;
    *request.mutable_spec() = MakeSpec("refused batch", "kling-3.0", 5);
    if (i == 0) request.set_batch_webhook_url("ftp://example.com/");
    ASSERT_TRUE(writer->Write(request));
  }
  writer->WritesDone();
  ASSERT_TRUE(writer->Finish().ok());
  EXPECT_EQ(response.accepted(), 0u);
  ASSERT_EQ(response.items_size(), 2);
  for (const auto& item : response.items()) {
    EXPECT_EQ(item.code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
    EXPECT_NE(item.message().find("batch_webhook_url"), std::string::npos) << item.message();
  }
  // The same with 450 items in one message (SubmitBatchRequest.specs): the chunks read while
  // the first is out wait for it, and are refused with it.
  grpc::ClientContext packed_ctx;
  v1::SubmitBatchResponse packed;
  auto packed_writer = jobs->SubmitBatch(&packed_ctx, &packed);
  v1::SubmitBatchRequest request;
  *request.mutable_spec() = MakeSpec("refused batch", "kling-3.0", 5);
  for (int i = 1; i < 450; ++i) *request.add_specs() = MakeSpec("refused batch", "kling-3.0", 5);
  request.set_batch_webhook_url("ftp://example.com/");
  ASSERT_TRUE(packed_writer->Write(request));
  packed_writer->WritesDone();
  ASSERT_TRUE(packed_writer->Finish().ok());
  EXPECT_EQ(packed.accepted(), 0u);
  ASSERT_EQ(packed.items_size(), 450);
  for (const auto& item : packed.items()) {
    EXPECT_EQ(item.code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT)) << item.index();
    EXPECT_NE(item.message().find("batch_webhook_url"), std::string::npos) << item.message();
  }
  // A batch's webhook named only after the first item: the items before it were queued without
  // it, so the message naming it is refused, naming the field; the items around it go in.
  grpc::ClientContext late_ctx;
  v1::SubmitBatchResponse late;
  auto late_writer = jobs->SubmitBatch(&late_ctx, &late);
  for (int i = 0; i < 3; ++i) {
    v1::SubmitBatchRequest late_request;
    *late_request.mutable_spec() = MakeSpec("late hook " + std::to_string(i), "kling-3.0", 5);
    if (i == 1) late_request.set_batch_webhook_url("http://127.0.0.1:9/hook");
    ASSERT_TRUE(late_writer->Write(late_request));
  }
  late_writer->WritesDone();
  ASSERT_TRUE(late_writer->Finish().ok());
  ASSERT_EQ(late.items_size(), 3);
  EXPECT_EQ(late.accepted(), 2u);
  EXPECT_EQ(late.items(1).code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
  EXPECT_EQ(late.items(1).message().rfind("batch_webhook_url: named after the stream's first", 0),
            0u)
      << late.items(1).message();
  EXPECT_EQ(late.items(0).code(), 0);
  EXPECT_EQ(late.items(2).code(), 0);

  // A batch id admission would refuse is refused before the batch's webhook is stored under it:
  // no key is left for it.
  const std::string bad_id = "bad\x01id";
  grpc::ClientContext bad_ctx;
  v1::SubmitBatchResponse bad;
  auto bad_writer = jobs->SubmitBatch(&bad_ctx, &bad);
  v1::SubmitBatchRequest bad_request;
  *bad_request.mutable_spec() = MakeSpec("refused batch id", "kling-3.0", 5);
  bad_request.mutable_spec()->set_batch_id(bad_id);
  bad_request.set_batch_webhook_url("http://127.0.0.1:9/hook");
  ASSERT_TRUE(bad_writer->Write(bad_request));
  bad_writer->WritesDone();
  ASSERT_TRUE(bad_writer->Finish().ok());
  EXPECT_EQ(bad.accepted(), 0u);
  ASSERT_EQ(bad.items_size(), 1);
  EXPECT_NE(bad.items(0).message().find("batch_id"), std::string::npos) << bad.items(0).message();
  const std::string prefix = std::string(E2eStack::kRedisPrefix) + ":{q}:";
  EXPECT_EQ(stack.redis().Run({"EXISTS", prefix + "batch:" + bad_id}).integer, 0);
  EXPECT_EQ(stack.redis().Run({"EXISTS", prefix + "auth:batch:" + bad_id}).integer, 0);
}

// The README's commands: `reelq submit --webhook`, `reelq batch --webhook`, `reelq admin
// webhook-secret`, `reelq get` showing the delivery, and a refused scheme.
TEST(WebhookCli, SubmitAndBatchWithWebhookThroughTheCli) {
  if (auto missing = E2eStack::MissingBinaries(); !missing.empty()) GTEST_SKIP() << missing;
  const auto cli = BuildPath("cli/reelq");
  if (!std::filesystem::exists(cli)) GTEST_SKIP() << cli << " not built";
  WebhookReceiver receiver([](int) { return 200; });
  E2eStack stack(WebhookStack());
  auto reelq = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {cli.string(), "--server", stack.scheduler_address()});
    return RunCommand(args, 60s);
  };
  auto secret = reelq({"admin", "webhook-secret", "default"});
  ASSERT_EQ(secret.exit_code, 0) << secret.output;
  EXPECT_EQ(secret.output, std::string(kSecret) + "\n");

  auto submitted = reelq({"submit", "--prompt", "cli webhook", "--model", "kling-3.0", "--duration",
                          "5", "--webhook", receiver.Url("/job")});
  ASSERT_EQ(submitted.exit_code, 0) << submitted.output;
  const std::string job_id = submitted.output.substr(0, submitted.output.find('\n'));

  const auto batch_file = stack.dir() / "hooked.jsonl";
  std::ofstream(batch_file) << R"({"prompt": "one", "models": ["sora-2"], "durationSeconds": 4})"
                            << "\n"
                            << R"({"prompt": "two", "models": ["sora-2"], "durationSeconds": 4})"
                            << "\n";
  auto batch = reelq(
      {"batch", batch_file.string(), "--max-wait", "50s", "--webhook", receiver.Url("/batch")});
  ASSERT_EQ(batch.exit_code, 0) << batch.output;

  auto got = receiver.WaitFor(2, 30s);
  ASSERT_EQ(got.size(), 2u) << stack.Logs();
  std::set<std::string> types;
  for (const auto& r : got) {
    ExpectSigned(r);
    types.insert(r.target + " " + nlohmann::json::parse(r.body)["type"].get<std::string>());
  }
  EXPECT_EQ(types, (std::set<std::string>{"/job job.succeeded", "/batch batch.completed"}));

  std::string shown;
  for (int i = 0; i < 50 && shown.find("delivered") == std::string::npos; ++i) {
    shown = reelq({"get", job_id}).output;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_NE(shown.find("delivery   job.succeeded delivered, 1 attempt(s), last HTTP 200"),
            std::string::npos)
      << shown;

  auto refused = reelq({"submit", "--prompt", "x", "--model", "kling-3.0", "--duration", "5",
                        "--webhook", "ftp://example.com/"});
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.output.find("webhook_url"), std::string::npos) << refused.output;
}

}  // namespace
}  // namespace reelq::testing
