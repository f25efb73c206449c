#include "reelq/storage/fs_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>
#include <string_view>

#include <spdlog/spdlog.h>

#include "../blocking.h"
#include "fs_meta.h"
#include "reelq/common/random.h"
#include "reelq/storage/keys.h"
#include "reelq/storage/sha256.h"
#include "reelq/storage/sigv4.h"

namespace reelq::storage {

namespace {

namespace stdfs = std::filesystem;

// The one place that turns a failed system call into the error vocabulary. A full or failing
// disk may recover (another worker, an operator); anything else is a bug or a setup problem.
Error ErrnoError(int err, const std::string& what) {
  ErrorCategory category = ErrorCategory::kInternal;
  switch (err) {
    case ENOSPC:
    case EDQUOT:
    case EIO:
    case EAGAIN:
    case EMFILE:
    case ENFILE:
    case ENOMEM:
      category = ErrorCategory::kRetryable;
      break;
    case EACCES:
    case EPERM:
    case EROFS:
      category = ErrorCategory::kAuthFailed;
      break;
    case ENOTDIR:
    case EISDIR:
    case ENAMETOOLONG:
      category = ErrorCategory::kInvalidRequest;
      break;
    default:
      break;
  }
  return Error{.category = category, .message = what + ": " + std::strerror(err)};
}

std::string RandomSuffix() {
  thread_local std::mt19937_64 rng = NewRng();
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(rng()));
  return buf;
}

// Makes the entries of `dir` durable; 0 or the errno that says why not.
int FsyncDir(const stdfs::path& dir) {
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return errno;
  const int rc = ::fsync(dfd) == 0 ? 0 : errno;
  ::close(dfd);
  return rc;
}

Result<void> WriteAll(int fd, const char* data, size_t size, const std::string& what) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return std::unexpected(ErrnoError(errno, what));
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return {};
}

Result<ObjectInfo> HeadSync(const stdfs::path& path, const std::string& key) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) {
      return MakeError(ErrorCategory::kNotFound, "no object \"" + key + "\"");
    }
    return std::unexpected(ErrnoError(errno, "stat " + path.string()));
  }
  if (!S_ISREG(st.st_mode)) return MakeError(ErrorCategory::kNotFound, "no object \"" + key + "\"");
  fs::StoredMeta meta = fs::ReadMeta(path);
  ObjectInfo info{.key = key,
                  .size = static_cast<uint64_t>(st.st_size),
                  .etag = meta.sha256,
                  .content_type = meta.content_type,
                  .metadata = std::move(meta.metadata),
                  .sha256 = meta.sha256};
  if (info.etag.empty()) {
    // A file that reelq did not write: an etag that still changes with the content.
    info.etag = std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec) + "-" +
                std::to_string(st.st_size);
  }
  if (info.content_type.empty()) info.content_type = "application/octet-stream";
  return info;
}

class FsWriter final : public ObjectWriter {
 public:
  FsWriter(asio::thread_pool& pool, std::string key, stdfs::path final_path, stdfs::path temp_path,
           int fd, PutOptions options)
      : pool_(pool),
        key_(std::move(key)),
        final_path_(std::move(final_path)),
        temp_path_(std::move(temp_path)),
        fd_(fd),
        options_(std::move(options)) {}

  ~FsWriter() override { Cleanup(); }

  awaitable<Result<void>> Write(std::span<const std::byte> chunk) override {
    if (fd_ < 0) co_return MakeError(ErrorCategory::kInternal, "write after commit or abort");
    // Page-cache writes are quick; the slow part (fsync) runs off the event loop in Commit.
    auto r = WriteAll(fd_, reinterpret_cast<const char*>(chunk.data()), chunk.size(),
                      "writing " + temp_path_.string());
    if (!r) {
      Cleanup();
      co_return r;
    }
    sha_.Update(chunk);
    size_ += chunk.size();
    co_return Result<void>{};
  }

  awaitable<Result<CommitResult>> Commit() override {
    if (fd_ < 0) co_return MakeError(ErrorCategory::kInternal, "commit after commit or abort");
    sha256_ = sha_.FinalHex();
    // Named, not a temporary inside co_await: g++ 12 mishandles such temporaries' lifetimes.
    auto publish = [this] { return Publish(); };
    auto result = co_await detail::RunBlocking(pool_, std::move(publish));
    Cleanup();
    co_return result;
  }

