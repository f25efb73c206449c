#pragma once

#include <map>
#include <string>
#include <string_view>

#include "reelq/common/error.h"

namespace reelq::storage {

inline constexpr size_t kMaxKeyBytes = 1024;     // S3's limit
inline constexpr size_t kMaxSegmentBytes = 255;  // a file name

// Object keys are relative paths of '/'-separated segments: no leading '/', no empty, "." or
// ".." segment, no NUL or other control character, and no segment starting with '.' (names
// starting with '.' are the filesystem store's temp and metadata files). The same rules for
// every backend, so that a key that works on one works on all. Errors are kInvalidRequest and
// quote the key.
Result<void> ValidateKey(std::string_view key);

// User metadata: names of [a-z0-9-_] (S3 sends them as x-amz-meta-<name> headers and returns
// them lower-case), values of printable ASCII; at most 2 KiB in all (S3's limit).
Result<void> ValidateMetadata(const std::map<std::string, std::string>& metadata);

}  // namespace reelq::storage
