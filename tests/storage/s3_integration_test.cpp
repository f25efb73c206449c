// The S3 backend against a real S3-compatible server (s3rver, from npm: tools/package.json),
// with every object checked by an independent client (awscli) and a presigned URL fetched with
// curl. s3rver 3.7 checks no signatures (the signer is proven in sigv4_*_test.cpp) and
// implements neither ListMultipartUploads nor AbortMultipartUpload (it answers 405): the
// abort tests therefore check, through a pass-through proxy (FakeS3 with an upstream), that the
// writer sent AbortMultipartUpload for its upload and published nothing; the fake S3 tests
// (s3_fault_test.cpp) check that no upload is left where the server implements the abort.

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "fake_s3.h"
#include "process.h"
#include "reelq/storage/hashing_writer.h"
#include "reelq/storage/s3_store.h"
#include "run_sync.h"
#include "s3_test_util.h"

namespace reelq::storage {
namespace {

using testing::Bytes;
namespace rt = reelq::testing;

constexpr char kBucket[] = "reelq-test";

struct CommandResult {
  int status = -1;
  std::string out;
};

CommandResult RunCommand(const std::string& cmd) {
  rt::CommandResult run = rt::RunShell(cmd);
  return CommandResult{.status = run.exit_code, .out = std::move(run.output)};
}

std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

class S3IntegrationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const auto s3rver = rt::SourcePath("tools/node_modules/s3rver/bin/s3rver.js");
    if (!std::filesystem::exists(s3rver)) {
      skip_ = "s3rver is not installed: run `npm --prefix tools ci` (tools/package.json)";
      return;
    }
    if (RunCommand("command -v aws").status != 0 || RunCommand("command -v node").status != 0 ||
        RunCommand("command -v curl").status != 0) {
      skip_ = "needs node, curl and awscli (apt-get install nodejs curl awscli)";
      return;
    }
    data_ = new rt::TempDir();
    port_ = rt::FreePort();
    server_ = new rt::ChildProcess(rt::ChildProcess::Start(
        {"node", s3rver.string(), "-d", (data_->path() / "data").string(), "-a", "127.0.0.1", "-p",
         std::to_string(port_), "--silent", "--configure-bucket", kBucket},
        {}, data_->path() / "s3rver.log"));
    if (!rt::WaitForPort(port_, std::chrono::seconds(30))) {
      skip_ = "s3rver did not start: " + rt::ReadFile(data_->path() / "s3rver.log");
    }
  }

  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
    delete data_;
    data_ = nullptr;
  }

  void SetUp() override {
    if (!skip_.empty()) GTEST_SKIP() << skip_;
    http_ = http::MakeClient(io_.get_executor());
    auto s = MakeS3Store(testing::TestS3Config(Endpoint(), kBucket), http_);
    ASSERT_TRUE(s) << s.error().Describe();
    store_ = *s;
  }

  static std::string Endpoint() { return "http://127.0.0.1:" + std::to_string(port_); }

  // awscli against the same server, as an independent client.
  static CommandResult Aws(const std::string& args) {
    return RunCommand(
        "AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_DEFAULT_REGION=us-east-1 "
        "AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null "
        "AWS_SHARED_CREDENTIALS_FILE=/dev/null "
        "aws --endpoint-url " +
        Endpoint() + " " + args);
  }

  nlohmann::json HeadWithAws(const std::string& key) {
    auto r = Aws("s3api head-object --bucket " + std::string(kBucket) + " --key " + Quote(key));
    EXPECT_EQ(r.status, 0) << r.out;
    return nlohmann::json::parse(r.out, nullptr, false);
  }

  std::string GetWithAws(const std::string& key) {
    auto file = data_->path() / "download.bin";
    auto r = Aws("s3api get-object --bucket " + std::string(kBucket) + " --key " + Quote(key) +
                 " " + Quote(file.string()));
    EXPECT_EQ(r.status, 0) << r.out;
    auto content = rt::ReadFile(file);
    std::filesystem::remove(file);
    return content;
  }

  // The upload id of the parts sent must be the one aborted, after the last part.
  static void ExpectAbortSent(const std::vector<std::string>& log) {
    std::string upload_id;
    for (const auto& line : log) {
      auto pos = line.find("uploadId=");
      if (line.starts_with("PUT ") && pos != std::string::npos) {
        upload_id = line.substr(pos + 9, line.find('&', pos) - pos - 9);
      }
    }
    ASSERT_FALSE(upload_id.empty()) << "no part was sent";
    ASSERT_FALSE(log.empty());
    EXPECT_TRUE(log.back().starts_with("DELETE ") &&
                log.back().find("uploadId=" + upload_id) != std::string::npos)
        << log.back();
  }

  template <class T>
  T Run(awaitable<T> t) {
    return testing::RunSync(io_, std::move(t));
  }

  Result<CommitResult> Put(ObjectStore& store, const std::string& key, const std::string& content,
                           PutOptions options, std::string* sha256 = nullptr) {
    auto w = Run(store.OpenWriter(key, std::move(options)));
    if (!w) return std::unexpected(w.error());
    HashingWriter hw(std::move(*w));
    for (size_t pos = 0; pos < content.size(); pos += 1'000'003) {
      auto r = Run(hw.Write(Bytes(std::string_view(content).substr(pos, 1'000'003))));
      if (!r) return std::unexpected(r.error());
    }
    auto c = Run(hw.Commit());
    if (sha256) *sha256 = hw.sha256_hex();
    return c;
  }

  static inline std::string skip_;
  static inline rt::TempDir* data_ = nullptr;
  static inline rt::ChildProcess* server_ = nullptr;
  static inline int port_ = 0;

  asio::io_context io_;
  http::ClientPtr http_;
  ObjectStorePtr store_;
};