  awaitable<void> Abort() override {
    Cleanup();
    co_return;
  }

 private:
  Result<CommitResult> Publish() {
    if (::fsync(fd_) != 0)
      return std::unexpected(ErrnoError(errno, "fsync " + temp_path_.string()));
    fs::StoredMeta meta{options_.content_type, sha256_, options_.metadata};
    auto xattrs = fs::WriteXattrs(fd_, meta);
    if (!xattrs) return std::unexpected(xattrs.error());
    stdfs::path sidecar_temp;
    if (!*xattrs) {
      sidecar_temp = final_path_.parent_path() /
                     ("." + final_path_.filename().string() + ".meta.tmp-" + RandomSuffix());
      sidecar_temp_ = sidecar_temp;
      int sfd = ::open(sidecar_temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
      if (sfd < 0) return std::unexpected(ErrnoError(errno, "creating " + sidecar_temp.string()));
      std::string json = fs::SidecarJson(meta);
      auto w = WriteAll(sfd, json.data(), json.size(), "writing " + sidecar_temp.string());
      ::fsync(sfd);
      ::close(sfd);
      if (!w) return std::unexpected(w.error());
    }
    ::close(fd_);
    fd_ = -1;

    CommitResult result;
    if (options_.if_absent) {
      auto placed = PlaceNoReplace();
      if (!placed) return std::unexpected(placed.error());
      if (!*placed) {
        auto existing = HeadSync(final_path_, key_);
        if (!existing) return std::unexpected(existing.error());
        result.info = std::move(*existing);
        result.already_existed = true;
        return result;  // Cleanup removes our temp files
      }
    } else if (::rename(temp_path_.c_str(), final_path_.c_str()) != 0) {
      return std::unexpected(ErrnoError(errno, "publishing " + final_path_.string()));
    }
    temp_path_.clear();
    if (!sidecar_temp.empty()) {
      if (::rename(sidecar_temp.c_str(), fs::SidecarPath(final_path_).c_str()) != 0) {
        return std::unexpected(ErrnoError(errno, "publishing metadata of " + final_path_.string()));
      }
      sidecar_temp_.clear();
    }
    // The object is published; until its directory entry is durable it is not stored.
    if (const int err = FsyncDir(final_path_.parent_path()); err != 0) {
      return std::unexpected(ErrnoError(err, "making " + final_path_.string() + " durable"));
    }
    result.info = ObjectInfo{.key = key_,
                             .size = size_,
                             .etag = sha256_,
                             .content_type = options_.content_type,
                             .metadata = options_.metadata,
                             .sha256 = sha256_};
    return result;
  }

  // True when published, false when something already was there.
  Result<bool> PlaceNoReplace() {
    if (::renameat2(AT_FDCWD, temp_path_.c_str(), AT_FDCWD, final_path_.c_str(),
                    RENAME_NOREPLACE) == 0) {
      return true;
    }
    if (errno == EEXIST) return false;
    if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP) {
      return std::unexpected(ErrnoError(errno, "publishing " + final_path_.string()));
    }
    // The filesystem has no RENAME_NOREPLACE: link() never replaces either.
    if (::link(temp_path_.c_str(), final_path_.c_str()) != 0) {
      if (errno == EEXIST) return false;
      return std::unexpected(ErrnoError(errno, "publishing " + final_path_.string()));
    }
    ::unlink(temp_path_.c_str());
    return true;
  }

  void Cleanup() {
    if (fd_ >= 0) {
      ::close(fd_);
      fd_ = -1;
    }
    if (!temp_path_.empty()) {
      ::unlink(temp_path_.c_str());
      temp_path_.clear();
    }
    if (!sidecar_temp_.empty()) {
      ::unlink(sidecar_temp_.c_str());
      sidecar_temp_.clear();
    }
  }

  asio::thread_pool& pool_;
  std::string key_;
  stdfs::path final_path_;
  stdfs::path temp_path_;
  stdfs::path sidecar_temp_;
  int fd_ = -1;
  PutOptions options_;
  Sha256 sha_;
  std::string sha256_;
  uint64_t size_ = 0;
};

class FsStore final : public ObjectStore {
 public:
  FsStore(stdfs::path root, const FsStoreOptions& options)
      : root_(std::move(root)), pool_(detail::BlockingPool(options.io_threads)) {}

