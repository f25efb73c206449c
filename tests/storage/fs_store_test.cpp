#include <gtest/gtest.h>
#include <sys/xattr.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <thread>

#include "process.h"
#include "reelq/storage/fs_store.h"
#include "reelq/storage/hashing_writer.h"
#include "reelq/storage/sha256.h"
#include "run_sync.h"
#include "src/blocking.h"

namespace reelq::storage {
namespace {

using testing::Bytes;
namespace stdfs = std::filesystem;

// Holds every one of a blocking pool's `threads` threads busy until Release (or destruction), so a
// test can see what waits for the pool and what does not.
class PoolHeldBusy {
 public:
  PoolHeldBusy(asio::thread_pool& pool, int threads) {
    std::shared_future<void> released = release_.get_future().share();
    for (int i = 0; i < threads; ++i) {
      asio::post(pool, [this, released] {
        ++busy_;
        released.wait();
      });
    }
    while (busy_ < threads) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~PoolHeldBusy() { Release(); }
  void Release() {
    if (!released_) release_.set_value();
    released_ = true;
  }

 private:
  std::promise<void> release_;
  std::atomic<int> busy_ = 0;
  bool released_ = false;
};

class FsStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // No sweep of its own: the sweep's tests run it when they mean to.
    auto s = MakeFsStore(dir_.path() / "root", {.stale_temp_age = std::chrono::seconds(0)});
    ASSERT_TRUE(s) << s.error().Describe();
    store_ = *s;
  }

  template <class T>
  T Run(awaitable<T> t) {
    return testing::RunSync(io_, std::move(t));
  }

  ObjectWriterPtr Open(const std::string& key, PutOptions options = {}) {
    auto w = Run(store_->OpenWriter(key, std::move(options)));
    EXPECT_TRUE(w) << w.error().Describe();
    return w ? std::move(*w) : nullptr;
  }

  Result<CommitResult> Put(const std::string& key, const std::string& content,
                           PutOptions options = {}) {
    auto w = Open(key, std::move(options));
    if (!w) return MakeError(ErrorCategory::kInternal, "open failed");
    for (size_t pos = 0; pos < content.size(); pos += 7) {
      auto r = Run(w->Write(Bytes(std::string_view(content).substr(pos, 7))));
      if (!r) return std::unexpected(r.error());
    }
    return Run(w->Commit());
  }

