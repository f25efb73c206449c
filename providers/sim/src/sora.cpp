// OpenAI Sora 2 Videos API, as shared/providers.md §1 documents it: Bearer key, the Video
// object, string `seconds`, the {"error":{message,type,param,code}} envelope.
#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "request_util.h"
#include "sim.h"

namespace reelq::sim {
namespace {

using nlohmann::json;
constexpr Provider kP = Provider::kSora;

HttpResponse Error(unsigned status, const std::string& message, const std::string& type,
                   const json& param, const json& code) {
  json body = {{"error", {{"message", message}, {"type", type}, {"param", param}, {"code", code}}}};
  return HttpResponse::Json(status, body.dump());
}

HttpResponse Invalid(const std::string& message, const std::string& param,
                     const std::string& code) {
  return Error(400, message, "invalid_request_error", param, code);
}

std::string RatioOfSize(const std::string& size) {
  if (size == "1280x720" || size == "1920x1080") return "16:9";
  if (size == "720x1280" || size == "1080x1920") return "9:16";
  if (size == "1792x1024") return "7:4";
  if (size == "1024x1792") return "4:7";
  return "";
}

void SetPollAfter(HttpResponse& res, const Sim& sim, const Task& t) {
  // The SDK sleeps for this long between polls; keep it near the remaining time.
  auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(t.finishes - sim.now());
  if (t.phase == Phase::kQueued) remaining = std::chrono::milliseconds(1000);
  const auto ms = std::clamp<int64_t>(remaining.count() / 2, 10, 1000);
  res.headers.emplace_back("openai-poll-after-ms", std::to_string(ms));
}

json VideoObject(const Sim& sim, const Task& t) {
  const auto now = sim.now();
  std::string status;
  switch (t.phase) {
    case Phase::kQueued:
      status = "queued";
      break;
    case Phase::kRunning:
      status = t.LooksQueued(now) ? "queued" : "in_progress";
      break;
    case Phase::kSucceeded:
      status = "completed";
      break;
    default:
      status = "failed";
      break;
  }
  json error = nullptr;
  if (t.phase == Phase::kFailed) {
    error = t.outcome == Outcome::kPolicyFailure
                ? json{{"code", "moderation_blocked"},
                       {"message", "Your request was blocked by our moderation system."}}
                : json{{"code", "internal_error"},
                       {"message",
                        "Video generation failed due to an internal error. Please "
                        "try again."}};
  }
  json completed_at = nullptr, expires_at = nullptr;
  if (IsTerminal(t.phase)) completed_at = t.UnixMs(t.ended) / 1000;
  if (t.phase == Phase::kSucceeded) {
    expires_at = t.UnixMs(t.ended) / 1000 + sim.config().provider(kP).retention_s;
  }
  return {{"id", t.id},
          {"object", "video"},
          {"model", t.model},
          {"status", status},
          {"progress", status == "queued" ? 0 : t.Progress(now)},
          {"created_at", t.created_unix_ms / 1000},
          {"completed_at", completed_at},
          {"expires_at", expires_at},
          {"seconds", std::to_string(t.duration_s)},
          {"size", t.echo.value("size", "")},
          {"prompt", t.prompt},
          {"remixed_from_video_id", nullptr},
          {"error", error}};
}

HttpResponse Create(Sim& sim, const HttpRequest& req, const KeyConfig& key) {
  auto invalid = [&](const std::string& msg, const std::string& param, const std::string& code) {
    sim.stats().Bump(kP, key.key, "", &Counters::invalid_requests);
    return Invalid(msg, param, code);
  };
  // JSON, or multipart/form-data when an input_reference image is uploaded: the same fields
  // as text parts and the image as a file part.
  json body;
  std::vector<ReceivedImage> images;
  const std::string content_type = req.Header("Content-Type");
  if (content_type.starts_with("multipart/")) {
    std::string error;
    auto parts = ParseMultipart(content_type, req.body, error);
    if (!parts) return invalid("Could not parse multipart form: " + error, "", "invalid_multipart");
    body = json::object();
    for (const auto& part : *parts) {
      if (part.name == "input_reference") {
        if (part.filename.empty()) {
          return invalid("Invalid 'input_reference': expected a file upload.", "input_reference",
                         "invalid_type");
        }
        ReceivedImage image;
        if (auto why = CheckImage(part.data, part.content_type, "first_frame", image)) {
          return invalid(fmt::format("Invalid 'input_reference': {}. Supported formats are "
                                     "image/jpeg, image/png and image/webp.",
                                     *why),
                         "input_reference", "invalid_value");
        }
        images.push_back(std::move(image));
      } else if (!part.filename.empty()) {
        return invalid(fmt::format("Unrecognized file parameter supplied: {}", part.name),
                       part.name, "unknown_parameter");
      } else {
        body[part.name] = part.data;
      }
    }
  } else {
    body = ParseBody(req.body);
    if (body.is_discarded() || !body.is_object()) {
      return invalid("We could not parse the JSON body of your request.", "", "invalid_json");
    }
    if (body.contains("input_reference")) {
      return invalid("Invalid 'input_reference': upload the image as multipart/form-data.",
                     "input_reference", "invalid_type");
    }
  }
  static const std::set<std::string> kKnown = {"model", "prompt", "seconds", "size"};
  for (const auto& [k, v] : body.items()) {
    if (!kKnown.contains(k)) {
      return invalid(fmt::format("Unrecognized request argument supplied: {}", k), k,
                     "unknown_parameter");
    }
  }
  for (const char* f : {"model", "prompt", "seconds", "size"}) {
    if (body.contains(f) && !body[f].is_string()) {
      return invalid(fmt::format("Invalid type for '{}': expected a string, but got {} instead.", f,
                                 body[f].type_name()),
                     f, "invalid_type");
    }
  }
  if (!body.contains("prompt")) {
    return invalid("Missing required parameter: 'prompt'.", "prompt", "missing_required_parameter");
  }
  const std::string prompt = body["prompt"];
  if (prompt.empty() || prompt.size() > 32000) {
    return invalid("Invalid 'prompt': string length must be between 1 and 32000.", "prompt",
                   "invalid_value");
  }
  const std::string seconds = body.value("seconds", std::string("4"));
  if (seconds != "4" && seconds != "8" && seconds != "12") {
    return invalid(
        fmt::format("Invalid value: '{}'. Supported values are: '4', '8', and '12'.", seconds),
        "seconds", "invalid_value");
  }
  const std::string model_id = body.value("model", std::string("sora-2"));
  const std::string size = body.value("size", std::string("720x1280"));
  const std::string ratio = RatioOfSize(size);
  if (ratio.empty()) {
    return invalid(fmt::format("Invalid value: '{}'. Supported values are: '720x1280', "
                               "'1280x720', '1024x1792', '1792x1024', '1080x1920', '1920x1080'.",
                               size),
                   "size", "invalid_value");
  }
  const ModelConfig* model = sim.FindModel(kP, model_id);
  if (!model) {
    sim.stats().Bump(kP, key.key, "", &Counters::model_not_found);
    return Error(
        404,
        fmt::format("The model `{}` does not exist or you do not have access to it.", model_id),
        "invalid_request_error", "model", "model_not_found");
  }
  const bool pro = model_id.find("pro") != std::string::npos;
  if (!pro && size != "1280x720" && size != "720x1280") {
    return invalid(fmt::format("Invalid value: '{}'. Size {} requires sora-2-pro.", size, size),
                   "size", "invalid_value");
  }
  const Admission adm = sim.Admit(kP, key, /*concurrency_rejects=*/true);
  if (adm.kind != Admission::kOk) {
    const bool rate = adm.kind == Admission::kRateLimited;
    sim.stats().Bump(
        kP, key.key, model_id,
        rate ? &Counters::creates_rejected_rate_limit : &Counters::creates_rejected_concurrency);
    HttpResponse res =
        Error(429,
              rate ? fmt::format("Rate limit reached for {} on requests per min (RPM): Limit {}. "
                                 "Please try again in {}s.",
                                 model_id, key.rpm, adm.retry_after_s)
                   : fmt::format("Rate limit reached for {}: too many concurrent video generations "
                                 "(limit {}). Please try again later.",
                                 model_id, key.max_concurrent),
              "requests", nullptr, "rate_limit_exceeded");
    res.headers.emplace_back("retry-after", std::to_string(adm.retry_after_s));
    res.headers.emplace_back("x-ratelimit-limit-requests", std::to_string(key.rpm));
    return res;
  }
  Task task;
  task.provider = kP;
  task.key = key.key;
  task.model = model_id;
  task.prompt = prompt;
  task.duration_s = std::stoi(seconds);
  task.ratio = ratio;
  task.audio = true;  // Sora always generates audio
  task.echo = {{"size", size}};
  task.images = std::move(images);
  const CreatePlan plan = sim.Plan(kP, *model, prompt);
  if (plan.fail_create) {
    sim.stats().Bump(kP, key.key, model_id, &Counters::creates_failed_injected);
    return Error(500, "The server had an error while processing your request. Sorry about that!",
                 "server_error", nullptr, nullptr);
  }
  task.id = sim.NewTaskId(kP);
  auto launched = sim.Launch(std::move(task), plan);
  if (!launched) {
    return Error(500, "simulator media failure: " + launched.error().message, "server_error",
                 nullptr, nullptr);
  }
  json video = VideoObject(sim, **launched);
  video["status"] = "queued";  // the create answer always reports the initial state
  video["progress"] = 0;
  video["completed_at"] = nullptr;
  video["expires_at"] = nullptr;
  video["error"] = nullptr;
  HttpResponse res = HttpResponse::Json(200, video.dump());
  SetPollAfter(res, sim, **launched);
  return res;
}

HttpResponse NotFound(const std::string& id) {
  return Error(404, fmt::format("Video with id '{}' not found.", id), "invalid_request_error",
               nullptr, "not_found");
}

HttpResponse List(Sim& sim, const HttpRequest& req, const KeyConfig& key) {
  // GET /v1/videos?after=&limit=&order=asc|desc: a cursor page of this key's videos, newest
  // first by default; `after` is the id of the last video of the previous page.
  sim.stats().Bump(kP, key.key, "", &Counters::lists);
  const auto limit = QueryInt(req, "limit", 20, 1, 100);
  if (!limit) {
    return Invalid("Invalid 'limit': integer must be between 1 and 100.", "limit", "invalid_value");
  }
  const std::string order = req.query.contains("order") ? req.query.at("order") : "desc";
  if (order != "asc" && order != "desc") {
    return Invalid(
        fmt::format("Invalid value: '{}'. Supported values are: 'asc' and 'desc'.", order), "order",
        "invalid_value");
  }
  std::vector<std::string> ids;
  for (const std::string& id : sim.store().Ids(kP)) {  // oldest first
    const Task* t = sim.store().Find(kP, id, sim.now());
    if (t && t->key == key.key) ids.push_back(id);
  }
  if (order == "desc") std::reverse(ids.begin(), ids.end());
  size_t start = 0;
  if (req.query.contains("after") && !req.query.at("after").empty()) {
    const std::string& after = req.query.at("after");
    auto it = std::find(ids.begin(), ids.end(), after);
    if (it == ids.end()) return NotFound(after);
    start = static_cast<size_t>(it - ids.begin()) + 1;
  }
  json data = json::array();
  size_t i = start;
  for (; i < ids.size() && data.size() < static_cast<size_t>(*limit); ++i) {
    if (Task* t = sim.store().Find(kP, ids[i], sim.now())) data.push_back(VideoObject(sim, *t));
  }
  json body = {{"object", "list"},
               {"data", data},
               {"has_more", i < ids.size()},
               {"first_id", data.empty() ? json(nullptr) : data.front()["id"]},
               {"last_id", data.empty() ? json(nullptr) : data.back()["id"]}};
  return HttpResponse::Json(200, body.dump());
}

}  // namespace

HttpResponse HandleSora(Sim& sim, const HttpRequest& req, std::string_view path) {
  const auto token = BearerToken(req);
  const KeyConfig* key = token ? sim.FindKey(kP, *token) : nullptr;
  if (!key) {
    sim.stats().Bump(kP, "", "", &Counters::auth_failures);
    if (!token) {
      return Error(401,
                   "You didn't provide an API key. You need to provide your API key in an "
                   "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                   "invalid_request_error", nullptr, nullptr);
    }
    std::string shown = token->size() > 8
                            ? token->substr(0, 4) + "****" + token->substr(token->size() - 4)
                            : "****";
    return Error(401, fmt::format("Incorrect API key provided: {}.", shown),
                 "invalid_request_error", nullptr, "invalid_api_key");
  }
  const auto parts = SplitPath(path);
  if (parts.size() < 2 || parts[0] != "v1" || parts[1] != "videos") {
    return Error(404,
                 fmt::format("Invalid URL ({} {})", std::string(http::to_string(req.method)),
                             std::string(path)),
                 "invalid_request_error", nullptr, nullptr);
  }
  if (parts.size() == 2 && req.method == http::verb::post) return Create(sim, req, *key);
  if (parts.size() == 2 && req.method == http::verb::get) return List(sim, req, *key);
  if (parts.size() >= 3 && parts.size() <= 4) {
    const std::string& id = parts[2];
    Task* t = sim.store().Find(kP, id, sim.now());
    const std::string model = t ? t->model : "";
    if (parts.size() == 3 && req.method == http::verb::get) {
      sim.stats().Bump(kP, key->key, model, &Counters::polls);
      if (!t) return NotFound(id);
      HttpResponse res = HttpResponse::Json(200, VideoObject(sim, *t).dump());
      if (!IsTerminal(t->phase)) SetPollAfter(res, sim, *t);
      BreakPollResponse(res, t->truncate_poll, t->bad_json_poll);
      return res;
    }
    if (parts.size() == 3 && req.method == http::verb::delete_) {
      if (!t) return NotFound(id);
      sim.stats().Bump(kP, key->key, model, &Counters::cancels);
      sim.store().Erase(kP, id);
      return HttpResponse::Json(
          200, json{{"id", id}, {"object", "video.deleted"}, {"deleted", true}}.dump());
    }
    if (parts.size() == 4 && parts[3] == "content" && req.method == http::verb::get) {
      if (!t) return NotFound(id);
      const std::string variant = req.query.contains("variant") ? req.query.at("variant") : "video";
      if (variant != "video") {
        return Invalid(
            fmt::format("Invalid value: '{}'. The simulator serves variant=video only.", variant),
            "variant", "invalid_value");
      }
      if (t->phase != Phase::kSucceeded) {
        return Invalid(fmt::format("Video '{}' is not ready for download (status is not "
                                   "completed).",
                                   id),
                       "video_id", "video_not_ready");
      }
      return sim.ServeMedia(kP, id);
    }
  }
  return Error(404,
               fmt::format("Invalid URL ({} {})", std::string(http::to_string(req.method)),
                           std::string(path)),
               "invalid_request_error", nullptr, nullptr);
}

}  // namespace reelq::sim