  std::string_view name() const override { return "fs"; }

  awaitable<Result<ObjectWriterPtr>> OpenWriter(std::string key, PutOptions options) override {
    // A stat per missing directory, mkdir, a directory fsync and an open: on a slow or network
    // disk any of them can take long, so they run on the pool, like Head's stat.
    auto open = [this, key = std::move(key), options = std::move(options)]() mutable {
      return OpenWriterSync(std::move(key), std::move(options));
    };
    auto result = co_await detail::RunBlocking(pool_, std::move(open));
    co_return std::move(result);
  }

  awaitable<Result<ObjectInfo>> Head(std::string key) override {
    if (auto v = ValidateKey(key); !v) co_return std::unexpected(v.error());
    auto head = [path = root_ / key, key] { return HeadSync(path, key); };
    auto result = co_await detail::RunBlocking(pool_, std::move(head));
    co_return result;
  }

  awaitable<Result<void>> Delete(std::string key) override {
    if (auto v = ValidateKey(key); !v) co_return std::unexpected(v.error());
    stdfs::path path = root_ / key;
    if (::unlink(path.c_str()) != 0 && errno != ENOENT && errno != ENOTDIR) {
      co_return std::unexpected(ErrnoError(errno, "deleting " + path.string()));
    }
    ::unlink(fs::SidecarPath(path).c_str());
    co_return Result<void>{};
  }

  awaitable<Result<std::string>> ReadSmall(std::string key, size_t max_bytes) override {
    if (auto v = ValidateKey(key); !v) co_return std::unexpected(v.error());
    auto read = [path = root_ / key, key, max_bytes]() -> Result<std::string> {
      auto head = HeadSync(path, key);
      if (!head) return std::unexpected(head.error());
      if (head->size > max_bytes) {
        return MakeError(ErrorCategory::kInvalidRequest,
                         "object \"" + key + "\" is " + std::to_string(head->size) +
                             " bytes, more than " + std::to_string(max_bytes));
      }
      int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) return std::unexpected(ErrnoError(errno, "opening " + path.string()));
      std::string data(head->size, '\0');
      size_t got = 0;
      while (got < data.size()) {
        const ssize_t n = ::read(fd, data.data() + got, data.size() - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
          const int err = n < 0 ? errno : EIO;
          ::close(fd);
          return std::unexpected(ErrnoError(err, "reading " + path.string()));
        }
        got += static_cast<size_t>(n);
      }
      ::close(fd);
      return data;
    };
    auto result = co_await detail::RunBlocking(pool_, std::move(read));
    co_return result;
  }

  Result<std::string> PresignGet(const std::string& key, std::chrono::seconds) const override {
    if (auto v = ValidateKey(key); !v) return std::unexpected(v.error());
    // Plain files need no signature; whoever can read the path can read the clip.
    return "file://" + sigv4::UriEncode((root_ / key).string(), /*encode_slash=*/false);
  }

 private:
  Result<ObjectWriterPtr> OpenWriterSync(std::string key, PutOptions options) {
    if (auto v = ValidateKey(key); !v) return std::unexpected(v.error());
    if (auto v = ValidateMetadata(options.metadata); !v) return std::unexpected(v.error());
    stdfs::path final_path = root_ / key;
    std::error_code ec;
    // The directories created here (a new tenant's, a new batch's) are made durable in their
    // parents, or a clip reported stored could be unreachable after a power loss.
    std::vector<stdfs::path> created;
    for (auto dir = final_path.parent_path(); dir != root_ && !stdfs::exists(dir, ec);
         dir = dir.parent_path()) {
      created.push_back(dir);
    }
    stdfs::create_directories(final_path.parent_path(), ec);
    if (ec) {
      return MakeError(ec == std::errc::not_a_directory || ec == std::errc::file_exists
                           ? ErrorCategory::kInvalidRequest
                           : ErrorCategory::kRetryable,
                       "object key \"" + key + "\": cannot create its directory " +
                           final_path.parent_path().string() + ": " + ec.message());
    }
    for (const auto& dir : created) {
      if (const int err = FsyncDir(dir.parent_path()); err != 0) {
        return std::unexpected(ErrnoError(err, "making directory " + dir.string() + " durable"));
      }
    }
    stdfs::path temp_path = final_path.parent_path() /
                            ("." + final_path.filename().string() + ".tmp-" + RandomSuffix());
    int fd = ::open(temp_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return std::unexpected(ErrnoError(errno, "creating " + temp_path.string()));
    return std::make_unique<FsWriter>(pool_, std::move(key), std::move(final_path),
                                      std::move(temp_path), fd, std::move(options));
  }

  stdfs::path root_;
  asio::thread_pool& pool_;
};

