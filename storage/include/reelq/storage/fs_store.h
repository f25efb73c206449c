#pragma once

#include <chrono>
#include <filesystem>

#include "reelq/common/error.h"
#include "reelq/storage/object_store.h"

namespace reelq::storage {

// Objects as files under `root` (created if missing). A writer streams into a hidden temp
// file in the object's directory, fsyncs it, and publishes it atomically on Commit
// (renameat2(RENAME_NOREPLACE), or link() where the filesystem lacks it, when if_absent;
// rename() otherwise). The etag is the hex SHA-256 of the content, computed while writing.
// Content type, SHA-256 and user metadata are stored as user.reelq.* extended attributes, or
// in a hidden ".<name>.meta.json" beside the file where the filesystem has no xattrs.
// Delete, like S3's, succeeds when there is nothing to delete.
struct FsStoreOptions {
  // How many of the store's blocking calls (the fsyncs, renames and directory fsync of a commit,
  // a stat, a small read) run at once, each on its own thread. On a journalled filesystem a
  // commit is mostly waiting for the disk, and concurrent fsyncs share a journal commit: with 2
  // (the fixed size before) full-mode bench-throughput on a journalled ext4 ran 283-369 jobs/s,
  // with 16 737-752, with 64 772 (bench/throughput/README.md). A waiting thread costs a stack.
  int io_threads = 16;
  // A writer's temp files (".<name>.tmp-<random>", ".<name>.meta.tmp-<random>") normally go at
  // Commit or Abort, but a worker killed mid-transfer leaves them (a partial clip each). Making
  // the store starts a sweep, on the store's blocking pool so start-up does not wait for it,
  // that removes those not modified for this long (a live writer's file changes as it writes).
  // 0: no sweep.
  std::chrono::seconds stale_temp_age = std::chrono::hours(24);
};
inline constexpr int kMaxFsIoThreads = 1024;
Result<ObjectStorePtr> MakeFsStore(std::filesystem::path root, FsStoreOptions options = {});

// What one sweep did.
struct FsTempSweep {
  uint64_t removed = 0;    // temp files removed
  uint64_t bytes = 0;      // their sizes
  uint64_t visited = 0;    // directory entries looked at
  bool cut_short = false;  // stopped at max_entries (or a directory it could not read)
};
// The most directory entries one sweep looks at: a bound on the time it holds a pool thread.
inline constexpr uint64_t kMaxFsSweepEntries = 5'000'000;
// The sweep MakeFsStore starts, run here and now: removes under `root` the writers' temp files
// last modified more than `max_age` ago, and nothing else (published objects, their metadata
// sidecars, anything not named like a temp file). Symbolic links are not followed.
FsTempSweep SweepStaleTempFiles(const std::filesystem::path& root, std::chrono::seconds max_age,
                                uint64_t max_entries = kMaxFsSweepEntries);

}  // namespace reelq::storage
