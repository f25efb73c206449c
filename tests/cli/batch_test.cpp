// `reelq batch` (and a few other commands) end to end against an in-process fake JobService.

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "context.h"
#include "fake_job_service.h"
#include "process.h"
#include "reelq/v1/admin.grpc.pb.h"

namespace reelq::cli {
namespace {

using testing::FakeJobService;
using testing::FakeServer;

struct Run {
  int code = -1;
  std::string out;
  std::string err;
};

Run RunReelq(std::vector<std::string> args) {
  std::ostringstream out;
  std::ostringstream err;
  args.insert(args.begin(), "reelq");
  Run run;
  run.code = RunCli(args, Io{out, err, false});
  run.out = out.str();
  run.err = err.str();
  return run;
}

std::string WriteFile(const ::reelq::testing::TempDir& dir, const std::string& name,
                      const std::string& text) {
  const auto path = dir.path() / name;
  std::ofstream(path) << text;
  return path.string();
}

// A job file of one line: a 5 s job prompted "a".
std::string OneJobFile(const ::reelq::testing::TempDir& dir) {
  return WriteFile(dir, "one.jsonl",
                   R"({"prompt":"a","durationSeconds":5})"
                   "\n");
}

TEST(BatchCommand, AllJobsSucceedExitsZeroWithAPerModelSummary) {
  FakeJobService service;
  FakeServer server(&service);
  ::reelq::testing::TempDir dir;
  const auto file =
      WriteFile(dir, "ok.jsonl",
                R"({"prompt":"a","models":["kling-3.0"],"durationSeconds":10})"
                "\n"
                R"({"prompt":"b","models":["kling-3.0"],"duration_seconds":20,"tenant":"other"})"
                "\n\n"
                R"({"prompt":"c","models":["veo-3.1"],"durationSeconds":4})"
                "\n"
                R"({"prompt":"d","models":["veo-3.1"],"durationSeconds":8})"
                "\n"
                R"({"prompt":"e","durationSeconds":5})"
                "\n");
  const auto output = (dir.path() / "final.json").string();
  auto run = RunReelq({"--server", server.address(), "batch", file, "--tenant", "demo-studio",
                       "--batch-id", "b-42", "--output-json", output});
  EXPECT_EQ(run.code, 0) << run.err;

  const auto received = service.received();
  ASSERT_EQ(received.size(), 5u);
  EXPECT_EQ(received[0].tenant(), "demo-studio");  // default applied
  EXPECT_EQ(received[1].tenant(), "other");        // explicit kept
  EXPECT_EQ(received[0].batch_id(), "b-42");
  EXPECT_EQ(received[1].duration_seconds(), 20u);  // snake_case line

  // Five jobs over three models, read back through two-job pages.
  EXPECT_NE(run.out.find("batch b-42"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("kling-3.0     2     2          0       0          18s        15s"),
            std::string::npos)
      << run.out;
  EXPECT_NE(run.out.find("veo-3.1       2     2"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("seedance-2.0  1     1"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("total         5     5"), std::string::npos) << run.out;
  EXPECT_NE(run.err.find("5/5 done"), std::string::npos) << run.err;  // the non-TTY line

  std::ifstream in(output);
  const auto dump = nlohmann::json::parse(in);
  EXPECT_EQ(dump["batchId"], "b-42");
  ASSERT_EQ(dump["jobs"].size(), 5u);
  EXPECT_EQ(dump["jobs"][0]["state"], "JOB_STATE_SUCCEEDED");
}

// Every line goes with an idempotency key made from its batch id and content: the same file sent
// again with the same --batch-id (after an upload that broke off) sends the same keys, so the
// scheduler makes no line twice, even with a line deleted or a blank line added since (the line
// number is no part of the key); a line edited since gets a new key, two identical lines get two
// keys (two jobs), and a line's own key is kept. Without --batch-id the CLI names a new batch.
TEST(BatchCommand, ASecondSendOfTheSameFileCarriesTheSameKeys) {
  ::reelq::testing::TempDir dir;
  const std::string a = R"({"prompt":"a","durationSeconds":5})";
  const std::string b = R"({"prompt":"b","durationSeconds":5})";
  const std::string own = R"({"prompt":"c","durationSeconds":5,"idempotencyKey":"mine-1"})";
  const auto first_file = WriteFile(dir, "one.jsonl", a + "\n" + b + "\n" + own + "\n");
  const auto edited_file =
      WriteFile(dir, "two.jsonl",
                a + "\n" + R"({"prompt":"b, edited","durationSeconds":5})" + "\n" + own + "\n");
  auto send = [&](const std::string& file, std::vector<std::string> extra) {
    FakeJobService service;
    FakeServer server(&service);
    std::vector<std::string> args{"--server", server.address(), "batch", file, "--no-wait"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto run = RunReelq(args);
    EXPECT_EQ(run.code, 0) << run.err;
    return std::make_pair(service.received(), run);
  };
  const auto [first, first_run] = send(first_file, {"--batch-id", "night-7"});
  const auto [again, again_run] = send(first_file, {"--batch-id", "night-7"});
  const auto [edited, edited_run] = send(edited_file, {"--batch-id", "night-7"});
  const auto [other, other_run] = send(first_file, {"--batch-id", "night-8"});
  ASSERT_EQ(first.size(), 3u);
  ASSERT_EQ(again.size(), 3u);
  ASSERT_EQ(edited.size(), 3u);
  ASSERT_EQ(other.size(), 3u);
  EXPECT_EQ(first[0].idempotency_key().rfind("cli-", 0), 0u) << first[0].idempotency_key();
  EXPECT_NE(first[0].idempotency_key(), first[1].idempotency_key());
  for (int i = 0; i < 3; ++i) EXPECT_EQ(first[i].idempotency_key(), again[i].idempotency_key());
  EXPECT_EQ(first[0].idempotency_key(), edited[0].idempotency_key());
  EXPECT_NE(first[1].idempotency_key(), edited[1].idempotency_key());
  EXPECT_EQ(first[2].idempotency_key(), "mine-1");
  EXPECT_NE(first[0].idempotency_key(), other[0].idempotency_key());

  const auto [named, named_run] = send(first_file, {});
  ASSERT_EQ(named.size(), 3u);
  EXPECT_EQ(named[0].batch_id().rfind("cli-", 0), 0u) << named[0].batch_id();
  EXPECT_EQ(named[0].batch_id(), named[2].batch_id());

  // Line a deleted: b and c keep their keys. A blank line added first: every key kept.
  const auto shorter_file = WriteFile(dir, "three.jsonl", b + "\n" + own + "\n");
  const auto [shorter, shorter_run] = send(shorter_file, {"--batch-id", "night-7"});
  ASSERT_EQ(shorter.size(), 2u);
  EXPECT_EQ(shorter[0].idempotency_key(), first[1].idempotency_key());
  EXPECT_EQ(shorter[1].idempotency_key(), "mine-1");
  const auto blank_file = WriteFile(dir, "four.jsonl", "\n" + a + "\n" + b + "\n" + own + "\n");
  const auto [blank, blank_run] = send(blank_file, {"--batch-id", "night-7"});
  ASSERT_EQ(blank.size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(first[i].idempotency_key(), blank[i].idempotency_key());

  // Two identical lines are two jobs: two keys; the first keeps the key the line had alone.
  const auto twice_file = WriteFile(dir, "five.jsonl", a + "\n" + b + "\n" + a + "\n");
  const auto [twice, twice_run] = send(twice_file, {"--batch-id", "night-7"});
  ASSERT_EQ(twice.size(), 3u);
  EXPECT_EQ(twice[0].idempotency_key(), first[0].idempotency_key());
  EXPECT_EQ(twice[1].idempotency_key(), first[1].idempotency_key());
  EXPECT_NE(twice[2].idempotency_key(), twice[0].idempotency_key());
}

// An item answered UNAVAILABLE may be stored all the same (the scheduler's wait for a replica
// fell short): it is sent again in a new stream with the same spec and idempotency key, so the
// scheduler answers for the job it holds, and the batch is one job a line, exit 0.
TEST(BatchCommand, AnItemAnsweredUnavailableIsSentAgainWithTheSameKey) {
  FakeJobService service;
  FakeServer server(&service);
  ::reelq::testing::TempDir dir;
  const auto file = WriteFile(dir, "flaky.jsonl",
                              R"({"prompt":"steady","durationSeconds":5})"
                              "\n"
                              R"({"prompt":"FLAKY once","durationSeconds":5})"
                              "\n");
  auto run = RunReelq({"--server", server.address(), "batch", file, "--batch-id", "night-9"});
  EXPECT_EQ(run.code, 0) << run.err;
  EXPECT_EQ(service.streams(), 2);
  const auto received = service.received();
  ASSERT_EQ(received.size(), 3u);  // both lines, then the flaky one again
  EXPECT_EQ(received[2].prompt(), "FLAKY once");
  EXPECT_EQ(received[2].idempotency_key(), received[1].idempotency_key());
  EXPECT_EQ(service.jobs().size(), 2u);  // one job a line: none made twice
  EXPECT_NE(run.err.find("2 accepted, 0 rejected"), std::string::npos) << run.err;
}

// An item still answered UNAVAILABLE after every send may be stored: the CLI names it and says
// how to send the file again without paying twice (--batch-id), even when nothing was accepted.
TEST(BatchCommand, AnItemAlwaysUnavailableGetsTheBatchIdToSendAgain) {
  FakeJobService service;
  FakeServer server(&service);
  ::reelq::testing::TempDir dir;
  const auto file = WriteFile(dir, "down.jsonl",
                              R"({"prompt":"FLAKY-ALWAYS","durationSeconds":5})"
                              "\n");
  auto run = RunReelq({"--server", server.address(), "batch", file, "--batch-id", "night-10"});
  EXPECT_EQ(run.code, kExitNotSucceeded) << run.err;
  EXPECT_EQ(service.streams(), 4);
  EXPECT_EQ(service.jobs().size(), 1u);
  EXPECT_NE(run.err.find("down.jsonl:1: rejected: UNAVAILABLE"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("send the same file again with --batch-id night-10"), std::string::npos)
      << run.err;
}

// A line whose first frame is inline: `bytes` of image, in base64 as protobuf's JSON has it.
std::string InlineImageLine(const std::string& prompt, size_t bytes) {
  return R"({"prompt":")" + prompt + R"(","durationSeconds":5,"firstFrame":{"data":")" +
         std::string(bytes / 3 * 4, 'A') + "\"}}\n";
}

// Messages are filled by size (up to 4 MiB of specs, at least one item), not by count alone:
// fifty lines with a 700 KiB image each (35 MiB) go in messages under the scheduler's 32 MiB
// limit; and a line with an image at the scheduler's 10 MiB default limit is read (the line cap
// covers it in base64) and goes alone.
TEST(BatchCommand, InlineImagesGoInMessagesThatFitTheSchedulersLimit) {
  FakeJobService service;
  FakeServer server(&service);
  ::reelq::testing::TempDir dir;
  std::string many;
  for (int i = 0; i < 50; ++i) many += InlineImageLine("frame " + std::to_string(i), 700 << 10);
  const auto many_file = WriteFile(dir, "many.jsonl", many);
  auto run = RunReelq({"--server", server.address(), "batch", many_file, "--no-wait"});
  EXPECT_EQ(run.code, 0) << run.err.substr(0, 2000);
  EXPECT_EQ(service.received().size(), 50u);
  EXPECT_GE(service.messages(), 9);  // 35 MiB in messages of at most 4 MiB

  FakeJobService big_service;
  FakeServer big_server(&big_service);
  const auto big_file =
      WriteFile(dir, "big.jsonl",
                InlineImageLine("big one", 10 << 20) + InlineImageLine("big two", 10 << 20) +
                    R"({"prompt":"small","durationSeconds":5})"
                    "\n");
  auto big = RunReelq({"--server", big_server.address(), "batch", big_file, "--no-wait"});
  EXPECT_EQ(big.code, 0) << big.err.substr(0, 2000);
  EXPECT_EQ(big_service.received().size(), 3u);
  EXPECT_EQ(big_service.messages(), 3);
}

// A message over the scheduler's limit ends the stream before it is read: when it was the
// stream's only one, nothing was stored and the command says so (no resend advice); when items
// went before it, they may be stored, and the command gives the --batch-id to send again with.
// Either way the biggest line is named with the setting that bounds it.
TEST(BatchCommand, AMessageOverTheLimitIsNamedAndResendAdviceOnlyWhenSomethingMayBeStored) {
  ::reelq::testing::TempDir dir;
  {
    FakeJobService service;
    FakeServer server(&service, 3 << 20);
    const auto file = WriteFile(dir, "alone.jsonl", InlineImageLine("huge", 9 << 19));
    auto run =
        RunReelq({"--server", server.address(), "batch", file, "--batch-id", "b-1", "--no-wait"});
    EXPECT_EQ(run.code, kExitRpcBase + 8) << run.err;
    EXPECT_NE(run.err.find("alone.jsonl:1: its job is"), std::string::npos) << run.err;
    EXPECT_NE(run.err.find("scheduler.max_message_bytes"), std::string::npos) << run.err;
    EXPECT_NE(run.err.find("no job was stored"), std::string::npos) << run.err;
    EXPECT_EQ(run.err.find("Send the same file again"), std::string::npos) << run.err;
    EXPECT_TRUE(service.received().empty());
  }
  {
    FakeJobService service;
    FakeServer server(&service, 3 << 20);
    const auto file = WriteFile(dir, "after.jsonl",
                                R"({"prompt":"small","durationSeconds":5})"
                                "\n" +
                                    InlineImageLine("huge", 9 << 19));
    auto run =
        RunReelq({"--server", server.address(), "batch", file, "--batch-id", "b-2", "--no-wait"});
    EXPECT_EQ(run.code, kExitRpcBase + 8) << run.err;
    EXPECT_NE(run.err.find("after.jsonl:2: its job is"), std::string::npos) << run.err;
    EXPECT_NE(run.err.find("Send the same file again with --batch-id b-2"), std::string::npos)
        << run.err;
  }
}

// A job retried after it failed: the watch replays the first FAILED, then follows the retry to
// its end; the command's outcome is the job's last state, and no event is printed twice.
TEST(WatchCommand, ARetriedJobIsFollowedPastItsFirstEnd) {
  FakeJobService service;
  FakeServer server(&service);
  ::reelq::testing::TempDir dir;
  const auto file = WriteFile(dir, "retried.jsonl",
                              R"({"prompt":"RETRIED once","durationSeconds":5})"
                              "\n");
  ASSERT_EQ(RunReelq({"--server", server.address(), "batch", file, "--no-wait"}).code, 0);
  auto run = RunReelq({"--server", server.address(), "watch", "job-1"});
  EXPECT_EQ(run.code, 0) << run.out << run.err;
  const auto failed_at = run.out.find("job-1  failed");
  const auto succeeded_at = run.out.find("job-1  succeeded");
  ASSERT_NE(failed_at, std::string::npos) << run.out;
  ASSERT_NE(succeeded_at, std::string::npos) << run.out;
  EXPECT_LT(failed_at, succeeded_at);
}

// The scheduler ends the watch of a client that reads too slowly (RESOURCE_EXHAUSTED) rather than
// queue without limit: the CLI opens it again and follows the job to its end.
TEST(WatchCommand, AStreamEndedForReadingTooSlowlyIsReopened) {
  FakeJobService service;
  FakeServer server(&service);
  ::reelq::testing::TempDir dir;
  const auto file = OneJobFile(dir);
  ASSERT_EQ(RunReelq({"--server", server.address(), "batch", file, "--no-wait"}).code, 0);
  service.watch_too_slow = 1;
  auto run = RunReelq({"--server", server.address(), "watch", "job-1"});
  EXPECT_EQ(run.code, 0) << run.out << run.err;
  EXPECT_NE(run.err.find("reconnecting"), std::string::npos) << run.err;
  EXPECT_NE(run.out.find("job-1  succeeded"), std::string::npos) << run.out;
  EXPECT_EQ(service.watch_too_slow, 0);
}

// Tenants and their limits, as the AdminService keeps them; records each SetLimits. Top-ups
// credit once per request id, as the scheduler does; the first `unavailable_top_ups` are
// credited and then answered UNAVAILABLE (a replica wait that fell short).
class FakeAdmin final : public v1::AdminService::Service {
 public:
  std::map<std::string, v1::Tenant> tenants;
  std::vector<v1::SetLimitsRequest> set;
  std::vector<v1::TopUpRequest> top_ups;  // every TopUp received, in order
  int unavailable_top_ups = 0;
  int64_t credited = 0;

  grpc::Status TopUp(grpc::ServerContext*, const v1::TopUpRequest* request,
                     v1::Wallet* response) override {
    top_ups.push_back(*request);
    if (request->request_id().empty() || seen_.insert(request->request_id()).second) {
      credited += request->amount_micros();
    }
    if (unavailable_top_ups > 0) {
      --unavailable_top_ups;
      return {grpc::StatusCode::UNAVAILABLE,
              "the write reached the redis master but only 0 of 1 replicas acknowledged it"};
    }
    response->set_tenant(request->tenant());
    response->set_enforced(true);
    response->set_available_micros(credited);
    response->set_topped_up_micros(credited);
    return grpc::Status::OK;
  }

  grpc::Status ListTenants(grpc::ServerContext*, const v1::ListTenantsRequest*,
                           v1::ListTenantsResponse* response) override {
    for (const auto& [name, t] : tenants) *response->add_tenants() = t;
    return grpc::Status::OK;
  }
  grpc::Status SetLimits(grpc::ServerContext*, const v1::SetLimitsRequest* request,
                         v1::Tenant* response) override {
    set.push_back(*request);
    auto& t = tenants[request->tenant()];
    t.set_max_queued(request->max_queued());
    t.set_max_in_flight(request->max_in_flight());
    *response = t;
    return grpc::Status::OK;
  }

 private:
  std::set<std::string> seen_;
};

// `admin top-up` without --request-id makes one, and a top-up answered UNAVAILABLE (the credit
// may be made) is sent again with that same id, so the wallet is credited once; when every
// send fails, the id is printed to run the command again with.
TEST(TopUpCommand, AnUnavailableTopUpIsSentAgainWithTheSameRequestId) {
  FakeAdmin admin;
  admin.unavailable_top_ups = 1;
  FakeServer server(&admin);
  auto run = RunReelq({"--server", server.address(), "admin", "top-up", "studio", "12.50"});
  EXPECT_EQ(run.code, 0) << run.err;
  ASSERT_EQ(admin.top_ups.size(), 2u);
  EXPECT_FALSE(admin.top_ups[0].request_id().empty());
  EXPECT_EQ(admin.top_ups[1].request_id(), admin.top_ups[0].request_id());
  EXPECT_EQ(admin.top_ups[1].amount_micros(), 12'500'000);
  EXPECT_EQ(admin.credited, 12'500'000);  // once
  EXPECT_NE(run.err.find("sending it again with request id " + admin.top_ups[0].request_id()),
            std::string::npos)
      << run.err;
  EXPECT_NE(run.out.find("$12.50"), std::string::npos) << run.out;

  // Given, the id is the one sent; failing every time, it is printed to resend with.
  admin.top_ups.clear();
  admin.unavailable_top_ups = 100;
  auto failed = RunReelq(
      {"--server", server.address(), "admin", "top-up", "studio", "1", "--request-id", "po-4711"});
  EXPECT_NE(failed.code, 0);
  ASSERT_EQ(admin.top_ups.size(), 4u);  // kSendAttempts
  for (const auto& sent : admin.top_ups) EXPECT_EQ(sent.request_id(), "po-4711");
  EXPECT_EQ(admin.credited, 13'500'000);
  EXPECT_NE(failed.err.find("may have been applied all the same: rerun with --request-id po-4711"),
            std::string::npos)
      << failed.err;
}

// `admin set-limits` changes the limits it is given and keeps the other (SetLimits sets both,
// and 0 means none); with neither flag it changes nothing and says what to give.
TEST(SetLimitsCommand, ALimitNotGivenKeepsItsValue) {
  FakeAdmin admin;
  v1::Tenant studio;
  studio.set_name("studio");
  studio.set_max_queued(500);
  studio.set_max_in_flight(40);
  admin.tenants["studio"] = studio;
  FakeServer server(&admin);
  auto queued = RunReelq(
      {"--server", server.address(), "admin", "set-limits", "studio", "--max-queued", "1000"});
  EXPECT_EQ(queued.code, 0) << queued.err;
  ASSERT_EQ(admin.set.size(), 1u);
  EXPECT_EQ(admin.set[0].max_queued(), 1000);
  EXPECT_EQ(admin.set[0].max_in_flight(), 40);
  auto cleared = RunReelq(
      {"--server", server.address(), "admin", "set-limits", "studio", "--max-in-flight", "0"});
  EXPECT_EQ(cleared.code, 0) << cleared.err;
  ASSERT_EQ(admin.set.size(), 2u);
  EXPECT_EQ(admin.set[1].max_queued(), 1000);
  EXPECT_EQ(admin.set[1].max_in_flight(), 0);
  auto neither = RunReelq({"--server", server.address(), "admin", "set-limits", "studio"});
  EXPECT_EQ(neither.code, kExitUsage) << neither.err;
  EXPECT_NE(neither.err.find("--max-queued and/or --max-in-flight"), std::string::npos)
      << neither.err;
  EXPECT_EQ(admin.set.size(), 2u);
}

// `reelq batch` sends its items many to a message, all in SubmitBatchRequest.specs: a scheduler
// older than that field answers for one (empty) item a message, and the CLI says so instead of
// mapping the answers to the wrong lines.
TEST(BatchCommand, ASchedulerWithoutManyItemsAMessageIsNamed) {
  FakeJobService service;
  service.ignores_specs = true;
  FakeServer server(&service);
  ::reelq::testing::TempDir dir;
  const auto file = WriteFile(dir, "three.jsonl",
                              R"({"prompt":"a","durationSeconds":5})"
                              "\n"
                              R"({"prompt":"b","durationSeconds":5})"
                              "\n"
                              R"({"prompt":"c","durationSeconds":5})"
                              "\n");
  auto run = RunReelq({"--server", server.address(), "batch", file});
  EXPECT_EQ(run.code, kExitInternal) << run.err;
  EXPECT_NE(run.err.find("answered for 1 of 3 items"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("SubmitBatchRequest.specs"), std::string::npos) << run.err;
  ASSERT_EQ(service.received().size(), 1u);
  EXPECT_TRUE(service.received()[0].prompt().empty());  // an old scheduler refuses it
}

TEST(BatchCommand, BadLinesAreNotSentAndRejectionsMapToLineNumbers) {
  FakeJobService service;
  FakeServer server(&service);
  ::reelq::testing::TempDir dir;
  const auto file = WriteFile(dir, "mixed.jsonl",
                              R"({"prompt":"good","durationSeconds":5})"
                              "\n"
                              R"({"prompt":"typo","durationSecs":5})"
                              "\n"
                              "\n"
                              R"({"prompt":"REJECT me","durationSeconds":99})"
                              "\n"
                              R"({"prompt":"FAIL please","durationSeconds":5})"
                              "\n"
                              "{\"prompt\":\"bad \xff byte\"}\n");
  auto run = RunReelq({"--server", server.address(), "batch", file});
  EXPECT_EQ(run.code, kExitNotSucceeded) << run.err;
  // Lines 2 and 6 never left the machine; line 4 was rejected by the server (stream index 1).
  ASSERT_EQ(service.received().size(), 3u);
  EXPECT_NE(run.err.find("mixed.jsonl:2: unknown field \"durationSecs\""), std::string::npos)
      << run.err;
  EXPECT_NE(run.err.find("mixed.jsonl:6: invalid UTF-8 at byte 16"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("mixed.jsonl:4: rejected: INVALID_ARGUMENT: duration_seconds"),
            std::string::npos)
      << run.err;
  EXPECT_NE(run.err.find("2 accepted, 1 rejected, 2 bad line(s) not sent"), std::string::npos)
      << run.err;
  EXPECT_NE(run.out.find("failed job-2: policy_rejected: the provider refused the prompt"),
            std::string::npos)
      << run.out;
}

TEST(BatchCommand, FallsBackToPollingWhenWatchIsUnimplemented) {
  FakeJobService service;
  service.watch_unimplemented = true;
  FakeServer server(&service);
  ::reelq::testing::TempDir dir;
  const auto file = WriteFile(dir, "one.jsonl",
                              R"({"prompt":"a","durationSeconds":4})"
                              "\n");
  auto run = RunReelq({"--server", server.address(), "--json", "batch", file});
  ASSERT_EQ(run.code, 0) << run.err;
  const auto summary = nlohmann::json::parse(run.out);
  EXPECT_EQ(summary["exitCode"], 0);
  EXPECT_EQ(summary["progress"]["succeeded"], 1);
  EXPECT_EQ(summary["models"][0]["model"], "seedance-2.0");
  EXPECT_DOUBLE_EQ(summary["models"][0]["meanGenerationSeconds"].get<double>(), 4.0);
}

TEST(BatchCommand, DryRunSendsNothing) {
  FakeJobService service;
  FakeServer server(&service);
  ::reelq::testing::TempDir dir;
  const auto file = WriteFile(dir, "dry.jsonl",
                              R"({"prompt":"a"})"
                              "\n"
                              R"({"prompt":1})"
                              "\n");
  auto run = RunReelq({"--server", server.address(), "batch", "--dry-run", file});
  EXPECT_EQ(run.code, kExitNotSucceeded);
  EXPECT_TRUE(service.received().empty());
  EXPECT_NE(run.out.find("1 good line(s), 1 bad"), std::string::npos) << run.out;
}

TEST(BatchCommand, WebhookEventsWithoutAWebhookIsAUsageError) {
  FakeJobService service;
  FakeServer server(&service);
  ::reelq::testing::TempDir dir;
  const auto file = OneJobFile(dir);
  auto run = RunReelq({"--server", server.address(), "batch", file, "--webhook-events", "all"});
  EXPECT_EQ(run.code, kExitUsage) << run.err;
  EXPECT_NE(run.err.find("--webhook-events: needs --webhook"), std::string::npos) << run.err;
  EXPECT_TRUE(service.received().empty());
}

// A budget of 0 means none on the wire: --budget 0 or "" is refused rather than sent as that.
TEST(BatchCommand, AZeroOrEmptyBudgetIsAUsageError) {
  FakeJobService service;
  FakeServer server(&service);
  ::reelq::testing::TempDir dir;
  const auto file = OneJobFile(dir);
  for (const std::string budget : {"0", "", "$0.00", "-5"}) {
    auto run = RunReelq({"--server", server.address(), "batch", file, "--budget", budget});
    EXPECT_EQ(run.code, kExitUsage) << budget << ": " << run.err;
    EXPECT_NE(run.err.find("--budget: "), std::string::npos) << budget << ": " << run.err;
    EXPECT_EQ(service.streams(), 0) << budget;
  }
  auto zero = RunReelq({"--server", server.address(), "batch", file, "--budget", "0"});
  EXPECT_NE(zero.err.find("--budget: must be more than $0; leave --budget out for no budget"),
            std::string::npos)
      << zero.err;
}

TEST(BatchCommand, MissingFileAndNoUsableLines) {
  ::reelq::testing::TempDir dir;
  auto missing = RunReelq({"--server", "127.0.0.1:1", "batch", (dir.path() / "nope").string()});
  EXPECT_EQ(missing.code, kExitInput);
  const auto file = WriteFile(dir, "bad.jsonl", "not json\n");
  auto bad = RunReelq({"--server", "127.0.0.1:1", "batch", file});
  EXPECT_EQ(bad.code, kExitInput);
  EXPECT_NE(bad.err.find("bad.jsonl:1: invalid JSON"), std::string::npos) << bad.err;
}

TEST(Commands, RpcErrorsGiveTheCodeNameAndADistinctExitCode) {
  FakeJobService service;
  FakeServer server(&service);
  auto run = RunReelq({"--server", server.address(), "get", "job-404"});
  EXPECT_EQ(run.code, kExitRpcBase + 5);
  EXPECT_NE(run.err.find("NOT_FOUND: job job-404 not found"), std::string::npos) << run.err;

  const int port = ::reelq::testing::FreePort();
  auto down =
      RunReelq({"--server", "127.0.0.1:" + std::to_string(port), "--timeout", "5s", "list"});
  EXPECT_EQ(down.code, kExitRpcBase + 14);
  EXPECT_NE(down.err.find("UNAVAILABLE"), std::string::npos) << down.err;
  EXPECT_NE(down.err.find("is a reelq scheduler listening"), std::string::npos) << down.err;

  auto unimplemented = RunReelq({"--server", server.address(), "cancel", "job-1"});
  EXPECT_EQ(unimplemented.code, kExitRpcBase + 12);
  EXPECT_NE(unimplemented.err.find("UNIMPLEMENTED"), std::string::npos) << unimplemented.err;
}

// `reelq retry --batch` / `cancel --batch`: one call for the whole batch, its outcome and the
// batch's counts printed; a batch that does not exist is the RPC's NOT_FOUND exit code.
TEST(Commands, RetryAndCancelABatchInOneCall) {
  FakeJobService service;
  FakeServer server(&service);
  ::reelq::testing::TempDir dir;
  const auto file = WriteFile(dir, "mixed.jsonl",
                              R"({"prompt":"fine","durationSeconds":5})"
                              "\n"
                              R"({"prompt":"FAIL this one","durationSeconds":5})"
                              "\n");
  auto batch = RunReelq({"--server", server.address(), "batch", file, "--batch-id", "b-7"});
  ASSERT_NE(batch.code, 0) << "a failed job makes the batch exit non-zero";

  auto retried = RunReelq({"--server", server.address(), "retry", "--batch", "b-7"});
  EXPECT_EQ(retried.code, 0) << retried.err;
  EXPECT_NE(retried.out.find("batch b-7: 1 jobs run again; now 0 pending, 0 running, 2 succeeded, "
                             "0 failed, 0 cancelled of 2"),
            std::string::npos)
      << retried.out;

  auto cancelled = RunReelq({"--server", server.address(), "--json", "cancel", "--batch", "b-7"});
  EXPECT_EQ(cancelled.code, 0) << cancelled.err;
  const auto json = nlohmann::json::parse(cancelled.out);
  EXPECT_EQ(json["progress"]["succeeded"], 2) << cancelled.out;
  EXPECT_EQ(json.value("jobsChanged", 0), 0) << cancelled.out;

  auto missing = RunReelq({"--server", server.address(), "cancel", "--batch", "no-such"});
  EXPECT_EQ(missing.code, kExitRpcBase + 5);
  EXPECT_NE(missing.err.find("NOT_FOUND"), std::string::npos) << missing.err;
}

// `reelq submit` (and storyboard, compare) send a key of their own when given none, and send the
// job again with it when the answer was UNAVAILABLE (the scheduler may have stored it): one job.
// A scheduler that answered is not asked whether it is listening.
TEST(Commands, SubmitAnsweredUnavailableIsSentAgainWithTheSameKey) {
  FakeJobService service;
  FakeServer server(&service);
  auto run = RunReelq(
      {"--server", server.address(), "submit", "--prompt", "FLAKY once", "--duration", "5"});
  EXPECT_EQ(run.code, 0) << run.err;
  EXPECT_EQ(run.out, "job-1\n");
  auto submitted = service.submitted();
  ASSERT_EQ(submitted.size(), 2u);
  EXPECT_EQ(submitted[0].idempotency_key().rfind("cli-", 0), 0u) << submitted[0].idempotency_key();
  EXPECT_EQ(submitted[1].idempotency_key(), submitted[0].idempotency_key());
  EXPECT_EQ(service.jobs().size(), 1u);

  auto compare = RunReelq({"--server", server.address(), "compare", "--prompt", "FLAKY take",
                           "--model", "kling-3.0", "--model", "veo-3.1", "--no-follow"});
  EXPECT_EQ(compare.code, 0) << compare.err;
  submitted = service.submitted();
  ASSERT_EQ(submitted.size(), 4u);
  EXPECT_FALSE(submitted[2].idempotency_key().empty());
  EXPECT_NE(submitted[2].idempotency_key(), submitted[0].idempotency_key());
  EXPECT_EQ(submitted[3].idempotency_key(), submitted[2].idempotency_key());
  EXPECT_EQ(service.jobs().size(), 2u);

  // A key given is the one sent; still refused after every send, the key to rerun with is named.
  auto down = RunReelq({"--server", server.address(), "submit", "--prompt", "FLAKY-ALWAYS",
                        "--idempotency-key", "mine-7"});
  EXPECT_EQ(down.code, kExitRpcBase + 14) << down.err;
  submitted = service.submitted();
  ASSERT_EQ(submitted.size(), 8u);
  EXPECT_EQ(submitted[7].idempotency_key(), "mine-7");
  EXPECT_EQ(service.jobs().size(), 3u);
  EXPECT_NE(down.err.find("rerun with --idempotency-key mine-7"), std::string::npos) << down.err;
  EXPECT_EQ(down.err.find("is a reelq scheduler listening"), std::string::npos) << down.err;
}

// Output that could not be written (`reelq submit ... > job.id` on a full disk) is no success:
// the job is stored but its id lost, so the exit code says so, with the key to rerun with.
TEST(Commands, OutputThatCannotBeWrittenIsNoSuccess) {
  FakeJobService service;
  FakeServer server(&service);
  std::ostringstream out;
  out.setstate(std::ios::badbit);
  std::ostringstream err;
  const int code = RunCli({"reelq", "--server", server.address(), "submit", "--prompt",
                           "a lighthouse", "--duration", "5"},
                          Io{out, err, false});
  EXPECT_NE(code, kExitOk) << err.str();
  EXPECT_EQ(code, kExitInternal) << err.str();
  EXPECT_NE(err.str().find("error: cannot write standard output"), std::string::npos) << err.str();
  const auto submitted = service.submitted();
  ASSERT_EQ(submitted.size(), 1u);
  EXPECT_NE(err.str().find("--idempotency-key " + submitted[0].idempotency_key()),
            std::string::npos)
      << err.str();
  // The rerun with that key prints the stored job's id, and makes no second job.
  auto again = RunReelq({"--server", server.address(), "submit", "--prompt", "a lighthouse",
                         "--duration", "5", "--idempotency-key", submitted[0].idempotency_key()});
  EXPECT_EQ(again.code, kExitOk) << again.err;
  EXPECT_EQ(again.out, "job-1\n");
  EXPECT_EQ(service.jobs().size(), 1u);
}

TEST(Commands, BadFlagValuesNameTheFlag) {
  struct Case {
    std::vector<std::string> args;
    std::string flag;
  };
  const std::vector<Case> cases = {
      {{"submit", "--prompt", "x", "--duration", "long"}, "--duration"},
      {{"submit", "--prompt", "x", "--aspect", "wide"}, "--aspect"},
      {{"submit", "--prompt", "x", "--audio", "loud"}, "--audio"},
      {{"submit", "--prompt", "x", "--label", "novalue"}, "--label"},
      {{"submit", "--prompt", "x", "--priority", "high"}, "--priority"},
      {{"submit", "--prompt", "x", "--start-deadline", "soon"}, "--start-deadline"},
      {{"submit", "--prompt", "x", "--finish-deadline", "+forever"}, "--finish-deadline"},
      {{"submit", "--prompt", "x", "--use-case", "movie"}, "--use-case"},
      {{"submit", "--prompt", "x", "--resolution", "8k"}, "--resolution"},
      {{"--timeout", "soon", "stats"}, "--timeout"},
      {{"list", "--state", "done"}, "--state"},
      {{"list", "--limit", "many"}, "--limit"},
      {{"submit", "--prompt", "x", "--shots-file", "y"}, "--shots-file"},
  };
  for (const auto& c : cases) {
    auto run = RunReelq(c.args);
    EXPECT_EQ(run.code, kExitUsage) << c.flag << ": " << run.err;
    EXPECT_NE(run.err.find(c.flag), std::string::npos) << c.flag << ": " << run.err;
  }
}

TEST(Commands, SubmitWithShotsFileSendsTheShots) {
  ::reelq::testing::TempDir dir;
  const auto file = WriteFile(dir, "shots.json", R"([{"prompt":"wide","durationSeconds":4}])");
  // Nothing listens there: the call fails, but only after the file and flags were accepted.
  auto run =
      RunReelq({"--server", "127.0.0.1:1", "submit", "--shots-file", file, "--duration", "4"});
  EXPECT_EQ(run.code, kExitRpcBase + 14) << run.err;
  const auto broken = WriteFile(dir, "broken.json", R"([{"prompt":"wide"}])");
  auto bad = RunReelq({"--server", "127.0.0.1:1", "submit", "--shots-file", broken});
  EXPECT_EQ(bad.code, kExitInput) << bad.err;
  EXPECT_NE(bad.err.find("shot 1 has no durationSeconds"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace reelq::cli