  // Every file under the root, hidden ones included.
  std::vector<std::string> Files() {
    std::vector<std::string> out;
    for (auto& e : stdfs::recursive_directory_iterator(dir_.path() / "root")) {
      if (e.is_regular_file()) out.push_back(stdfs::relative(e.path(), dir_.path() / "root"));
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  reelq::testing::TempDir dir_;
  asio::io_context io_;
  ObjectStorePtr store_;
};

TEST_F(FsStoreTest, StreamingWriteThenCommitPublishesAtomically) {
  const std::string content(100'003, 'x');
  auto w = Open("studio-a/batch-1/job-1.mp4",
                {.content_type = "video/mp4", .metadata = {{"model", "veo-3.1"}}});
  ASSERT_TRUE(w);
  ASSERT_TRUE(Run(w->Write(Bytes(content.substr(0, 50'000)))));
  // Nothing is visible under the key before Commit.
  EXPECT_EQ(Run(store_->Head("studio-a/batch-1/job-1.mp4")).error().category,
            ErrorCategory::kNotFound);
  ASSERT_TRUE(Run(w->Write(Bytes(content.substr(50'000)))));
  auto c = Run(w->Commit());
  ASSERT_TRUE(c) << c.error().Describe();
  EXPECT_FALSE(c->already_existed);
  EXPECT_EQ(c->info.size, content.size());
  EXPECT_EQ(c->info.etag, Sha256Hex(content));  // the fs etag is the SHA-256 of the content
  EXPECT_EQ(reelq::testing::ReadFile(dir_.path() / "root/studio-a/batch-1/job-1.mp4"), content);
  EXPECT_EQ(Files(), std::vector<std::string>{"studio-a/batch-1/job-1.mp4"});  // no temp left

  auto h = Run(store_->Head("studio-a/batch-1/job-1.mp4"));
  ASSERT_TRUE(h) << h.error().Describe();
  EXPECT_EQ(h->size, content.size());
  EXPECT_EQ(h->etag, Sha256Hex(content));
  EXPECT_EQ(h->sha256, Sha256Hex(content));
  EXPECT_EQ(h->content_type, "video/mp4");
  EXPECT_EQ(h->metadata, (std::map<std::string, std::string>{{"model", "veo-3.1"}}));
}

TEST_F(FsStoreTest, IfAbsentNeverOverwrites) {
  ASSERT_TRUE(Put("t/j.mp4", "first", {.metadata = {{"attempt", "1"}}}));
  auto second = Put("t/j.mp4", "second attempt", {.metadata = {{"attempt", "2"}}});
  ASSERT_TRUE(second) << second.error().Describe();
  EXPECT_TRUE(second->already_existed);
  EXPECT_EQ(second->info.size, 5u);
  EXPECT_EQ(second->info.metadata.at("attempt"), "1");
  EXPECT_EQ(reelq::testing::ReadFile(dir_.path() / "root/t/j.mp4"), "first");
  EXPECT_EQ(Files(), std::vector<std::string>{"t/j.mp4"});

  // Two writers racing for the same key: exactly one publishes.
  auto a = Open("t/race.mp4");
  auto b = Open("t/race.mp4");
  ASSERT_TRUE(Run(a->Write(Bytes("from a"))));
  ASSERT_TRUE(Run(b->Write(Bytes("from b"))));
  auto ca = Run(a->Commit());
  auto cb = Run(b->Commit());
  ASSERT_TRUE(ca && cb);
  EXPECT_FALSE(ca->already_existed);
  EXPECT_TRUE(cb->already_existed);
  EXPECT_EQ(reelq::testing::ReadFile(dir_.path() / "root/t/race.mp4"), "from a");

  // Without if_absent the object is replaced.
  auto replaced = Put("t/j.mp4", "replaced", {.if_absent = false});
  ASSERT_TRUE(replaced);
  EXPECT_FALSE(replaced->already_existed);
  EXPECT_EQ(reelq::testing::ReadFile(dir_.path() / "root/t/j.mp4"), "replaced");
}

TEST_F(FsStoreTest, AbortAndDestructionLeaveNothing) {
  {
    auto w = Open("t/aborted.mp4");
    ASSERT_TRUE(Run(w->Write(Bytes("partial"))));
    Run(w->Abort());
    EXPECT_FALSE(Run(w->Write(Bytes("more"))));  // a finished writer refuses more bytes
  }
  {
    auto w = Open("t/dropped.mp4");
    ASSERT_TRUE(Run(w->Write(Bytes("partial"))));
  }  // destroyed without Commit
  EXPECT_TRUE(Files().empty());
  EXPECT_EQ(Run(store_->Head("t/aborted.mp4")).error().category, ErrorCategory::kNotFound);
}

TEST_F(FsStoreTest, InvalidKeysAreRejectedNamingTheKey) {
  for (std::string key :
       {std::string(""), std::string("/abs/x.mp4"), std::string("a/../b.mp4"),
        std::string("a//b.mp4"), std::string("a/b/"), std::string("./a"), std::string("a/.hidden"),
        std::string("a\0b", 3), std::string("a\nb"), std::string(1100, 'k')}) {
    auto w = Run(store_->OpenWriter(key, {}));
    ASSERT_FALSE(w) << "accepted key: " << key;
    EXPECT_EQ(w.error().category, ErrorCategory::kInvalidRequest);
    EXPECT_NE(w.error().message.find("invalid object key \""), std::string::npos)
        << w.error().message;
    EXPECT_FALSE(Run(store_->Head(key)));
    EXPECT_FALSE(Run(store_->Delete(key)));
    EXPECT_FALSE(store_->PresignGet(key, std::chrono::seconds(60)));
  }
  auto w = Run(store_->OpenWriter("a/../b.mp4", {}));
  EXPECT_NE(w.error().message.find("a/../b.mp4"), std::string::npos);
  EXPECT_NE(w.error().message.find("\"..\""), std::string::npos);
  // Nothing escaped the root.
  EXPECT_FALSE(stdfs::exists(dir_.path() / "abs"));
  EXPECT_FALSE(stdfs::exists(dir_.path() / "b.mp4"));
}

TEST_F(FsStoreTest, InvalidMetadataIsRejected) {
  auto w = Run(store_->OpenWriter("k.mp4", {.metadata = {{"Bad Name", "v"}}}));
  ASSERT_FALSE(w);
  EXPECT_NE(w.error().message.find("Bad Name"), std::string::npos);
}

TEST_F(FsStoreTest, HeadDeleteAndPresign) {
  EXPECT_EQ(Run(store_->Head("t/none.mp4")).error().category, ErrorCategory::kNotFound);
  ASSERT_TRUE(Put("t/clip one.mp4", "data"));
  auto url = store_->PresignGet("t/clip one.mp4", std::chrono::seconds(3600));
  ASSERT_TRUE(url);
  auto root = stdfs::canonical(dir_.path() / "root").string();
  EXPECT_EQ(*url, "file://" + root + "/t/clip%20one.mp4");
  ASSERT_TRUE(Run(store_->Delete("t/clip one.mp4")));
  EXPECT_EQ(Run(store_->Head("t/clip one.mp4")).error().category, ErrorCategory::kNotFound);
  EXPECT_TRUE(Run(store_->Delete("t/clip one.mp4")));  // like S3: nothing to delete is fine
  EXPECT_TRUE(Files().empty());
}

TEST_F(FsStoreTest, KeyUnderAnExistingObjectIsAClearError) {
  ASSERT_TRUE(Put("t/a.mp4", "x"));
  auto w = Run(store_->OpenWriter("t/a.mp4/b.mp4", {}));
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error().category, ErrorCategory::kInvalidRequest);
  EXPECT_NE(w.error().message.find("t/a.mp4/b.mp4"), std::string::npos) << w.error().message;
}

TEST_F(FsStoreTest, HashingWriterChecksTheStoresChecksum) {
  const std::string content = "a clip's bytes";
  auto w = Open("t/hashed.mp4");
  HashingWriter hw(std::move(w));
  ASSERT_TRUE(Run(hw.Write(Bytes(content))));
  auto c = Run(hw.Commit());
  ASSERT_TRUE(c) << c.error().Describe();
  EXPECT_EQ(hw.sha256_hex(), Sha256Hex(content));
  EXPECT_EQ(hw.bytes(), content.size());
  EXPECT_EQ(c->info.sha256, hw.sha256_hex());
}

// Checks the sidecar path used where the filesystem has no user xattrs.
TEST_F(FsStoreTest, MetadataComesFromSidecarWithoutXattrs) {
  ASSERT_TRUE(Put("t/s.mp4", "data", {.content_type = "video/mp4", .metadata = {{"k", "v"}}}));
  auto path = dir_.path() / "root/t/s.mp4";
  for (const char* name : {"user.reelq.content_type", "user.reelq.sha256", "user.reelq.meta.k"}) {
    ::removexattr(path.c_str(), name);
  }
  std::ofstream(dir_.path() / "root/t/.s.mp4.meta.json")
      << R"({"content_type":"video/webm","sha256":"abc","metadata":{"k":"from-sidecar"}})";
  auto h = Run(store_->Head("t/s.mp4"));
  ASSERT_TRUE(h);
  EXPECT_EQ(h->content_type, "video/webm");
  EXPECT_EQ(h->metadata.at("k"), "from-sidecar");
  // A damaged sidecar loses metadata, not the object.
  std::ofstream(dir_.path() / "root/t/.s.mp4.meta.json") << "{not json";
  h = Run(store_->Head("t/s.mp4"));
  ASSERT_TRUE(h);
  EXPECT_EQ(h->size, 4u);
  EXPECT_TRUE(h->metadata.empty());
}

// A worker SIGKILLed mid-transfer leaves its writer's hidden temp files (a partial clip each)
// that no Commit or Abort will remove. The sweep removes those of them older than the bound and
// nothing else: not a fresh temp file (a live writer's), not a published clip however old, not a
// metadata sidecar, not a hidden file merely named alike.
void Touch(const stdfs::path& path, const std::string& content, std::chrono::hours age) {
  stdfs::create_directories(path.parent_path());
  std::ofstream(path) << content;
  stdfs::last_write_time(path, stdfs::file_time_type::clock::now() - age);
}

TEST_F(FsStoreTest, TheSweepRemovesOnlyStaleTempFiles) {
  using std::chrono::hours;
  ASSERT_TRUE(Put("studio/b1/job-1.mp4", "a published clip"));
  const auto root = dir_.path() / "root";
  stdfs::last_write_time(root / "studio/b1/job-1.mp4",
                         stdfs::file_time_type::clock::now() - hours(100));
  Touch(root / "studio/b1/.job-1.mp4.meta.json", "{}", hours(100));
  Touch(root / "studio/b1/.job-2.mp4.tmp-0123456789abcdef", std::string(5000, 'p'), hours(25));
  Touch(root / "studio/b1/.job-2.mp4.meta.tmp-00000000ffffffff", "{}", hours(25));
  Touch(root / "studio/b2/deeper/.job-3.mp4.tmp-aaaaaaaaaaaaaaaa", "p", hours(48));
  Touch(root / "studio/b1/.job-4.mp4.tmp-fedcba9876543210", "live", hours(1));
  Touch(root / "studio/b1/.job-5.mp4.tmp-not-a-writers", "kept", hours(48));
  auto live = Open("studio/b1/job-6.mp4");  // a writer in progress: its temp file is fresh
  ASSERT_TRUE(live);

  const FsTempSweep swept = SweepStaleTempFiles(root, hours(24));
  EXPECT_EQ(swept.removed, 3u);
  EXPECT_EQ(swept.bytes, 5000u + 2u + 1u);
  EXPECT_FALSE(swept.cut_short);
  auto files = Files();
  EXPECT_EQ(std::count_if(files.begin(), files.end(),
                          [](const std::string& f) { return f.find(".job-6.mp4.tmp-") != f.npos; }),
            1);
  std::erase_if(files, [](const std::string& f) { return f.find(".job-6.mp4.tmp-") != f.npos; });
  EXPECT_EQ(files,
            (std::vector<std::string>{
                "studio/b1/.job-1.mp4.meta.json", "studio/b1/.job-4.mp4.tmp-fedcba9876543210",
                "studio/b1/.job-5.mp4.tmp-not-a-writers", "studio/b1/job-1.mp4"}));
  ASSERT_TRUE(Run(live->Write(Bytes("still going"))));
  ASSERT_TRUE(Run(live->Commit()));

  // A bound on the entries looked at: the sweep stops there and says so.
  Touch(root / "studio/b1/.job-7.mp4.tmp-0123456789abcdef", "p", hours(48));
  const FsTempSweep cut = SweepStaleTempFiles(root, hours(24), 2);
  EXPECT_TRUE(cut.cut_short);
  EXPECT_EQ(cut.visited, 3u);
}

// Making the store starts the sweep without waiting for it: with every thread of the store's
// pool busy, MakeFsStore returns and the stale temp file is still there; once a thread is free
// it goes, and the clip and the fresh temp file stay.
TEST(FsStoreSweepTest, MakingTheStoreSweepsInTheBackground) {
  using std::chrono::hours;
  reelq::testing::TempDir dir;
  const auto root = dir.path() / "root";
  Touch(root / "t/.a.mp4.tmp-0123456789abcdef", "partial", hours(30));
  Touch(root / "t/.b.mp4.tmp-0123456789abcdef", "live", hours(0));
  Touch(root / "t/c.mp4", "clip", hours(30));

  constexpr int kThreads = 5;  // a pool size no other test here uses
  asio::thread_pool& pool = detail::BlockingPool(kThreads);
  PoolHeldBusy held(pool, kThreads);

  auto store = MakeFsStore(root, {.io_threads = kThreads});
  ASSERT_TRUE(store) << store.error().Describe();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_TRUE(stdfs::exists(root / "t/.a.mp4.tmp-0123456789abcdef"));  // not swept on the caller
  held.Release();
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (stdfs::exists(root / "t/.a.mp4.tmp-0123456789abcdef") &&
         std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_FALSE(stdfs::exists(root / "t/.a.mp4.tmp-0123456789abcdef"));
  EXPECT_TRUE(stdfs::exists(root / "t/.b.mp4.tmp-0123456789abcdef"));
  EXPECT_TRUE(stdfs::exists(root / "t/c.mp4"));

  // stale_temp_age 0: no sweep.
  Touch(root / "t/.d.mp4.tmp-0123456789abcdef", "partial", hours(30));
  ASSERT_TRUE(MakeFsStore(root, {.io_threads = kThreads, .stale_temp_age = hours(0)}));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_TRUE(stdfs::exists(root / "t/.d.mp4.tmp-0123456789abcdef"));
}

// Opening a writer (stat, mkdir, a directory fsync, open) runs on the store's pool, not on the
// caller's event loop: with every pool thread busy the open waits, and no temp file appears,
// until one is free.
TEST(FsStoreOpenWriterTest, OpensOnThePoolNotOnTheCallersLoop) {
  reelq::testing::TempDir dir;
  constexpr int kThreads = 6;  // a pool size no other test here uses
  auto store = MakeFsStore(dir.path() / "root",
                           {.io_threads = kThreads, .stale_temp_age = std::chrono::seconds(0)});
  ASSERT_TRUE(store) << store.error().Describe();
  asio::thread_pool& pool = detail::BlockingPool(kThreads);
  PoolHeldBusy held(pool, kThreads);

  asio::io_context io;
  auto opened = asio::co_spawn(io, (*store)->OpenWriter("t/new-dir/a.mp4", {}), asio::use_future);
  io.run_for(std::chrono::milliseconds(100));
  EXPECT_EQ(opened.wait_for(std::chrono::seconds(0)), std::future_status::timeout);
  EXPECT_FALSE(stdfs::exists(dir.path() / "root/t/new-dir"));
  held.Release();
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (opened.wait_for(std::chrono::seconds(0)) != std::future_status::ready &&
         std::chrono::steady_clock::now() < until) {
    io.restart();
    io.run_one_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(opened.wait_for(std::chrono::seconds(0)), std::future_status::ready);
  auto writer = opened.get();
  ASSERT_TRUE(writer) << writer.error().Describe();
  EXPECT_TRUE(stdfs::exists(dir.path() / "root/t/new-dir"));
  // And the writer it gave works as before.
  ASSERT_TRUE(testing::RunSync(io, (*writer)->Write(Bytes("clip"))));
  auto committed = testing::RunSync(io, (*writer)->Commit());
  ASSERT_TRUE(committed) << committed.error().Describe();
  EXPECT_EQ(committed->info.size, 4u);
}

// The store's blocking calls (a commit's fsyncs and renames, a stat) run on
// `storage.fs.io_threads` threads: on a journalled disk a commit mostly waits, and two threads
// (the fixed size before) held full-mode throughput to 283-369 jobs/s where 16 gave 737-752
// (bench/throughput/README.md). A pool of N runs N calls at once, and never more.
class BlockingPoolTest : public ::testing::Test {
 protected:
  // Runs `calls` blocking calls on the pool of `threads` at once; each waits (up to `wait`) for
  // all of them to have started. Returns the most that were running together.
  int MostAtOnce(int threads, int calls, std::chrono::milliseconds wait) {
    asio::thread_pool& pool = detail::BlockingPool(threads);
    std::mutex mutex;
    std::condition_variable changed;
    int started = 0, running = 0, most = 0;
    auto call = [&] {
      std::unique_lock lock(mutex);
      ++started;
      most = std::max(most, ++running);
      changed.notify_all();
      changed.wait_for(lock, wait, [&] { return started == calls; });
      --running;
      return 0;
    };
    std::vector<std::future<int>> done;
    for (int i = 0; i < calls; ++i) {
      done.push_back(asio::co_spawn(io_, detail::RunBlocking(pool, call), asio::use_future));
    }
    io_.restart();
    io_.run();
    for (auto& d : done) d.get();
    return most;
  }
  asio::io_context io_;
};

TEST_F(BlockingPoolTest, RunsAsManyCallsAtOnceAsItHasThreads) {
  EXPECT_EQ(MostAtOnce(12, 12, std::chrono::seconds(20)), 12);
  EXPECT_EQ(MostAtOnce(2, 5, std::chrono::milliseconds(100)), 2);
  // One pool per size for the process's life: asking again gives the same threads.
  EXPECT_EQ(&detail::BlockingPool(12), &detail::BlockingPool(12));
  EXPECT_NE(&detail::BlockingPool(12), &detail::BlockingPool(2));
}

TEST(FsStoreOptionsTest, IoThreadsOutOfRangeIsRefusedByName) {
  reelq::testing::TempDir dir;
  for (int threads : {0, -1, kMaxFsIoThreads + 1}) {
    auto s = MakeFsStore(dir.path() / "root", {.io_threads = threads});
    ASSERT_FALSE(s) << threads;
    EXPECT_NE(s.error().message.find("storage.fs.io_threads: must be between 1 and 1024"),
              std::string::npos)
        << s.error().message;
  }
  EXPECT_TRUE(MakeFsStore(dir.path() / "root", {.io_threads = 3}));
}

// The store runs its blocking calls on a pool of the size it was given: opening one of a size
// this process has not used adds that many threads.
TEST(FsStoreOptionsTest, TheStoreStartsAsManyThreadsAsItIsGiven) {
  auto threads = [] {
    return std::distance(stdfs::directory_iterator("/proc/self/task"), stdfs::directory_iterator());
  };
  reelq::testing::TempDir dir;
  const auto before = threads();
  auto store = MakeFsStore(dir.path() / "root", {.io_threads = 7});
  ASSERT_TRUE(store) << store.error().Describe();
  EXPECT_EQ(threads() - before, 7);
}

}  // namespace
}  // namespace reelq::storage
