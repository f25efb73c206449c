#pragma once

// Input images as the simulator receives them: each provider's form is decoded here (base64,
// data URLs, multipart parts), checked to be a PNG, JPEG or WebP by its content, and recorded
// by role and SHA-256 so tests can see exactly which image reached which generation.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace reelq::sim {

struct ReceivedImage {
  std::string role;  // first_frame | last_frame | reference_image
  std::string sha256;
  std::string mime_type;  // what the content is (sniffed), not what the request claimed
  size_t bytes = 0;
};

// Strict standard base64 (padding required, no white space); nullopt when malformed.
std::optional<std::string> DecodeBase64(std::string_view text);

// Checks decoded image bytes: nullopt and fills `out` when they are a PNG, JPEG or WebP (and,
// when `declared_mime` is not empty, of that type); otherwise the reason, for the provider's
// error message.
std::optional<std::string> CheckImage(std::string_view bytes, std::string_view declared_mime,
                                      std::string role, ReceivedImage& out);

// One part of a multipart/form-data body.
struct FormPart {
  std::string name;
  std::string filename;  // empty for a plain field
  std::string content_type;
  std::string data;
};

// Parses a multipart/form-data body given its Content-Type header; nullopt and `error` set
// when the boundary is missing or the body is not well formed.
std::optional<std::vector<FormPart>> ParseMultipart(std::string_view content_type,
                                                    std::string_view body, std::string& error);

}  // namespace reelq::sim
