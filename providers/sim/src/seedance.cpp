// ByteDance Seedance on BytePlus ModelArk / Volcengine Ark, as shared/providers.md §4 documents
// it: Bearer key, content generation tasks, second timestamps, the
// {"error":{code,message,type}} envelope, RPM rejects but concurrency queues.
#include <fmt/format.h>

#include <set>

#include "request_util.h"
#include "sim.h"

namespace reelq::sim {
namespace {

using nlohmann::json;
constexpr Provider kP = Provider::kSeedance;
constexpr std::string_view kTasks = "/api/v3/contents/generations/tasks";

HttpResponse Error(Sim& sim, unsigned status, const std::string& code, const std::string& message,
                   const std::string& type) {
  json body = {{"error",
                {{"code", code},
                 {"message", message + " Request id: " + sim.NewRequestId()},
                 {"type", type}}}};
  return HttpResponse::Json(status, body.dump());
}

HttpResponse BadParam(Sim& sim, const std::string& field, const std::string& why) {
  return Error(
      sim, 400, "InvalidParameter",
      fmt::format("The parameter `{}` specified in the request is not valid: {}.", field, why),
      "BadRequest");
}

bool IsV2(const std::string& model) { return model.find("seedance-2") != std::string::npos; }

std::pair<int, int> Pixels(const std::string& resolution, const std::string& ratio) {
  const int h = resolution == "480p" ? 480 : resolution == "1080p" ? 1080 : 720;
  int a = 16, b = 9;
  std::sscanf(ratio.c_str(), "%d:%d", &a, &b);
  if (a <= 0 || b <= 0) a = 16, b = 9;
  // `h` is the short side.
  return a >= b ? std::pair{h * a / b, h} : std::pair{h, h * b / a};
}

// One image_url content item: {"image_url": {"url": "data:image/<fmt>;base64,..."}, "role"}.
// The role defaults to first_frame; the simulator fetches no http(s) URLs.
std::optional<HttpResponse> ReadImage(Sim& sim, const json& item, const std::string& field,
                                      Task& task) {
  if (!item.contains("image_url") || !item["image_url"].is_object() ||
      !item["image_url"].contains("url") || !item["image_url"]["url"].is_string()) {
    return BadParam(sim, field + ".image_url.url", "an image_url item needs a string url");
  }
  std::string role = "first_frame";
  if (item.contains("role")) {
    if (!item["role"].is_string()) return BadParam(sim, field + ".role", "must be a string");
    role = item["role"];
    if (role != "first_frame" && role != "last_frame" && role != "reference_image") {
      return BadParam(sim, field + ".role", "must be first_frame, last_frame or reference_image");
    }
  }
  const std::string url = item["image_url"]["url"];
  constexpr std::string_view kData = "data:";
  const size_t marker = url.find(";base64,");
  if (!url.starts_with(kData) || marker == std::string::npos) {
    return BadParam(sim, field + ".image_url.url",
                    "the simulator takes base64 data URLs (data:image/<format>;base64,...) only");
  }
  const std::string mime = url.substr(kData.size(), marker - kData.size());
  auto bytes = DecodeBase64(std::string_view(url).substr(marker + 8));
  if (!bytes) return BadParam(sim, field + ".image_url.url", "the base64 data is malformed");
  ReceivedImage image;
  if (auto why = CheckImage(*bytes, mime, role, image)) {
    return Error(sim, 400, "InvalidParameter",
                 fmt::format("The parameter `{}.image_url.url` specified in the request is not "
                             "valid: {}.",
                             field, *why),
                 "BadRequest");
  }
  task.images.push_back(std::move(image));
  return std::nullopt;
}

// Fills `task` from the create body, or returns the 400 to send.
std::optional<HttpResponse> Validate(Sim& sim, const json& body, Task& task) {
  static const std::set<std::string> kKnown = {"model",
                                               "content",
                                               "resolution",
                                               "ratio",
                                               "duration",
                                               "seed",
                                               "camera_fixed",
                                               "watermark",
                                               "generate_audio",
                                               "return_last_frame",
                                               "service_tier",
                                               "callback_url",
                                               "execution_expires_after"};
  for (const auto& [k, v] : body.items()) {
    if (!kKnown.contains(k)) return BadParam(sim, k, "unknown parameter");
  }
  if (!body.contains("model")) {
    return Error(sim, 400, "MissingParameter",
                 "The request failed because it is missing one or multiple required parameters: "
                 "model.",
                 "BadRequest");
  }
  if (!body["model"].is_string()) return BadParam(sim, "model", "must be a string");
  task.model = body["model"];
  if (!body.contains("content")) {
    return Error(sim, 400, "MissingParameter",
                 "The request failed because it is missing one or multiple required parameters: "
                 "content.",
                 "BadRequest");
  }
  const json& content = body["content"];
  if (!content.is_array() || content.empty()) {
    return BadParam(sim, "content", "must be a non-empty list of content items");
  }
  std::string prompt;
  for (size_t i = 0; i < content.size(); ++i) {
    const json& item = content[i];
    const std::string field = fmt::format("content[{}]", i);
    if (!item.is_object() || !item.contains("type") || !item["type"].is_string()) {
      return BadParam(sim, field + ".type", "each content item needs a string type");
    }
    const std::string type = item["type"];
    if (type == "text") {
      if (!item.contains("text") || !item["text"].is_string()) {
        return BadParam(sim, field + ".text", "a text item needs a string text");
      }
      prompt += item["text"].get<std::string>();
    } else if (type == "image_url") {
      if (auto err = ReadImage(sim, item, field, task)) return err;
    } else if (type != "video_url" && type != "audio_url") {
      return BadParam(sim, field + ".type", "must be text, image_url, video_url or audio_url");
    }
  }
  int firsts = 0, lasts = 0, references = 0;
  for (const auto& image : task.images) {
    firsts += image.role == "first_frame";
    lasts += image.role == "last_frame";
    references += image.role == "reference_image";
  }
  if (firsts > 1 || lasts > 1) {
    return BadParam(sim, "content", "at most one first_frame and one last_frame image");
  }
  if (lasts > 0 && firsts == 0) {
    return BadParam(sim, "content", "a last_frame image needs a first_frame image");
  }
  if (references > 9) return BadParam(sim, "content", "at most 9 reference_image images");
  if (prompt.empty())
    return BadParam(sim, "content", "a non-empty text item (the prompt) is required");
  task.prompt = prompt;

  const bool v2 = IsV2(task.model);
  int duration = 5;
  if (body.contains("duration")) {
    if (!body["duration"].is_number_integer())
      return BadParam(sim, "duration", "must be an integer");
    duration = body["duration"];
    const bool ok = v2 ? (duration == -1 || (duration >= 4 && duration <= 15))
                       : (duration >= 2 && duration <= 12);
    if (!ok) {
      return BadParam(sim, "duration",
                      fmt::format("{} is out of range for {} (allowed: {})", duration, task.model,
                                  v2 ? "4-15 or -1" : "2-12"));
    }
    if (duration == -1) duration = 5;  // model-chosen length: the simulator chooses 5 s
  }
  std::string ratio = "16:9";
  if (body.contains("ratio")) {
    static const std::set<std::string> kRatios = {"16:9", "4:3",  "1:1",     "3:4",
                                                  "9:16", "21:9", "adaptive"};
    if (!body["ratio"].is_string() || !kRatios.contains(body["ratio"].get<std::string>())) {
      return BadParam(sim, "ratio", "must be one of 16:9, 4:3, 1:1, 3:4, 9:16, 21:9, adaptive");
    }
    ratio = body["ratio"];
  }
  std::string resolution = "720p";
  if (body.contains("resolution")) {
    const json& r = body["resolution"];
    if (!r.is_string() || (r != "480p" && r != "720p" && r != "1080p")) {
      return BadParam(sim, "resolution", "must be 480p, 720p or 1080p");
    }
    resolution = r;
    const bool small_model = task.model.find("fast") != std::string::npos ||
                             task.model.find("mini") != std::string::npos;
    if (resolution == "1080p" && small_model) {
      return BadParam(sim, "resolution", fmt::format("1080p is not supported by {}", task.model));
    }
  }
  for (const char* f : {"generate_audio", "camera_fixed", "watermark", "return_last_frame"}) {
    if (body.contains(f) && !body[f].is_boolean()) return BadParam(sim, f, "must be a boolean");
  }
  if (body.contains("seed") && !body["seed"].is_number_integer()) {
    return BadParam(sim, "seed", "must be an integer");
  }
  std::string tier = "default";
  if (body.contains("service_tier")) {
    const json& t = body["service_tier"];
    if (!t.is_string() || (t != "default" && t != "flex")) {
      return BadParam(sim, "service_tier", "must be default or flex");
    }
    tier = t;
  }
  if (body.contains("callback_url") && !body["callback_url"].is_string()) {
    return BadParam(sim, "callback_url", "must be a string");
  }
  int64_t expires_after = 172800;
  if (body.contains("execution_expires_after")) {
    const json& e = body["execution_expires_after"];
    if (!e.is_number_integer() || e.get<int64_t>() < 3600 || e.get<int64_t>() > 259200) {
      return BadParam(sim, "execution_expires_after", "must be an integer in [3600, 259200]");
    }
    expires_after = e;
  }
  task.return_last_frame = body.value("return_last_frame", false);
  task.duration_s = duration;
  task.ratio = ratio == "adaptive" ? "16:9" : ratio;  // text-only input: adaptive means 16:9
  task.audio = body.value("generate_audio", v2);      // on by default for 2.x
  task.expires_after = std::chrono::seconds(expires_after);
  task.echo = {{"ratio", ratio},
               {"resolution", resolution},
               {"service_tier", tier},
               {"seed", body.value("seed", int64_t{-1})},
               {"execution_expires_after", expires_after}};
  return std::nullopt;
}

json TaskObject(const Sim& sim, const HttpRequest& req, const Task& t) {
  std::string status;
  switch (t.phase) {
    case Phase::kQueued:
      status = "queued";
      break;
    case Phase::kRunning:
      status = t.LooksQueued(sim.now()) ? "queued" : "running";
      break;
    case Phase::kSucceeded:
      status = "succeeded";
      break;
    case Phase::kFailed:
      status = "failed";
      break;
    case Phase::kCancelled:
      status = "cancelled";
      break;
    case Phase::kExpired:
      status = "expired";
      break;
  }
  int64_t seed = t.echo.value("seed", int64_t{-1});
  if (seed < 0) seed = static_cast<int64_t>(std::hash<std::string>{}(t.id) % 100000);
  json obj = {{"id", t.id},
              {"model", t.model},
              {"status", status},
              {"created_at", t.created_unix_ms / 1000},
              {"updated_at", t.UpdatedUnixMs() / 1000},
              {"seed", seed},
              {"resolution", t.echo.value("resolution", "720p")},
              {"ratio", t.echo.value("ratio", "16:9")},
              {"duration", t.duration_s},
              {"framespersecond", 24},
              {"generate_audio", t.audio},
              {"service_tier", t.echo.value("service_tier", "default")},
              {"execution_expires_after", t.echo.value("execution_expires_after", 172800)}};
  if (t.phase == Phase::kSucceeded) {
    obj["content"] = {{"video_url", sim.MediaUrl(req, t)}};
    if (t.return_last_frame) obj["content"]["last_frame_url"] = sim.LastFrameUrl(req, t);
    const auto [w, h] = Pixels(t.echo.value("resolution", "720p"), t.ratio);
    const int64_t tokens = static_cast<int64_t>(w) * h * (24LL * t.duration_s + 1) / 1024;
    obj["usage"] = {{"completion_tokens", tokens}, {"total_tokens", tokens}};
  } else if (t.phase == Phase::kFailed) {
    obj["error"] = t.outcome == Outcome::kPolicyFailure
                       ? json{{"code", "OutputVideoSensitiveContentDetected"},
                              {"message",
                               "The request failed because the output video may "
                               "contain sensitive information."}}
                       : json{{"code", "InternalServiceError"},
                              {"message",
                               "The service encountered an unexpected internal "
                               "error. Please retry."}};
  }
  return obj;
}

HttpResponse Create(Sim& sim, const HttpRequest& req, const KeyConfig& key) {
  json body = ParseBody(req.body);
  if (body.is_discarded() || !body.is_object()) {
    sim.stats().Bump(kP, key.key, "", &Counters::invalid_requests);
    return Error(sim, 400, "InvalidParameter", "The request body is not a valid JSON object.",
                 "BadRequest");
  }
  Task task;
  task.provider = kP;
  task.key = key.key;
  if (auto err = Validate(sim, body, task)) {
    sim.stats().Bump(kP, key.key, "", &Counters::invalid_requests);
    return *err;
  }
  const ModelConfig* model = sim.FindModel(kP, task.model);
  if (!model) {
    sim.stats().Bump(kP, key.key, "", &Counters::model_not_found);
    return Error(sim, 404, "InvalidEndpointOrModel.NotFound",
                 fmt::format("The model or endpoint {} does not exist or you do not have access "
                             "to it.",
                             task.model),
                 "NotFound");
  }
  // Over RPM the create fails; over concurrency it is accepted and queued.
  const Admission adm = sim.Admit(kP, key, /*concurrency_rejects=*/false);
  if (adm.kind == Admission::kRateLimited) {
    sim.stats().Bump(kP, key.key, task.model, &Counters::creates_rejected_rate_limit);
    HttpResponse res = Error(sim, 429, "RateLimitExceeded.EndpointRPMExceeded",
                             fmt::format("The request has exceeded the RPM limit ({}) of the "
                                         "endpoint. Please retry later.",
                                         key.rpm),
                             "TooManyRequests");
    res.headers.emplace_back("retry-after", std::to_string(adm.retry_after_s));
    return res;
  }
  const CreatePlan plan = sim.Plan(kP, *model, task.prompt);
  if (plan.fail_create) {
    sim.stats().Bump(kP, key.key, task.model, &Counters::creates_failed_injected);
    return Error(sim, 500, "InternalServiceError",
                 "The service encountered an unexpected internal error.", "InternalServerError");
  }
  if (plan.triggers.policy) {  // [sim:policy]: the input text is rejected at create
    sim.stats().Bump(kP, key.key, task.model, &Counters::policy_rejections);
    return Error(sim, 400, "InputTextSensitiveContentDetected",
                 "The request failed because the input text may contain sensitive information.",
                 "BadRequest");
  }
  task.id = sim.NewTaskId(kP);
  auto launched = sim.Launch(std::move(task), plan);
  if (!launched) {
    return Error(sim, 500, "InternalServiceError",
                 "simulator media failure: " + launched.error().message, "InternalServerError");
  }
  return HttpResponse::Json(200, json{{"id", (*launched)->id}}.dump());
}

HttpResponse List(Sim& sim, const HttpRequest& req, const KeyConfig& key) {
  // GET .../tasks?page_num=&page_size=&filter.status=&filter.model=: this key's tasks, newest
  // first, {"items":[task...], "total": n}.
  sim.stats().Bump(kP, key.key, "", &Counters::lists);
  const auto page_num = QueryInt(req, "page_num", 1, 1, 500);
  if (!page_num) return BadParam(sim, "page_num", "must be an integer in [1, 500]");
  const auto page_size = QueryInt(req, "page_size", 10, 1, 500);
  if (!page_size) return BadParam(sim, "page_size", "must be an integer in [1, 500]");
  const std::string model = req.query.contains("filter.model") ? req.query.at("filter.model") : "";
  const std::string status =
      req.query.contains("filter.status") ? req.query.at("filter.status") : "";
  if (!status.empty() && status != "queued" && status != "running" && status != "cancelled" &&
      status != "succeeded" && status != "failed") {
    return BadParam(sim, "filter.status",
                    "must be one of queued, running, cancelled, succeeded, failed");
  }
  std::vector<json> matching;
  const auto ids = sim.store().Ids(kP);  // oldest first
  for (auto it = ids.rbegin(); it != ids.rend(); ++it) {
    const Task* t = sim.store().Find(kP, *it, sim.now());
    if (!t || t->key != key.key) continue;
    if (!model.empty() && t->model != model) continue;
    json obj = TaskObject(sim, req, *t);
    if (!status.empty() && obj["status"] != status) continue;
    matching.push_back(std::move(obj));
  }
  json items = json::array();
  const size_t first = static_cast<size_t>((*page_num - 1) * *page_size);
  for (size_t i = first; i < matching.size() && i < first + static_cast<size_t>(*page_size); ++i) {
    items.push_back(matching[i]);
  }
  return HttpResponse::Json(200, json{{"items", items}, {"total", matching.size()}}.dump());
}

}  // namespace

HttpResponse HandleSeedance(Sim& sim, const HttpRequest& req, std::string_view path) {
  const auto token = BearerToken(req);
  const KeyConfig* key = token ? sim.FindKey(kP, *token) : nullptr;
  if (!key) {
    sim.stats().Bump(kP, "", "", &Counters::auth_failures);
    return Error(sim, 401, "AuthenticationError",
                 "The API key in the request is missing or invalid.", "Unauthorized");
  }
  if (path == kTasks && req.method == http::verb::post) return Create(sim, req, *key);
  if (path == kTasks && req.method == http::verb::get) return List(sim, req, *key);
  if (path.starts_with(std::string(kTasks) + "/")) {
    const std::string id(path.substr(kTasks.size() + 1));
    if (!id.empty() && id.find('/') == std::string::npos) {
      Task* t = sim.store().Find(kP, id, sim.now());
      const std::string model = t ? t->model : "";
      if (req.method == http::verb::get) {
        sim.stats().Bump(kP, key->key, model, &Counters::polls);
      }
      if (!t && (req.method == http::verb::get || req.method == http::verb::delete_)) {
        return Error(sim, 404, "ResourceNotFound",
                     fmt::format("The specified task {} is not found.", id), "NotFound");
      }
      if (req.method == http::verb::get) {
        HttpResponse res = HttpResponse::Json(200, TaskObject(sim, req, *t).dump());
        BreakPollResponse(res, t->truncate_poll, t->bad_json_poll);
        return res;
      }
      if (req.method == http::verb::delete_) {
        // Queued: cancel (the record stays, status cancelled). Finished: delete the record.
        // Running: refused, the generation cannot be stopped (HTTP 409, see README).
        if (t->phase == Phase::kRunning && !t->LooksQueued(sim.now())) {
          return Error(
              sim, 409, "OperationDenied.TaskRunning",
              fmt::format("The task {} is running and cannot be cancelled or deleted.", id),
              "Conflict");
        }
        sim.stats().Bump(kP, key->key, model, &Counters::cancels);
        if (t->phase == Phase::kQueued) {
          sim.store().Cancel(*t, sim.now());
        } else {
          sim.store().Erase(kP, id);
        }
        return HttpResponse::Json(200, "{}");
      }
    }
  }
  return Error(sim, 404, "InvalidEndpointOrModel.NotFound",
               fmt::format("{} {} is not a supported endpoint.",
                           std::string(http::to_string(req.method)), std::string(path)),
               "NotFound");
}

}  // namespace reelq::sim
