// When a SubmitBatch stream seals a chunk and whether it reads on (scheduler/src/batch_chunks.h):
// small items go in chunks of 200 as before; items of MBs (inline images) seal a chunk at the
// byte cap, and a stream holding twice the cap of unanswered items reads no further until a
// chunk comes back.
#include <gtest/gtest.h>

#include "batch_chunks.h"

namespace reelq::scheduler {
namespace {

constexpr size_t kItems = 200;
constexpr size_t kMiB = 1 << 20;
constexpr size_t kCap = 32 * kMiB;
constexpr int kChunksInFlight = 4;

// A stream that keeps sending `item_bytes` items while no chunk is answered: the bytes it has
// read when it stops reading (every sealed chunk is sent at once, up to kChunksInFlight).
size_t BytesReadWithNothingAnswered(BatchChunks& chunks, size_t item_bytes, int* in_flight) {
  size_t read = 0;
  for (int i = 0; i < 100'000 && chunks.MayRead(*in_flight, kChunksInFlight); ++i) {
    read += item_bytes;
    if (chunks.Add(item_bytes)) {
      chunks.Seal();
      ++*in_flight;
    }
  }
  return read;
}

TEST(BatchChunks, SmallItemsAreSealedEveryTwoHundred) {
  BatchChunks chunks(kItems, kCap);
  for (size_t i = 1; i < kItems; ++i) ASSERT_FALSE(chunks.Add(1000)) << i;
  EXPECT_TRUE(chunks.Add(1000));
  EXPECT_EQ(chunks.Seal(), kItems * 1000);
  EXPECT_EQ(chunks.filling_bytes(), 0u);
}

TEST(BatchChunks, ItemsOfMegabytesAreSealedAtTheByteCap) {
  BatchChunks chunks(kItems, kCap);
  // 5 MB each (a first_frame sent inline): the seventh passes 32 MB.
  for (int i = 1; i < 7; ++i) ASSERT_FALSE(chunks.Add(5 * kMiB)) << i;
  EXPECT_TRUE(chunks.Add(5 * kMiB));
  EXPECT_EQ(chunks.Seal(), 35 * kMiB);
  // One item over the cap is a chunk of its own.
  EXPECT_TRUE(chunks.Add(40 * kMiB));
}

// Small items: reading is held back by chunks in flight alone (4 x 200 items), as before.
TEST(BatchChunks, SmallItemsAreHeldBackByChunksInFlight) {
  BatchChunks chunks(kItems, kCap);
  int in_flight = 0;
  const size_t read = BytesReadWithNothingAnswered(chunks, 1000, &in_flight);
  EXPECT_EQ(in_flight, kChunksInFlight);
  EXPECT_EQ(read, kChunksInFlight * kItems * 1000);
}

// Items of 5 MB: the stream stops reading once it holds twice the cap (not 4 x 200 x 5 MB = 4
// GB), and reads again once a chunk is answered.
TEST(BatchChunks, BigItemsAreHeldBackByBytes) {
  BatchChunks chunks(kItems, kCap);
  int in_flight = 0;
  const size_t read = BytesReadWithNothingAnswered(chunks, 5 * kMiB, &in_flight);
  EXPECT_GE(read, 2 * kCap);
  EXPECT_LT(read, 2 * kCap + 5 * kMiB);
  EXPECT_EQ(chunks.held_bytes(), read);
  EXPECT_EQ(in_flight, 1);
  EXPECT_FALSE(chunks.MayRead(in_flight, kChunksInFlight));
  // The first chunk (7 items, 35 MB) comes back: reading goes on.
  chunks.Answered(35 * kMiB);
  --in_flight;
  EXPECT_TRUE(chunks.MayRead(in_flight, kChunksInFlight));
  EXPECT_EQ(chunks.held_bytes(), read - 35 * kMiB);
}

// Nothing in flight: the stream reads on whatever it holds (the filling chunk is under the cap),
// so a stream never waits on itself.
TEST(BatchChunks, AStreamWithNothingInFlightReadsOn) {
  BatchChunks chunks(kItems, kCap);
  for (int i = 0; i < 6; ++i) chunks.Add(5 * kMiB);
  EXPECT_TRUE(chunks.MayRead(0, 1));
  EXPECT_TRUE(chunks.Add(5 * kMiB));
  const size_t sealed = chunks.Seal();
  chunks.Answered(sealed);
  EXPECT_EQ(chunks.held_bytes(), 0u);
  EXPECT_TRUE(chunks.MayRead(0, 1));
}

}  // namespace
}  // namespace reelq::scheduler
