// The S3 backend against a fault-injecting fake S3 (tests/storage/fake_s3.h): canned 403,
// a bucket in another region, 404 NoSuchBucket, 503 SlowDown, dropped connections mid-part, a part
// that never succeeds. Each either fails with a clear error or is retried, and nothing is lost or
// left behind.

#include <gtest/gtest.h>

#include "fake_s3.h"
#include "reelq/storage/hashing_writer.h"
#include "reelq/storage/s3_store.h"
#include "run_sync.h"
#include "s3_test_util.h"

namespace reelq::storage {
namespace {

using testing::Bytes;
using testing::FakeRequest;
using testing::FaultAction;

constexpr char kBucket[] = "clips";

class S3FaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    http_ = http::MakeClient(io_.get_executor());
    auto s = MakeS3Store(testing::TestS3Config(fake_.endpoint(), kBucket), http_);
    ASSERT_TRUE(s) << s.error().Describe();
    store_ = *s;
  }

  template <class T>
  T Run(awaitable<T> t) {
    return testing::RunSync(io_, std::move(t));
  }

  // Streams `content` in odd-sized chunks; the first error (write or commit) is returned.
  Result<CommitResult> Put(const std::string& key, const std::string& content,
                           PutOptions options = {}) {
    auto w = Run(store_->OpenWriter(key, std::move(options)));
    if (!w) return std::unexpected(w.error());
    for (size_t pos = 0; pos < content.size(); pos += 999'983) {
      auto r = Run((*w)->Write(Bytes(std::string_view(content).substr(pos, 999'983))));
      if (!r) return std::unexpected(r.error());
    }
    return Run((*w)->Commit());
  }

  int Count(std::string_view prefix) {
    int n = 0;
    for (const auto& line : fake_.Log()) n += line.starts_with(prefix) ? 1 : 0;
    return n;
  }

  asio::io_context io_;
  testing::FakeS3 fake_;
  http::ClientPtr http_;
  ObjectStorePtr store_;
};

TEST_F(S3FaultTest, SignatureDoesNotMatchIsAnAuthErrorAndNotRetried) {
  fake_.SetFault([](const FakeRequest& r) {
    return r.method == "PUT" ? FaultAction::Respond(403, "SignatureDoesNotMatch",
                                                    "The request signature we calculated does "
                                                    "not match the signature you provided.")
                             : FaultAction::Pass();
  });
  auto c = Put("t/a.mp4", "small clip");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().category, ErrorCategory::kAuthFailed);
  EXPECT_EQ(c.error().provider_code, "SignatureDoesNotMatch");
  EXPECT_EQ(c.error().http_status, 403);
  EXPECT_NE(c.error().message.find("SignatureDoesNotMatch"), std::string::npos);
  EXPECT_NE(c.error().message.find("s3://clips/t/a.mp4"), std::string::npos) << c.error().message;
  EXPECT_EQ(Count("PUT "), 1);  // never retried
}

TEST_F(S3FaultTest, AccessDeniedOnHead) {
  fake_.SetFault([](const FakeRequest& r) {
    return r.method == "HEAD" ? FaultAction::Respond(403, "AccessDenied") : FaultAction::Pass();
  });
  auto h = Run(store_->Head("t/a.mp4"));
  ASSERT_FALSE(h);
  EXPECT_EQ(h.error().category, ErrorCategory::kAuthFailed);  // HEAD has no body: by status
  EXPECT_EQ(Count("HEAD "), 1);
  // S3 answers a HEAD of a missing key 403 without s3:ListBucket: the message says so.
  EXPECT_NE(h.error().message.find("s3:ListBucket"), std::string::npos) << h.error().message;
  EXPECT_NE(h.error().message.find("s3:GetObject"), std::string::npos) << h.error().message;
  EXPECT_NE(h.error().message.find("HEAD s3://clips/t/a.mp4"), std::string::npos);
  // if_absent checks with HEAD first: the same clear error, nothing uploaded.
  auto c = Put("t/a.mp4", "clip");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().category, ErrorCategory::kAuthFailed);
  EXPECT_NE(c.error().message.find("s3:ListBucket"), std::string::npos) << c.error().message;
  EXPECT_EQ(Count("PUT "), 0);
}

// A bucket in another region than storage.s3.region (default us-east-1): AWS answers HEAD with
// 301 or 400, no body, and the bucket's region in x-amz-bucket-region. The error names it and
// the setting to change, for the store's Head and for a write's if_absent check alike.
TEST_F(S3FaultTest, ABucketInAnotherRegionIsNamedWithTheSettingToChange) {
  for (int status : {301, 400}) {
    SCOPED_TRACE(status);
    fake_.SetFault([status](const FakeRequest& r) {
      return r.method == "HEAD"
                 ? FaultAction::RespondBare(status, {{"x-amz-bucket-region", "eu-west-1"}})
                 : FaultAction::Pass();
    });
    auto h = Run(store_->Head("t/a.mp4"));
    ASSERT_FALSE(h);
    EXPECT_EQ(h.error().category, ErrorCategory::kInvalidRequest);
    EXPECT_NE(h.error().message.find("bucket \"clips\" is in region eu-west-1, not us-east-1"),
              std::string::npos)
        << h.error().message;
    EXPECT_NE(h.error().message.find("set storage.s3.region: eu-west-1"), std::string::npos)
        << h.error().message;
    auto c = Put("t/a.mp4", "clip");
    ASSERT_FALSE(c);
    EXPECT_NE(c.error().message.find("set storage.s3.region: eu-west-1"), std::string::npos)
        << c.error().message;
  }
  EXPECT_EQ(Count("PUT "), 0);
  // A redirect that names no region still points at the region and endpoint settings.
  fake_.SetFault([](const FakeRequest& r) {
    return r.method == "HEAD" ? FaultAction::RespondBare(301) : FaultAction::Pass();
  });
  auto h = Run(store_->Head("t/a.mp4"));
  ASSERT_FALSE(h);
  EXPECT_EQ(h.error().category, ErrorCategory::kInvalidRequest);
  EXPECT_NE(h.error().message.find("storage.s3.region (us-east-1)"), std::string::npos)
      << h.error().message;
  EXPECT_NE(h.error().message.find("storage.s3.endpoint"), std::string::npos);
}

TEST_F(S3FaultTest, NoSuchBucketNamesTheBucket) {
  fake_.SetFault([](const FakeRequest& r) {
    return r.method == "POST"
               ? FaultAction::Respond(404, "NoSuchBucket", "The specified bucket does not exist")
               : FaultAction::Pass();
  });
  auto c = Put("t/big.mp4", testing::MakeContent(6 << 20, 1));
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().category, ErrorCategory::kInvalidRequest);
  EXPECT_NE(c.error().message.find("bucket \"clips\""), std::string::npos) << c.error().message;
  EXPECT_NE(c.error().message.find("storage.s3.bucket"), std::string::npos);
}

TEST_F(S3FaultTest, SlowDownIsRetriedAndNothingIsLost) {
  int slowdowns = 0;
  fake_.SetFault([&](const FakeRequest& r) {
    if (r.IsPart() && r.PartNumber() == 2 && slowdowns < 2) {
      ++slowdowns;
      return FaultAction::Respond(503, "SlowDown", "Please reduce your request rate.");
    }
    return FaultAction::Pass();
  });
  const auto content = testing::MakeContent(12 << 20, 2);
  auto c = Put("t/slow.mp4", content);
  ASSERT_TRUE(c) << c.error().Describe();
  EXPECT_EQ(slowdowns, 2);
  auto stored = fake_.Object("/clips/t/slow.mp4");
  ASSERT_TRUE(stored);
  EXPECT_TRUE(stored->content == content) << "stored " << stored->content.size() << " bytes";
  EXPECT_EQ(fake_.OpenUploads(), 0u);
}

TEST_F(S3FaultTest, ConnectionDroppedMidPartIsRetried) {
  bool dropped = false;
  fake_.SetFault([&](const FakeRequest& r) {
    if (r.IsPart() && r.PartNumber() == 1 && !dropped) {
      dropped = true;
      return FaultAction::CloseMidBody();
    }
    return FaultAction::Pass();
  });
  const auto content = testing::MakeContent(11 << 20, 3);
  auto w = Run(store_->OpenWriter("t/dropped.mp4", {}));
  ASSERT_TRUE(w);
  HashingWriter hw(std::move(*w));
  for (size_t pos = 0; pos < content.size(); pos += 1 << 20) {
    ASSERT_TRUE(Run(hw.Write(Bytes(std::string_view(content).substr(pos, 1 << 20)))));
  }
  auto c = Run(hw.Commit());
  ASSERT_TRUE(c) << c.error().Describe();
  EXPECT_TRUE(dropped);
  EXPECT_EQ(c->info.size, content.size());
  auto stored = fake_.Object("/clips/t/dropped.mp4");
  ASSERT_TRUE(stored);
  EXPECT_EQ(Sha256Hex(stored->content), hw.sha256_hex());
}

TEST_F(S3FaultTest, PartThatKeepsFailingAbortsTheUpload) {
  fake_.SetFault([](const FakeRequest& r) {
    return r.IsPart() && r.PartNumber() == 2 ? FaultAction::Respond(500, "InternalError")
                                             : FaultAction::Pass();
  });
  auto c = Put("t/failing.mp4", testing::MakeContent(16 << 20, 4));
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().category, ErrorCategory::kRetryable);
  EXPECT_EQ(c.error().provider_code, "InternalError");
  EXPECT_NE(c.error().message.find("part 2"), std::string::npos) << c.error().message;
  EXPECT_NE(c.error().message.find("gave up after 4 attempts"), std::string::npos);
  EXPECT_EQ(Count("PUT /clips/t/failing.mp4?partNumber=2&"), 4);
  EXPECT_EQ(Count("DELETE /clips/t/failing.mp4?uploadId="), 1);
  EXPECT_EQ(fake_.OpenUploads(), 0u);
  EXPECT_FALSE(fake_.Object("/clips/t/failing.mp4"));
}

