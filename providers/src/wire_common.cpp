#include "wire_common.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <ctime>

#include "reelq/common/utf8.h"

namespace reelq::providers::wire {

std::string_view ToString(Op op) {
  switch (op) {
    case Op::kCreate:
      return "create";
    case Op::kFind:
      return "find";
    case Op::kPoll:
      return "poll";
    case Op::kDownload:
      return "download";
    case Op::kCancel:
      return "cancel";
  }
  return "call";
}

bool Matches(const CodeRow& row, std::string_view code) {
  if (code.empty()) return false;
  switch (row.match) {
    case Match::kExact:
      return code == row.pattern;
    case Match::kPrefix:
      return code.starts_with(row.pattern);
    case Match::kContains:
      return code.find(row.pattern) != std::string_view::npos;
    case Match::kRange: {
      int value = 0;
      auto [end, ec] = std::from_chars(code.data(), code.data() + code.size(), value);
      return ec == std::errc() && end == code.data() + code.size() && value >= row.lo &&
             value <= row.hi;
    }
  }
  return false;
}

ErrorCategory CategoryForHttpStatus(Op op, int http_status) {
  switch (http_status) {
    case 401:
    case 403:
      return ErrorCategory::kAuthFailed;
    case 429:
      return ErrorCategory::kRateLimited;
    case 404:
    case 410:
      // A create names nothing but the model (and the endpoint): what is not there is the model.
      return op == Op::kCreate ? ErrorCategory::kModelGone : ErrorCategory::kNotFound;
    case 400:
    case 409:
    case 413:
    case 422:
      return ErrorCategory::kInvalidRequest;
    default:
      return ErrorCategory::kRetryable;  // 5xx, 408 and anything unexpected
  }
}

const CodeRow* FindCodeRow(std::span<const CodeRow> rows, std::string_view code) {
  for (const auto& row : rows) {
    if (Matches(row, code)) return &row;
  }
  return nullptr;
}

Error Classify(const ErrorTable& table, Op op, int status, std::string_view body,
               std::optional<std::string> retry_after, int64_t now_ms) {
  ErrorFields fields;
  if (table.fields != nullptr) fields = table.fields(ParseLenient(body));
  if (fields.message.empty()) fields.message = Snippet(body, 200);

  ErrorCategory category = CategoryForHttpStatus(op, status);
  std::string_view meaning;
  std::string_view code;
  for (const std::string& candidate : fields.codes) {
    if (code.empty()) code = candidate;
  }
  bool over_concurrency = false;
  const StatusRow* status_row = nullptr;
  for (const auto& row : table.statuses) {
    if (row.op == op && row.http_status == status) status_row = &row;
  }
  if (status_row != nullptr) {
    category = status_row->category;
    meaning = status_row->meaning;
  } else {
    for (const std::string& candidate : fields.codes) {
      const CodeRow* row = FindCodeRow(table.codes, candidate);
      if (row == nullptr) continue;
      code = candidate;
      const bool server_failed = status >= 500 && !IsRetryable(row->category);
      const bool not_there =
          (status == 404 || status == 410) && row->category == ErrorCategory::kInvalidRequest;
      if (!server_failed && !not_there) {
        category = row->category;
        meaning = row->meaning;
        over_concurrency = row->over_concurrency;
      }
      break;
    }
  }
  if (category == ErrorCategory::kModelGone && op != Op::kCreate) {
    category = ErrorCategory::kNotFound;
  }
  std::chrono::milliseconds wait{0};
  if (IsRetryable(category) && retry_after) {
    wait = ParseRetryAfter(*retry_after, now_ms).value_or(wait);
  }
  if (category == ErrorCategory::kRateLimited && wait.count() == 0) {
    wait = table.min_rate_limit_wait;
  }
  std::string text = std::string(table.provider) + " " + std::string(ToString(op));
  if (!meaning.empty()) text += ": " + std::string(meaning);
  text += " (HTTP " + std::to_string(status);
  if (!code.empty()) text += " " + Snippet(code, 80);
  text += "): " + Snippet(fields.message, 300);
  Error error = MakeProviderError(category, std::move(text), Snippet(code, 100), status, wait);
  error.maybe_delivered = status == 502 || status == 504;
  error.over_concurrency = over_concurrency && category == ErrorCategory::kRateLimited;
  return error;
}

Result<Json> ParseAnswer(const ErrorTable& table, Op op, int http_status, std::string_view body,
                         std::optional<std::string> retry_after, int64_t now_ms) {
  bool error = http_status < 200 || http_status >= 300;
  if (!error && table.code_in_2xx_is_error && table.fields != nullptr) {
    error = !table.fields(ParseLenient(body)).codes[0].empty();
  }
  if (error) {
    return std::unexpected(Classify(table, op, http_status, body, std::move(retry_after), now_ms));
  }
  return ParseObject(body, std::string(table.provider) + " " + std::string(ToString(op)));
}

Result<std::string> ParseCreated(const ErrorTable& table, std::string_view id_path, int http_status,
                                 std::string_view body, std::optional<std::string> retry_after,
                                 int64_t now_ms) {
  // A 2xx that is not an error by the provider's own code took the create: when its answer
  // cannot be read (malformed, cut off, no task id) the task may exist and be billed, so the
  // failure is marked maybe delivered and the worker looks for the task before creating again.
  const bool accepted = http_status >= 200 && http_status < 300;
  auto parsed = ParseAnswer(table, Op::kCreate, http_status, body, std::move(retry_after), now_ms);
  if (!parsed) {
    Error error = parsed.error();
    if (accepted && error.provider_code.empty()) error.maybe_delivered = true;
    return std::unexpected(std::move(error));
  }
  auto id = RequireString(*parsed, id_path, std::string(table.provider) + " create");
  if (!id && accepted) {
    Error error = id.error();
    error.maybe_delivered = true;
    return std::unexpected(std::move(error));
  }
  return id;
}

Error MissingField(std::string_view context, std::string_view field) {
  return Error{.category = ErrorCategory::kRetryable,
               .message = std::string(context) + ": missing field '" + std::string(field) + "'"};
}

Result<Json> ParseObject(std::string_view body, std::string_view context) {
  Json parsed = Json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    return MakeError(ErrorCategory::kRetryable,
                     std::string(context) + ": malformed JSON in response: " + Snippet(body, 120));
  }
  if (!parsed.is_object()) {
    return MakeError(ErrorCategory::kRetryable,
                     std::string(context) + ": expected a JSON object, got " + parsed.type_name());
  }
  return parsed;
}

