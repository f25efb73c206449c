#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>

#include "process.h"
#include "reelq/storage/factory.h"
#include "run_sync.h"

namespace reelq::storage {
namespace {

class FactoryTest : public ::testing::Test {
 protected:
  Result<ObjectStorePtr> Make(const std::string& yaml) {
    return MakeStore(YAML::Load(yaml), io_.get_executor(), http::MakeClient(io_.get_executor()),
                     dir_.path().string());
  }
  std::string Error(const std::string& yaml) {
    auto s = Make(yaml);
    EXPECT_FALSE(s) << yaml;
    return s ? "" : s.error().message;
  }
  asio::io_context io_;
  reelq::testing::TempDir dir_;
};

TEST_F(FactoryTest, FilesystemIsTheDefaultWithRelativeRoot) {
  auto s = Make("backend: fs\nfs:\n  root: clips\n");
  ASSERT_TRUE(s) << s.error().Describe();
  EXPECT_EQ((*s)->name(), "fs");
  EXPECT_TRUE(std::filesystem::is_directory(dir_.path() / "clips"));
  auto d = Make("{}");
  ASSERT_TRUE(d);
  EXPECT_EQ((*d)->name(), "fs");
}

// storage.fs.io_threads: how many of the store's fsyncs and renames run at once (fs_store.h).
TEST_F(FactoryTest, FilesystemIoThreadsAreReadAndBounded) {
  EXPECT_TRUE(Make("backend: fs\nfs:\n  root: clips\n  io_threads: 32\n"));
  EXPECT_NE(Error("backend: fs\nfs:\n  io_threads: 0\n")
                .find("storage.fs.io_threads: must be between 1 and 1024, got 0"),
            std::string::npos);
  EXPECT_NE(Error("backend: fs\nfs:\n  io_threads: 5000\n")
                .find("storage.fs.io_threads: must be between 1 and 1024, got 5000"),
            std::string::npos);
  EXPECT_NE(Error("backend: fs\nfs:\n  io_threads: many\n")
                .find("storage.fs.io_threads: expected an integer, got 'many'"),
            std::string::npos);
}

TEST_F(FactoryTest, S3FromConfigWithCredentialReferences) {
  ::setenv("REELQ_TEST_S3_SECRET", "secret", 1);
  auto s = Make(R"(
backend: s3
s3:
  endpoint: http://127.0.0.1:9000
  region: us-east-1
  bucket: clips
  addressing: path
  access_key: AKID
  secret_key: {env: REELQ_TEST_S3_SECRET}
  multipart_threshold_mb: 16
  part_size_mb: 8
  parallel_parts: 4
  presign_ttl_seconds: 3600
)");
  ASSERT_TRUE(s) << s.error().Describe();
  EXPECT_EQ((*s)->name(), "s3");
  auto url = (*s)->PresignGet("a/b.mp4", std::chrono::seconds(60));
  ASSERT_TRUE(url);
  EXPECT_TRUE(url->starts_with("http://127.0.0.1:9000/clips/a/b.mp4?X-Amz-Algorithm="));
  EXPECT_NE(url->find("X-Amz-Expires=60&"), std::string::npos) << *url;
  // A clip's URL in its record and webhook asks for 7 days: the configured lifetime caps it.
  auto week = (*s)->PresignGet("a/b.mp4", std::chrono::hours(24 * 7));
  ASSERT_TRUE(week);
  EXPECT_NE(week->find("X-Amz-Expires=3600&"), std::string::npos) << *week;
}

TEST_F(FactoryTest, StrictErrorsNameTheKey) {
  const std::string base =
      "backend: s3\ns3:\n  endpoint: http://h:1\n  bucket: b\n  access_key: A\n"
      "  secret_key: {env: REELQ_TEST_S3_SECRET}\n";
  ::setenv("REELQ_TEST_S3_SECRET", "secret", 1);
  EXPECT_NE(Error("backend: gcs\n").find("storage.backend"), std::string::npos);
  EXPECT_NE(Error("backend: fs\nbogus: 1\n").find("storage.bogus: unknown key"), std::string::npos);
  EXPECT_NE(Error("backend: s3\ns3:\n  endpoint: http://h:1\n").find("storage.s3.bucket"),
            std::string::npos);
  EXPECT_NE(Error(base + "  part_size_mb: 2\n").find("storage.s3.part_size_mb"), std::string::npos);
  EXPECT_NE(Error(base + "  parallel_parts: many\n").find("storage.s3.parallel_parts"),
            std::string::npos);
  EXPECT_NE(Error(base + "  addressing: dns\n").find("storage.s3.addressing"), std::string::npos);
  EXPECT_NE(Error(base + "  endpoint2: x\n").find("storage.s3.endpoint2: unknown key"),
            std::string::npos);
  EXPECT_NE(Error("backend: s3\ns3:\n  endpoint: ftp://h\n  bucket: b\n  access_key: A\n"
                  "  secret_key: {env: REELQ_TEST_S3_SECRET}\n")
                .find("storage.s3.endpoint"),
            std::string::npos);
  EXPECT_NE(Error("backend: s3\ns3:\n  endpoint: http://h\n  bucket: b\n  access_key: A\n"
                  "  secret_key: plain-text\n")
                .find("storage.s3.secret_key: secrets are never written"),
            std::string::npos);
  EXPECT_NE(Error("backend: s3\ns3:\n  endpoint: http://h\n  bucket: b\n  access_key: A\n"
                  "  secret_key: {env: REELQ_TEST_UNSET_VARIABLE}\n")
                .find("REELQ_TEST_UNSET_VARIABLE is not set"),
            std::string::npos);
}

// The benchmark store: `backend: "null"` discards the bytes but reports what it was given, and
// answers Head as if the object were stored. Unquoted, null is YAML's null, which cannot be told
// from an empty value: refused, naming the fix, rather than silently read as fs or as null.
TEST_F(FactoryTest, NullBackendAcceptsAndDiscards) {
  using reelq::storage::testing::Bytes;
  using reelq::storage::testing::RunSync;
  auto made = Make("backend: \"null\"\n");
  ASSERT_TRUE(made) << made.error().Describe();
  EXPECT_EQ((*made)->name(), "null");
  for (const char* yaml : {"backend: null\n", "backend:\n", "backend: ~\n"}) {
    EXPECT_NE(Error(yaml).find("storage.backend: empty"), std::string::npos) << yaml;
  }

  auto store = *made;
  auto writer = RunSync(io_, store->OpenWriter("t/b/j.mp4", {}));
  ASSERT_TRUE(writer);
  ASSERT_TRUE(RunSync(io_, (*writer)->Write(Bytes("0123456789"))));
  auto committed = RunSync(io_, (*writer)->Commit());
  ASSERT_TRUE(committed) << committed.error().Describe();
  EXPECT_EQ(committed->info.size, 10u);
  EXPECT_FALSE(committed->already_existed);
  auto head = RunSync(io_, store->Head("never/written.mp4"));
  ASSERT_TRUE(head);
  EXPECT_EQ(head->key, "never/written.mp4");
  EXPECT_TRUE(RunSync(io_, store->Delete("t/b/j.mp4")));
  auto url = store->PresignGet("t/b/j.mp4", std::chrono::seconds(60));
  ASSERT_TRUE(url);
  EXPECT_EQ(*url, "null:///t/b/j.mp4");
  EXPECT_TRUE(std::filesystem::is_empty(dir_.path()));
}

}  // namespace
}  // namespace reelq::storage
