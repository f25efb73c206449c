#include <sys/wait.h>

#include <atomic>
#include <csignal>
#include <thread>

#include <gtest/gtest.h>

#include "sim_test_util.h"

namespace reelq::simtest {
namespace {

using nlohmann::json;
const std::string kTasks = "/seedance/api/v3/contents/generations/tasks";
const std::string kModel = "dreamina-seedance-2-0-260128";

json SeedBody(const std::string& prompt, json extra = json::object()) {
  json body = {{"model", kModel}, {"content", json::array({{{"type", "text"}, {"text", prompt}}})}};
  for (auto& [k, v] : extra.items()) body[k] = v;
  return body;
}

HttpResult SeedCreate(const json& body, const std::string& key = "sim-seedance-key-a",
                      SimProcess& sim = SharedSim()) {
  return Http(sim.port(), "POST", kTasks, body.dump(), Bearer(key));
}

HttpResult SeedGet(const std::string& id, SimProcess& sim = SharedSim()) {
  return Http(sim.port(), "GET", kTasks + "/" + id, "", Bearer("sim-seedance-key-a"));
}

json SeedWait(const std::string& id) {
  return PollUntil([&] { return SeedGet(id); },
                   [](const json& j) {
                     const std::string s = j.value("status", "");
                     return s != "queued" && s != "running";
                   });
}

TEST(SimSeedance, CreatePollDownload) {
  auto r = SeedCreate(SeedBody(
      "a fox in snow",
      {{"duration", 5}, {"ratio", "1:1"}, {"resolution", "720p"}, {"generate_audio", true}}));
  ASSERT_EQ(r.status, 200) << r.body;
  const std::string id = r.Json()["id"];
  EXPECT_EQ(id.rfind("cgt-", 0), 0u);
  json done = SeedWait(id);
  ASSERT_EQ(done["status"], "succeeded") << done.dump();
  EXPECT_EQ(done["duration"], 5);
  EXPECT_EQ(done["ratio"], "1:1");
  EXPECT_LT(done["created_at"].get<int64_t>(), 100'000'000'000);  // seconds, not ms
  EXPECT_GT(done["usage"]["completion_tokens"].get<int64_t>(), 0);
  ExpectMp4(GetUrl(done["content"]["video_url"]), 5, "1:1");
}

TEST(SimSeedance, TaskListPagesNewestFirstAndHeldCreateAnswers) {
  SimProcess sim;
  // A key of its own, so the list holds exactly this test's tasks.
  sim.Control({{"providers", {{"seedance", {{"keys", {{{"key", "sim-seedance-key-list"}}}}}}}}});
  std::vector<std::string> ids;  // oldest first
  for (int i = 0; i < 3; ++i) {
    auto r = SeedCreate(SeedBody("list " + std::to_string(i), {{"duration", 5}, {"seed", 100 + i}}),
                        "sim-seedance-key-list", sim);
    ASSERT_EQ(r.status, 200) << r.body;
    ids.push_back(r.Json()["id"]);
  }
  ASSERT_EQ(SeedCreate(SeedBody("other key"), "sim-seedance-key-a", sim).status, 200);
  auto page = [&](int num, int size, const std::string& model = kModel) {
    return Http(sim.port(), "GET",
                kTasks + "?page_num=" + std::to_string(num) + "&page_size=" + std::to_string(size) +
                    "&filter.model=" + model,
                "", Bearer("sim-seedance-key-list"));
  };
  auto first = page(1, 2);
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(first.Json()["total"], 3);
  ASSERT_EQ(first.Json()["items"].size(), 2u);
  EXPECT_EQ(first.Json()["items"][0]["id"], ids[2]);
  EXPECT_EQ(first.Json()["items"][0]["seed"], 102);  // echoed, unlike the prompt
  EXPECT_FALSE(first.Json()["items"][0].contains("content") &&
               first.Json()["items"][0]["content"].contains("text"));
  auto second = page(2, 2);
  ASSERT_EQ(second.Json()["items"].size(), 1u);
  EXPECT_EQ(second.Json()["items"][0]["id"], ids[0]);
  EXPECT_EQ(page(1, 10, "no-such-model").Json()["total"], 0);
  EXPECT_EQ(page(0, 2).status, 400);

  // hold_create: validated; the next create is recorded, answered late, then answered on time.
  auto bad = Http(sim.port(), "POST", "/_sim/config",
                  R"({"providers":{"seedance":{"hold_create":{"count":-1}}}})");
  EXPECT_EQ(bad.status, 400);
  sim.Control(
      {{"providers", {{"seedance", {{"hold_create", {{"count", 1}, {"delay_ms", 300}}}}}}}});
  auto held = SeedCreate(SeedBody("held"), "sim-seedance-key-list", sim);
  EXPECT_EQ(held.status, 200);
  EXPECT_EQ(page(1, 10).Json()["total"], 4);
  EXPECT_EQ(sim.Stats()["providers"]["seedance"]["create_answers_held"], 1);
  EXPECT_EQ(SeedCreate(SeedBody("not held"), "sim-seedance-key-list", sim).status, 200);
  EXPECT_EQ(sim.Stats()["providers"]["seedance"]["create_answers_held"], 1);
}

TEST(SimSeedance, ErrorsUseTheArkEnvelope) {
  auto r = SeedCreate(SeedBody("x"), "bad-key");
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.Json()["error"]["code"], "AuthenticationError");

  json body = SeedBody("x");
  body["model"] = "seedance-9";
  r = SeedCreate(body);
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.Json()["error"]["code"], "InvalidEndpointOrModel.NotFound");

