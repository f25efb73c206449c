// Kling (Kuaishou) text2video, as shared/providers.md §2 documents it: JWT auth, the
// {code, message, request_id, data} envelope, millisecond timestamps, string durations.
#include <fmt/format.h>
#include <chrono>

#include "kling_jwt.h"
#include "request_util.h"
#include "sim.h"

namespace reelq::sim {
namespace {

using nlohmann::json;
constexpr Provider kP = Provider::kKling;
constexpr std::string_view kCreatePath = "/v1/videos/text2video";
constexpr std::string_view kImage2VideoPath = "/v1/videos/image2video";

struct Reply {
  unsigned http;
  int code;
  std::string message;
};

HttpResponse Envelope(Sim& sim, unsigned http_status, int code, const std::string& message,
                      const json* data = nullptr) {
  json body = {{"code", code}, {"message", message}, {"request_id", sim.NewRequestId()}};
  if (data) body["data"] = *data;
  return HttpResponse::Json(http_status, body.dump());
}

HttpResponse Fail(Sim& sim, const Reply& r) { return Envelope(sim, r.http, r.code, r.message); }

bool SupportsV3(const std::string& model) { return model.starts_with("kling-v3"); }

std::optional<int> ParseIntString(const json& v) {
  if (!v.is_string()) return std::nullopt;
  const std::string s = v.get<std::string>();
  if (s.empty() || s.size() > 3) return std::nullopt;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  return std::stoi(s);
}

// image2video's `image` (first frame) and `image_tail` (last frame): base64 without a data:
// prefix (Kling also takes URLs; the simulator fetches nothing and refuses them).
std::optional<Reply> ValidateImages(const json& body, bool image2video, Task& task) {
  auto bad = [](std::string m) { return Reply{400, 1201, std::move(m)}; };
  const bool has_image = body.contains("image"), has_tail = body.contains("image_tail");
  if (!image2video) {
    if (has_image || has_tail) {
      return bad("image and image_tail are not text2video parameters; use /v1/videos/image2video");
    }
    return std::nullopt;
  }
  if (!has_image && !has_tail) return bad("image or image_tail is required");
  using Field = std::pair<const char*, const char*>;
  for (const auto& [field, role] :
       {Field{"image", "first_frame"}, Field{"image_tail", "last_frame"}}) {
    if (!body.contains(field)) continue;
    if (!body[field].is_string()) return bad(fmt::format("{} must be a string", field));
    const std::string value = body[field];
    if (value.starts_with("http://") || value.starts_with("https://")) {
      return bad(fmt::format("{}: the simulator takes base64 images only, not URLs", field));
    }
    if (value.starts_with("data:")) {
      return bad(fmt::format("{}: base64 must not carry a data: prefix", field));
    }
    auto bytes = DecodeBase64(value);
    if (!bytes) return bad(fmt::format("{} is not valid base64", field));
    ReceivedImage image;
    if (auto why = CheckImage(*bytes, "", role, image)) {
      return bad(fmt::format("{}: {}", field, *why));
    }
    task.images.push_back(std::move(image));
  }
  return std::nullopt;
}

// Validates the text2video or image2video body; fills `task` or answers the first problem found.
std::optional<Reply> Validate(const json& body, bool image2video, Task& task) {
  auto bad = [](std::string m) { return Reply{400, 1201, std::move(m)}; };
  auto str = [&](const char* f) { return body.contains(f) && !body[f].is_string(); };
  for (const char* f : {"model_name", "prompt", "negative_prompt", "duration", "aspect_ratio",
                        "mode", "sound", "shot_type", "callback_url", "external_task_id"}) {
    if (str(f)) return bad(fmt::format("{} must be a string", f));
  }
  if (auto err = ValidateImages(body, image2video, task)) return err;
  task.model = body.value("model_name", std::string("kling-v1"));  // the documented default
  const bool v3 = SupportsV3(task.model);
  const std::string prompt = body.value("prompt", std::string());
  if (prompt.size() > 2500) return bad("prompt must be at most 2500 characters");
  if (body.value("negative_prompt", std::string()).size() > 2500) {
    return bad("negative_prompt must be at most 2500 characters");
  }
  int duration = 5;
  if (body.contains("duration")) {
    auto d = ParseIntString(body["duration"]);
    if (!d) return bad("duration must be a string of digits, e.g. \"5\"");
    duration = *d;
  }
  if (v3 ? (duration < 3 || duration > 15) : (duration != 5 && duration != 10)) {
    return bad(fmt::format("duration \"{}\" is not supported by {} (allowed: {})", duration,
                           task.model, v3 ? "\"3\"..\"15\"" : "\"5\", \"10\""));
  }
  task.duration_s = duration;
  task.ratio = body.value("aspect_ratio", std::string("16:9"));
  if (task.ratio != "16:9" && task.ratio != "9:16" && task.ratio != "1:1") {
    return bad("aspect_ratio must be one of 16:9, 9:16, 1:1");
  }
  const std::string mode = body.value("mode", std::string("std"));
  if (mode != "std" && mode != "pro") return bad("mode must be std or pro");
  const std::string sound = body.value("sound", std::string("off"));
  if (sound != "on" && sound != "off") return bad("sound must be on or off");
  task.audio = sound == "on";
  if (body.contains("cfg_scale") &&
      (!body["cfg_scale"].is_number() || body["cfg_scale"].get<double>() < 0 ||
       body["cfg_scale"].get<double>() > 1)) {
    return bad("cfg_scale must be a number in [0, 1]");
  }
  if (body.contains("multi_shot") && !body["multi_shot"].is_boolean()) {
    return bad("multi_shot must be a boolean");
  }
  const bool multi = body.value("multi_shot", false);
  std::string all_prompts = prompt;
  if (multi) {
    if (!v3) return bad("multi_shot is only supported by kling-v3");
    if (!body.contains("shot_type")) {
      return bad("shot_type is required when multi_shot is true (customize|intelligence)");
    }
    const std::string shot_type = body["shot_type"].get<std::string>();
    if (shot_type != "customize" && shot_type != "intelligence") {
      return bad("shot_type must be customize or intelligence");
    }
    if (shot_type == "customize") {
      if (!body.contains("multi_prompt") || !body["multi_prompt"].is_array()) {
        return bad("multi_prompt (a list of shots) is required when shot_type is customize");
      }
      const json& shots = body["multi_prompt"];
      if (shots.empty() || shots.size() > 6) {
        return bad(fmt::format("multi_prompt must have 1 to 6 shots, got {}", shots.size()));
      }
      int sum = 0;
      all_prompts.clear();
      for (size_t i = 0; i < shots.size(); ++i) {
        const json& s = shots[i];
        if (!s.is_object()) return bad(fmt::format("multi_prompt[{}] must be an object", i));
        if (!s.contains("index") || !s["index"].is_number_integer()) {
          return bad(fmt::format("multi_prompt[{}].index must be an integer", i));
        }
        if (!s.contains("prompt") || !s["prompt"].is_string() ||
            s["prompt"].get<std::string>().empty()) {
          return bad(fmt::format("multi_prompt[{}].prompt must be a non-empty string", i));
        }
        if (s["prompt"].get<std::string>().size() > 512) {
          return bad(fmt::format("multi_prompt[{}].prompt must be at most 512 characters", i));
        }
        auto d = s.contains("duration") ? ParseIntString(s["duration"]) : std::nullopt;
        if (!d || *d < 1) {
          return bad(
              fmt::format("multi_prompt[{}].duration must be a string of digits >= \"1\"", i));
        }
        sum += *d;
        task.shot_durations.push_back(*d);
        all_prompts += s["prompt"].get<std::string>() + "\n";
      }
      if (sum != duration) {
        return bad(fmt::format(
            "multi_prompt durations sum to {} but duration is \"{}\"; they must be equal", sum,
            duration));
      }
    } else if (prompt.empty()) {
      return Reply{400, 1200, "prompt is required when shot_type is intelligence"};
    }
  } else if (prompt.empty() && !image2video) {
    return Reply{400, 1200, "prompt is required"};
  }
  task.prompt = all_prompts;
  task.external_id = body.value("external_task_id", std::string());
  task.echo = {{"mode", mode}, {"endpoint", image2video ? "image2video" : "text2video"}};
  return std::nullopt;
}

json TaskData(const Sim& sim, const HttpRequest& req, const Task& t) {
  const auto now = sim.now();
  std::string status;
  std::string msg;
  switch (t.phase) {
    case Phase::kQueued:
      status = "submitted";
      break;
    case Phase::kRunning:
      status = t.LooksQueued(now) ? "submitted" : "processing";
      break;
    case Phase::kSucceeded:
      status = "succeed";
      break;
    default:
      status = "failed";
      msg = t.outcome == Outcome::kPolicyFailure
                ? "Failure to pass the risk control system (content security policy)"
                : "Internal server error during generation, please try again later";
      break;
  }
  json data = {{"task_id", t.id},
               {"task_status", status},
               {"task_status_msg", msg},
               {"task_info", json::object()},
               {"created_at", t.created_unix_ms},
               {"updated_at", t.UpdatedUnixMs()}};
  if (!t.external_id.empty()) data["task_info"]["external_task_id"] = t.external_id;
  if (t.phase == Phase::kSucceeded) {
    const std::string url = sim.MediaUrl(req, t);
    data["task_result"] = {{"videos", json::array({{{"id", t.id + "-v1"},
                                                    {"url", url},
                                                    {"watermark_url", url},
                                                    {"duration", std::to_string(t.duration_s)}}})}};
    const double rate = t.echo.value("mode", "std") == "pro" ? 0.8 : 0.6;
    data["final_unit_deduction"] = fmt::format("{:g}", rate * t.duration_s);
  }
  return data;
}

HttpResponse Create(Sim& sim, const HttpRequest& req, const KeyConfig& key, bool image2video) {
  json body = ParseBody(req.body);
  auto count_invalid = [&](const std::string& model) {
    sim.stats().Bump(kP, key.key, model, &Counters::invalid_requests);
  };
  if (body.is_discarded() || !body.is_object()) {
    count_invalid("");
    return Fail(sim, {400, 1200, "request body must be a JSON object"});
  }
  Task task;
  task.provider = kP;
  task.key = key.key;
  if (auto err = Validate(body, image2video, task)) {
    count_invalid("");
    return Fail(sim, *err);
  }
  const ModelConfig* model = sim.FindModel(kP, task.model);
  if (!model) {
    sim.stats().Bump(kP, key.key, "", &Counters::model_not_found);
    return Fail(sim, {404, 1203, fmt::format("model_name {} not found", task.model)});
  }
  if (sim.store().ExternalIdTaken(kP, key.key, task.external_id, sim.now())) {
    count_invalid(task.model);
    return Fail(sim, {400, 1201,
                      fmt::format("external_task_id {} already exists for this account",
                                  task.external_id)});
  }
  const Admission adm = sim.Admit(kP, key, /*concurrency_rejects=*/true);
  if (adm.kind != Admission::kOk) {
    const bool rate = adm.kind == Admission::kRateLimited;
    sim.stats().Bump(
        kP, key.key, task.model,
        rate ? &Counters::creates_rejected_rate_limit : &Counters::creates_rejected_concurrency);
    return rate ? Fail(sim, {429, 1302, "API request rate limit exceeded"})
                : Fail(sim, {429, 1303, "parallel task over resource pack limit"});
  }
  const CreatePlan plan = sim.Plan(kP, *model, task.prompt);
  if (plan.fail_create) {
    sim.stats().Bump(kP, key.key, task.model, &Counters::creates_failed_injected);
    return Fail(sim, {500, 5000, "Server internal error"});
  }
  if (plan.policy) {  // Kling rejects content synchronously
    sim.stats().Bump(kP, key.key, task.model, &Counters::policy_rejections);
    return Fail(sim, {400, 1301, "Failure to pass the content security policy check"});
  }
  task.id = sim.NewTaskId(kP);
  auto launched = sim.Launch(std::move(task), plan);
  if (!launched)
    return Fail(sim, {500, 5000, "Server internal error: " + launched.error().message});
  json data = TaskData(sim, req, **launched);
  data["task_status"] = "submitted";  // the create answer always reports the initial state
  data.erase("task_result");
  data.erase("final_unit_deduction");
  return Envelope(sim, 200, 0, "SUCCEED", &data);
}

HttpResponse Query(Sim& sim, const HttpRequest& req, const KeyConfig& key, const std::string& id,
                   bool image2video) {
  // Tasks belong to the account (access key) and to the endpoint that made them; the id may be
  // the task_id or external_task_id.
  const std::string endpoint = image2video ? "image2video" : "text2video";
  auto of_endpoint = [&](Task* t) {
    return t != nullptr && t->echo.value("endpoint", "text2video") == endpoint ? t : nullptr;
  };
  Task* t = of_endpoint(sim.store().Find(kP, id, sim.now()));
  if (t && t->key != key.key) t = nullptr;
  if (!t) t = of_endpoint(sim.store().FindByExternal(kP, key.key, id, sim.now()));
  sim.stats().Bump(kP, key.key, t ? t->model : "", &Counters::polls);
  if (!t) return Fail(sim, {404, 1203, fmt::format("task {} not found", id)});
  json data = TaskData(sim, req, *t);
  HttpResponse res = Envelope(sim, 200, 0, "SUCCEED", &data);
  BreakPollResponse(res, t->truncate_poll, t->bad_json_poll);
  return res;
}

}  // namespace

HttpResponse HandleKling(Sim& sim, const HttpRequest& req, std::string_view path) {
  const auto token = BearerToken(req);
  if (!token) {
    sim.stats().Bump(kP, "", "", &Counters::auth_failures);
    return req.Header("Authorization").empty()
               ? Fail(sim, {401, 1001, "Authorization is empty"})
               : Fail(sim, {401, 1002, "Authorization is invalid: expected \"Bearer <JWT>\""});
  }
  const int64_t now_s = std::chrono::duration_cast<std::chrono::seconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
  const KlingJwtCheck check = CheckKlingJwt(*token, now_s, [&](const std::string& iss) {
    const KeyConfig* k = sim.FindKey(kP, iss);
    return k ? k->secret : std::string();
  });
  if (check.code != 0) {
    sim.stats().Bump(kP, "", "", &Counters::auth_failures);
    return Fail(sim, {401, check.code, check.message});
  }
  const KeyConfig& key = *sim.FindKey(kP, check.issuer);

  for (const bool image2video : {false, true}) {
    const std::string_view base = image2video ? kImage2VideoPath : kCreatePath;
    if (path == base && req.method == http::verb::post) {
      return Create(sim, req, key, image2video);
    }
    if (path.starts_with(std::string(base) + "/") && req.method == http::verb::get) {
      const std::string id(path.substr(base.size() + 1));
      if (!id.empty() && id.find('/') == std::string::npos) {
        return Query(sim, req, key, id, image2video);
      }
    }
  }
  return Fail(sim, {404, 1202,
                    fmt::format("{} {} is not supported by the simulator",
                                std::string(http::to_string(req.method)), std::string(path))});
}

}  // namespace reelq::sim
