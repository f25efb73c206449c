#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "reelq/common/asio.h"
#include "reelq/common/byte_sink.h"
#include "reelq/common/error.h"

namespace reelq::storage {

struct ObjectInfo {
  std::string key;
  uint64_t size = 0;
  std::string etag;
  std::string content_type;
  std::map<std::string, std::string> metadata;  // user metadata (x-amz-meta-*)
  // Hex SHA-256 of the content when the store knows it (the filesystem store computes it while
  // writing); empty otherwise. HashingWriter checks it against what it streamed.
  std::string sha256;
};

struct PutOptions {
  std::string content_type = "application/octet-stream";
  std::map<std::string, std::string> metadata;
  // When true (clips and sidecars), an object that already exists under the key is left
  // as it is and Commit returns kInvalidRequest-free success with `already_existed` set:
  // a redelivered job overwrites nothing that was already published.
  bool if_absent = true;
};

struct CommitResult {
  ObjectInfo info;
  bool already_existed = false;
};

// A streamed upload. Bytes are written in order; nothing is visible under the key until
// Commit succeeds. Destroying a writer without Commit aborts it (cleans up parts/temp files).
class ObjectWriter : public ByteSink {
 public:
  virtual awaitable<Result<CommitResult>> Commit() = 0;
  virtual awaitable<void> Abort() = 0;
};
using ObjectWriterPtr = std::unique_ptr<ObjectWriter>;

class ObjectStore {
 public:
  virtual ~ObjectStore() = default;
  virtual std::string_view name() const = 0;  // "fs", "s3"

  virtual awaitable<Result<ObjectWriterPtr>> OpenWriter(std::string key, PutOptions options) = 0;

  // kNotFound when there is no such object.
  virtual awaitable<Result<ObjectInfo>> Head(std::string key) = 0;
  virtual awaitable<Result<void>> Delete(std::string key) = 0;

  // A small object read whole (input images): kNotFound when there is none, kInvalidRequest
  // naming the size when it is larger than `max_bytes`.
  virtual awaitable<Result<std::string>> ReadSmall(std::string key, size_t max_bytes) = 0;

  // A URL a client can GET the object from without reelq credentials, valid for `ttl`
  // (a file:// URL for the filesystem store).
  virtual Result<std::string> PresignGet(const std::string& key,
                                         std::chrono::seconds ttl) const = 0;
};
using ObjectStorePtr = std::shared_ptr<ObjectStore>;

}  // namespace reelq::storage