  r = SeedCreate(SeedBody("x", {{"duration", "5"}}));
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.Json()["error"]["code"], "InvalidParameter");
  EXPECT_NE(r.Json()["error"]["message"].get<std::string>().find("duration"), std::string::npos);
  r = SeedCreate(SeedBody("x", {{"duration", 16}}));
  EXPECT_EQ(r.status, 400);
  r = SeedCreate(json{{"content", json::array({{{"type", "text"}, {"text", "x"}}})}});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.Json()["error"]["code"], "MissingParameter");

  r = SeedCreate(SeedBody("forbidden [sim:policy]"));
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.Json()["error"]["code"], "InputTextSensitiveContentDetected");

  r = SeedCreate(SeedBody("bad output [sim:policy-output]"));
  ASSERT_EQ(r.status, 200);
  json done = SeedWait(r.Json()["id"]);
  EXPECT_EQ(done["status"], "failed");
  EXPECT_EQ(done["error"]["code"], "OutputVideoSensitiveContentDetected");
}

TEST(SimSeedance, FailOnceThenSucceeds) {
  const json body = SeedBody("flaky scene [sim:fail-once]");
  auto first = SeedCreate(body);
  ASSERT_EQ(first.status, 200);
  json done = SeedWait(first.Json()["id"]);
  EXPECT_EQ(done["status"], "failed");
  EXPECT_EQ(done["error"]["code"], "InternalServiceError");
  auto second = SeedCreate(body);
  ASSERT_EQ(second.status, 200);
  EXPECT_EQ(SeedWait(second.Json()["id"])["status"], "succeeded");
}

// The simulator's one io thread never waits for ffmpeg: at latency 0 a create answers at once,
// and the task succeeds a little later, once the render threads have made its labelled clip
// and its last frame.
TEST(SimSeedance, ZeroLatencyCreatesDoNotWaitForTheirRenders) {
  SimProcess sim({"--latency-scale", "0"});  // labelled clips: one render per create
  constexpr int kCreates = 10;
  std::vector<std::string> ids;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kCreates; ++i) {
    auto r = SeedCreate(
        SeedBody("render " + std::to_string(i), {{"duration", 5}, {"return_last_frame", true}}),
        "sim-seedance-key-a", sim);
    ASSERT_EQ(r.status, 200) << r.body;
    ids.push_back(r.Json()["id"]);
  }
  // Waiting for each render and its last frame took about 0.45 s per create on an idle machine.
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1500));
  for (const auto& id : ids) {
    json done = PollUntil([&] { return SeedGet(id, sim); },
                          [](const json& j) { return j["status"] == "succeeded"; },
                          std::chrono::seconds(60));
    ASSERT_EQ(done["status"], "succeeded") << done.dump();
    auto png = GetUrl(done["content"]["last_frame_url"]);
    ASSERT_EQ(png.status, 200) << id;
    EXPECT_EQ(png.body.substr(1, 3), "PNG") << id;
  }
}

