// Input images at the simulator (issue 13): each provider's real form is accepted and recorded
// (role and SHA-256 per generation, in /_sim/stats creates[].images), a malformed one is
// refused with that provider's own error shape; Seedance's return_last_frame; the text drawn
// on the clips.
#include <openssl/sha.h>

#include <array>
#include <cstdio>

#include <gtest/gtest.h>

#include "sim_test_util.h"
#include "test_images.h"

namespace reelq::simtest {
namespace {

using nlohmann::json;
using reelq::testing::NotAnImage;
using reelq::testing::TinyPng;

// The test's own base64 and SHA-256, independent of the simulator's.
std::string B64(const std::string& in) {
  static const char* k = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    unsigned v =
        (unsigned char)in[i] << 16 | (unsigned char)in[i + 1] << 8 | (unsigned char)in[i + 2];
    out += {k[v >> 18], k[(v >> 12) & 63], k[(v >> 6) & 63], k[v & 63]};
  }
  if (in.size() - i == 1) {
    unsigned v = (unsigned char)in[i] << 16;
    out += {k[v >> 18], k[(v >> 12) & 63], '=', '='};
  } else if (in.size() - i == 2) {
    unsigned v = (unsigned char)in[i] << 16 | (unsigned char)in[i + 1] << 8;
    out += {k[v >> 18], k[(v >> 12) & 63], k[(v >> 6) & 63], '='};
  }
  return out;
}

std::string Sha(const std::string& data) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), md);
  std::string hex;
  char buf[3];
  for (unsigned char c : md) {
    std::snprintf(buf, sizeof(buf), "%02x", c);
    hex += buf;
  }
  return hex;
}

// The creates[] record of one task.
json CreateRecord(SimProcess& sim, const std::string& task_id) {
  const json stats = sim.Stats();
  for (const auto& c : stats["creates"]) {
    if (c["task_id"] == task_id) return c;
  }
  ADD_FAILURE() << "no create record for " << task_id;
  return json::object();
}

// (role, sha256) of each recorded image.
std::vector<std::pair<std::string, std::string>> Images(const json& record) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& i : record["images"]) out.emplace_back(i["role"], i["sha256"]);
  return out;
}

using Roles = std::vector<std::pair<std::string, std::string>>;

// ---- Kling image2video ----

std::map<std::string, std::string> KlingAuth() {
  return Bearer(KlingJwt("sim-kling-ak-a", "sim-kling-sk-a"));
}

TEST(SimImages, KlingImage2VideoTakesBase64ImageAndTail) {
  const std::string i2v = "/kling/v1/videos/image2video";
  json body = {{"model_name", "kling-v3"},
               {"prompt", "the fox turns"},
               {"duration", "5"},
               {"image", B64(TinyPng(1))},
               {"image_tail", B64(TinyPng(2))}};
  auto r = Http(SharedSim().port(), "POST", i2v, body.dump(), KlingAuth());
  ASSERT_EQ(r.status, 200) << r.body;
  const std::string id = r.Json()["data"]["task_id"];
  EXPECT_EQ(Images(CreateRecord(SharedSim(), id)),
            (Roles{{"first_frame", Sha(TinyPng(1))}, {"last_frame", Sha(TinyPng(2))}}));
  json done =
      PollUntil([&] { return Http(SharedSim().port(), "GET", i2v + "/" + id, "", KlingAuth()); },
                [](const json& j) { return j["data"]["task_status"] == "succeed"; });
  EXPECT_EQ(done["data"]["task_status"], "succeed");
  // An image2video task is not a text2video one.
  auto other =
      Http(SharedSim().port(), "GET", "/kling/v1/videos/text2video/" + id, "", KlingAuth());
  EXPECT_EQ(other.status, 404);

  // Malformed: Kling's envelope, code 1201.
  auto bad = [&](json b, const std::string& path, const std::string& message_part) {
    auto res = Http(SharedSim().port(), "POST", path, b.dump(), KlingAuth());
    EXPECT_EQ(res.status, 400) << res.body;
    EXPECT_EQ(res.Json()["code"], 1201) << res.body;
    EXPECT_NE(res.Json()["message"].get<std::string>().find(message_part), std::string::npos)
        << res.body;
  };
  json not_image = body;
  not_image["image"] = B64(NotAnImage());
  bad(not_image, i2v, "not a PNG, JPEG or WebP");
  json not_base64 = body;
  not_base64["image"] = "%%%not base64%%%";
  bad(not_base64, i2v, "not valid base64");
  json data_url = body;
  data_url["image"] = "data:image/png;base64," + B64(TinyPng(1));
  bad(data_url, i2v, "data: prefix");
  json no_image = body;
  no_image.erase("image");
  no_image.erase("image_tail");
  bad(no_image, i2v, "image or image_tail is required");
  bad(body, "/kling/v1/videos/text2video", "not text2video parameters");
}