TEST_F(S3FaultTest, DroppedWriterAbortsItsUpload) {
  {
    auto w = Run(store_->OpenWriter("t/dropped-writer.mp4", {}));
    ASSERT_TRUE(w);
    const auto content = testing::MakeContent(11 << 20, 5);
    ASSERT_TRUE(Run((*w)->Write(Bytes(content))));
    EXPECT_EQ(fake_.OpenUploads(), 1u);
  }
  // The abort runs in the background on the writer's executor.
  for (int i = 0; i < 200 && fake_.OpenUploads() > 0; ++i) {
    io_.restart();
    io_.run_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(fake_.OpenUploads(), 0u);
  EXPECT_FALSE(fake_.Object("/clips/t/dropped-writer.mp4"));
}

TEST_F(S3FaultTest, IfNoneMatchPreconditionFailedMeansAlreadyExisted) {
  // The HEAD says absent, then another writer wins before our PUT lands.
  fake_.SetFault([](const FakeRequest& r) {
    return r.method == "PUT" ? FaultAction::Respond(412, "PreconditionFailed")
                             : FaultAction::Pass();
  });
  auto c = Put("t/raced.mp4", "ours");
  // Our fake holds nothing, so the follow-up HEAD says not found: a clear error, no overwrite.
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().category, ErrorCategory::kNotFound);
  fake_.SetFault(nullptr);
  ASSERT_TRUE(Put("t/raced.mp4", "theirs"));
  auto again = Put("t/raced.mp4", "ours");
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->already_existed);
  EXPECT_EQ(fake_.Object("/clips/t/raced.mp4")->content, "theirs");
}

