#include <gtest/gtest.h>

#include "sim_test_util.h"

namespace reelq::simtest {
namespace {

using nlohmann::json;
const std::string kCreate = "/kling/v1/videos/text2video";

std::map<std::string, std::string> KlingAuth(const std::string& which = "a") {
  return Bearer(KlingJwt("sim-kling-ak-" + which, "sim-kling-sk-" + which));
}

HttpResult Create(const json& body, const std::string& which = "a") {
  return Http(SharedSim().port(), "POST", kCreate, body.dump(), KlingAuth(which));
}

json Query(const std::string& id, const std::string& which = "a") {
  return PollUntil(
      [&] { return Http(SharedSim().port(), "GET", kCreate + "/" + id, "", KlingAuth(which)); },
      [](const json& j) {
        const auto s = j["data"].value("task_status", "");
        return s == "succeed" || s == "failed";
      });
}

TEST(SimKling, CreatePollDownloadAndExternalIdLookup) {
  auto r = Create({{"model_name", "kling-v3"},
                   {"prompt", "a lighthouse at dusk"},
                   {"duration", "5"},
                   {"aspect_ratio", "9:16"},
                   {"sound", "on"},
                   {"external_task_id", "kling-happy-1"}});
  ASSERT_EQ(r.status, 200) << r.body;
  json j = r.Json();
  EXPECT_EQ(j["code"], 0);
  EXPECT_TRUE(j["request_id"].is_string());
  EXPECT_EQ(j["data"]["task_status"], "submitted");
  EXPECT_EQ(j["data"]["task_info"]["external_task_id"], "kling-happy-1");
  EXPECT_GT(j["data"]["created_at"].get<int64_t>(), 1'600'000'000'000);  // milliseconds
  const std::string id = j["data"]["task_id"];

  json done = Query(id);
  ASSERT_EQ(done["data"]["task_status"], "succeed") << done.dump();
  const json& video = done["data"]["task_result"]["videos"][0];
  EXPECT_EQ(video["duration"], "5");
  ExpectMp4(GetUrl(video["url"]), 5, "9:16");

  // The same task is found by its external_task_id, but not from another account.
  auto by_ext = Http(SharedSim().port(), "GET", kCreate + "/kling-happy-1", "", KlingAuth());
  ASSERT_EQ(by_ext.status, 200);
  EXPECT_EQ(by_ext.Json()["data"]["task_id"], id);
  auto other = Http(SharedSim().port(), "GET", kCreate + "/kling-happy-1", "", KlingAuth("b"));
  EXPECT_EQ(other.status, 404);
  EXPECT_EQ(other.Json()["code"], 1203);

  // external_task_id is unique per account.
  auto dup = Create({{"model_name", "kling-v3"},
                     {"prompt", "again"},
                     {"duration", "5"},
                     {"external_task_id", "kling-happy-1"}});
  EXPECT_EQ(dup.status, 400);
  EXPECT_EQ(dup.Json()["code"], 1201);
  EXPECT_NE(dup.Json()["message"].get<std::string>().find("external_task_id"), std::string::npos);
}

TEST(SimKling, AuthFailuresUseTheKlingEnvelope) {
  const int port = SharedSim().port();
  const json body = {{"model_name", "kling-v3"}, {"prompt", "x"}, {"duration", "5"}};
  struct Case {
    std::map<std::string, std::string> headers;
    int code;
  };
  const Case cases[] = {
      {{}, 1001},
      {Bearer("not-a-jwt"), 1002},
      {Bearer(KlingJwt("sim-kling-ak-a", "wrong-secret")), 1000},
      {Bearer(KlingJwt("unknown-ak", "sim-kling-sk-a")), 1000},
      {Bearer(KlingJwt("sim-kling-ak-a", "sim-kling-sk-a", /*exp_in=*/-10, /*nbf_in=*/-60)), 1004},
      {Bearer(KlingJwt("sim-kling-ak-a", "sim-kling-sk-a", 1800, /*nbf_in=*/600)), 1003},
  };
  for (const auto& c : cases) {
    auto r = Http(port, "POST", kCreate, body.dump(), c.headers);
    EXPECT_EQ(r.status, 401) << r.body;
    json j = r.Json();
    EXPECT_EQ(j["code"], c.code) << r.body;
    EXPECT_TRUE(j["message"].is_string());
    EXPECT_TRUE(j["request_id"].is_string());
  }
}

TEST(SimKling, MultiShotValidation) {
  json ok = {
      {"model_name", "kling-v3"},
      {"duration", "10"},
      {"multi_shot", true},
      {"shot_type", "customize"},
      {"multi_prompt", json::array({{{"index", 1}, {"prompt", "wide"}, {"duration", "4"}},
                                    {{"index", 2}, {"prompt", "close"}, {"duration", "6"}}})}};
  auto r = Create(ok);
  ASSERT_EQ(r.status, 200) << r.body;

  json bad_sum = ok;
  bad_sum["multi_prompt"][1]["duration"] = "5";
  r = Create(bad_sum);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.Json()["code"], 1201);
  EXPECT_NE(r.Json()["message"].get<std::string>().find("sum"), std::string::npos) << r.body;

