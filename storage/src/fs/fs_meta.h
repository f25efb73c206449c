#pragma once

// Where the filesystem store keeps an object's content type, checksum and user metadata.

#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include "reelq/common/error.h"

namespace reelq::storage::fs {

struct StoredMeta {
  std::string content_type;
  std::string sha256;
  std::map<std::string, std::string> metadata;
};

// Sets user.reelq.* xattrs on an open file. False when the filesystem does not support
// them (the caller then writes a sidecar); an error for anything else.
Result<bool> WriteXattrs(int fd, const StoredMeta& meta);

// The hidden sidecar used without xattrs: "<dir>/.<name>.meta.json".
std::filesystem::path SidecarPath(const std::filesystem::path& object_path);
std::string SidecarJson(const StoredMeta& meta);

// From xattrs when present, else from the sidecar, else empty.
StoredMeta ReadMeta(const std::filesystem::path& object_path);

}  // namespace reelq::storage::fs
