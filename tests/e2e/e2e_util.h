#pragma once

// Helpers for tests built on E2eStack (part of reelq_e2e_stack): batch submission, WatchJob
// collection, clip inspection with ffprobe, SHA-256 of files.
#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "reelq/v1/jobs.grpc.pb.h"
#include "stack.h"

// Skips the current test, saying why, when the stack's programs or ffprobe are missing.
#define REELQ_SKIP_WITHOUT_STACK_OR_FFPROBE()                                              \
  do {                                                                                     \
    if (auto missing = ::reelq::testing::E2eStack::MissingBinaries(); !missing.empty()) {  \
      GTEST_SKIP() << missing;                                                             \
    }                                                                                      \
    if (!::reelq::testing::FfprobeAvailable()) GTEST_SKIP() << "ffprobe is not installed"; \
  } while (0)

namespace reelq::testing {

// A JobSpec with the usual fields set.
reelq::v1::JobSpec MakeSpec(const std::string& prompt, const std::string& model,
                            uint32_t duration_seconds, const std::string& aspect_ratio = "");

// SubmitBatch with every spec streamed in order: one to a message in `spec`, or
// `items_per_message` to a message in `specs`. `status` gets the RPC status.
reelq::v1::SubmitBatchResponse SubmitBatch(reelq::v1::JobService::Stub& stub,
                                           const std::vector<reelq::v1::JobSpec>& specs,
                                           grpc::Status* status,
                                           std::chrono::seconds timeout = std::chrono::seconds(120),
                                           size_t items_per_message = 1);

// SubmitJob; `status` gets the RPC status.
reelq::v1::SubmitJobResponse SubmitJob(reelq::v1::JobService::Stub& stub,
                                       const reelq::v1::JobSpec& spec, grpc::Status* status);

// GetJob; std::nullopt when the call fails (or takes longer than `deadline`), e.g. while the
// scheduler is being killed.
std::optional<reelq::v1::JobStatus> GetJob(
    reelq::v1::JobService::Stub& stub, const std::string& job_id,
    std::chrono::milliseconds deadline = std::chrono::seconds(5));

// WatchJob (job or batch) until the server ends the stream or `timeout` passes; the events in
// the order received. `status` gets the final status (DEADLINE_EXCEEDED on timeout).
std::vector<reelq::v1::JobEvent> Watch(reelq::v1::JobService::Stub& stub,
                                       const reelq::v1::WatchJobRequest& request,
                                       grpc::Status* status, std::chrono::seconds timeout);

// Every job of a batch through ListJobs (all pages).
std::vector<reelq::v1::JobStatus> ListBatch(reelq::v1::JobService::Stub& stub,
                                            const std::string& batch_id);

struct ClipInfo {
  bool has_video = false;
  double duration_seconds = 0;
  int width = 0;
  int height = 0;
  std::string display_aspect_ratio;  // as ffprobe reports it ("16:9"); may be empty
  std::string error;                 // set when ffprobe failed
};
// ffprobe of one file (format duration, first video stream).
ClipInfo Probe(const std::filesystem::path& file);
// The same for many files, read in batches by `ffmpeg -i ... -i ...` (one process start per
// batch); any file a batch did not read gets its own Probe().
std::vector<ClipInfo> ProbeAll(const std::vector<std::filesystem::path>& files, int parallel = 2);
bool FfprobeAvailable();

std::string Sha256File(const std::filesystem::path& file);

}  // namespace reelq::testing
