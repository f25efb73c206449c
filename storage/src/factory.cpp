#include "reelq/storage/factory.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "reelq/common/config.h"
#include "reelq/storage/fs_store.h"
#include "reelq/storage/null_store.h"
#include "reelq/storage/s3_store.h"

namespace reelq::storage {

namespace {

std::unexpected<Error> Invalid(std::string message) {
  return MakeError(ErrorCategory::kInvalidRequest, std::move(message));
}

Result<std::string> GetString(const YAML::Node& section, const std::string& name,
                              const std::string& key, const std::string& fallback) {
  const auto node = section[key];
  if (!node || node.IsNull()) return fallback;
  if (!node.IsScalar()) return Invalid(name + "." + key + ": expected a string");
  return node.as<std::string>();
}

Result<int64_t> GetInt(const YAML::Node& section, const std::string& name, const std::string& key,
                       int64_t fallback, int64_t min, int64_t max) {
  const auto node = section[key];
  if (!node || node.IsNull()) return fallback;
  int64_t v = 0;
  try {
    v = node.as<int64_t>();
  } catch (const YAML::Exception&) {
    return Invalid(name + "." + key + ": expected an integer, got '" +
                   (node.IsScalar() ? node.as<std::string>() : std::string("a mapping")) + "'");
  }
  if (v < min || v > max) {
    return Invalid(name + "." + key + ": must be between " + std::to_string(min) + " and " +
                   std::to_string(max) + ", got " + std::to_string(v));
  }
  return v;
}

// {env: NAME} or {file: /path}; a plain string is allowed for the access key id (it is an
// identifier, not a secret) but never for the secret key.
Result<std::string> GetCredential(const YAML::Node& section, const std::string& name,
                                  const std::string& key, bool allow_plain) {
  const auto node = section[key];
  const std::string full = name + "." + key;
  if (!node || node.IsNull()) return std::string();
  if (node.IsScalar()) {
    if (allow_plain) return node.as<std::string>();
    return Invalid(full +
                   ": secrets are never written in the config; use {env: VAR} or "
                   "{file: /path}");
  }
  if (!node.IsMap()) return Invalid(full + ": expected {env: VAR} or {file: /path}");
  if (node["env"] && node["env"].IsScalar()) {
    const auto var = node["env"].as<std::string>();
    const char* value = std::getenv(var.c_str());
    if (value == nullptr || *value == '\0') {
      return Invalid(full + ": environment variable " + var + " is not set");
    }
    return std::string(value);
  }
  if (node["file"] && node["file"].IsScalar()) {
    const auto path = node["file"].as<std::string>();
    std::ifstream in(path);
    if (!in) return Invalid(full + ": cannot read file " + path);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string s = ss.str();
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
    if (s.empty()) return Invalid(full + ": file " + path + " is empty");
    return s;
  }
  return Invalid(full + ": expected {env: VAR} or {file: /path}");
}

Result<S3Config> ParseS3(const YAML::Node& s3) {
  const std::string name = "storage.s3";
  if (!s3) return Invalid("storage.s3: required when storage.backend is s3");
  if (auto k = config::CheckKeys(
          s3, name,
          {"endpoint", "region", "bucket", "addressing", "access_key", "secret_key",
           "session_token", "multipart_threshold_mb", "part_size_mb", "parallel_parts",
           "presign_ttl_seconds", "request_timeout_seconds", "max_attempts"});
      !k) {
    return std::unexpected(k.error());
  }
  S3Config c;
#define REELQ_TRY(var, expr) \
  auto var = (expr);         \
  if (!var) return std::unexpected(var.error());
  REELQ_TRY(endpoint, GetString(s3, name, "endpoint", ""));
  if (endpoint->empty()) return Invalid("storage.s3.endpoint: required");
  c.endpoint = *endpoint;
  REELQ_TRY(region, GetString(s3, name, "region", "us-east-1"));
  c.region = *region;
  REELQ_TRY(bucket, GetString(s3, name, "bucket", ""));
  if (bucket->empty()) return Invalid("storage.s3.bucket: required");
  c.bucket = *bucket;
  REELQ_TRY(addressing, GetString(s3, name, "addressing", "virtual"));
  if (*addressing != "virtual" && *addressing != "path") {
    return Invalid("storage.s3.addressing: expected virtual or path, got '" + *addressing + "'");
  }
  c.path_style = *addressing == "path";
  REELQ_TRY(access, GetCredential(s3, name, "access_key", true));
  REELQ_TRY(secret, GetCredential(s3, name, "secret_key", false));
  REELQ_TRY(token, GetCredential(s3, name, "session_token", false));
  if (access->empty()) return Invalid("storage.s3.access_key: required");
  if (secret->empty()) return Invalid("storage.s3.secret_key: required");
  c.credentials = {*access, *secret, *token};
  REELQ_TRY(threshold, GetInt(s3, name, "multipart_threshold_mb", 16, 1, 5 * 1024));
  c.multipart_threshold = static_cast<uint64_t>(*threshold) << 20;
  REELQ_TRY(part, GetInt(s3, name, "part_size_mb", 8, 5, 5 * 1024));
  c.part_size = static_cast<uint64_t>(*part) << 20;
  REELQ_TRY(parallel, GetInt(s3, name, "parallel_parts", 4, 1, 64));
  c.parallel_parts = static_cast<int>(*parallel);
  REELQ_TRY(ttl, GetInt(s3, name, "presign_ttl_seconds", 86400, 1, 604800));
  c.presign_ttl = std::chrono::seconds(*ttl);
  REELQ_TRY(timeout, GetInt(s3, name, "request_timeout_seconds", 120, 1, 3600));
  c.request_timeout = std::chrono::seconds(*timeout);
  REELQ_TRY(attempts, GetInt(s3, name, "max_attempts", 5, 1, 20));
  c.max_attempts = static_cast<int>(*attempts);
#undef REELQ_TRY
  return c;
}

}  // namespace

Result<ObjectStorePtr> MakeStore(const YAML::Node& storage_section, asio::any_io_executor executor,
                                 http::ClientPtr http, const std::string& base_dir) {
  (void)executor;  // the stores run on their callers' executors
  const YAML::Node section = storage_section;
  if (auto k = config::CheckKeys(section, "storage", {"backend", "fs", "s3"}); !k) {
    return std::unexpected(k.error());
  }
  // Unquoted, `backend: null` is YAML's null, which the parser cannot tell from an empty
  // `backend:`; taking either for the discarding store would lose clips, and taking it for fs
  // would hide the mistake.
  if (section && section["backend"] && section["backend"].IsNull()) {
    return Invalid(
        "storage.backend: empty (an unquoted null is YAML's null); write fs or s3, or \"null\" "
        "quoted for the discarding benchmark store");
  }
  auto backend =
      section ? GetString(section, "storage", "backend", "fs") : Result<std::string>("fs");
  if (!backend) return std::unexpected(backend.error());
  if (*backend == "fs") {
    const YAML::Node fs = section ? section["fs"] : YAML::Node();
    if (auto k = config::CheckKeys(fs, "storage.fs", {"root", "io_threads"}); !k)
      return std::unexpected(k.error());
    std::string root = "clips";
    FsStoreOptions options;
    if (fs) {
      auto r = GetString(fs, "storage.fs", "root", "clips");
      if (!r) return std::unexpected(r.error());
      root = *r;
      auto threads = GetInt(fs, "storage.fs", "io_threads", options.io_threads, 1, kMaxFsIoThreads);
      if (!threads) return std::unexpected(threads.error());
      options.io_threads = static_cast<int>(*threads);
    }
    std::filesystem::path p(root);
    if (p.is_relative()) p = std::filesystem::path(base_dir) / p;
    return MakeFsStore(p, options);
  }
  if (*backend == "s3") {
    auto config = ParseS3(section["s3"]);
    if (!config) return std::unexpected(config.error());
    return MakeS3Store(std::move(*config), std::move(http));
  }
  // Benchmarks and tests only: discards every clip (null_store.h).
  if (*backend == "null") return MakeNullStore();
  return Invalid("storage.backend: expected fs or s3 (or null, for benchmarks), got '" + *backend +
                 "'");
}

}  // namespace reelq::storage
