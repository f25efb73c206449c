#pragma once

// Helpers shared by the four adapters' wire-format code: safe JSON access (never throws, every
// missing field named), Retry-After parsing, URL joining. No Asio here: the fuzzers compile
// this with clang alone.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "reelq/common/error.h"

namespace reelq::providers::wire {

using Json = nlohmann::json;

// Which call an answer belongs to: the same upstream code can mean different things (a 404 on
// create is a retired model, on poll a task that no longer exists).
enum class Op { kCreate, kFind, kPoll, kDownload, kCancel };
std::string_view ToString(Op op);

// Parses a 2xx body that must be a JSON object; a malformed one is kRetryable naming the call
// ("sora poll: malformed JSON ...").
Result<Json> ParseObject(std::string_view body, std::string_view context);

// Parses any body leniently for error classification: a non-JSON error body yields null.
Json ParseLenient(std::string_view body);

// Follows a dotted path ("data.task_result.videos") through objects; nullptr when any step is
// missing or not an object.
const Json* Find(const Json& root, std::string_view dotted_path);

// The string at `path`, or kRetryable "<context>: missing field '<path>'" / "... is not a
// string".
Result<std::string> RequireString(const Json& root, std::string_view path,
                                  std::string_view context);

// The string at `path` if it is one, else `fallback` (for optional diagnostic fields).
std::string OptionalString(const Json& root, std::string_view path, std::string fallback = "");

// Integer-or-string numbers (providers send "10" and 10 for the same field).
std::optional<double> OptionalNumber(const Json& root, std::string_view path);

Error MissingField(std::string_view context, std::string_view field);

// Retry-After: delta seconds ("7") or an HTTP date ("Wed, 21 Oct 2015 07:28:00 GMT"),
// relative to `now_ms`. Dates in the past give 0. Unparseable: nullopt.
std::optional<std::chrono::milliseconds> ParseRetryAfter(std::string_view value, int64_t now_ms);

// An error as the adapters build them.
Error MakeProviderError(ErrorCategory category, std::string message, std::string provider_code,
                        int http_status,
                        std::chrono::milliseconds retry_after = std::chrono::milliseconds(0));

// Upstream text for messages: bounded and single-line, so a huge or binary error body can
// never flood a log line.
std::string Snippet(std::string_view text, size_t max_chars = 300);

// base_url ("http://127.0.0.1:9/kling", no trailing slash) + path ("/v1/videos").
std::string JoinUrl(std::string_view base_url, std::string_view path);

// Percent-encodes one path segment (task ids come from the network).
std::string EscapePathSegment(std::string_view segment);

}  // namespace reelq::providers::wire
