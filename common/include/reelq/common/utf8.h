#pragma once

#include <cstddef>
#include <string>
#include <string_view>

// The one UTF-8 validator of reelq, used by the scheduler's admission and by the `reelq` CLI
// (which links only this, as the reelq_utf8 library, not the rest of common/).
namespace reelq {

// Strict UTF-8 (RFC 3629): rejects overlong forms, surrogates (U+D800..U+DFFF), code points
// above U+10FFFF and truncated sequences. Returns the byte offset of the first byte of the
// first bad sequence, or npos when `text` is valid.
size_t FindInvalidUtf8(std::string_view text);
inline bool IsValidUtf8(std::string_view text) {
  return FindInvalidUtf8(text) == std::string_view::npos;
}
// Number of code points in valid UTF-8 (what the providers call "characters").
size_t CountCodePoints(std::string_view utf8);

// A client's value inside an error message: in double quotes, at most `max` bytes of it (cut on a
// code point boundary, then "…"), control characters and bytes that are not valid UTF-8 shown as
// \xNN. An error travels in proto `string` fields and grpc-message, which must be valid UTF-8
// and bounded: a client cannot parse an answer carrying raw invalid bytes.
std::string QuoteForMessage(std::string_view value, size_t max = 64);
// A provider's or server's text for a log line, an error message or a record: at most `max`
// bytes (cut on a code point boundary, then "..."), control characters as spaces, bytes that are
// not valid UTF-8 as \xNN. What it returns is valid UTF-8, so a job record or event holding it
// stays readable by every client (protobuf refuses a string field with invalid UTF-8).
std::string PlainSnippet(std::string_view text, size_t max);
// `text` as it is when it is valid UTF-8, else PlainSnippet's reading of it whole: what a record
// read back from Redis puts into a proto string field (a client refuses an answer holding invalid
// UTF-8, so one bad record written by an older build must not make a job or a page unreadable).
inline std::string ValidUtf8(std::string text) {
  if (IsValidUtf8(text)) return text;
  return PlainSnippet(text, text.size());
}
// `value` as it is when it is a plain id (1 to 128 of A-Z a-z 0-9 . _ - : /), else quoted as
// QuoteForMessage does.
std::string IdForMessage(std::string_view value);

}  // namespace reelq
