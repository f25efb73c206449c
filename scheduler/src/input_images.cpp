#include "input_images.h"

#include <span>

#include <fmt/format.h>

#include "reelq/common/image_format.h"
#include "reelq/storage/sha256.h"

namespace reelq::scheduler {
namespace {

bool HasImages(const v1::JobSpec& spec) {
  return spec.has_first_frame() || spec.has_last_frame() || spec.reference_images_size() > 0;
}

awaitable<Result<void>> StoreOne(storage::ObjectStore* objects, std::string field,
                                 std::string tenant, v1::ImageInput* image,
                                 size_t max_image_bytes) {
  if (image->source_case() == v1::ImageInput::kData) {
    const auto format = SniffImageFormat(image->data());
    if (!format) {  // admission checked it; kept so this function is safe on its own
      co_return MakeError(ErrorCategory::kInvalidRequest, field + ".data: not an image");
    }
    std::string key = InputImageKey(tenant, image->data());
    storage::PutOptions options;
    options.content_type = std::string(MimeType(*format));
    options.if_absent = true;  // the same bytes under the same key: nothing to overwrite
    auto writer = co_await objects->OpenWriter(key, options);
    if (!writer) co_return std::unexpected(writer.error());
    const auto& bytes = image->data();
    auto chunk = std::as_bytes(std::span(bytes.data(), bytes.size()));
    if (auto wrote = co_await (*writer)->Write(chunk); !wrote) {
      co_await (*writer)->Abort();
      co_return std::unexpected(wrote.error());
    }
    auto committed = co_await (*writer)->Commit();
    if (!committed) co_return std::unexpected(committed.error());
    image->set_key(std::move(key));  // clears the bytes: the job record keeps only the key
    co_return Result<void>{};
  }
  // A key named by the client: it must exist and hold an image of bounded size.
  auto data = co_await objects->ReadSmall(image->key(), max_image_bytes);
  if (!data) {
    const Error& e = data.error();
    if (e.category == ErrorCategory::kNotFound || e.category == ErrorCategory::kInvalidRequest) {
      co_return MakeError(ErrorCategory::kInvalidRequest, field + ".key: " + e.message);
    }
    co_return std::unexpected(e);
  }
  if (!SniffImageFormat(*data)) {
    co_return MakeError(ErrorCategory::kInvalidRequest,
                        fmt::format("{}.key: \"{}\" is not an image — expected a PNG, JPEG or "
                                    "WebP (checked by its content)",
                                    field, image->key()));
  }
  co_return Result<void>{};
}

}  // namespace

std::string InputImageKey(const std::string& tenant, std::string_view bytes) {
  const auto format = SniffImageFormat(bytes);
  return fmt::format("inputs/{}/{}.{}", tenant, storage::Sha256Hex(bytes),
                     format ? FileExtension(*format) : std::string_view("bin"));
}

awaitable<Result<void>> StoreInputImages(storage::ObjectStore* objects, v1::JobSpec* spec,
                                         size_t max_image_bytes) {
  if (!HasImages(*spec)) co_return Result<void>{};
  if (objects == nullptr) {
    co_return MakeError(ErrorCategory::kFailedPrecondition,
                        "first_frame/last_frame/reference_images: this scheduler has no object "
                        "store configured (storage:), so it cannot take input images");
  }
  const std::string tenant = spec->tenant();
  if (spec->has_first_frame()) {
    auto r = co_await StoreOne(objects, "first_frame", tenant, spec->mutable_first_frame(),
                               max_image_bytes);
    if (!r) co_return r;
  }
  if (spec->has_last_frame()) {
    auto r = co_await StoreOne(objects, "last_frame", tenant, spec->mutable_last_frame(),
                               max_image_bytes);
    if (!r) co_return r;
  }
  for (int i = 0; i < spec->reference_images_size(); ++i) {
    auto r = co_await StoreOne(objects, fmt::format("reference_images[{}]", i), tenant,
                               spec->mutable_reference_images(i), max_image_bytes);
    if (!r) co_return r;
  }
  co_return Result<void>{};
}

}  // namespace reelq::scheduler