TEST(SimSeedance, ConcurrencyQueuesAndQueuedTasksCancel) {
  SimProcess sim({"--latency-scale", "0.01"});  // seedance p50 45 s -> ~450 ms
  sim.Control(
      {{"providers",
        {{"seedance",
          {{"keys", json::array({{{"key", "sim-seedance-key-a"}, {"max_concurrent", 1}}})}}}}}});
  auto a = SeedCreate(SeedBody("first [sim:slow]"), "sim-seedance-key-a", sim);
  auto b = SeedCreate(SeedBody("second"), "sim-seedance-key-a", sim);
  ASSERT_EQ(a.status, 200);
  ASSERT_EQ(b.status, 200) << "over concurrency Seedance queues, it does not fail";
  const std::string a_id = a.Json()["id"], b_id = b.Json()["id"];
  EXPECT_EQ(SeedGet(b_id, sim).Json()["status"], "queued");
  EXPECT_EQ(sim.Stats()["providers"]["seedance"]["keys"]["sim-seedance-key-a"]["queued"], 1);

  auto cancel = Http(sim.port(), "DELETE", kTasks + "/" + b_id, "", Bearer("sim-seedance-key-a"));
  EXPECT_EQ(cancel.status, 200) << cancel.body;
  EXPECT_EQ(SeedGet(b_id, sim).Json()["status"], "cancelled");

  // The slow task is running (past its short queued phase): it cannot be cancelled.
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  ASSERT_EQ(SeedGet(a_id, sim).Json()["status"], "running");
  auto refuse = Http(sim.port(), "DELETE", kTasks + "/" + a_id, "", Bearer("sim-seedance-key-a"));
  EXPECT_EQ(refuse.status, 409) << refuse.body;
  EXPECT_TRUE(refuse.Json()["error"]["code"].is_string());

  // RPM still rejects.
  sim.Control(
      {{"providers",
        {{"seedance", {{"keys", json::array({{{"key", "sim-seedance-key-b"}, {"rpm", 0}}})}}}}}});
  auto limited = SeedCreate(SeedBody("x"), "sim-seedance-key-b", sim);
  EXPECT_EQ(limited.status, 429);
  EXPECT_EQ(limited.Json()["error"]["code"], "RateLimitExceeded.EndpointRPMExceeded");
}

TEST(SimSeedance, HangingDownloadStallsAfterHeaders) {
  auto r = SeedCreate(SeedBody("stall [sim:hang-download]"));
  ASSERT_EQ(r.status, 200);
  json done = SeedWait(r.Json()["id"]);
  ASSERT_EQ(done["status"], "succeeded");
  const auto start = std::chrono::steady_clock::now();
  auto dl = GetUrl(done["content"]["video_url"], {}, std::chrono::milliseconds(700));
  EXPECT_EQ(dl.status, 200) << "headers arrive";
  EXPECT_FALSE(dl.error.empty()) << "the body never completes";
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(600));
}

