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
Result<ObjectStorePtr> MakeFsStore(std::filesystem::path root);

}  // namespace reelq::storage
