#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "reelq/common/clock.h"
#include "reelq/common/error.h"
#include "reelq/common/http_client.h"
#include "reelq/storage/object_store.h"
#include "reelq/storage/sigv4.h"

namespace reelq::storage {

struct S3Config {
  std::string endpoint;  // "https://s3.us-east-1.amazonaws.com", "http://127.0.0.1:9000"
  std::string region = "us-east-1";
  std::string bucket;
  bool path_style = false;  // true: <endpoint>/<bucket>/<key>; false: <bucket>.<host>/<key>
  sigv4::Credentials credentials;
  // Objects larger than this are sent as a multipart upload, in parts of part_size bytes
  // (at least 5 MiB, S3's minimum), up to parallel_parts of them in flight while the writer
  // keeps accepting bytes. Memory per writer is bounded by about
  // max(multipart_threshold, part_size) + part_size * parallel_parts.
  uint64_t multipart_threshold = 16ull << 20;
  uint64_t part_size = 8ull << 20;
  int parallel_parts = 4;
  // Per request (one part, one PUT): the deadline for the whole exchange.
  std::chrono::milliseconds request_timeout{120'000};
  // Retries per request on 5xx, SlowDown, RequestTimeout, InternalError and dropped
  // connections: exponential backoff from retry_base up to retry_max, with jitter.
  int max_attempts = 5;
  std::chrono::milliseconds retry_base{200};
  std::chrono::milliseconds retry_max{10'000};
  // The longest a presigned URL lives (`storage.s3.presign_ttl_seconds`): a caller asking for
  // longer (a clip's URL in its record and webhook asks for 7 days) gets this instead.
  std::chrono::seconds presign_ttl{86'400};
  // The wall clock requests and presigned URLs are signed with; null: the system clock.
  ClockPtr clock;
};

// An S3-compatible store (AWS S3, MinIO, R2, GCS interop). Requests are signed with SigV4
// and carry the SHA-256 of their body in x-amz-content-sha256 (not UNSIGNED-PAYLOAD): a part
// is in memory anyway, and the server then rejects any body damaged in transit.
//
// if_absent: a HEAD first (before a multipart upload starts, so an existing clip is not sent
// again), and If-None-Match: * on the PUT / CompleteMultipartUpload, where 412 means another
// writer won: already_existed. Servers that ignore If-None-Match (older MinIO, s3rver) leave a
// race between the HEAD and the PUT in which the last writer wins.
//
// A writer's state is touched only from the executor of the coroutine that calls Write and
// Commit, and its part uploads are spawned onto that same executor: use it from one strand
// (or a single-threaded io_context).
Result<ObjectStorePtr> MakeS3Store(S3Config config, http::ClientPtr http);

}  // namespace reelq::storage
