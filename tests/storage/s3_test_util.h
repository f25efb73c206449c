#pragma once

#include <cstring>
#include <random>
#include <string>

#include "reelq/storage/s3_store.h"

namespace reelq::storage::testing {

// Deterministic pseudo-random bytes (incompressible, so a lost or repeated part shows).
inline std::string MakeContent(size_t size, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string out(size, '\0');
  for (size_t i = 0; i + 4 <= size; i += 4) {
    uint32_t v = rng();
    std::memcpy(out.data() + i, &v, 4);
  }
  return out;
}

inline S3Config TestS3Config(const std::string& endpoint, const std::string& bucket) {
  S3Config c;
  c.endpoint = endpoint;
  c.bucket = bucket;
  c.region = "us-east-1";
  c.path_style = true;
  c.credentials = {"S3RVER", "S3RVER", ""};  // s3rver's built-in account
  c.multipart_threshold = 5ull << 20;
  c.part_size = 5ull << 20;
  c.parallel_parts = 3;
  c.request_timeout = std::chrono::seconds(20);
  c.max_attempts = 4;
  c.retry_base = std::chrono::milliseconds(10);
  c.retry_max = std::chrono::milliseconds(100);
  return c;
}

}  // namespace reelq::storage::testing
