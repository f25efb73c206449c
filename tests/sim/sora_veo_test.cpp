#include <gtest/gtest.h>

#include "sim_test_util.h"

namespace reelq::simtest {
namespace {

using nlohmann::json;

// ---- Sora ----

HttpResult SoraCreate(const json& body, const std::string& key = "sim-sora-key-a") {
  return Http(SharedSim().port(), "POST", "/sora/v1/videos", body.dump(), Bearer(key));
}

json SoraWait(const std::string& id) {
  return PollUntil(
      [&] {
        return Http(SharedSim().port(), "GET", "/sora/v1/videos/" + id, "",
                    Bearer("sim-sora-key-a"));
      },
      [](const json& j) { return j["status"] == "completed" || j["status"] == "failed"; });
}

TEST(SimSora, CreatePollDownloadDelete) {
  auto r = SoraCreate(
      {{"model", "sora-2"}, {"prompt", "rain on neon"}, {"seconds", "4"}, {"size", "1280x720"}});
  ASSERT_EQ(r.status, 200) << r.body;
  json v = r.Json();
  EXPECT_EQ(v["object"], "video");
  EXPECT_EQ(v["status"], "queued");
  EXPECT_EQ(v["seconds"], "4");
  EXPECT_EQ(v["size"], "1280x720");
  EXPECT_TRUE(v["error"].is_null());
  EXPECT_FALSE(r.Header("openai-poll-after-ms").empty());
  const std::string id = v["id"];
  EXPECT_EQ(id.rfind("video_", 0), 0u);

  json done = SoraWait(id);
  ASSERT_EQ(done["status"], "completed") << done.dump();
  EXPECT_EQ(done["progress"], 100);
  EXPECT_TRUE(done["completed_at"].is_number());
  EXPECT_TRUE(done["expires_at"].is_number());
  ExpectMp4(Http(SharedSim().port(), "GET", "/sora/v1/videos/" + id + "/content", "",
                 Bearer("sim-sora-key-a")),
            4, "16:9");

  auto list = Http(SharedSim().port(), "GET", "/sora/v1/videos", "", Bearer("sim-sora-key-a"));
  ASSERT_EQ(list.status, 200);
  EXPECT_EQ(list.Json()["object"], "list");
  bool listed = false;
  const json listed_videos = list.Json();  // keep it alive: range-for over a temporary dangles
  for (const auto& item : listed_videos["data"]) listed = listed || item["id"] == id;
  EXPECT_TRUE(listed);

  auto del =
      Http(SharedSim().port(), "DELETE", "/sora/v1/videos/" + id, "", Bearer("sim-sora-key-a"));
  EXPECT_EQ(del.status, 200);
  EXPECT_EQ(del.Json()["deleted"], true);
  auto gone =
      Http(SharedSim().port(), "GET", "/sora/v1/videos/" + id, "", Bearer("sim-sora-key-a"));
  EXPECT_EQ(gone.status, 404);
  EXPECT_TRUE(gone.Json()["error"]["message"].is_string());
}

TEST(SimSora, ErrorsUseTheOpenAiEnvelope) {
  auto r = SoraCreate({{"prompt", "x"}}, "wrong-key-123456");
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.Json()["error"]["code"], "invalid_api_key");
  r = Http(SharedSim().port(), "POST", "/sora/v1/videos", R"({"prompt":"x"})");
  EXPECT_EQ(r.status, 401);
  EXPECT_TRUE(r.Json()["error"]["message"].is_string());

  r = SoraCreate({{"prompt", "x"}, {"seconds", 8}});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.Json()["error"]["param"], "seconds");
  EXPECT_EQ(r.Json()["error"]["code"], "invalid_type");
  r = SoraCreate({{"prompt", "x"}, {"seconds", "5"}});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.Json()["error"]["param"], "seconds");
  r = SoraCreate({{"seconds", "4"}});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.Json()["error"]["param"], "prompt");
  r = SoraCreate({{"prompt", "x"}, {"duration", 4}});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.Json()["error"]["param"], "duration");
  r = SoraCreate({{"prompt", "x"}, {"model", "sora-2"}, {"size", "1792x1024"}});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.Json()["error"]["param"], "size");

  r = SoraCreate({{"prompt", "x"}, {"model", "sora-9"}});
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.Json()["error"]["code"], "model_not_found");
}