TEST_F(S3IntegrationTest, SmallPutWithMetadata) {
  const std::string key = "studio-a/batch 1/job-1.mp4";
  auto c =
      Put(*store_, key, "a small clip",
          {.content_type = "video/mp4", .metadata = {{"model", "veo-3.1"}, {"job-id", "j-123"}}});
  ASSERT_TRUE(c) << c.error().Describe();
  EXPECT_FALSE(c->already_existed);

  auto head = HeadWithAws(key);
  ASSERT_TRUE(head.is_object());
  EXPECT_EQ(head["ContentLength"], 12);
  EXPECT_EQ(head["ContentType"], "video/mp4");
  EXPECT_EQ(head["Metadata"]["model"], "veo-3.1");
  EXPECT_EQ(head["Metadata"]["job-id"], "j-123");
  EXPECT_EQ(GetWithAws(key), "a small clip");

  auto ours = Run(store_->Head(key));
  ASSERT_TRUE(ours) << ours.error().Describe();
  EXPECT_EQ(ours->size, 12u);
  EXPECT_EQ(ours->metadata.at("model"), "veo-3.1");
  EXPECT_EQ("\"" + ours->etag + "\"", head["ETag"].get<std::string>());

  // if_absent: a second writer overwrites nothing.
  auto again = Put(*store_, key, "another take", {});
  ASSERT_TRUE(again) << again.error().Describe();
  EXPECT_TRUE(again->already_existed);
  EXPECT_EQ(GetWithAws(key), "a small clip");

  ASSERT_TRUE(Run(store_->Delete(key)));
  EXPECT_EQ(Run(store_->Head(key)).error().category, ErrorCategory::kNotFound);
  EXPECT_NE(Aws("s3api head-object --bucket reelq-test --key " + Quote(key)).status, 0);
}

