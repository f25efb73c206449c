#pragma once

#include <string>

#include "reelq/storage/object_store.h"
#include "reelq/storage/sha256.h"

namespace reelq::storage {

// Wraps an ObjectWriter and computes the SHA-256 of what streams through it, for the clip's
// checksum in the job's sidecar. Commit checks the store's own account of the object where it
// gives one: the size always, the SHA-256 where the store reports it (filesystem). An object
// that already existed (if_absent) is reported, not checked: it is another attempt's upload.
class HashingWriter final : public ObjectWriter {
 public:
  explicit HashingWriter(ObjectWriterPtr inner);

  awaitable<Result<void>> Write(std::span<const std::byte> chunk) override;
  awaitable<Result<CommitResult>> Commit() override;
  awaitable<void> Abort() override;

  uint64_t bytes() const { return bytes_; }
  // Hex SHA-256 of everything written; set by Commit.
  const std::string& sha256_hex() const { return sha256_hex_; }

 private:
  ObjectWriterPtr inner_;
  Sha256 sha_;
  uint64_t bytes_ = 0;
  std::string sha256_hex_;
};

}  // namespace reelq::storage