// ---- Sora input_reference (multipart) ----

std::string Form(const std::string& boundary,
                 const std::vector<std::array<std::string, 4>>& parts) {
  // parts: name, filename, content type, data
  std::string out;
  for (const auto& [name, filename, type, data] : parts) {
    out += "--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + name + "\"";
    if (!filename.empty()) out += "; filename=\"" + filename + "\"";
    out += "\r\n";
    if (!type.empty()) out += "Content-Type: " + type + "\r\n";
    out += "\r\n" + data + "\r\n";
  }
  return out + "--" + boundary + "--\r\n";
}

HttpResult SoraForm(const std::string& body, const std::string& boundary = "b0und") {
  auto headers = Bearer("sim-sora-key-a");
  headers["Content-Type"] = "multipart/form-data; boundary=" + boundary;
  return Http(SharedSim().port(), "POST", "/sora/v1/videos", body, headers);
}

TEST(SimImages, SoraTakesInputReferenceAsMultipart) {
  auto r = SoraForm(Form("b0und", {{"model", "", "", "sora-2"},
                                   {"prompt", "", "", "waves at night"},
                                   {"seconds", "", "", "4"},
                                   {"size", "", "", "1280x720"},
                                   {"input_reference", "first.png", "image/png", TinyPng(3)}}));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.Json()["size"], "1280x720");
  const std::string id = r.Json()["id"];
  EXPECT_EQ(Images(CreateRecord(SharedSim(), id)), (Roles{{"first_frame", Sha(TinyPng(3))}}));

  auto expect_invalid = [](const HttpResult& res, const std::string& param) {
    EXPECT_EQ(res.status, 400) << res.body;
    EXPECT_EQ(res.Json()["error"]["type"], "invalid_request_error") << res.body;
    EXPECT_EQ(res.Json()["error"]["param"], param) << res.body;
  };
  // Declared PNG, but not an image.
  expect_invalid(SoraForm(Form("b0und", {{"prompt", "", "", "x"},
                                         {"input_reference", "a.png", "image/png", NotAnImage()}})),
                 "input_reference");
  // Declared JPEG, but a PNG.
  expect_invalid(SoraForm(Form("b0und", {{"prompt", "", "", "x"},
                                         {"input_reference", "a.jpg", "image/jpeg", TinyPng()}})),
                 "input_reference");
  // A plain field, not a file.
  expect_invalid(
      SoraForm(Form("b0und", {{"prompt", "", "", "x"}, {"input_reference", "", "", "x"}})),
      "input_reference");
  // In a JSON body.
  expect_invalid(Http(SharedSim().port(), "POST", "/sora/v1/videos",
                      json{{"prompt", "x"}, {"input_reference", B64(TinyPng())}}.dump(),
                      Bearer("sim-sora-key-a")),
                 "input_reference");
  // A body that is not the multipart it claims to be.
  auto broken = SoraForm("--other\r\n\r\nnothing");
  EXPECT_EQ(broken.status, 400);
  EXPECT_EQ(broken.Json()["error"]["code"], "invalid_multipart") << broken.body;
}

// ---- Veo image, lastFrame, referenceImages ----

HttpResult VeoCreate(const json& body) {
  return Http(SharedSim().port(), "POST",
              "/veo/v1beta/models/veo-3.1-generate-preview:predictLongRunning", body.dump(),
              {{"x-goog-api-key", "sim-veo-key-a"}});
}

json Inline(const std::string& bytes, const std::string& mime = "image/png") {
  return {{"bytesBase64Encoded", B64(bytes)}, {"mimeType", mime}};
}

