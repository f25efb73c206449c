#pragma once

// Helpers shared by the four adapters' wire-format code: safe JSON access (never throws, every
// missing field named), Retry-After parsing, URL joining. No Asio here: the fuzzers compile
// this with clang alone.
#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
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

// --- Error classification -----------------------------------------------------------------------
// Each provider has one ErrorTable: its own codes, and the few HTTP statuses that mean something
// particular on one of its calls. Classify() applies it the same way for all four:
//   1. a status row of the provider's for this call (op, HTTP status) decides, if there is one;
//   2. otherwise the first of the answer's codes that has a code row decides, except that a
//      code cannot make a 5xx anything but retryable or rate-limited (a failing server is
//      transient, whatever its body says), nor a 404/410 an invalid request (OpenAI files a
//      missing video under invalid_request_error);
//   3. otherwise the HTTP status, by the rule all providers share (CategoryForHttpStatus).
// Then "model gone" only stands on create: on any other call the model was already accepted,
// and what is missing is the task or the file (kNotFound).

// How a code row matches the provider's code.
enum class Match { kExact, kPrefix, kContains, kRange };

struct CodeRow {
  Match match = Match::kExact;
  std::string_view pattern;  // kExact, kPrefix, kContains
  int lo = 0, hi = 0;        // kRange: a numeric code in [lo, hi]
  ErrorCategory category = ErrorCategory::kRetryable;
  std::string_view meaning;  // for messages: "content policy"
  // A rate limit on the account's tasks running at once, not on its create rate (Kling's 1303):
  // sets Error::over_concurrency.
  bool over_concurrency = false;
};
constexpr CodeRow Exact(std::string_view code, ErrorCategory category, std::string_view meaning) {
  return {.match = Match::kExact, .pattern = code, .category = category, .meaning = meaning};
}
constexpr CodeRow Prefix(std::string_view code, ErrorCategory category, std::string_view meaning) {
  return {.match = Match::kPrefix, .pattern = code, .category = category, .meaning = meaning};
}
constexpr CodeRow Contains(std::string_view part, ErrorCategory category,
                           std::string_view meaning) {
  return {.match = Match::kContains, .pattern = part, .category = category, .meaning = meaning};
}
constexpr CodeRow Range(int lo, int hi, ErrorCategory category, std::string_view meaning) {
  return {.match = Match::kRange, .lo = lo, .hi = hi, .category = category, .meaning = meaning};
}
constexpr CodeRow OverConcurrency(CodeRow row) {
  row.over_concurrency = true;
  return row;
}
bool Matches(const CodeRow& row, std::string_view code);

// What an HTTP status means on one call of one provider, where it differs from the shared rule.
struct StatusRow {
  Op op;
  int http_status;
  ErrorCategory category;
  std::string_view meaning;
};

// What a provider's error body says, taken out of its envelope by the provider's own function.
struct ErrorFields {
  // The answer's codes, most specific first (Veo: the ErrorInfo reason, then the status name).
  // The first that has a row decides; provider_code is that one, else the first non-empty one.
  std::array<std::string, 2> codes;
  std::string message;  // the provider's own text; empty: the raw body stands in
};

struct ErrorTable {
  std::string_view provider;  // "kling": the start of every message
  std::span<const CodeRow> codes;
  std::span<const StatusRow> statuses;
  ErrorFields (*fields)(const Json& body) = nullptr;  // null: no codes, the body as message
  // Kling: an answer whose envelope carries a code is an error even with HTTP 200.
  bool code_in_2xx_is_error = false;
  // A floor for a rate limit's wait when the answer names none (Kling: back off >= 1 s).
  std::chrono::milliseconds min_rate_limit_wait{0};
};

// The rule every provider shares for an HTTP status no row of its own covers: 401/403 auth,
// 429 rate-limited, 404/410 model gone on create and not found elsewhere, 400/409/413/422
// invalid request, anything else (5xx, 408, unexpected) retryable.
ErrorCategory CategoryForHttpStatus(Op op, int http_status);

// The first row matching `code`; nullptr when none does (or the code is empty).
const CodeRow* FindCodeRow(std::span<const CodeRow> rows, std::string_view code);

// The one classification path of every adapter (the rules above), for an error answer on `op`
// (Kling's can come with HTTP 200); `body` may be any bytes. The message
// reads "<provider> <op>[: <meaning>] (HTTP <status> <code>): <provider's text>". A 502/504 is
// marked maybe_delivered: a gateway may have passed the request on before it failed, or the
// provider timed out after taking it.
Error Classify(const ErrorTable& table, Op op, int http_status, std::string_view body,
               std::optional<std::string> retry_after, int64_t now_ms);

// An answer to `op`, parse or classify: the JSON object of a 2xx body (malformed: kRetryable
// "<provider> <op>: malformed JSON ..."), or the error the provider's table makes of any other
// answer. Every wire parser starts here.
Result<Json> ParseAnswer(const ErrorTable& table, Op op, int http_status, std::string_view body,
                         std::optional<std::string> retry_after, int64_t now_ms);

// A create's answer: the task id at `id_path` of a 2xx body, or ParseAnswer's error.
Result<std::string> ParseCreated(const ErrorTable& table, std::string_view id_path, int http_status,
                                 std::string_view body, std::optional<std::string> retry_after,
                                 int64_t now_ms);

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

// --- Downloads ----------------------------------------------------------------------------------
// How many of a downloaded clip's first bytes NotAVideo looks at.
inline constexpr size_t kClipSniffBytes = 64;
// Why a downloaded body whose first bytes are `head` (kClipSniffBytes of them, fewer only when
// the whole body is that short) is clearly not a video ("it is empty", "it is markup or JSON",
// "it is text"), or nullopt. Conservative: a body whose first box is an ISO-BMFF one (ftyp, or
// free/wide/mdat/moov... that some encoders write first) passes, and so does any other binary
// body (another container is the provider's business); refused are only what a CDN or a proxy
// answers 200 with instead of the file: nothing, an HTML or XML page, JSON, plain text.
std::optional<std::string> NotAVideo(std::string_view head);

// base_url ("http://127.0.0.1:9/kling", no trailing slash) + path ("/v1/videos").
std::string JoinUrl(std::string_view base_url, std::string_view path);

// Standard base64 (RFC 4648, with padding): how the providers take inline image bytes.
std::string Base64Encode(std::string_view bytes);

// Percent-encodes one path segment (task ids come from the network).
std::string EscapePathSegment(std::string_view segment);

}  // namespace reelq::providers::wire