Json ParseLenient(std::string_view body) {
  Json parsed = Json::parse(body.begin(), body.end(), nullptr, false);
  if (parsed.is_discarded()) return Json();
  return parsed;
}

const Json* Find(const Json& root, std::string_view path) {
  const Json* node = &root;
  while (!path.empty()) {
    size_t dot = path.find('.');
    std::string_view key = path.substr(0, dot);
    if (!node->is_object()) return nullptr;
    auto it = node->find(key);
    if (it == node->end()) return nullptr;
    node = &*it;
    path = dot == std::string_view::npos ? std::string_view() : path.substr(dot + 1);
  }
  return node;
}

Result<std::string> RequireString(const Json& root, std::string_view path,
                                  std::string_view context) {
  const Json* node = Find(root, path);
  if (node == nullptr || node->is_null()) return std::unexpected(MissingField(context, path));
  if (!node->is_string()) {
    return MakeError(ErrorCategory::kRetryable,
                     std::string(context) + ": field '" + std::string(path) + "' is not a string");
  }
  std::string value = node->get<std::string>();
  if (value.empty()) {
    return MakeError(ErrorCategory::kRetryable,
                     std::string(context) + ": field '" + std::string(path) + "' is empty");
  }
  return value;
}

std::string OptionalString(const Json& root, std::string_view path, std::string fallback) {
  const Json* node = Find(root, path);
  if (node == nullptr) return fallback;
  if (node->is_string()) return node->get<std::string>();
  if (node->is_number_integer()) return std::to_string(node->get<int64_t>());
  return fallback;
}

std::optional<double> OptionalNumber(const Json& root, std::string_view path) {
  const Json* node = Find(root, path);
  if (node == nullptr) return std::nullopt;
  if (node->is_number()) return node->get<double>();
  if (node->is_string()) {
    const std::string& s = node->get_ref<const std::string&>();
    double value = 0;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
    if (ec == std::errc() && ptr == s.data() + s.size()) return value;
  }
  return std::nullopt;
}