TEST(SimControl, StatsCountEveryCallAndResetZeroes) {
  SimProcess sim({"--latency-scale", "0"});
  auto auth = Bearer(KlingJwt("sim-kling-ak-a", "sim-kling-sk-a"));
  const std::string create = "/kling/v1/videos/text2video";
  const json body = {{"model_name", "kling-v3"},
                     {"prompt", "counted"},
                     {"duration", "5"},
                     {"external_task_id", "attempt-1"}};
  auto r = Http(sim.port(), "POST", create, body.dump(), auth);
  ASSERT_EQ(r.status, 200) << r.body;
  const std::string task_id = r.Json()["data"]["task_id"];
  // Latency 0: finished as soon as its clip is rendered (on the sim's render threads, so the
  // create answered at once).
  int polls = 0;
  auto poll = PollUntil(
      [&] {
        ++polls;
        return Http(sim.port(), "GET", create + "/" + task_id, "", auth);
      },
      [](const json& j) { return j["data"]["task_status"] == "succeed"; });
  EXPECT_EQ(poll["data"]["task_status"], "succeed");
  json b2 = body;
  b2.erase("external_task_id");
  b2["model_name"] = "kling-v0";
  EXPECT_EQ(Http(sim.port(), "POST", create, b2.dump(), auth).status, 404);
  sim.Control(
      {{"providers",
        {{"kling", {{"keys", json::array({{{"access_key", "sim-kling-ak-a"}, {"rpm", 1}}})}}}}}});
  b2["model_name"] = "kling-v3";
  EXPECT_EQ(Http(sim.port(), "POST", create, b2.dump(), auth).status, 429);
  EXPECT_EQ(Http(sim.port(), "POST", create, body.dump(), {}).status, 401);

  json s = sim.Stats();
  const json& k = s["providers"]["kling"];
  EXPECT_EQ(k["creates"], 1);
  EXPECT_EQ(k["polls"], polls);
  EXPECT_EQ(k["creates_rejected_rate_limit"], 1);
  EXPECT_EQ(k["model_not_found"], 1);
  EXPECT_EQ(k["auth_failures"], 1);
  EXPECT_EQ(k["keys"]["sim-kling-ak-a"]["creates"], 1);
  EXPECT_EQ(k["keys"]["sim-kling-ak-a"]["in_flight"], 0);
  EXPECT_EQ(k["keys"]["sim-kling-ak-b"]["creates"], 0);
  EXPECT_EQ(k["models"]["kling-v3"]["creates"], 1);
  EXPECT_EQ(s["providers"]["sora"]["creates"], 0);
  ASSERT_EQ(s["creates"].size(), 1u);
  EXPECT_EQ(s["creates"][0]["task_id"], task_id);
  EXPECT_EQ(s["creates"][0]["external_id"], "attempt-1");
  EXPECT_EQ(s["creates"][0]["prompt_sha256"].get<std::string>().size(), 64u);

  auto bad = Http(sim.port(), "POST", "/_sim/config", R"({"faults":{"policy":2}})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.Json()["error"].get<std::string>().find("faults.policy"), std::string::npos);
  // A misspelt key is named with the key it most likely meant (the config's one rule).
  auto misspelt = Http(sim.port(), "POST", "/_sim/config", R"({"faults":{"polcy":0.5}})");
  EXPECT_EQ(misspelt.status, 400);
  EXPECT_NE(misspelt.Json()["error"].get<std::string>().find(
                "config faults.polcy: unknown key; did you mean policy?"),
            std::string::npos)
      << misspelt.body;

  EXPECT_EQ(Http(sim.port(), "POST", "/_sim/reset").status, 200);
  s = sim.Stats();
  EXPECT_EQ(s["providers"]["kling"]["creates"], 0);
  EXPECT_TRUE(s["creates"].empty());
  // Each Http() call here opens its own connection: the stats request's own is the one counted
  // since the reset, and two more calls add two.
  EXPECT_EQ(s["connections_accepted"], 1);
  EXPECT_EQ(Http(sim.port(), "GET", "/_sim/health").status, 200);
  EXPECT_EQ(sim.Stats()["connections_accepted"], 3);

  // SIGTERM: clean exit 0.
  sim.process().Signal(SIGTERM);
  auto status = sim.process().Wait(std::chrono::seconds(5));
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status;
}

TEST(SimControl, InjectedCreateFailuresFollowTheRate) {
  SimProcess sim({"--latency-scale", "0", "--seed", "3"});
  sim.Control({{"faults", {{"create_failure", 1.0}}}});
  auto r =
      Http(sim.port(), "POST", "/sora/v1/videos", R"({"prompt":"x"})", Bearer("sim-sora-key-a"));
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(r.Json()["error"]["type"], "server_error");
  r = Http(sim.port(), "POST", "/veo/v1beta/models/veo-3.1-generate-preview:predictLongRunning",
           R"({"instances":[{"prompt":"x"}]})", {{"x-goog-api-key", "sim-veo-key-a"}});
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.Json()["error"]["status"], "UNAVAILABLE");
  EXPECT_EQ(sim.Stats()["providers"]["veo"]["creates_failed_injected"], 1);
  EXPECT_EQ(sim.Stats()["providers"]["veo"]["creates"], 0);

  // Retention: a finished result answers not-found once it is older than retention_seconds.
  sim.Control({{"faults", {{"create_failure", 0.0}}},
               {"providers", {{"sora", {{"retention_seconds", 0}}}}}});
  r = Http(sim.port(), "POST", "/sora/v1/videos", R"({"prompt":"x"})", Bearer("sim-sora-key-a"));
  ASSERT_EQ(r.status, 200) << r.body;
  // (Finished once its clip is rendered, then gone at once.)
  HttpResult poll;
  for (int i = 0; i < 500; ++i) {
    poll = Http(sim.port(), "GET", "/sora/v1/videos/" + r.Json()["id"].get<std::string>(), "",
                Bearer("sim-sora-key-a"));
    if (poll.status != 200 || poll.Json()["status"] == "completed") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(poll.status, 404) << poll.body;
}

TEST(SimControl, BadConfigFileFailsStartupWithTheField) {
  testing::TempDir dir;
  const auto cfg = dir.path() / "bad.yaml";
  std::ofstream(cfg) << "providers:\n  kling:\n    keys:\n      - access_key: a\n        "
                        "secret_key: s\n        rpm: lots\n";
  auto proc = testing::ChildProcess::Start(
      {testing::BuildPath("providers/sim/reelq-provider-sim").string(), "--config", cfg.string()},
      {}, dir.path() / "log");
  auto status = proc.Wait(std::chrono::seconds(10));
  ASSERT_TRUE(status.has_value());
  EXPECT_NE(WEXITSTATUS(*status), 0);
  const std::string log = testing::ReadFile(dir.path() / "log");
  EXPECT_NE(log.find("providers.kling.keys[0].rpm"), std::string::npos) << log;
}

TEST(SimControl, SampleConfigLoads) {
  SimProcess sim(
      {"--config", testing::SourcePath("deploy/sim.yaml").string(), "--latency-scale", "0"});
  ASSERT_NE(sim.port(), 0);
  auto cfg = Http(sim.port(), "GET", "/_sim/config").Json();
  EXPECT_FALSE(cfg["providers"]["kling"]["keys"].empty());
}

}  // namespace
}  // namespace reelq::simtest
