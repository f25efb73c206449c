#include "input_images.h"

#include "reelq/common/image_format.h"

namespace reelq::worker {
namespace {

// Far above scheduler.max_image_bytes: only a bound against reading a wrong, huge object.
constexpr size_t kMaxImageBytes = 256 << 20;

awaitable<Result<providers::ImageInput>> Load(storage::ObjectStore* objects, std::string field,
                                              std::string key) {
  if (key.empty()) {
    co_return MakeError(ErrorCategory::kInvalidRequest,
                        field + ": the job carries no stored key for this image");
  }
  auto data = co_await objects->ReadSmall(key, kMaxImageBytes);
  if (!data) {
    Error e = data.error();
    if (e.category == ErrorCategory::kNotFound) e.category = ErrorCategory::kInvalidRequest;
    e.message = field + " (" + key + "): " + e.message;
    co_return std::unexpected(std::move(e));
  }
  const auto format = SniffImageFormat(*data);
  if (!format) {
    co_return MakeError(ErrorCategory::kInvalidRequest,
                        field + " (" + key + "): the stored object is not a PNG, JPEG or WebP");
  }
  co_return providers::ImageInput{std::move(*data), std::string(MimeType(*format))};
}

}  // namespace

awaitable<Result<void>> LoadInputImages(storage::ObjectStore* objects, v1::JobSpec spec,
                                        providers::GenerationRequest* request) {
  const bool any =
      spec.has_first_frame() || spec.has_last_frame() || spec.reference_images_size() > 0;
  if (!any) co_return Result<void>{};
  if (objects == nullptr) {
    co_return MakeError(ErrorCategory::kInternal,
                        "the job has input images but this worker has no object store");
  }
  if (spec.has_first_frame()) {
    auto image = co_await Load(objects, "first_frame", spec.first_frame().key());
    if (!image) co_return std::unexpected(image.error());
    request->first_frame = std::move(*image);
  }
  if (spec.has_last_frame()) {
    auto image = co_await Load(objects, "last_frame", spec.last_frame().key());
    if (!image) co_return std::unexpected(image.error());
    request->last_frame = std::move(*image);
  }
  for (int i = 0; i < spec.reference_images_size(); ++i) {
    auto image = co_await Load(objects, "reference_images[" + std::to_string(i) + "]",
                               spec.reference_images(i).key());
    if (!image) co_return std::unexpected(image.error());
    request->reference_images.push_back(std::move(*image));
  }
  co_return Result<void>{};
}

}  // namespace reelq::worker
