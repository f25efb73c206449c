#pragma once

#include <cstddef>

namespace reelq::scheduler {

// What a SubmitBatch stream (job_service.cpp) holds of its items, and so when it seals a chunk
// and whether it may read its next message. Items are stored in chunks of up to `max_items`;
// a chunk is also sealed once its items' bytes reach `max_bytes` (an item with inline images is
// megabytes: 200 of them would be hundreds of MB held before any is stored). The stream reads
// on only while fewer than the allowed chunks are being stored and the bytes it holds (items
// taken and not yet answered: the filling chunk, chunks held or being stored) are under twice
// `max_bytes`. Past that it waits for a chunk to come back. Not thread-safe: the reactor calls
// it under its mutex.
class BatchChunks {
 public:
  BatchChunks(size_t max_items, size_t max_bytes) : max_items_(max_items), max_bytes_(max_bytes) {}

  // An item of `bytes` joined the filling chunk. True when that chunk is now full (by items or
  // by bytes) and should be sealed.
  bool Add(size_t bytes) {
    ++filling_items_;
    filling_bytes_ += bytes;
    held_bytes_ += bytes;
    return filling_items_ >= max_items_ || filling_bytes_ >= max_bytes_;
  }

  // The filling chunk is sealed (sent to be stored, or held): its bytes, to hand back to
  // Answered once its items are answered. The next item starts a new chunk.
  size_t Seal() {
    const size_t bytes = filling_bytes_;
    filling_items_ = 0;
    filling_bytes_ = 0;
    return bytes;
  }

  // Items of `bytes` (a sealed chunk's, or the filling chunk's when it is refused whole) were
  // answered: the stream no longer holds them.
  void Answered(size_t bytes) { held_bytes_ -= bytes < held_bytes_ ? bytes : held_bytes_; }

  // Whether the stream may read its next message while `in_flight` chunks are being stored and
  // up to `allowed` may be.
  bool MayRead(int in_flight, int allowed) const {
    return in_flight < allowed && held_bytes_ < 2 * max_bytes_;
  }

  size_t held_bytes() const { return held_bytes_; }
  size_t filling_bytes() const { return filling_bytes_; }

 private:
  size_t max_items_, max_bytes_;
  size_t filling_items_ = 0, filling_bytes_ = 0;
  size_t held_bytes_ = 0;  // items taken and not yet answered
};

}  // namespace reelq::scheduler
