#include "s3_writer.h"

#include <optional>

#include "reelq/common/spawn.h"
#include "reelq/storage/s3_errors.h"

namespace reelq::storage::s3 {

namespace {

std::string Unquote(std::string s) {
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') return s.substr(1, s.size() - 2);
  return s;
}

std::string XmlEscape(std::string_view in) {
  std::string out;
  for (char c : in) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

http::Headers ObjectHeaders(const PutOptions& options) {
  http::Headers h{{"content-type", options.content_type}};
  for (const auto& [k, v] : options.metadata) h.emplace_back("x-amz-meta-" + k, v);
  return h;
}

// Shared between a writer and its part uploads, which may outlive it (a dropped writer's
// parts finish, then the upload is aborted).
struct Upload {
  explicit Upload(asio::any_io_executor ex) : executor(ex), wake(ex) {}
  asio::any_io_executor executor;
  ClientPtr client;
  std::string key;
  std::string upload_id;
  std::vector<std::string> etags;  // by part number - 1
  int in_flight = 0;
  std::optional<Error> failure;
  asio::steady_timer wake;  // cancelled whenever a part finishes
};
using UploadPtr = std::shared_ptr<Upload>;

awaitable<void> UploadPart(UploadPtr up, int part_number, std::string body) {
  Call call{.method = "PUT",
            .key = up->key,
            .query = {{"partNumber", std::to_string(part_number)}, {"uploadId", up->upload_id}},
            .body = std::move(body),
            .what = up->client->Describe("PUT", up->key) + " part " + std::to_string(part_number)};
  Result<http::Response> r = MakeError(ErrorCategory::kInternal, "part upload did not run");
  try {
    r = co_await up->client->Send(std::move(call));
  } catch (const std::exception& e) {
    r = MakeError(ErrorCategory::kInternal, std::string("part upload: ") + e.what());
  }
  if (r) {
    auto etag = r->Header("etag");
    if (etag && !etag->empty()) {
      up->etags[static_cast<size_t>(part_number - 1)] = Unquote(*etag);
    } else if (!up->failure) {
      up->failure = Error{.category = ErrorCategory::kRetryable,
                          .message = "part " + std::to_string(part_number) + " of " + up->key +
                                     ": the store answered without an ETag"};
    }
  } else if (!up->failure) {
    up->failure = r.error();
  }
  --up->in_flight;
  up->wake.cancel();
}

// Waits until at most `limit` parts are in flight.
awaitable<void> WaitInFlight(UploadPtr up, int limit) {
  while (up->in_flight > limit) {
    up->wake.expires_at(asio::steady_timer::time_point::max());
    boost::system::error_code ec;
    co_await up->wake.async_wait(asio::redirect_error(use_awaitable, ec));
  }
}

// Waits for the parts in flight (a part still uploading could otherwise survive the abort),
// then removes the upload and its parts.
awaitable<void> AbortUpload(UploadPtr up) {
  co_await WaitInFlight(up, 0);
  if (up->upload_id.empty()) co_return;
  Call call{.method = "DELETE",
            .key = up->key,
            .query = {{"uploadId", up->upload_id}},
            .what = up->client->Describe("AbortMultipartUpload", up->key),
            .pass_statuses = {404}};
  auto r = co_await up->client->Send(std::move(call));
  (void)r;  // nothing more to do: a lifecycle rule is the backstop for what is left
  up->upload_id.clear();
}

class Writer final : public ObjectWriter {
 public:
  Writer(ClientPtr client, std::string key, PutOptions options)
      : client_(std::move(client)), key_(std::move(key)), options_(std::move(options)) {}

  ~Writer() override {
    if (upload_ && !upload_->upload_id.empty()) {
      auto up = upload_;
      SpawnOrDie(up->executor, "s3-abort-upload", AbortUpload(up));
    }
  }

  awaitable<Result<void>> Write(std::span<const std::byte> chunk) override {
    if (done_) co_return MakeError(ErrorCategory::kInternal, "write after commit or abort");
    bytes_ += chunk.size();
    if (existing_) co_return Result<void>{};  // if_absent and present: nothing to send
    const auto* data = reinterpret_cast<const char*>(chunk.data());
    size_t left = chunk.size();
    const auto& cfg = client_->config();
    while (left > 0) {
      if (!upload_) {
        buffer_.append(data, left);
        left = 0;
        if (buffer_.size() > cfg.multipart_threshold) {
          auto started = co_await StartMultipart();
          if (!started) co_return std::unexpected(co_await Fail(started.error()));
          if (existing_) {
            buffer_ = std::string();
            co_return Result<void>{};
          }
          // Split what was buffered into parts; the remainder stays buffered.
          size_t pos = 0;
          while (buffer_.size() - pos >= cfg.part_size) {
            std::string part = buffer_.substr(pos, cfg.part_size);
            auto sent = co_await SubmitPart(std::move(part));
            if (!sent) co_return std::unexpected(co_await Fail(sent.error()));
            pos += cfg.part_size;
          }
          buffer_.erase(0, pos);
        }
        continue;
      }
      size_t take = std::min<size_t>(left, cfg.part_size - buffer_.size());
      buffer_.append(data, take);
      data += take;
      left -= take;
      if (buffer_.size() == cfg.part_size) {
        std::string part = std::move(buffer_);
        buffer_ = std::string();
        buffer_.reserve(cfg.part_size);
        auto sent = co_await SubmitPart(std::move(part));
        if (!sent) co_return std::unexpected(co_await Fail(sent.error()));
      }
    }
    co_return Result<void>{};
  }

  awaitable<Result<CommitResult>> Commit() override {
    if (done_) co_return MakeError(ErrorCategory::kInternal, "commit after commit or abort");
    done_ = true;
    if (existing_) co_return CommitResult{.info = *existing_, .already_existed = true};
    if (!upload_) co_return co_await SinglePut();
    co_return co_await CompleteMultipart();
  }

  awaitable<void> Abort() override {
    done_ = true;
    buffer_ = std::string();
    if (upload_) co_await AbortUpload(upload_);
  }

 private:
  // Stops the writer for good (aborting any multipart upload) and hands back the error.
  awaitable<Error> Fail(Error error) {
    done_ = true;
    buffer_ = std::string();
    if (upload_) co_await AbortUpload(upload_);
    co_return error;
  }

  // if_absent: is there already an object? Fills existing_ when there is.
  awaitable<Result<void>> CheckExisting() {
    if (!options_.if_absent) co_return Result<void>{};
    auto head = co_await HeadObject(client_, key_);
    if (head) {
      existing_ = std::move(*head);
      co_return Result<void>{};
    }
    if (head.error().category == ErrorCategory::kNotFound) co_return Result<void>{};
    co_return std::unexpected(head.error());
  }

  // A conditional write answered 412: the object is there. `resent`: our write was sent more
  // than once, so the object may be our own first try, which landed though its answer was lost;
  // it is ours when its size and metadata are this writer's. Saying so matters: a caller that
  // publishes for a job deletes only what it published when the job is cancelled.
  awaitable<Result<CommitResult>> AlreadyExisted(bool resent) {
    auto head = co_await HeadObject(client_, key_);
    if (!head) co_return std::unexpected(head.error());
    const bool ours = resent && head->size == bytes_ && head->metadata == options_.metadata;
    co_return CommitResult{.info = std::move(*head), .already_existed = !ours};
  }

  awaitable<Result<void>> StartMultipart() {
    auto checked = co_await CheckExisting();
    if (!checked || existing_) co_return checked;
    Call call{.method = "POST",
              .key = key_,
              .query = {{"uploads", ""}},
              .headers = ObjectHeaders(options_),
              .what = client_->Describe("CreateMultipartUpload", key_)};
    auto r = co_await client_->Send(std::move(call));
    if (!r) co_return std::unexpected(r.error());
    auto id = XmlText(r->body, "UploadId");
    if (!id || id->empty()) {
      co_return MakeError(
          ErrorCategory::kRetryable,
          client_->Describe("CreateMultipartUpload", key_) + ": no UploadId in the answer");
    }
    upload_ = std::make_shared<Upload>(co_await asio::this_coro::executor);
    upload_->client = client_;
    upload_->key = key_;
    upload_->upload_id = *id;
    co_return Result<void>{};
  }

  // Starts one part upload, after waiting for a free slot (the backpressure that bounds
  // memory: the caller's next Write waits here).
  awaitable<Result<void>> SubmitPart(std::string part) {
    co_await WaitInFlight(upload_, client_->config().parallel_parts - 1);
    if (upload_->failure) co_return std::unexpected(*upload_->failure);
    if (upload_->etags.size() >= 10'000) {
      co_return MakeError(ErrorCategory::kInvalidRequest,
                          client_->Describe("PUT", key_) +
                              ": more than 10000 parts; raise storage.s3.part_size_mb");
    }
    upload_->etags.emplace_back();
    int number = static_cast<int>(upload_->etags.size());
    ++upload_->in_flight;
    SpawnOrDie(upload_->executor, "s3-upload-part", UploadPart(upload_, number, std::move(part)));
    co_return Result<void>{};
  }

  ObjectInfo Info(std::string etag) const {
    return ObjectInfo{.key = key_,
                      .size = bytes_,
                      .etag = std::move(etag),
                      .content_type = options_.content_type,
                      .metadata = options_.metadata};
  }

  awaitable<Result<CommitResult>> SinglePut() {
    auto checked = co_await CheckExisting();
    if (!checked) co_return std::unexpected(checked.error());
    if (existing_) co_return CommitResult{.info = *existing_, .already_existed = true};
    Call call{.method = "PUT",
              .key = key_,
              .headers = ObjectHeaders(options_),
              .body = std::move(buffer_),
              .what = client_->Describe("PUT", key_),
              .pass_statuses = {412}};
    buffer_ = std::string();
    if (options_.if_absent) call.headers.emplace_back("if-none-match", "*");
    bool resent = false;
    call.resent = &resent;
    auto r = co_await client_->Send(std::move(call));
    if (!r) co_return std::unexpected(r.error());
    if (r->status == 412) co_return co_await AlreadyExisted(resent);
    co_return CommitResult{.info = Info(Unquote(r->Header("etag").value_or("")))};
  }

  awaitable<Result<CommitResult>> CompleteMultipart() {
    if (!buffer_.empty()) {
      auto sent = co_await SubmitPart(std::move(buffer_));
      buffer_ = std::string();
      if (!sent) co_return std::unexpected(co_await Fail(sent.error()));
    }
    co_await WaitInFlight(upload_, 0);
    if (upload_->failure) co_return std::unexpected(co_await Fail(*upload_->failure));

    std::string xml = "<CompleteMultipartUpload>";
    for (size_t i = 0; i < upload_->etags.size(); ++i) {
      xml += "<Part><PartNumber>" + std::to_string(i + 1) + "</PartNumber><ETag>\"" +
             XmlEscape(upload_->etags[i]) + "\"</ETag></Part>";
    }
    xml += "</CompleteMultipartUpload>";
    Call call{.method = "POST",
              .key = key_,
              .query = {{"uploadId", upload_->upload_id}},
              .headers = {{"content-type", "application/xml"}},
              .body = std::move(xml),
              .what = client_->Describe("CompleteMultipartUpload", key_),
              .pass_statuses = {412}};
    if (options_.if_absent) call.headers.emplace_back("if-none-match", "*");
    bool resent = false;
    call.resent = &resent;
    auto r = co_await client_->Send(std::move(call));
    if (!r) {
      // A retried Complete whose first try went through answers NoSuchUpload: the object is
      // there, with our size.
      if (r.error().provider_code == "NoSuchUpload") {
        auto head = co_await HeadObject(client_, key_);
        if (head && head->size == bytes_) {
          upload_->upload_id.clear();
          co_return CommitResult{.info = std::move(*head)};
        }
      }
      co_return std::unexpected(co_await Fail(r.error()));
    }
    if (r->status == 412) {
      co_await AbortUpload(upload_);
      co_return co_await AlreadyExisted(resent);
    }
    // S3 can answer 200 and still fail the completion, with an <Error> document.
    if (r->body.find("<Error>") != std::string::npos) {
      Error error = MapS3Error(500, r->body, client_->Describe("CompleteMultipartUpload", key_),
                               client_->config().bucket);
      co_return std::unexpected(co_await Fail(std::move(error)));
    }
    upload_->upload_id.clear();
    co_return CommitResult{.info = Info(Unquote(XmlText(r->body, "ETag").value_or("")))};
  }

  ClientPtr client_;
  std::string key_;
  PutOptions options_;
  std::string buffer_;
  uint64_t bytes_ = 0;
  bool done_ = false;
  UploadPtr upload_;
  std::optional<ObjectInfo> existing_;
};

}  // namespace

awaitable<Result<ObjectInfo>> HeadObject(ClientPtr client, std::string key) {
  Call call{
      .method = "HEAD", .key = key, .what = client->Describe("HEAD", key), .pass_statuses = {404}};
  auto r = co_await client->Send(std::move(call));
  if (!r) co_return std::unexpected(r.error());
  if (r->status == 404) {
    co_return MakeError(ErrorCategory::kNotFound,
                        "no object \"" + key + "\" in bucket \"" + client->config().bucket + "\"");
  }
  ObjectInfo info{.key = key};
  for (const auto& [name, value] : r->headers) {
    if (name == "content-length") {
      info.size = std::strtoull(value.c_str(), nullptr, 10);
    } else if (name == "etag") {
      info.etag = Unquote(value);
    } else if (name == "content-type") {
      info.content_type = value;
    } else if (name.starts_with("x-amz-meta-")) {
      info.metadata[name.substr(11)] = value;
    }
  }
  co_return info;
}

ObjectWriterPtr MakeWriter(ClientPtr client, std::string key, PutOptions options) {
  return std::make_unique<Writer>(std::move(client), std::move(key), std::move(options));
}

}  // namespace reelq::storage::s3
