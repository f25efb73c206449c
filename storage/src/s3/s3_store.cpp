#include "reelq/storage/s3_store.h"

#include "reelq/storage/keys.h"
#include "s3_client.h"
#include "s3_writer.h"

namespace reelq::storage {

namespace {

class S3Store final : public ObjectStore {
 public:
  explicit S3Store(s3::ClientPtr client) : client_(std::move(client)) {}

  std::string_view name() const override { return "s3"; }

  awaitable<Result<ObjectWriterPtr>> OpenWriter(std::string key, PutOptions options) override {
    if (auto v = ValidateKey(key); !v) co_return std::unexpected(v.error());
    if (auto v = ValidateMetadata(options.metadata); !v) co_return std::unexpected(v.error());
    co_return s3::MakeWriter(client_, std::move(key), std::move(options));
  }

  awaitable<Result<ObjectInfo>> Head(std::string key) override {
    if (auto v = ValidateKey(key); !v) co_return std::unexpected(v.error());
    auto r = co_await s3::HeadObject(client_, std::move(key));
    co_return r;
  }

  awaitable<Result<void>> Delete(std::string key) override {
    if (auto v = ValidateKey(key); !v) co_return std::unexpected(v.error());
    s3::Call call{.method = "DELETE", .key = key, .what = client_->Describe("DELETE", key)};
    auto r = co_await client_->Send(std::move(call));
    // S3 answers 204 for a missing key; some compatible servers say NoSuchKey instead.
    if (!r && r.error().provider_code != "NoSuchKey") co_return std::unexpected(r.error());
    co_return Result<void>{};
  }

  awaitable<Result<std::string>> ReadSmall(std::string key, size_t max_bytes) override {
    if (auto v = ValidateKey(key); !v) co_return std::unexpected(v.error());
    // HEAD first, so an oversized object is refused without downloading it.
    auto head = co_await s3::HeadObject(client_, key);
    if (!head) co_return std::unexpected(head.error());
    if (head->size > max_bytes) {
      co_return MakeError(ErrorCategory::kInvalidRequest,
                          "object \"" + key + "\" is " + std::to_string(head->size) +
                              " bytes, more than " + std::to_string(max_bytes));
    }
    s3::Call call{.method = "GET", .key = key, .what = client_->Describe("GET", key)};
    auto r = co_await client_->Send(std::move(call));
    if (!r) co_return std::unexpected(r.error());
    if (r->body.size() > max_bytes) {
      co_return MakeError(ErrorCategory::kInvalidRequest, "object \"" + key + "\" is more than " +
                                                              std::to_string(max_bytes) + " bytes");
    }
    co_return std::move(r->body);
  }

  Result<std::string> PresignGet(const std::string& key, std::chrono::seconds ttl) const override {
    if (auto v = ValidateKey(key); !v) return std::unexpected(v.error());
    if (ttl.count() < 1 || ttl.count() > 604800) {
      return MakeError(ErrorCategory::kInvalidRequest,
                       "presigned URL lifetime must be 1 s to 7 days (SigV4's limit), got " +
                           std::to_string(ttl.count()) + " s");
    }
    ttl = std::min(ttl, client_->config().presign_ttl);
    return client_->PresignGet(key, ttl, s3::WallTime(*client_->config().clock));
  }

 private:
  s3::ClientPtr client_;
};

}  // namespace

Result<ObjectStorePtr> MakeS3Store(S3Config config, http::ClientPtr http) {
  auto invalid = [](std::string m) { return MakeError(ErrorCategory::kInvalidRequest, m); };
  auto endpoint = s3::ParseEndpoint(config.endpoint);
  if (!endpoint) return std::unexpected(endpoint.error());
  if (config.bucket.empty()) return invalid("storage.s3.bucket: required");
  if (config.region.empty()) return invalid("storage.s3.region: required");
  if (config.credentials.access_key.empty() || config.credentials.secret_key.empty()) {
    return invalid(
        "storage.s3.access_key / secret_key: not set (the environment variable or "
        "file they name is empty or missing)");
  }
  if (config.part_size < (5ull << 20)) {
    return invalid("storage.s3.part_size_mb: at least 5 (S3's minimum part size)");
  }
  if (config.part_size > (5ull << 30)) return invalid("storage.s3.part_size_mb: at most 5120");
  if (config.multipart_threshold < 1) return invalid("storage.s3.multipart_threshold_mb: >= 1");
  if (config.parallel_parts < 1) return invalid("storage.s3.parallel_parts: at least 1");
  if (!http) return invalid("storage.s3: no HTTP client");
  if (!config.clock) config.clock = std::make_shared<SystemClock>();
  auto client =
      std::make_shared<s3::Client>(std::move(config), std::move(*endpoint), std::move(http));
  return std::make_shared<S3Store>(std::move(client));
}

}  // namespace reelq::storage