TEST_F(S3IntegrationTest, MultipartUploadOf64MiB) {
  const std::string key = "studio-a/batch-2/long-clip.mp4";
  const auto content = testing::MakeContent(64 << 20, 64);
  std::string sha256;
  // Through a pass-through proxy, to see the parts (s3rver's ETag does not show them).
  testing::FakeS3 proxy("127.0.0.1:" + std::to_string(port_));
  auto store = MakeS3Store(testing::TestS3Config(proxy.endpoint(), kBucket), http_);
  ASSERT_TRUE(store);
  auto c =
      Put(**store, key, content, {.content_type = "video/mp4", .metadata = {{"k", "v"}}}, &sha256);
  ASSERT_TRUE(c) << c.error().Describe();
  EXPECT_EQ(c->info.size, content.size());

  auto head = HeadWithAws(key);
  ASSERT_TRUE(head.is_object());
  EXPECT_EQ(head["ContentLength"], 64 << 20);
  EXPECT_EQ(head["Metadata"]["k"], "v");
  int parts = 0, completes = 0;
  for (const auto& line : proxy.Log()) {
    parts += line.starts_with("PUT ") && line.find("partNumber=") != std::string::npos;
    completes += line.starts_with("POST ") && line.find("uploadId=") != std::string::npos;
  }
  EXPECT_EQ(parts, 13);  // 12 parts of 5 MiB and the last 4 MiB
  EXPECT_EQ(completes, 1);
  EXPECT_EQ(Sha256Hex(GetWithAws(key)), sha256);
  EXPECT_EQ(sha256, Sha256Hex(content));
}

TEST_F(S3IntegrationTest, FailedPartAbortsTheUpload) {
  // A fault proxy in front of s3rver answers part 2 with 500 every time.
  testing::FakeS3 proxy("127.0.0.1:" + std::to_string(port_));
  proxy.SetFault([](const testing::FakeRequest& r) {
    return r.IsPart() && r.PartNumber() == 2
               ? testing::FaultAction::Respond(500, "InternalError", "injected")
               : testing::FaultAction::Pass();
  });
  auto config = testing::TestS3Config(proxy.endpoint(), kBucket);
  config.max_attempts = 2;
  auto store = MakeS3Store(config, http_);
  ASSERT_TRUE(store);
  const std::string key = "studio-a/batch-3/failed.mp4";
  auto c = Put(**store, key, testing::MakeContent(20 << 20, 7), {});
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().category, ErrorCategory::kRetryable);

  ExpectAbortSent(proxy.Log());
  EXPECT_NE(Aws("s3api head-object --bucket reelq-test --key " + Quote(key)).status, 0);
}

TEST_F(S3IntegrationTest, AbortSendsAbortMultipartUploadAndPublishesNothing) {
  testing::FakeS3 proxy("127.0.0.1:" + std::to_string(port_));
  auto store = MakeS3Store(testing::TestS3Config(proxy.endpoint(), kBucket), http_);
  ASSERT_TRUE(store);
  auto w = Run((*store)->OpenWriter("studio-a/aborted.mp4", {}));
  ASSERT_TRUE(w);
  ASSERT_TRUE(Run((*w)->Write(Bytes(testing::MakeContent(12 << 20, 8)))));
  Run((*w)->Abort());
  ExpectAbortSent(proxy.Log());
  EXPECT_NE(Aws("s3api head-object --bucket reelq-test --key studio-a/aborted.mp4").status, 0);
}

TEST_F(S3IntegrationTest, PresignedUrlFetchedWithCurl) {
  const std::string key = "studio-b/presigned clip+1.mp4";
  ASSERT_TRUE(Put(*store_, key, "presigned content", {}));
  auto url = store_->PresignGet(key, std::chrono::seconds(300));
  ASSERT_TRUE(url) << url.error().Describe();
  EXPECT_NE(url->find("X-Amz-Expires=300"), std::string::npos);
  auto got = RunCommand("curl -sS --fail " + Quote(*url));
  EXPECT_EQ(got.status, 0) << got.out;
  EXPECT_EQ(got.out, "presigned content");
}

}  // namespace
}  // namespace reelq::storage
