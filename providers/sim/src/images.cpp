#include "images.h"

#include <cctype>

#include <fmt/format.h>

#include "reelq/common/image_format.h"
#include "sim.h"

namespace reelq::sim {

std::optional<std::string> DecodeBase64(std::string_view text) {
  if (text.empty() || text.size() % 4 != 0) return std::nullopt;
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    int v[4];
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = text[i + k];
      if (c == '=' && i + 4 == text.size() && k >= 2) {
        v[k] = 0;
        ++pad;
        continue;
      }
      if (pad > 0) return std::nullopt;  // data after padding
      v[k] = value(c);
      if (v[k] < 0) return std::nullopt;
    }
    const uint32_t n = (v[0] << 18) | (v[1] << 12) | (v[2] << 6) | v[3];
    out += static_cast<char>((n >> 16) & 0xff);
    if (pad < 2) out += static_cast<char>((n >> 8) & 0xff);
    if (pad < 1) out += static_cast<char>(n & 0xff);
  }
  return out;
}

std::optional<std::string> CheckImage(std::string_view bytes, std::string_view declared_mime,
                                      std::string role, ReceivedImage& out) {
  if (bytes.empty()) return std::string("the image is empty");
  const auto format = SniffImageFormat(bytes);
  if (!format) return std::string("the data is not a PNG, JPEG or WebP image");
  const std::string_view actual = MimeType(*format);
  if (!declared_mime.empty() && declared_mime != actual) {
    return fmt::format("the mime type is {} but the data is {}", declared_mime, actual);
  }
  out = {.role = std::move(role),
         .sha256 = Sha256Hex(bytes),
         .mime_type = std::string(actual),
         .bytes = bytes.size()};
  return std::nullopt;
}

namespace {

// The value of `name=` in a header's parameters (quotes removed); empty when absent.
std::string Parameter(std::string_view header, std::string_view name) {
  const std::string key = std::string(name) + "=";
  size_t pos = 0;
  while ((pos = header.find(key, pos)) != std::string_view::npos) {
    if (pos == 0 || header[pos - 1] == ' ' || header[pos - 1] == ';') break;
    pos += key.size();
  }
  if (pos == std::string_view::npos) return "";
  std::string_view value = header.substr(pos + key.size());
  if (!value.empty() && value.front() == '"') {
    value.remove_prefix(1);
    return std::string(value.substr(0, value.find('"')));
  }
  return std::string(value.substr(0, value.find(';')));
}

}  // namespace

std::optional<std::vector<FormPart>> ParseMultipart(std::string_view content_type,
                                                    std::string_view body, std::string& error) {
  if (!content_type.starts_with("multipart/form-data")) {
    error = "the content type is not multipart/form-data";
    return std::nullopt;
  }
  const std::string boundary = Parameter(content_type, "boundary");
  if (boundary.empty()) {
    error = "the multipart content type has no boundary";
    return std::nullopt;
  }
  const std::string delimiter = "--" + boundary;
  std::vector<FormPart> parts;
  size_t pos = body.find(delimiter);
  if (pos != 0) {
    error = "the multipart body does not start with its boundary";
    return std::nullopt;
  }
  while (true) {
    pos += delimiter.size();
    if (body.substr(pos, 2) == "--") return parts;  // the closing delimiter
    if (body.substr(pos, 2) != "\r\n") break;
    pos += 2;
    const size_t head_end = body.find("\r\n\r\n", pos);
    if (head_end == std::string_view::npos) break;
    FormPart part;
    std::string_view head = body.substr(pos, head_end - pos);
    while (!head.empty()) {
      const size_t eol = head.find("\r\n");
      std::string_view line = head.substr(0, eol);
      const size_t colon = line.find(':');
      if (colon != std::string_view::npos) {
        std::string name(line.substr(0, colon));
        for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        std::string_view value = line.substr(colon + 1);
        while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
        if (name == "content-disposition") {
          part.name = Parameter(value, "name");
          part.filename = Parameter(value, "filename");
        } else if (name == "content-type") {
          part.content_type = std::string(value);
        }
      }
      if (eol == std::string_view::npos) break;
      head.remove_prefix(eol + 2);
    }
    const size_t data_start = head_end + 4;
    const size_t next = body.find("\r\n" + delimiter, data_start);
    if (next == std::string_view::npos) break;
    part.data = std::string(body.substr(data_start, next - data_start));
    if (part.name.empty()) {
      error = "a multipart part has no name in its Content-Disposition";
      return std::nullopt;
    }
    parts.push_back(std::move(part));
    pos = next + 2;
  }
  error = "the multipart body is not well formed (a part or the closing boundary is missing)";
  return std::nullopt;
}

}  // namespace reelq::sim