TEST(SimSora, PolicyRejectionIsAFailedJob) {
  auto r = SoraCreate({{"prompt", "a famous actor [sim:policy]"}, {"seconds", "4"}});
  ASSERT_EQ(r.status, 200) << r.body;
  json done = SoraWait(r.Json()["id"]);
  EXPECT_EQ(done["status"], "failed");
  EXPECT_EQ(done["error"]["code"], "moderation_blocked");
}

TEST(SimSora, RateLimitAnswers429WithRetryAfter) {
  SimProcess& sim = SharedSim();
  sim.Control({{"providers",
                {{"sora", {{"keys", json::array({{{"key", "sim-sora-key-b"}, {"rpm", 1}}})}}}}}});
  const json body = {{"prompt", "limited"}, {"seconds", "4"}};
  EXPECT_EQ(SoraCreate(body, "sim-sora-key-b").status, 200);
  auto r = SoraCreate(body, "sim-sora-key-b");
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(r.Json()["error"]["code"], "rate_limit_exceeded");
  EXPECT_GE(std::stoi(r.Header("retry-after")), 1);
  sim.Control(
      {{"providers",
        {{"sora", {{"keys", json::array({{{"key", "sim-sora-key-b"}, {"rpm", 6000}}})}}}}}});
}

TEST(SimSora, TruncatedPollResponse) {
  auto r = SoraCreate({{"prompt", "cut me off [sim:truncate]"}, {"seconds", "4"}});
  ASSERT_EQ(r.status, 200);
  auto poll =
      Http(SharedSim().port(), "GET", "/sora/v1/videos/" + r.Json()["id"].get<std::string>(), "",
           Bearer("sim-sora-key-a"));
  EXPECT_FALSE(poll.error.empty()) << "a truncated body must surface as a read error";
  EXPECT_TRUE(poll.Json().is_discarded());
}

// ---- Veo ----

const std::map<std::string, std::string> kVeoKey = {{"x-goog-api-key", "sim-veo-key-a"}};

HttpResult VeoCreate(const json& body, const std::string& model = "veo-3.1-generate-preview",
                     const std::map<std::string, std::string>& headers = kVeoKey) {
  return Http(SharedSim().port(), "POST", "/veo/v1beta/models/" + model + ":predictLongRunning",
              body.dump(), headers);
}

json VeoWait(const std::string& name) {
  return PollUntil(
      [&] { return Http(SharedSim().port(), "GET", "/veo/v1beta/" + name, "", kVeoKey); },
      [&](const json& j) {
        // proto3 JSON: a running operation has no `done` and no result yet.
        if (!j.value("done", false)) {
          EXPECT_FALSE(j.contains("response") || j.contains("error")) << j.dump();
        }
        return j.value("done", false);
      });
}

TEST(SimVeo, CreatePollRedirectDownload) {
  auto r = VeoCreate({{"instances", json::array({{{"prompt", "a barista pours latte art"}}})},
                      {"parameters", {{"aspectRatio", "9:16"}, {"durationSeconds", 6}}}});
  ASSERT_EQ(r.status, 200) << r.body;
  const std::string name = r.Json()["name"];
  EXPECT_EQ(name.rfind("models/veo-3.1-generate-preview/operations/", 0), 0u) << name;

  json done = VeoWait(name);
  ASSERT_TRUE(done.value("done", false)) << done.dump();
  const std::string uri =
      done["response"]["generateVideoResponse"]["generatedSamples"][0]["video"]["uri"];
  // The file URI needs the key, and answers with a redirect to the bytes.
  auto no_key = GetUrl(uri);
  EXPECT_EQ(no_key.status, 403);
  EXPECT_EQ(no_key.Json()["error"]["status"], "PERMISSION_DENIED");
  auto redirect = GetUrl(uri, kVeoKey);
  ASSERT_EQ(redirect.status, 302) << redirect.body;
  const std::string location = redirect.Header("location");
  ASSERT_FALSE(location.empty());
  ExpectMp4(GetUrl(location), 6, "9:16");
  // ?key= works as well as the header.
  EXPECT_EQ(GetUrl(uri + "&key=sim-veo-key-a").status, 302);
}

