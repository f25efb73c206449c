#pragma once

#include <cstdint>
#include <string>

#include "reelq/providers/catalogue.h"
#include "reelq/queue/job_store.h"
#include "reelq/v1/jobs.pb.h"

namespace reelq::worker {

// What a clip's sidecar (the JSON stored next to it) says about how it was made.
struct SidecarFacts {
  const queue::LeasedJob& job;
  const v1::JobSpec& spec;
  const providers::ModelSpec& model;
  const std::string& upstream;
  const std::string& worker_id;
  double clip_seconds = 0;
  const std::string& clip_key;
  uint64_t size_bytes = 0;
  const std::string& sha256;
  int64_t leased_ms = 0;
  int64_t generated_ms = 0;
  int64_t stored_ms = 0;
};

// The sidecar's text: pretty-printed JSON with a final newline.
std::string SidecarJson(const SidecarFacts& facts);

}  // namespace reelq::worker