TEST(SimImages, VeoTakesImageLastFrameAndReferenceImages) {
  json instance = {{"prompt", "a dolly-in"},
                   {"image", Inline(TinyPng(4))},
                   {"lastFrame", Inline(TinyPng(5))},
                   {"referenceImages",
                    json::array({{{"image", Inline(TinyPng(6))}, {"referenceType", "asset"}}})}};
  auto r =
      VeoCreate({{"instances", json::array({instance})}, {"parameters", {{"durationSeconds", 8}}}});
  ASSERT_EQ(r.status, 200) << r.body;
  const std::string name = r.Json()["name"];
  const std::string id = name.substr(name.rfind('/') + 1);
  EXPECT_EQ(Images(CreateRecord(SharedSim(), id)), (Roles{{"first_frame", Sha(TinyPng(4))},
                                                          {"last_frame", Sha(TinyPng(5))},
                                                          {"reference_image", Sha(TinyPng(6))}}));

  auto expect_invalid = [](const HttpResult& res, const std::string& part) {
    EXPECT_EQ(res.status, 400) << res.body;
    EXPECT_EQ(res.Json()["error"]["status"], "INVALID_ARGUMENT") << res.body;
    EXPECT_NE(res.Json()["error"]["message"].get<std::string>().find(part), std::string::npos)
        << res.body;
  };
  // Reference images need an 8 s clip.
  expect_invalid(
      VeoCreate({{"instances", json::array({instance})}, {"parameters", {{"durationSeconds", 6}}}}),
      "durationSeconds 8");
  json bad = instance;
  bad["image"] = Inline(NotAnImage());
  expect_invalid(VeoCreate({{"instances", json::array({bad})}}), "instances[0].image");
  bad = instance;
  bad["image"] = Inline(TinyPng(), "image/webp");
  expect_invalid(VeoCreate({{"instances", json::array({bad})}}), "mime type");
  bad = instance;
  bad["image"] = {{"bytesBase64Encoded", "@@@@"}, {"mimeType", "image/png"}};
  expect_invalid(VeoCreate({{"instances", json::array({bad})}}), "not valid base64");
}

// ---- Seedance content[] roles, return_last_frame ----

const std::string kTasks = "/seedance/api/v3/contents/generations/tasks";

json ImageItem(const std::string& bytes, const std::string& role) {
  return {{"type", "image_url"},
          {"image_url", {{"url", "data:image/png;base64," + B64(bytes)}}},
          {"role", role}};
}

HttpResult SeedCreate(const json& content, json extra = json::object(),
                      std::map<std::string, std::string> headers = {}) {
  json body = {{"model", "dreamina-seedance-2-0-260128"}, {"content", content}, {"duration", 5}};
  for (auto& [k, v] : extra.items()) body[k] = v;
  headers["Authorization"] = "Bearer sim-seedance-key-a";
  return Http(SharedSim().port(), "POST", kTasks, body.dump(), headers);
}

TEST(SimImages, SeedanceTakesRolesAndReturnsTheLastFrame) {
  json content = json::array({{{"type", "text"}, {"text", "a fox jumps"}},
                              ImageItem(TinyPng(7), "first_frame"),
                              ImageItem(TinyPng(8), "last_frame"),
                              ImageItem(TinyPng(9), "reference_image")});
  auto r = SeedCreate(content, {{"return_last_frame", true}});
  ASSERT_EQ(r.status, 200) << r.body;
  const std::string id = r.Json()["id"];
  EXPECT_EQ(Images(CreateRecord(SharedSim(), id)), (Roles{{"first_frame", Sha(TinyPng(7))},
                                                          {"last_frame", Sha(TinyPng(8))},
                                                          {"reference_image", Sha(TinyPng(9))}}));
  json done = PollUntil(
      [&] {
        return Http(SharedSim().port(), "GET", kTasks + "/" + id, "", Bearer("sim-seedance-key-a"));
      },
      [](const json& j) { return j["status"] == "succeeded"; });
  ASSERT_TRUE(done["content"].contains("last_frame_url")) << done.dump();
  auto png = GetUrl(done["content"]["last_frame_url"]);
  ASSERT_EQ(png.status, 200);
  EXPECT_EQ(png.Header("content-type"), "image/png");
  EXPECT_EQ(png.body.substr(1, 3), "PNG");

  auto expect_bad = [](const HttpResult& res, const std::string& part) {
    EXPECT_EQ(res.status, 400) << res.body;
    EXPECT_EQ(res.Json()["error"]["code"], "InvalidParameter") << res.body;
    EXPECT_EQ(res.Json()["error"]["type"], "BadRequest") << res.body;
    EXPECT_NE(res.Json()["error"]["message"].get<std::string>().find(part), std::string::npos)
        << res.body;
  };
  const json text = {{"type", "text"}, {"text", "x"}};
  expect_bad(SeedCreate(json::array({text, ImageItem(TinyPng(8), "last_frame")})),
             "needs a first_frame");
  expect_bad(SeedCreate(json::array({text, ImageItem(NotAnImage(), "first_frame")})),
             "not a PNG, JPEG or WebP");
  expect_bad(SeedCreate(json::array({text, ImageItem(TinyPng(), "cover")})), "role");
  json jpeg_claim = ImageItem(TinyPng(), "first_frame");
  jpeg_claim["image_url"]["url"] = "data:image/jpeg;base64," + B64(TinyPng());
  expect_bad(SeedCreate(json::array({text, jpeg_claim})), "mime type");
}