// A conditional PUT that landed but whose answer was lost is sent again and answered 412: the
// object is this writer's own (its size and metadata), not another's. A worker deletes the clip
// of a job cancelled before it finished only when it published it, so "already existed" here
// left a cancelled job's clip in the bucket.
TEST_F(S3FaultTest, AConditionalPutSentAgainAfterItsAnswerWasLostIsOurs) {
  bool lost = false;
  fake_.SetFault([&](const FakeRequest& r) {
    if (r.method == "PUT" && !lost) {
      lost = true;
      return FaultAction::LoseAnswer();
    }
    return FaultAction::Pass();
  });
  const PutOptions ours{.metadata = {{"job-id", "j1"}, {"upstream-id", "u1"}}, .if_absent = true};
  auto c = Put("t/lost-answer.mp4", "our clip", ours);
  ASSERT_TRUE(c) << c.error().Describe();
  EXPECT_TRUE(lost);
  EXPECT_EQ(Count("PUT /clips/t/lost-answer.mp4"), 2);
  EXPECT_FALSE(c->already_existed) << "our own write was taken for another's";
  EXPECT_EQ(fake_.Object("/clips/t/lost-answer.mp4")->content, "our clip");

  // Another writer's object (other metadata) found the same way stays another's.
  lost = false;
  ASSERT_TRUE(Put("t/theirs.mp4", "their clip",
                  {.metadata = {{"job-id", "j0"}, {"upstream-id", "u0"}}, .if_absent = true}));
  bool looked = false;
  fake_.SetFault([&](const FakeRequest& r) {
    // The first look finds nothing (theirs lands just after it); our first try is dropped
    // before it is carried out, and the second meets theirs.
    if (r.method == "HEAD" && !looked) {
      looked = true;
      return FaultAction::RespondBare(404);
    }
    if (r.method == "PUT" && !lost) {
      lost = true;
      return FaultAction::CloseMidBody();
    }
    return FaultAction::Pass();
  });
  auto other = Put("t/theirs.mp4", "our clip", ours);
  ASSERT_TRUE(other) << other.error().Describe();
  EXPECT_TRUE(other->already_existed);
  EXPECT_EQ(fake_.Object("/clips/t/theirs.mp4")->content, "their clip");
}

}  // namespace
}  // namespace reelq::storage
