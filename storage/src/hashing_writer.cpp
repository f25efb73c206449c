#include "reelq/storage/hashing_writer.h"

namespace reelq::storage {

HashingWriter::HashingWriter(ObjectWriterPtr inner) : inner_(std::move(inner)) {}

awaitable<Result<void>> HashingWriter::Write(std::span<const std::byte> chunk) {
  sha_.Update(chunk);
  bytes_ += chunk.size();
  co_return co_await inner_->Write(chunk);
}

awaitable<Result<CommitResult>> HashingWriter::Commit() {
  sha256_hex_ = sha_.FinalHex();
  auto result = co_await inner_->Commit();
  if (!result || result->already_existed) co_return result;
  const ObjectInfo& info = result->info;
  if (info.size != bytes_) {
    co_return MakeError(ErrorCategory::kRetryable, "object \"" + info.key +
                                                       "\": the store reports " +
                                                       std::to_string(info.size) + " bytes, " +
                                                       std::to_string(bytes_) + " were written");
  }
  if (!info.sha256.empty() && info.sha256 != sha256_hex_) {
    co_return MakeError(ErrorCategory::kRetryable,
                        "object \"" + info.key + "\": checksum mismatch (store " + info.sha256 +
                            ", streamed " + sha256_hex_ + ")");
  }
  co_return result;
}

awaitable<void> HashingWriter::Abort() { co_await inner_->Abort(); }

}  // namespace reelq::storage
