#include "fs_meta.h"

#include <sys/xattr.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace reelq::storage::fs {

namespace {

constexpr std::string_view kPrefix = "user.reelq.";
constexpr std::string_view kMetaPrefix = "user.reelq.meta.";

bool Unsupported(int err) { return err == ENOTSUP || err == EOPNOTSUPP || err == EPERM; }

std::optional<std::string> GetXattr(const std::string& path, const std::string& name) {
  std::string value(256, '\0');
  for (int attempt = 0; attempt < 3; ++attempt) {
    ssize_t n = getxattr(path.c_str(), name.c_str(), value.data(), value.size());
    if (n >= 0) {
      value.resize(static_cast<size_t>(n));
      return value;
    }
    if (errno != ERANGE) return std::nullopt;
    ssize_t need = getxattr(path.c_str(), name.c_str(), nullptr, 0);
    if (need < 0) return std::nullopt;
    value.assign(static_cast<size_t>(need), '\0');
  }
  return std::nullopt;
}

}  // namespace

Result<bool> WriteXattrs(int fd, const StoredMeta& meta) {
  auto set = [&](const std::string& name, const std::string& value) -> int {
    return fsetxattr(fd, name.c_str(), value.data(), value.size(), 0);
  };
  if (set(std::string(kPrefix) + "content_type", meta.content_type) != 0) {
    if (Unsupported(errno)) return false;
    return MakeError(ErrorCategory::kRetryable,
                     std::string("setting xattr on object file: ") + std::strerror(errno));
  }
  if (set(std::string(kPrefix) + "sha256", meta.sha256) != 0) {
    return MakeError(ErrorCategory::kRetryable,
                     std::string("setting xattr on object file: ") + std::strerror(errno));
  }
  for (const auto& [k, v] : meta.metadata) {
    if (set(std::string(kMetaPrefix) + k, v) != 0) {
      if (errno == ENOSPC || errno == E2BIG) return false;  // too much for this fs: sidecar
      return MakeError(ErrorCategory::kRetryable,
                       std::string("setting xattr on object file: ") + std::strerror(errno));
    }
  }
  return true;
}

std::filesystem::path SidecarPath(const std::filesystem::path& object_path) {
  return object_path.parent_path() / ("." + object_path.filename().string() + ".meta.json");
}

std::string SidecarJson(const StoredMeta& meta) {
  nlohmann::json j = {
      {"content_type", meta.content_type}, {"sha256", meta.sha256}, {"metadata", meta.metadata}};
  return j.dump();
}

StoredMeta ReadMeta(const std::filesystem::path& object_path) {
  StoredMeta meta;
  const std::string path = object_path.string();
  if (auto ct = GetXattr(path, std::string(kPrefix) + "content_type")) {
    meta.content_type = *ct;
    meta.sha256 = GetXattr(path, std::string(kPrefix) + "sha256").value_or("");
    ssize_t len = listxattr(path.c_str(), nullptr, 0);
    if (len > 0) {
      std::string names(static_cast<size_t>(len), '\0');
      len = listxattr(path.c_str(), names.data(), names.size());
      if (len > 0) names.resize(static_cast<size_t>(len));
      size_t pos = 0;
      while (len > 0 && pos < names.size()) {
        std::string name(names.c_str() + pos);
        pos += name.size() + 1;
        if (name.starts_with(kMetaPrefix)) {
          if (auto v = GetXattr(path, name)) meta.metadata[name.substr(kMetaPrefix.size())] = *v;
        }
      }
    }
    return meta;
  }
  std::ifstream in(SidecarPath(object_path));
  if (!in) return meta;
  std::stringstream buf;
  buf << in.rdbuf();
  // A damaged sidecar loses the metadata, never the object.
  auto j = nlohmann::json::parse(buf.str(), nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return meta;
  if (j.contains("content_type") && j["content_type"].is_string()) {
    meta.content_type = j["content_type"];
  }
  if (j.contains("sha256") && j["sha256"].is_string()) meta.sha256 = j["sha256"];
  if (j.contains("metadata") && j["metadata"].is_object()) {
    for (const auto& [k, v] : j["metadata"].items()) {
      if (v.is_string()) meta.metadata[k] = v.get<std::string>();
    }
  }
  return meta;
}

}  // namespace reelq::storage::fs
