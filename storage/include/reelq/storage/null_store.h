#pragma once

#include "reelq/storage/object_store.h"

namespace reelq::storage {

// FOR BENCHMARKS AND TESTS ONLY (`storage.backend: "null"`, quoted: unquoted it is YAML's null,
// which the factory refuses). Accepts every object and discards its bytes; Commit reports the
// size it was given (no checksum, never "already existed"), Head answers every key as if it
// were stored (size 0, nothing known about it), Delete succeeds and PresignGet answers a
// null:// URL. It lets bench/throughput --mode queue measure the queue
// without a disk write per job. Nothing is kept: never use it where clips matter.
ObjectStorePtr MakeNullStore();

}  // namespace reelq::storage
