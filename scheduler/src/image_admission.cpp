// Admission of a job's input images (issue 13): what can be checked without I/O. Storing the
// bytes and checking that a named key exists happen in JobApi (input_images.cpp).
#include <algorithm>

#include <fmt/format.h>

#include "reelq/common/image_format.h"
#include "reelq/scheduler/admission.h"

namespace reelq::scheduler {
namespace {

// A key as the object store takes it (storage::ValidateKey's rules, repeated here because
// admission does not link the storage library): relative, '/'-separated, no empty, "." or
// ".." segment, no segment starting with '.', no control characters.
bool PlainKey(std::string_view key) {
  if (key.empty() || key.size() > 1024 || key.front() == '/') return false;
  size_t start = 0;
  while (start <= key.size()) {
    const size_t slash = std::min(key.find('/', start), key.size());
    const std::string_view segment = key.substr(start, slash - start);
    if (segment.empty() || segment.front() == '.' || segment.size() > 255) return false;
    start = slash + 1;
  }
  for (char c : key) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return false;
  }
  return true;
}

std::optional<std::string> CheckOne(const std::string& field, const v1::ImageInput& image,
                                    const std::string& tenant, const AdmissionLimits& limits) {
  switch (image.source_case()) {
    case v1::ImageInput::kData: {
      const std::string& data = image.data();
      if (data.size() > limits.max_image_bytes) {
        return fmt::format("{}.data: {} bytes — over the {}-byte limit (scheduler.max_image_bytes)",
                           field, data.size(), limits.max_image_bytes);
      }
      if (!SniffImageFormat(data)) {
        return fmt::format(
            "{}.data: not an image — expected a PNG, JPEG or WebP (checked by its "
            "content)",
            field);
      }
      return std::nullopt;
    }
    case v1::ImageInput::kKey: {
      const std::string& key = image.key();
      const std::string inputs = "inputs/" + tenant + "/", own = tenant + "/";
      if (!PlainKey(key)) {
        return fmt::format("{}.key: \"{}\" is not a valid object key", field, key.substr(0, 64));
      }
      if (!key.starts_with(inputs) && !key.starts_with(own)) {
        return fmt::format(
            "{}.key: \"{}\" is not one of tenant {}'s objects (expected a key under "
            "{} or {})",
            field, key.substr(0, 64), tenant, inputs, own);
      }
      return std::nullopt;
    }
    case v1::ImageInput::SOURCE_NOT_SET:
      break;
  }
  return fmt::format("{}: empty — send the image's data or the key of a stored image", field);
}

}  // namespace

std::optional<std::string> CheckImageInputs(const v1::JobSpec& spec, const std::string& tenant,
                                            const AdmissionLimits& limits) {
  if (spec.has_first_frame()) {
    if (auto e = CheckOne("first_frame", spec.first_frame(), tenant, limits)) return e;
  }
  if (spec.has_last_frame()) {
    if (auto e = CheckOne("last_frame", spec.last_frame(), tenant, limits)) return e;
  }
  if (static_cast<size_t>(spec.reference_images_size()) > limits.max_reference_images) {
    return fmt::format("reference_images: {} images — at most {} allowed",
                       spec.reference_images_size(), limits.max_reference_images);
  }
  for (int i = 0; i < spec.reference_images_size(); ++i) {
    if (auto e = CheckOne(fmt::format("reference_images[{}]", i), spec.reference_images(i), tenant,
                          limits)) {
      return e;
    }
  }
  return std::nullopt;
}

}  // namespace reelq::scheduler
