#pragma once

// The image formats a job may carry (first frame, last frame, reference images), told apart by
// their content, never by a file name: the scheduler refuses anything else at submit, the
// worker names the MIME type to the provider, and the simulator checks what it received.
// Header-only so the CLI, the simulator and the wire code can share it without linking more.
#include <optional>
#include <string_view>

namespace reelq {

enum class ImageFormat { kPng, kJpeg, kWebp };

// The format the bytes start with; nullopt for anything that is not a PNG, JPEG or WebP.
inline std::optional<ImageFormat> SniffImageFormat(std::string_view bytes) {
  if (bytes.size() >= 8 && bytes.substr(0, 8) == std::string_view("\x89PNG\r\n\x1a\n", 8)) {
    return ImageFormat::kPng;
  }
  if (bytes.size() >= 3 && bytes.substr(0, 3) == std::string_view("\xff\xd8\xff", 3)) {
    return ImageFormat::kJpeg;
  }
  if (bytes.size() >= 12 && bytes.substr(0, 4) == "RIFF" && bytes.substr(8, 4) == "WEBP") {
    return ImageFormat::kWebp;
  }
  return std::nullopt;
}

inline std::string_view MimeType(ImageFormat format) {
  switch (format) {
    case ImageFormat::kPng:
      return "image/png";
    case ImageFormat::kJpeg:
      return "image/jpeg";
    case ImageFormat::kWebp:
      return "image/webp";
  }
  return "application/octet-stream";
}

inline std::string_view FileExtension(ImageFormat format) {
  switch (format) {
    case ImageFormat::kPng:
      return "png";
    case ImageFormat::kJpeg:
      return "jpg";
    case ImageFormat::kWebp:
      return "webp";
  }
  return "bin";
}

}  // namespace reelq
