#include <gtest/gtest.h>

#include "reelq/storage/s3_errors.h"

namespace reelq::storage::s3 {
namespace {

TEST(S3Xml, ExtractsFieldsTolerantly) {
  const std::string xml =
      "<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code><Message>The key &lt;a&amp;b&gt; "
      "&#233;&#x263A;</Message><CodeX>no</CodeX></Error>";
  EXPECT_EQ(XmlText(xml, "Code"), "NoSuchKey");
  EXPECT_EQ(XmlText(xml, "Message"), "The key <a&b> \xc3\xa9\xe2\x98\xba");
  EXPECT_EQ(XmlText("<R><UploadId xmlns=\"x\">abc</UploadId></R>", "UploadId"), "abc");
  EXPECT_EQ(XmlText("<R><ETag>&quot;e1&quot;</ETag></R>", "ETag"), "\"e1\"");
  EXPECT_EQ(XmlText("<R><Code/></R>", "Code"), "");
  EXPECT_FALSE(XmlText("<R><Code>unterminated", "Code"));
  EXPECT_FALSE(XmlText("", "Code"));
  EXPECT_FALSE(XmlText("<Code", "Code"));
  EXPECT_FALSE(XmlText("<CodeX>1</CodeX>", "Code"));
  EXPECT_EQ(XmlText("<a>&#xZZ; &bogus; &#99999999999;</a>", "a"), "&#xZZ; &bogus; &#99999999999;");
}

TEST(S3Xml, NeverCrashesOnGarbage) {
  std::string junk;
  for (int i = 0; i < 2000; ++i) {
    junk.push_back("<>/&;#xCode E"[static_cast<size_t>(i * 7919) % 13]);
    (void)XmlText(junk, "Code");
    (void)MapS3Error(400 + i % 200, junk, "GET s3://b/k", "b");
  }
}

Error Map(int status, const std::string& code) {
  return MapS3Error(
      status, code.empty() ? "" : "<Error><Code>" + code + "</Code><Message>m</Message></Error>",
      "PUT s3://clips/k", "clips");
}

TEST(S3Errors, OneTableForEveryAnswer) {
  for (const char* code : {"AccessDenied", "SignatureDoesNotMatch", "InvalidAccessKeyId"}) {
    auto e = Map(403, code);
    EXPECT_EQ(e.category, ErrorCategory::kAuthFailed) << code;
    EXPECT_EQ(e.provider_code, code);
    EXPECT_NE(e.message.find(code), std::string::npos);
    EXPECT_NE(e.message.find("PUT s3://clips/k"), std::string::npos);
  }
  auto bucket = Map(404, "NoSuchBucket");
  EXPECT_EQ(bucket.category, ErrorCategory::kInvalidRequest);
  EXPECT_NE(bucket.message.find("bucket \"clips\""), std::string::npos);
  EXPECT_EQ(Map(404, "NoSuchKey").category, ErrorCategory::kNotFound);
  EXPECT_EQ(Map(503, "SlowDown").category, ErrorCategory::kRetryable);
  EXPECT_EQ(Map(500, "InternalError").category, ErrorCategory::kRetryable);
  EXPECT_EQ(Map(400, "RequestTimeout").category, ErrorCategory::kRetryable);
  EXPECT_EQ(Map(409, "ConditionalRequestConflict").category, ErrorCategory::kRetryable);
  EXPECT_EQ(Map(409, "BucketAlreadyExists").category, ErrorCategory::kInvalidRequest);
  EXPECT_EQ(Map(503, "").category, ErrorCategory::kRetryable);  // no body (HEAD)
  EXPECT_EQ(Map(403, "").category, ErrorCategory::kAuthFailed);
  EXPECT_EQ(Map(404, "").category, ErrorCategory::kNotFound);
  EXPECT_EQ(Map(400, "InvalidArgument").category, ErrorCategory::kInvalidRequest);
  EXPECT_EQ(Map(503, "SlowDown").http_status, 503);
}

// The region hint only when the bucket's region, as AWS names it, is not the configured one; the
// HEAD permission hint only for HEAD.
TEST(S3Errors, RegionAndHeadHintsOnlyWhereTheyApply) {
  const http::Headers eu = {{"x-amz-bucket-region", "eu-west-1"}};
  auto moved = MapS3Error(400, "", "HEAD s3://clips/k", "clips",
                          {.method = "HEAD", .region = "us-east-1", .headers = &eu});
  EXPECT_EQ(moved.category, ErrorCategory::kInvalidRequest);
  EXPECT_NE(moved.message.find("set storage.s3.region: eu-west-1"), std::string::npos)
      << moved.message;
  auto same = MapS3Error(400, "<Error><Code>InvalidArgument</Code></Error>", "PUT s3://clips/k",
                         "clips", {.method = "PUT", .region = "eu-west-1", .headers = &eu});
  EXPECT_EQ(same.message.find("storage.s3.region"), std::string::npos) << same.message;
  auto put = MapS3Error(403, "", "PUT s3://clips/k", "clips", {.method = "PUT"});
  EXPECT_EQ(put.category, ErrorCategory::kAuthFailed);
  EXPECT_EQ(put.message.find("s3:ListBucket"), std::string::npos) << put.message;
  auto head = MapS3Error(403, "", "HEAD s3://clips/k", "clips", {.method = "HEAD"});
  EXPECT_NE(head.message.find("s3:ListBucket"), std::string::npos) << head.message;
}

}  // namespace
}  // namespace reelq::storage::s3
