// The API's messages as the JSON the dashboard's pages read, and the small parsers the HTTP
// side needs (Range, file:// URLs, cookies).
#include <charconv>

#include <google/protobuf/util/time_util.h>

#include "internal.h"

namespace reelq::scheduler {
namespace dashboard_detail {

namespace {

int64_t Ms(const google::protobuf::Timestamp& t) {
  return google::protobuf::util::TimeUtil::TimestampToMilliseconds(t);
}

Json ErrorJson(const v1::JobError& e) {
  return {{"category", CategoryName(e.category())},
          {"message", e.message()},
          {"provider_code", e.provider_code()},
          {"attempt", e.attempt()},
          {"at_ms", e.has_at() ? Ms(e.at()) : 0}};
}

}  // namespace

Reply JsonReply(const Json& body, http::status status) {
  Reply reply;
  reply.status = status;
  // Prompts are user text: invalid UTF-8 is shown replaced rather than failing the page.
  reply.body = body.dump(-1, ' ', false, Json::error_handler_t::replace);
  return reply;
}

Reply ErrorReply(http::status status, std::string message) {
  return JsonReply({{"error", std::move(message)}}, status);
}

Reply ErrorReply(const Error& error) {
  http::status status = http::status::internal_server_error;
  switch (error.category) {
    case ErrorCategory::kNotFound:
      status = http::status::not_found;
      break;
    case ErrorCategory::kInvalidRequest:
      status = http::status::bad_request;
      break;
    case ErrorCategory::kFailedPrecondition:
      status = http::status::conflict;
      break;
    case ErrorCategory::kAuthFailed:
      status = http::status::forbidden;
      break;
    case ErrorCategory::kRateLimited:
      status = http::status::too_many_requests;
      break;
    case ErrorCategory::kRetryable:
      status = http::status::service_unavailable;
      break;
    default:
      break;
  }
  return ErrorReply(status, error.message);
}

std::string CategoryName(v1::ErrorCategory category) {
  switch (category) {
    case v1::ERROR_CATEGORY_RETRYABLE:
      return "retryable";
    case v1::ERROR_CATEGORY_RATE_LIMITED:
      return "rate_limited";
    case v1::ERROR_CATEGORY_POLICY_REJECTED:
      return "policy_rejected";
    case v1::ERROR_CATEGORY_INVALID_REQUEST:
      return "invalid_request";
    case v1::ERROR_CATEGORY_AUTH_FAILED:
      return "auth_failed";
    case v1::ERROR_CATEGORY_MODEL_GONE:
      return "model_gone";
    case v1::ERROR_CATEGORY_DEADLINE_EXCEEDED:
      return "deadline_exceeded";
    case v1::ERROR_CATEGORY_CREATE_OUTCOME_UNKNOWN:
      return "create_outcome_unknown";
    case v1::ERROR_CATEGORY_INTERNAL:
      return "internal";
    default:
      return "";
  }
}

std::string PhaseName(v1::JobPhase phase) {
  switch (phase) {
    case v1::JOB_PHASE_SUBMITTING:
      return "SUBMITTING";
    case v1::JOB_PHASE_GENERATING:
      return "GENERATING";
    case v1::JOB_PHASE_TRANSFERRING:
      return "TRANSFERRING";
    default:
      return "";
  }
}

Json JobRowJson(const v1::JobStatus& job) {
  std::string prompt = job.spec().prompt();
  if (prompt.empty() && job.spec().shots_size() > 0) prompt = job.spec().shots(0).prompt();
  if (prompt.size() > 160) prompt = prompt.substr(0, 157) + "...";
  return {{"job_id", job.job_id()},
          {"state", StateName(job.state())},
          {"phase", PhaseName(job.phase())},
          {"model", job.model()},
          {"attempt", job.attempt()},
          {"max_attempts", job.max_attempts()},
          {"prompt", prompt},
          {"error_category", job.has_error() ? CategoryName(job.error().category()) : ""},
          {"updated_ms", job.has_updated_at() ? Ms(job.updated_at()) : 0}};
}

Json JobJson(const v1::JobStatus& job) {
  const auto& spec = job.spec();
  Json shots = Json::array();
  for (const auto& shot : spec.shots()) {
    shots.push_back({{"prompt", shot.prompt()}, {"duration_seconds", shot.duration_seconds()}});
  }
  Json models = Json::array();
  for (const auto& m : spec.models()) models.push_back(m);
  Json transitions = Json::array();
  for (const auto& t : job.transitions()) {
    transitions.push_back({{"state", StateName(t.state())},
                           {"phase", PhaseName(t.phase())},
                           {"at_ms", Ms(t.at())},
                           {"detail", t.detail()}});
  }
  Json attempt_errors = Json::array();
  for (const auto& e : job.attempt_errors()) attempt_errors.push_back(ErrorJson(e));
  return {{"job_id", job.job_id()},
          {"tenant", spec.tenant()},
          {"batch_id", spec.batch_id()},
          {"prompt", spec.prompt()},
          {"negative_prompt", spec.negative_prompt()},
          {"shots", shots},
          {"requested_models", models},
          {"duration_seconds", spec.duration_seconds()},
          {"aspect_ratio", spec.aspect_ratio().empty() ? "16:9" : spec.aspect_ratio()},
          {"resolution", spec.resolution().empty() ? "720p" : spec.resolution()},
          {"priority", spec.priority()},
          {"state", StateName(job.state())},
          {"phase", PhaseName(job.phase())},
          {"model", job.model()},
          {"account", job.account()},
          {"attempt", job.attempt()},
          {"max_attempts", job.max_attempts()},
          {"upstream_task_id", job.upstream_task_id()},
          {"worker", job.worker()},
          {"output_key", job.output_key()},
          {"sha256", job.sha256()},
          {"clip_seconds", job.clip_seconds()},
          {"error", job.has_error() ? ErrorJson(job.error()) : Json(nullptr)},
          {"attempt_errors", attempt_errors},
          {"transitions", transitions},
          {"created_ms", job.has_created_at() ? Ms(job.created_at()) : 0},
          {"updated_ms", job.has_updated_at() ? Ms(job.updated_at()) : 0}};
}

Json BatchJson(const v1::BatchProgress& p) {
  return {{"batch_id", p.batch_id()},  {"total", p.total()},         {"pending", p.pending()},
          {"running", p.running()},    {"succeeded", p.succeeded()}, {"failed", p.failed()},
          {"cancelled", p.cancelled()}};
}

Json AccountJson(const v1::AccountStats& a) {
  return {{"account", a.account()},
          {"provider", a.provider()},
          {"requests_per_minute", a.requests_per_minute()},
          {"learned_requests_per_minute", a.learned_requests_per_minute()},
          {"max_concurrent", a.max_concurrent()},
          {"learned_max_concurrent", a.learned_max_concurrent()},
          {"in_flight", a.in_flight()},
          {"daily_cap", a.daily_cap()},
          {"used_today", a.used_today()},
          {"cooling_down", a.cooling_down()},
          {"cooldown_remaining_seconds", a.cooldown_remaining_seconds()},
          {"rate_limited_total", a.rate_limited_total()},
          {"polls_per_minute", a.polls_per_minute()}};
}

}  // namespace dashboard_detail

std::optional<Result<ByteRange>> ParseRange(std::string_view header, uint64_t size) {
  constexpr std::string_view kUnit = "bytes=";
  auto refuse = [&](std::string why) -> std::optional<Result<ByteRange>> {
    return Result<ByteRange>(
        MakeError(ErrorCategory::kInvalidRequest, "Range \"" + std::string(header) + "\": " + why));
  };
  if (!header.starts_with(kUnit)) return std::nullopt;  // another unit: ignore it (RFC 9110)
  std::string_view spec = header.substr(kUnit.size());
  if (spec.find(',') != std::string_view::npos) return std::nullopt;  // several: send it all
  const size_t dash = spec.find('-');
  if (dash == std::string_view::npos) return refuse("expected first-last");
  auto number = [](std::string_view text, uint64_t& out) {
    if (text.empty()) return false;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc() && end == text.data() + text.size();
  };
  const std::string_view first_text = spec.substr(0, dash), last_text = spec.substr(dash + 1);
  uint64_t first = 0, last = 0;
  if (first_text.empty()) {  // suffix: the last N bytes
    if (!number(last_text, last) || last == 0) return refuse("bad suffix length");
    if (size == 0) return refuse("the object is empty");
    return Result<ByteRange>(ByteRange{size - std::min(last, size), size - 1});
  }
  if (!number(first_text, first)) return refuse("bad first byte");
  if (first >= size) return refuse("starts past the end (" + std::to_string(size) + " bytes)");
  if (last_text.empty()) return Result<ByteRange>(ByteRange{first, size - 1});
  if (!number(last_text, last) || last < first) return refuse("bad last byte");
  return Result<ByteRange>(ByteRange{first, std::min(last, size - 1)});
}

std::string FileUrlPath(std::string_view url) {
  constexpr std::string_view kScheme = "file://";
  if (!url.starts_with(kScheme)) return {};
  std::string_view rest = url.substr(kScheme.size());
  if (!rest.starts_with('/')) return {};  // file://host/... is not ours
  std::string out;
  for (size_t i = 0; i < rest.size(); ++i) {
    if (rest[i] == '%' && i + 2 < rest.size()) {
      unsigned value = 0;
      auto [end, ec] = std::from_chars(rest.data() + i + 1, rest.data() + i + 3, value, 16);
      if (ec != std::errc() || end != rest.data() + i + 3) return {};
      out.push_back(static_cast<char>(value));
      i += 2;
    } else {
      out.push_back(rest[i]);
    }
  }
  return out;
}

std::string CookieValue(std::string_view header, std::string_view name) {
  while (!header.empty()) {
    const size_t semi = header.find(';');
    std::string_view pair = header.substr(0, semi);
    while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
    const size_t eq = pair.find('=');
    if (eq != std::string_view::npos && pair.substr(0, eq) == name) {
      return std::string(pair.substr(eq + 1));
    }
    if (semi == std::string_view::npos) break;
    header = header.substr(semi + 1);
  }
  return {};
}

}  // namespace reelq::scheduler
