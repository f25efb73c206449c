#pragma once

// A job's input images, read from the object store into the generation request (the scheduler
// stored them at submit and the job spec keeps only their keys).
#include "reelq/common/asio.h"
#include "reelq/common/error.h"
#include "reelq/providers/generation.h"
#include "reelq/storage/object_store.h"
#include "reelq/v1/jobs.pb.h"

namespace reelq::worker {

// Fills request->first_frame, last_frame and reference_images from `spec`'s keys. A key that
// is gone or holds no image is kInvalidRequest naming the field (retrying cannot bring it
// back); a store fault keeps its own category. `request` must outlive the call.
awaitable<Result<void>> LoadInputImages(storage::ObjectStore* objects, v1::JobSpec spec,
                                        providers::GenerationRequest* request);

}  // namespace reelq::worker
