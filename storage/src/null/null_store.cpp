// The discarding store for benchmarks and tests (see null_store.h).
#include "reelq/storage/null_store.h"

namespace reelq::storage {
namespace {

class NullWriter final : public ObjectWriter {
 public:
  NullWriter(std::string key, PutOptions options) : key_(std::move(key)), options_(options) {}

  awaitable<Result<void>> Write(std::span<const std::byte> chunk) override {
    if (closed_) co_return MakeError(ErrorCategory::kInternal, "null store: writer is closed");
    bytes_ += chunk.size();
    co_return Result<void>{};
  }

  awaitable<Result<CommitResult>> Commit() override {
    if (closed_) co_return MakeError(ErrorCategory::kInternal, "null store: writer is closed");
    closed_ = true;
    CommitResult result;
    result.info.key = key_;
    result.info.size = bytes_;
    result.info.content_type = options_.content_type;
    result.info.metadata = options_.metadata;
    co_return result;
  }

  awaitable<void> Abort() override {
    closed_ = true;
    co_return;
  }

 private:
  std::string key_;
  PutOptions options_;
  uint64_t bytes_ = 0;
  bool closed_ = false;
};

class NullStore final : public ObjectStore {
 public:
  std::string_view name() const override { return "null"; }

  awaitable<Result<ObjectWriterPtr>> OpenWriter(std::string key, PutOptions options) override {
    co_return std::make_unique<NullWriter>(std::move(key), std::move(options));
  }

  awaitable<Result<ObjectInfo>> Head(std::string key) override {
    ObjectInfo info;
    info.key = std::move(key);
    co_return info;
  }

  awaitable<Result<void>> Delete(std::string /*key*/) override { co_return Result<void>{}; }

  awaitable<Result<std::string>> ReadSmall(std::string key, size_t /*max_bytes*/) override {
    co_return MakeError(ErrorCategory::kNotFound,
                        "no object \"" + key + "\" (the null store keeps nothing)");
  }

  Result<std::string> PresignGet(const std::string& key,
                                 std::chrono::seconds /*ttl*/) const override {
    return "null:///" + key;
  }
};

}  // namespace

ObjectStorePtr MakeNullStore() { return std::make_shared<NullStore>(); }

}  // namespace reelq::storage
