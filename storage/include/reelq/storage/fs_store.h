#pragma once

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
};
inline constexpr int kMaxFsIoThreads = 1024;
Result<ObjectStorePtr> MakeFsStore(std::filesystem::path root, FsStoreOptions options = {});

}  // namespace reelq::storage
