#pragma once

// A job's input images at submit: bytes go into the object store under the tenant's inputs and
// the spec keeps only their keys; named keys must exist and hold an image. Admission
// (image_admission.cpp) has already checked formats, sizes and key prefixes.
#include <string>
#include <string_view>

#include "reelq/common/asio.h"
#include "reelq/common/error.h"
#include "reelq/storage/object_store.h"
#include "reelq/v1/jobs.pb.h"

namespace reelq::scheduler {

// inputs/<tenant>/<sha256>.<ext>: content-addressed, so the same image is stored once and a
// resubmission writes nothing new.
std::string InputImageKey(const std::string& tenant, std::string_view bytes);

// Stores every image of `*spec` given as bytes and replaces the bytes by the key; checks every
// image given as a key. kInvalidRequest naming the field for a key that holds no image;
// kFailedPrecondition when images are sent and the scheduler has no object store. `spec` must
// outlive the call.
awaitable<Result<void>> StoreInputImages(storage::ObjectStore* objects, v1::JobSpec* spec,
                                         size_t max_image_bytes);

}  // namespace reelq::scheduler