// A writer's temp file: ".<name>.tmp-" (or ".<name>.meta.tmp-") and the 16 hex digits of
// RandomSuffix. Keys never have a segment starting with '.', so no object is named like this.
bool IsTempFileName(std::string_view name) {
  constexpr std::string_view kMark = ".tmp-";
  constexpr size_t kSuffix = 16;
  if (name.size() < 1 + kMark.size() + kSuffix || name.front() != '.') return false;
  const size_t mark = name.size() - kSuffix - kMark.size();
  if (name.substr(mark, kMark.size()) != kMark) return false;
  return name.substr(mark + kMark.size()).find_first_not_of("0123456789abcdef") ==
         std::string_view::npos;
}

}  // namespace

FsTempSweep SweepStaleTempFiles(const std::filesystem::path& root, std::chrono::seconds max_age,
                                uint64_t max_entries) {
  FsTempSweep out;
  const auto now = std::chrono::system_clock::now();
  std::error_code ec;
  stdfs::recursive_directory_iterator it(root, stdfs::directory_options::skip_permission_denied,
                                         ec);
  for (; !ec && it != stdfs::recursive_directory_iterator(); it.increment(ec)) {
    if (++out.visited > max_entries) {
      out.cut_short = true;
      return out;
    }
    const stdfs::path& path = it->path();
    if (!IsTempFileName(path.filename().native())) continue;
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    const auto modified = std::chrono::system_clock::time_point(
        std::chrono::seconds(st.st_mtim.tv_sec) +
        std::chrono::duration_cast<std::chrono::system_clock::duration>(
            std::chrono::nanoseconds(st.st_mtim.tv_nsec)));
    if (now - modified < max_age) continue;
    if (::unlink(path.c_str()) == 0) {
      ++out.removed;
      out.bytes += static_cast<uint64_t>(st.st_size);
    }
  }
  if (ec) out.cut_short = true;
  return out;
}

Result<ObjectStorePtr> MakeFsStore(std::filesystem::path root, FsStoreOptions options) {
  if (options.io_threads < 1 || options.io_threads > kMaxFsIoThreads) {
    return MakeError(ErrorCategory::kInvalidRequest,
                     "storage.fs.io_threads: must be between 1 and " +
                         std::to_string(kMaxFsIoThreads) + ", got " +
                         std::to_string(options.io_threads));
  }
  if (root.empty()) return MakeError(ErrorCategory::kInvalidRequest, "storage.fs.root: empty");
  std::error_code ec;
  stdfs::create_directories(root, ec);
  if (ec) {
    return MakeError(ErrorCategory::kInvalidRequest,
                     "storage.fs.root: cannot create " + root.string() + ": " + ec.message());
  }
  auto abs = stdfs::canonical(root, ec);
  if (ec || !stdfs::is_directory(abs)) {
    return MakeError(ErrorCategory::kInvalidRequest,
                     "storage.fs.root: " + root.string() + " is not a directory");
  }
  auto store = std::make_shared<FsStore>(abs, options);
  if (options.stale_temp_age.count() > 0) {
    // Off the caller: a big tree takes a while to walk, and nothing waits for the sweep.
    asio::post(detail::BlockingPool(options.io_threads), [abs, age = options.stale_temp_age] {
      const FsTempSweep swept = SweepStaleTempFiles(abs, age);
      if (swept.removed > 0) {
        spdlog::info(
            "fs store {}: removed {} temp files ({} bytes) older than {} h, left by writers that "
            "never finished (a worker killed mid-transfer)",
            abs.string(), swept.removed, swept.bytes, age.count() / 3600.0);
      }
      if (swept.cut_short) {
        spdlog::warn(
            "fs store {}: the sweep for stale temp files stopped after {} entries; "
            "those further on stay until a later start",
            abs.string(), swept.visited);
      }
    });
  }
  return store;
}

}  // namespace reelq::storage
