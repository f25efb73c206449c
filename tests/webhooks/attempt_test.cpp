// One delivery attempt against a server on loopback, through the deliverer's own HTTP client (its
// 64 KiB answer cap): the status line decides, whatever follows it.
#include <gtest/gtest.h>

#include <chrono>
#include <optional>

#include "reelq/scheduler/webhooks.h"
#include "test_server.h"

namespace reelq::scheduler {
namespace {

using reelq::testing::Reply;
using reelq::testing::TestServer;
using namespace std::chrono_literals;

constexpr const char* kSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

struct Attempted {
  WebhookAttempt attempt;
  std::chrono::steady_clock::duration took;
};

Attempted Attempt(const TestServer& server, const std::string& path,
                  std::chrono::milliseconds timeout = 2s) {
  WebhookSettings settings;
  settings.allow_ranges.push_back(*ParseAddressRange("127.0.0.0/8"));
  WebhookGuard guard(settings);
  asio::io_context io;
  auto client = MakeWebhookHttpClient(io.get_executor(), guard);
  queue::ClaimedDelivery delivery;
  delivery.id = "msg_attempt";
  delivery.url = server.Url(path);
  delivery.body = R"({"type":"job.succeeded"})";
  delivery.attempts = 1;
  std::optional<WebhookAttempt> out;
  const auto start = std::chrono::steady_clock::now();
  asio::co_spawn(io, AttemptWebhook(client, delivery, {kSecret}, 1'700'000'000, timeout),
                 [&](std::exception_ptr e, WebhookAttempt a) {
                   if (e) std::rethrow_exception(e);
                   out = std::move(a);
                 });
  io.run();
  return {std::move(*out), std::chrono::steady_clock::now() - start};
}

// A receiver that got the event but answers with a body over the cap, or one still arriving at
// the deadline, has it delivered: retrying would repeat the event for a day.
TEST(WebhookAttempt, A2xxIsDeliveredWhateverItsBodyDoes) {
  TestServer server([](const reelq::testing::ReceivedRequest& r) {
    if (r.target == "/big") return Reply{.status = 200, .body = std::string(200 * 1024, 'x')};
    if (r.target == "/chunked") {
      return Reply{.status = 202, .body = std::string(200 * 1024, 'x'), .chunked = true};
    }
    return Reply{.status = 200,
                 .body = std::string(1000, 'x'),
                 .mode = Reply::Mode::kStall,
                 .truncate_at = 10};
  });
  for (const auto& [path, status] :
       std::vector<std::pair<std::string, int>>{{"/big", 200}, {"/chunked", 202}, {"/slow", 200}}) {
    SCOPED_TRACE(path);
    auto [attempt, took] = Attempt(server, path, 500ms);
    EXPECT_EQ(attempt.outcome, queue::DeliveryOutcome::kDelivered) << attempt.error;
    EXPECT_EQ(attempt.status, status);
    EXPECT_EQ(attempt.error, "");
    EXPECT_LT(took, 5s);
  }
  auto seen = server.requests();
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0].Header("webhook-id"), "msg_attempt");
  EXPECT_TRUE(seen[0].Header("webhook-signature").starts_with("v1,"));
}

// 410 Gone ends the delivery at once, saying why; any other error status, or no answer, is
// retried.
TEST(WebhookAttempt, GoneStopsOtherFailuresRetry) {
  TestServer server([](const reelq::testing::ReceivedRequest& r) {
    if (r.target == "/gone") return Reply{.status = 410, .body = std::string(100 * 1024, 'x')};
    if (r.target == "/busy") return Reply{.status = 503};
    if (r.target == "/missing") return Reply{.status = 404};
    return Reply{.mode = Reply::Mode::kNeverAnswer};
  });
  auto gone = Attempt(server, "/gone").attempt;
  EXPECT_EQ(gone.outcome, queue::DeliveryOutcome::kFailed);
  EXPECT_EQ(gone.status, 410);
  EXPECT_NE(gone.error.find("410 Gone"), std::string::npos) << gone.error;
  EXPECT_NE(gone.error.find("stopped"), std::string::npos) << gone.error;

  for (const auto& [path, status] :
       std::vector<std::pair<std::string, int>>{{"/busy", 503}, {"/missing", 404}}) {
    auto retried = Attempt(server, path).attempt;
    EXPECT_EQ(retried.outcome, queue::DeliveryOutcome::kRetry) << path;
    EXPECT_EQ(retried.status, status) << path;
    EXPECT_EQ(retried.error, "HTTP " + std::to_string(status)) << path;
  }

  auto silent = Attempt(server, "/hang", 300ms).attempt;
  EXPECT_EQ(silent.outcome, queue::DeliveryOutcome::kRetry);
  EXPECT_EQ(silent.status, 0);
  EXPECT_NE(silent.error.find("timed out after 300ms"), std::string::npos) << silent.error;
}

}  // namespace
}  // namespace reelq::scheduler
