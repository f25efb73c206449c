#pragma once

// A chained shot's last frame (issue 13): the next shot of its chain starts from it (its
// first_frame). Seedance returns it itself (return_last_frame); for every other provider it is
// extracted from the stored clip with ffmpeg. Stored like a submitted image, content-addressed
// under the tenant's inputs (inputs/<tenant>/<sha256>.<ext>).
#include <string>

#include "reelq/common/asio.h"
#include "reelq/common/error.h"
#include "reelq/providers/provider.h"
#include "reelq/worker/job_runner.h"

namespace reelq::worker {

struct ChainFrameSource {
  std::string tenant;
  std::string clip_key;  // the shot's stored clip
  // The provider's own last frame, when its answer carried one (TaskStatus::last_frame_url).
  providers::ProviderPtr provider;
  std::string upstream;
  providers::TaskStatus status;
};

// Stores the last frame and returns its key.
awaitable<Result<std::string>> StoreChainFrame(RunnerDeps& deps, ChainFrameSource source);

}  // namespace reelq::worker
