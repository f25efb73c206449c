// The signer against AWS's published Signature V4 examples. Every constant below is a
// published expected value (S3 API reference "Signature Calculations for the Authorization
// Header" and "Authenticating Requests: Using Query Parameters", and the SigV4 test suite's
// get-vanilla case); each was also reproduced by botocore on this machine.

#include <gtest/gtest.h>

#include "reelq/storage/sigv4.h"

namespace reelq::storage::sigv4 {
namespace {

const Credentials kS3DocCreds{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                              ""};
constexpr char kS3DocDate[] = "20130524T000000Z";
constexpr char kHost[] = "examplebucket.s3.amazonaws.com";

std::string Header(const HeaderList& headers, std::string_view name) {
  for (const auto& [n, v] : headers) {
    if (n == name) return v;
  }
  return "";
}

TEST(SigV4Examples, S3GetObjectWithRange) {
  Request r{
      .method = "GET", .path = "/test.txt", .headers = {{"Host", kHost}, {"Range", "bytes=0-9"}}};
  auto s = SignHeaders(r, kS3DocCreds, "us-east-1", "s3", kS3DocDate);
  EXPECT_EQ(s.canonical_request,
            "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
            "x-amz-content-sha256:"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
            "x-amz-date:20130524T000000Z\n\nhost;range;x-amz-content-sha256;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(s.string_to_sign,
            "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
            "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
  EXPECT_EQ(s.signature, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
  EXPECT_EQ(Header(s.headers, "authorization"),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/"
            "aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
            "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
  EXPECT_EQ(Header(s.headers, "x-amz-date"), kS3DocDate);
}

TEST(SigV4Examples, S3PutObject) {
  const std::string body = "Welcome to Amazon S3.";
  const std::string hash = Sha256Hex(body);
  EXPECT_EQ(hash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
  Request r{.method = "PUT",
            .path = "/" + UriEncode("test$file.text", false),
            .headers = {{"Host", kHost},
                        {"Date", "Fri, 24 May 2013 00:00:00 GMT"},
                        {"x-amz-storage-class", "REDUCED_REDUNDANCY"}},
            .payload_hash = hash};
  EXPECT_EQ(r.path, "/test%24file.text");
  auto s = SignHeaders(r, kS3DocCreds, "us-east-1", "s3", kS3DocDate);
  EXPECT_EQ(s.signature, "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
  EXPECT_NE(s.authorization.find("SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;"
                                 "x-amz-storage-class,"),
            std::string::npos);
}

TEST(SigV4Examples, S3GetBucketLifecycle) {
  Request r{
      .method = "GET", .path = "/", .query = {{"lifecycle", ""}}, .headers = {{"Host", kHost}}};
  auto s = SignHeaders(r, kS3DocCreds, "us-east-1", "s3", kS3DocDate);
  EXPECT_EQ(s.signature, "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
}

TEST(SigV4Examples, S3ListObjects) {
  Request r{.method = "GET",
            .path = "/",
            .query = {{"prefix", "J"}, {"max-keys", "2"}},
            .headers = {{"Host", kHost}}};
  auto s = SignHeaders(r, kS3DocCreds, "us-east-1", "s3", kS3DocDate);
  EXPECT_EQ(s.signature, "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

TEST(SigV4Examples, S3PresignedGet) {
  Request r{.method = "GET", .path = "/test.txt", .headers = {{"Host", kHost}}};
  auto p = Presign(r, kS3DocCreds, "us-east-1", "s3", kS3DocDate, std::chrono::seconds(86400));
  EXPECT_EQ(p.canonical_request,
            "GET\n/test.txt\nX-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential="
            "AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date="
            "20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host\n"
            "host:examplebucket.s3.amazonaws.com\n\nhost\nUNSIGNED-PAYLOAD");
  EXPECT_EQ(p.signature, "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
  EXPECT_EQ(p.query,
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%"
            "2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-"
            "Amz-SignedHeaders=host&X-Amz-Signature="
            "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
}

// The SigV4 test suite (service "service", us-east-1, 20150830T123600Z).
const Credentials kSuiteCreds{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", ""};

TEST(SigV4Examples, SuiteGetVanilla) {
  Request r{
      .method = "GET", .path = "/", .headers = {{"Host", "example.amazonaws.com"}}, .s3 = false};
  auto s = SignHeaders(r, kSuiteCreds, "us-east-1", "service", "20150830T123600Z");
  EXPECT_EQ(s.canonical_request,
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
            "host;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(s.authorization,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
            "SignedHeaders=host;x-amz-date, "
            "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}

TEST(SigV4, UriEncode) {
  EXPECT_EQ(UriEncode("a b/c~d_e.f-g"), "a%20b%2Fc~d_e.f-g");
  EXPECT_EQ(UriEncode("a b/c", false), "a%20b/c");
  EXPECT_EQ(UriEncode("\xc3\xa9+*"), "%C3%A9%2B%2A");
}

TEST(SigV4, GenericPathNormalisation) {
  EXPECT_EQ(CanonicalUri("/a/./b/../c//d/", false), "/a/c/d/");
  EXPECT_EQ(CanonicalUri("/a%20b", false), "/a%2520b");       // encoded a second time
  EXPECT_EQ(CanonicalUri("/a/../b//c", true), "/a/../b//c");  // S3: as sent
  EXPECT_EQ(CanonicalUri("", true), "/");
}

TEST(SigV4, HeaderCanonicalisation) {
  HeaderList h{{"X-Amz-Meta-A", "  two   spaces\tand tab "}, {"host", "h"}, {"x-amz-meta-a", "b"}};
  EXPECT_EQ(CanonicalHeaders(h), "host:h\nx-amz-meta-a:two spaces and tab,b\n");
  EXPECT_EQ(SignedHeaders(h), "host;x-amz-meta-a");
}

TEST(SigV4, SessionTokenIsSigned) {
  Credentials c = kS3DocCreds;
  c.session_token = "token/with+chars";
  Request r{.method = "GET", .path = "/k", .headers = {{"host", kHost}}};
  auto s = SignHeaders(r, c, "us-east-1", "s3", kS3DocDate);
  EXPECT_NE(s.canonical_request.find("x-amz-security-token:token/with+chars\n"), std::string::npos);
  auto p = Presign(r, c, "us-east-1", "s3", kS3DocDate, std::chrono::seconds(60));
  EXPECT_NE(p.query.find("X-Amz-Security-Token=token%2Fwith%2Bchars"), std::string::npos);
}

TEST(SigV4, FormatAmzDate) {
  EXPECT_EQ(FormatAmzDate(std::chrono::system_clock::time_point(std::chrono::seconds(1369353600))),
            "20130524T000000Z");
}

}  // namespace
}  // namespace reelq::storage::sigv4
