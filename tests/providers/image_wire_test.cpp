// Input images (issue 13) in each provider's real form: Kling image2video (`image`,
// `image_tail`, plain base64), Sora `input_reference` as multipart/form-data, Veo `image`,
// `lastFrame`, `referenceImages` ({bytesBase64Encoded, mimeType}), Seedance content[] entries
// with a role. Pure wire functions; the simulator checks the same forms over HTTP.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "kling/kling_wire.h"
#include "seedance/seedance_wire.h"
#include "sora/sora_wire.h"
#include "src/wire_common.h"
#include "test_images.h"
#include "veo/veo_wire.h"

namespace reelq::providers {
namespace {

using Json = nlohmann::json;
using reelq::testing::TinyPng;

GenerationRequest Basic(std::string model, int seconds = 8) {
  GenerationRequest r;
  r.upstream_model = std::move(model);
  r.prompt = "a fox in the snow";
  r.duration_seconds = seconds;
  return r;
}

ImageInput Png(int variant) { return {TinyPng(variant), "image/png"}; }

TEST(ImageWire, Base64MatchesRfc4648Vectors) {
  EXPECT_EQ(wire::Base64Encode(""), "");
  EXPECT_EQ(wire::Base64Encode("f"), "Zg==");
  EXPECT_EQ(wire::Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(wire::Base64Encode("foo"), "Zm9v");
  EXPECT_EQ(wire::Base64Encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(wire::Base64Encode(std::string("\xff\xfe\x00", 3)), "//4A");
}

TEST(ImageWire, KlingImagesGoToImage2VideoAsPlainBase64) {
  auto request = Basic("kling-v3", 5);
  EXPECT_FALSE(kling::UsesImage2Video(request));
  EXPECT_EQ(kling::CreatePathFor(request), "/v1/videos/text2video");
  request.first_frame = Png(1);
  request.last_frame = Png(2);
  EXPECT_TRUE(kling::UsesImage2Video(request));
  EXPECT_EQ(kling::CreatePathFor(request), "/v1/videos/image2video");
  auto body = kling::BuildCreateBody(request);
  ASSERT_TRUE(body) << body.error().message;
  Json j = Json::parse(*body);
  EXPECT_EQ(j["image"], wire::Base64Encode(TinyPng(1)));  // no data: prefix
  EXPECT_EQ(j["image_tail"], wire::Base64Encode(TinyPng(2)));
  EXPECT_EQ(j["model_name"], "kling-v3");
  EXPECT_EQ(j["duration"], "5");

  request.reference_images.push_back(Png(3));
  auto refused = kling::BuildCreateBody(request);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().category, ErrorCategory::kInvalidRequest);
}

TEST(ImageWire, KlingImage2VideoTaskIdsCarryTheirEndpoint) {
  auto [path, id] = kling::TaskPathAndId("image2video:812345");
  EXPECT_EQ(path, "/v1/videos/image2video");
  EXPECT_EQ(id, "812345");
  auto [plain_path, plain_id] = kling::TaskPathAndId("812345");
  EXPECT_EQ(plain_path, "/v1/videos/text2video");
  EXPECT_EQ(plain_id, "812345");
}

TEST(ImageWire, SoraFirstFrameIsAMultipartInputReference) {
  auto request = Basic("sora-2");
  request.aspect_ratio = "16:9";
  request.first_frame = Png(1);
  auto form = sora::BuildCreateMultipart(request);
  ASSERT_TRUE(form) << form.error().message;
  const std::string prefix = "multipart/form-data; boundary=";
  ASSERT_EQ(form->content_type.rfind(prefix, 0), 0u) << form->content_type;
  const std::string boundary = form->content_type.substr(prefix.size());
  const std::string& b = form->body;
  EXPECT_EQ(b.rfind("--" + boundary + "\r\n", 0), 0u);
  EXPECT_NE(b.find("Content-Disposition: form-data; name=\"seconds\"\r\n\r\n8\r\n"),
            std::string::npos);
  EXPECT_NE(b.find("Content-Disposition: form-data; name=\"size\"\r\n\r\n1280x720\r\n"),
            std::string::npos);
  EXPECT_NE(b.find("Content-Disposition: form-data; name=\"model\"\r\n\r\nsora-2\r\n"),
            std::string::npos);
  const std::string file_head =
      "Content-Disposition: form-data; name=\"input_reference\"; "
      "filename=\"input_reference.png\"\r\nContent-Type: image/png\r\n\r\n";
  const size_t at = b.find(file_head);
  ASSERT_NE(at, std::string::npos) << b;
  EXPECT_EQ(b.substr(at + file_head.size(), TinyPng(1).size()), TinyPng(1));  // raw bytes
  EXPECT_TRUE(b.ends_with("\r\n--" + boundary + "--\r\n"));

  request.last_frame = Png(2);
  auto refused = sora::BuildCreateMultipart(request);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().category, ErrorCategory::kInvalidRequest);
}

TEST(ImageWire, VeoImagesAreInlineOnTheInstance) {
  auto request = Basic("veo-3.1-generate-preview");
  request.first_frame = Png(1);
  request.last_frame = Png(2);
  request.reference_images = {Png(3), Png(4)};
  auto body = veo::BuildCreateBody(request);
  ASSERT_TRUE(body) << body.error().message;
  const Json instance = Json::parse(*body)["instances"][0];
  EXPECT_EQ(instance["image"], Json({{"bytesBase64Encoded", wire::Base64Encode(TinyPng(1))},
                                     {"mimeType", "image/png"}}));
  EXPECT_EQ(instance["lastFrame"]["bytesBase64Encoded"], wire::Base64Encode(TinyPng(2)));
  ASSERT_EQ(instance["referenceImages"].size(), 2u);
  EXPECT_EQ(instance["referenceImages"][1]["referenceType"], "asset");
  EXPECT_EQ(instance["referenceImages"][1]["image"]["bytesBase64Encoded"],
            wire::Base64Encode(TinyPng(4)));

  auto short_clip = request;
  short_clip.duration_seconds = 6;  // reference images need 8 s
  EXPECT_EQ(veo::BuildCreateBody(short_clip).error().category, ErrorCategory::kInvalidRequest);
  auto too_many = request;
  too_many.reference_images = {Png(3), Png(4), Png(5), Png(6)};
  EXPECT_EQ(veo::BuildCreateBody(too_many).error().category, ErrorCategory::kInvalidRequest);
}

TEST(ImageWire, SeedanceImagesAreContentEntriesWithRoles) {
  auto request = Basic("dreamina-seedance-2-0-260128", 5);
  request.first_frame = Png(1);
  request.last_frame = Png(2);
  request.reference_images = {Png(3)};
  request.return_last_frame = true;
  auto body = seedance::BuildCreateBody(request);
  ASSERT_TRUE(body) << body.error().message;
  const Json j = Json::parse(*body);
  ASSERT_EQ(j["content"].size(), 4u);
  EXPECT_EQ(j["content"][0]["type"], "text");
  const char* roles[] = {"first_frame", "last_frame", "reference_image"};
  for (int i = 0; i < 3; ++i) {
    const Json& item = j["content"][i + 1];
    EXPECT_EQ(item["type"], "image_url");
    EXPECT_EQ(item["role"], roles[i]);
    EXPECT_EQ(item["image_url"]["url"],
              "data:image/png;base64," + wire::Base64Encode(TinyPng(i + 1)));
  }
  EXPECT_EQ(j["return_last_frame"], true);

  auto no_first = Basic("dreamina-seedance-2-0-260128", 5);
  no_first.last_frame = Png(2);
  EXPECT_EQ(seedance::BuildCreateBody(no_first).error().category, ErrorCategory::kInvalidRequest);
  EXPECT_FALSE(
      Json::parse(*seedance::BuildCreateBody(Basic("m", 5))).contains("return_last_frame"));
}

TEST(ImageWire, SeedancePollReturnsTheLastFrameUrl) {
  const std::string answer =
      R"({"id":"cgt-1","status":"succeeded","duration":5,
          "content":{"video_url":"http://x/v.mp4","last_frame_url":"http://x/last.png"}})";
  auto status = seedance::ParsePollResponse(200, answer, std::nullopt, 0);
  ASSERT_TRUE(status) << status.error().message;
  EXPECT_EQ(status->video_url, "http://x/v.mp4");
  EXPECT_EQ(status->last_frame_url, "http://x/last.png");
}

}  // namespace
}  // namespace reelq::providers