// ---- Visible clips ----

// Pixels of the clip's first frame brighter than the background could make: the drawn text.
int BrightPixels(const HttpResult& clip) {
  reelq::testing::TempDir dir;
  const auto file = dir.path() / "clip.mp4";
  std::ofstream(file, std::ios::binary) << clip.body;
  const std::string cmd = "ffmpeg -hide_banner -loglevel error -nostdin -i '" + file.string() +
                          "' -frames:v 1 -f rawvideo -pix_fmt gray - 2>/dev/null";
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) return -1;
  int bright = 0, total = 0;
  for (int c; (c = fgetc(pipe)) != EOF; ++total) bright += c > 200;
  pclose(pipe);
  return total == 0 ? -1 : bright;
}

TEST(SimImages, ClipsShowModelShotAndJobAsText) {
  const json content = json::array({{{"type", "text"}, {"text", "labelled clip"}}});
  auto r = SeedCreate(content, json::object(),
                      {{"x-reelq-job", "01JOBIDHEAD0a1b2c3d"}, {"x-reelq-shot", "3"}});
  ASSERT_EQ(r.status, 200) << r.body;
  const std::string id = r.Json()["id"];
  EXPECT_EQ(CreateRecord(SharedSim(), id)["label"],
            "dreamina-seedance-2-0-260128 shot 3 job 0a1b2c3d");
  json done = PollUntil(
      [&] {
        return Http(SharedSim().port(), "GET", kTasks + "/" + id, "", Bearer("sim-seedance-key-a"));
      },
      [](const json& j) { return j["status"] == "succeeded"; });
  auto labelled = GetUrl(done["content"]["video_url"]);
  ASSERT_EQ(labelled.status, 200);
  const int text_pixels = BrightPixels(labelled);
  ASSERT_GE(text_pixels, 0) << "ffmpeg could not decode the clip";
  EXPECT_GT(text_pixels, 100) << "no text drawn on the labelled clip";

  // The same clip rendered without labels has no bright pixel at all (a plain background).
  SimProcess plain({"--latency-scale", "0.001"});
  plain.Control({{"clip_labels", false}});
  auto headers = Bearer("sim-seedance-key-a");
  auto r2 = Http(
      plain.port(), "POST", kTasks,
      json{{"model", "dreamina-seedance-2-0-260128"}, {"content", content}, {"duration", 5}}.dump(),
      headers);
  ASSERT_EQ(r2.status, 200) << r2.body;
  const std::string id2 = r2.Json()["id"];
  json done2 = PollUntil([&] { return Http(plain.port(), "GET", kTasks + "/" + id2, "", headers); },
                         [](const json& j) { return j["status"] == "succeeded"; });
  auto unlabelled = GetUrl(done2["content"]["video_url"]);
  EXPECT_EQ(BrightPixels(unlabelled), 0);
  EXPECT_EQ(plain.Stats()["creates"][0]["label"], "");
}

}  // namespace
}  // namespace reelq::simtest