TEST(SimVeo, ErrorsUseTheGoogleShape) {
  const json ok = {{"instances", json::array({{{"prompt", "x"}}})}};
  auto r = VeoCreate(ok, "veo-3.1-generate-preview", {{"x-goog-api-key", "bad"}});
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.Json()["error"]["status"], "UNAUTHENTICATED");
  EXPECT_EQ(r.Json()["error"]["code"], 401);

  r = VeoCreate(ok, "veo-9");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.Json()["error"]["status"], "NOT_FOUND");

  json bad = ok;
  bad["parameters"] = {{"durationSeconds", 5}};
  r = VeoCreate(bad);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.Json()["error"]["status"], "INVALID_ARGUMENT");
  EXPECT_NE(r.Json()["error"]["message"].get<std::string>().find("durationSeconds"),
            std::string::npos);
  bad["parameters"] = {{"durationSeconds", "8"}};
  EXPECT_EQ(VeoCreate(bad).status, 400);
  bad["parameters"] = {{"aspectRatio", "1:1"}};
  EXPECT_EQ(VeoCreate(bad).status, 400);
  bad["parameters"] = {{"colour", "blue"}};
  r = VeoCreate(bad);
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.Json()["error"]["message"].get<std::string>().find("colour"), std::string::npos);
  r = VeoCreate(json{{"instances", json::array()}});
  EXPECT_EQ(r.status, 400);
}

TEST(SimVeo, SafetyFilterAndBadJsonPoll) {
  auto r = VeoCreate({{"instances", json::array({{{"prompt", "gore [sim:policy]"}}})}});
  ASSERT_EQ(r.status, 200);
  json done = VeoWait(r.Json()["name"]);
  const json& gvr = done["response"]["generateVideoResponse"];
  EXPECT_GT(gvr.value("raiMediaFilteredCount", 0), 0) << done.dump();
  EXPECT_FALSE(gvr["raiMediaFilteredReasons"].empty());
  EXPECT_FALSE(gvr.contains("generatedSamples"));

  r = VeoCreate({{"instances", json::array({{{"prompt", "garbled [sim:badjson]"}}})}});
  ASSERT_EQ(r.status, 200);
  auto poll = Http(SharedSim().port(), "GET", "/veo/v1beta/" + r.Json()["name"].get<std::string>(),
                   "", kVeoKey);
  EXPECT_EQ(poll.status, 200);
  EXPECT_TRUE(poll.Json().is_discarded()) << poll.body;
}

TEST(SimVeo, RateLimitIsResourceExhausted) {
  SimProcess& sim = SharedSim();
  sim.Control({{"providers",
                {{"veo", {{"keys", json::array({{{"key", "sim-veo-key-b"}, {"rpm", 1}}})}}}}}});
  const std::map<std::string, std::string> key_b = {{"x-goog-api-key", "sim-veo-key-b"}};
  const json body = {{"instances", json::array({{{"prompt", "x"}}})}};
  EXPECT_EQ(VeoCreate(body, "veo-3.1-generate-preview", key_b).status, 200);
  auto r = VeoCreate(body, "veo-3.1-generate-preview", key_b);
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(r.Json()["error"]["status"], "RESOURCE_EXHAUSTED");
  sim.Control({{"providers",
                {{"veo", {{"keys", json::array({{{"key", "sim-veo-key-b"}, {"rpm", 6000}}})}}}}}});
}

}  // namespace
}  // namespace reelq::simtest