std::optional<std::chrono::milliseconds> ParseRetryAfter(std::string_view value, int64_t now_ms) {
  while (!value.empty() && std::isspace(static_cast<unsigned char>(value.front()))) {
    value.remove_prefix(1);
  }
  while (!value.empty() && std::isspace(static_cast<unsigned char>(value.back()))) {
    value.remove_suffix(1);
  }
  if (value.empty()) return std::nullopt;
  if (std::isdigit(static_cast<unsigned char>(value.front()))) {
    double seconds = 0;
    auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
    if (ec != std::errc() || ptr != value.data() + value.size() || seconds < 0 ||
        seconds > 86400.0 * 7) {
      return std::nullopt;
    }
    return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
  }
  // IMF-fixdate, e.g. "Wed, 21 Oct 2015 07:28:00 GMT".
  std::tm tm{};
  std::string text(value);
  const char* end = ::strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (end == nullptr || *end != '\0') return std::nullopt;
  int64_t at_ms = static_cast<int64_t>(::timegm(&tm)) * 1000;
  return std::chrono::milliseconds(std::max<int64_t>(0, at_ms - now_ms));
}

Error MakeProviderError(ErrorCategory category, std::string message, std::string provider_code,
                        int http_status, std::chrono::milliseconds retry_after) {
  return Error{.category = category,
               .message = std::move(message),
               .retry_after = retry_after,
               .provider_code = std::move(provider_code),
               .http_status = http_status};
}

// Cut on a code point: a provider's message (Kling's Chinese task_status_msg, a gateway's HTML
// page in any encoding) cut mid-character would put invalid UTF-8 into the job's record and
// events, which no client could then read (GetJob, ListJobs pages, WatchJob).
std::string Snippet(std::string_view text, size_t max_chars) {
  return PlainSnippet(text, max_chars);
}

std::optional<std::string> NotAVideo(std::string_view head) {
  if (head.empty()) return "it is empty";
  // ISO/IEC 14496-12 (MP4, MOV): a box is a 32-bit size then its four-letter type. Top-level
  // boxes a file may start with: ftyp first is usual (ffmpeg, the simulator), but older or
  // streaming writers put free/skip/wide/mdat/moov, a segment's styp/sidx/moof, or others.
  static constexpr std::string_view kFirstBoxes[] = {"ftyp", "styp", "free", "skip", "wide",
                                                     "mdat", "moov", "moof", "sidx", "pdin",
                                                     "uuid", "meta", "prft", "emsg", "pnot"};
  if (head.size() >= 8) {
    const std::string_view type = head.substr(4, 4);
    for (std::string_view box : kFirstBoxes) {
      if (type == box) return std::nullopt;
    }
  }
  std::string_view text = head;
  if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);  // a UTF-8 byte order mark
  const size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string_view::npos &&
      (text[first] == '<' || text[first] == '{' || text[first] == '[')) {
    return "it is markup or JSON";
  }
  // A video's first bytes are a box size (a zero byte for any box under 16 MiB) or other
  // binary: UTF-8 without control characters is a message (a code point cut by the end of
  // `head` is still one).
  const bool no_controls = std::all_of(text.begin(), text.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return (u >= 0x20 && u != 0x7f) || c == '\t' || c == '\r' || c == '\n';
  });
  const size_t invalid = FindInvalidUtf8(text);
  const bool utf8 = invalid == std::string_view::npos ||
                    (head.size() >= kClipSniffBytes && invalid + 3 >= text.size());
  if (no_controls && utf8) return "it is text";
  if (head.size() < 8) {
    return "it is " + std::to_string(head.size()) + " bytes, shorter than one MP4 box header";
  }
  return std::nullopt;
}

std::string Base64Encode(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t v = static_cast<uint32_t>(static_cast<unsigned char>(bytes[i])) << 16 |
                       static_cast<uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8 |
                       static_cast<unsigned char>(bytes[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (const size_t rest = bytes.size() - i; rest > 0) {
    uint32_t v = static_cast<uint32_t>(static_cast<unsigned char>(bytes[i])) << 16;
    if (rest == 2) v |= static_cast<uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += rest == 2 ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string JoinUrl(std::string_view base_url, std::string_view path) {
  std::string out(base_url);
  while (!out.empty() && out.back() == '/') out.pop_back();
  if (!path.starts_with('/')) out += '/';
  out += path;
  return out;
}

std::string EscapePathSegment(std::string_view segment) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (char c : segment) {
    unsigned char u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += c;
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
  return out;
}

}  // namespace reelq::providers::wire
