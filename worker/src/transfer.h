#pragma once

#include <memory>
#include <span>
#include <string>

#include "reelq/common/asio.h"
#include "reelq/common/byte_sink.h"
#include "reelq/common/error.h"
#include "reelq/providers/provider.h"
#include "reelq/storage/hashing_writer.h"
#include "reelq/worker/job_runner.h"

namespace reelq::worker {

// One clip download, run as its own coroutine so that a stopped job (cancelled, lease lost,
// drain deadline) need not wait for it: a stalled transfer would otherwise hold the job, its
// partial object and an in-flight slot until the download timeout. Shared by the job and the
// download coroutine; the download writes through it, and once the job abandons it the partial
// object is discarded (at once, or when a write in progress returns) and later bytes refused.
class Transfer final : public ByteSink {
 public:
  // `max_bytes`: worker.max_clip_bytes; a download past it is refused, not stored.
  Transfer(storage::ObjectWriterPtr writer, uint64_t max_bytes)
      : sink_(std::move(writer)), max_bytes_(max_bytes) {}

  awaitable<Result<void>> Write(std::span<const std::byte> chunk) override {
    if (abandoned_) {
      co_return MakeError(ErrorCategory::kCancelled, "the job stopped during the transfer");
    }
    received_ += chunk.size();
    if (received_ > max_bytes_) {
      co_return MakeError(ErrorCategory::kInvalidRequest,
                          "the clip is larger than worker.max_clip_mb (" +
                              std::to_string(max_bytes_ >> 20) +
                              " MiB); its download stopped there and nothing was stored");
    }
    writing_ = true;
    auto written = co_await sink_.Write(chunk);
    writing_ = false;
    if (abandoned_) co_await AbortOnce();
    co_return written;
  }

  // The job no longer waits for this transfer.
  awaitable<void> Abandon() {
    abandoned_ = true;
    if (!writing_) co_await AbortOnce();
  }
  awaitable<void> AbortOnce() {
    if (aborted_) co_return;
    aborted_ = true;
    co_await sink_.Abort();
  }

  storage::HashingWriter& sink() { return sink_; }
  bool abandoned() const { return abandoned_; }

  bool done = false;
  Result<void> result = MakeError(ErrorCategory::kInternal, "the download did not finish");

 private:
  storage::HashingWriter sink_;
  const uint64_t max_bytes_;
  uint64_t received_ = 0;
  bool writing_ = false;
  bool abandoned_ = false;
  bool aborted_ = false;
};

// Downloads `upstream`'s clip into `transfer` and marks it done; wakes the job waiting on it
// (through `control`), or discards the partial object when the job has abandoned it.
awaitable<void> RunTransfer(providers::ProviderPtr provider, std::string upstream,
                            providers::TaskStatus status, std::shared_ptr<Transfer> transfer,
                            std::shared_ptr<JobControl> control);

}  // namespace reelq::worker