  json seven = ok;
  seven["duration"] = "7";
  seven["multi_prompt"] = json::array();
  for (int i = 1; i <= 7; ++i) {
    seven["multi_prompt"].push_back({{"index", i}, {"prompt", "shot"}, {"duration", "1"}});
  }
  r = Create(seven);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.Json()["code"], 1201);

  json no_prompts = ok;
  no_prompts.erase("multi_prompt");
  r = Create(no_prompts);
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.Json()["message"].get<std::string>().find("multi_prompt"), std::string::npos);
}

TEST(SimKling, MalformedRequestsNameTheField) {
  auto r = Create({{"model_name", "kling-v3"}, {"prompt", "x"}, {"duration", 5}});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.Json()["code"], 1201);
  EXPECT_NE(r.Json()["message"].get<std::string>().find("duration"), std::string::npos);

  r = Create({{"model_name", "kling-v3"}, {"prompt", "x"}, {"duration", "16"}});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.Json()["code"], 1201);

  r = Create({{"model_name", "kling-v3"}, {"duration", "5"}});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.Json()["code"], 1200);
  EXPECT_NE(r.Json()["message"].get<std::string>().find("prompt"), std::string::npos);

  r = Http(SharedSim().port(), "POST", kCreate, "{not json", KlingAuth());
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.Json()["code"], 1200);

  r = Create({{"model_name", "kling-v3"}, {"prompt", "x"}, {"aspect_ratio", "4:3"}});
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.Json()["message"].get<std::string>().find("aspect_ratio"), std::string::npos);
}

TEST(SimKling, ModelNotFoundPolicyAndTransientFailure) {
  auto r = Create({{"model_name", "kling-v9"}, {"prompt", "x"}, {"duration", "5"}});
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.Json()["code"], 1203);

  r = Create({{"model_name", "kling-v3"}, {"prompt", "forbidden [sim:policy]"}, {"duration", "5"}});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.Json()["code"], 1301);

  r = Create({{"model_name", "kling-v3"}, {"prompt", "breaks [sim:fail]"}, {"duration", "5"}});
  ASSERT_EQ(r.status, 200);
  json done = Query(r.Json()["data"]["task_id"]);
  EXPECT_EQ(done["data"]["task_status"], "failed");
  EXPECT_FALSE(done["data"]["task_status_msg"].get<std::string>().empty());
}

TEST(SimKling, HiddenRateAndConcurrencyLimits) {
  SimProcess& sim = SharedSim();
  sim.Control(
      {{"providers",
        {{"kling", {{"keys", json::array({{{"access_key", "sim-kling-ak-b"}, {"rpm", 2}}})}}}}}});
  const json body = {{"model_name", "kling-v3"}, {"prompt", "rate"}, {"duration", "3"}};
  EXPECT_EQ(Create(body, "b").status, 200);
  EXPECT_EQ(Create(body, "b").status, 200);
  auto r = Create(body, "b");
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(r.Json()["code"], 1302);

  // One concurrent slot, held by a slow task (latency x20: over a second at this scale).
  sim.Control({{"providers",
                {{"kling",
                  {{"keys", json::array({{{"access_key", "sim-kling-ak-b"},
                                          {"rpm", 100000},
                                          {"max_concurrent", 1}}})}}}}}});
  // The two creates above still hold slots for a few hundred ms: wait until they finish.
  for (int i = 0; i < 250; ++i) {
    if (sim.Stats()["providers"]["kling"]["keys"]["sim-kling-ak-b"]["in_flight"] == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  json slow = body;
  slow["prompt"] = "holds the slot [sim:slow]";
  ASSERT_EQ(Create(slow, "b").status, 200);
  r = Create(body, "b");
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(r.Json()["code"], 1303) << r.body;
  EXPECT_EQ(SharedSim().Stats()["providers"]["kling"]["keys"]["sim-kling-ak-b"]["in_flight"], 1);
  sim.Control({{"providers",
                {{"kling",
                  {{"keys", json::array({{{"access_key", "sim-kling-ak-b"},
                                          {"rpm", 6000},
                                          {"max_concurrent", 64}}})}}}}}});
  EXPECT_EQ(Create(body, "b").status, 200);
}

}  // namespace
}  // namespace reelq::simtest
