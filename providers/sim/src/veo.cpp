// Google Veo 3.1 on the Gemini API, as shared/providers.md §3 documents it: x-goog-api-key,
// predictLongRunning + long-running operations, google.rpc.Status errors, download URIs that
// need the key and redirect to the bytes.
#include <fmt/format.h>
#include <set>

#include "request_util.h"
#include "sim.h"

namespace reelq::sim {
namespace {

using nlohmann::json;
constexpr Provider kP = Provider::kVeo;

const char* StatusName(unsigned code) {
  switch (code) {
    case 400:
      return "INVALID_ARGUMENT";
    case 401:
      return "UNAUTHENTICATED";
    case 403:
      return "PERMISSION_DENIED";
    case 404:
      return "NOT_FOUND";
    case 429:
      return "RESOURCE_EXHAUSTED";
    case 503:
      return "UNAVAILABLE";
    default:
      return "INTERNAL";
  }
}

HttpResponse Error(unsigned code, const std::string& message, json details = nullptr) {
  json err = {{"code", code}, {"message", message}, {"status", StatusName(code)}};
  if (!details.is_null()) err["details"] = details;
  return HttpResponse::Json(code, json{{"error", err}}.dump());
}

std::optional<std::string> CheckUnknown(const json& obj, const std::set<std::string>& known,
                                        const std::string& where) {
  for (const auto& [k, v] : obj.items()) {
    if (!known.contains(k)) {
      return fmt::format("Invalid JSON payload received. Unknown name \"{}\"{}: Cannot find field.",
                         k, where.empty() ? "" : " at '" + where + "'");
    }
  }
  return std::nullopt;
}

// Validates a predictLongRunning body; fills `task` or returns the message of a 400.
std::optional<std::string> Validate(const json& body, const std::string& model, Task& task) {
  if (auto e = CheckUnknown(body, {"instances", "parameters"}, "")) return e;
  if (!body.contains("instances") || !body["instances"].is_array() ||
      body["instances"].size() != 1) {
    return "instances must be a list with exactly one instance";
  }
  const json& inst = body["instances"][0];
  if (!inst.is_object()) return "instances[0] must be an object";
  if (auto e = CheckUnknown(inst, {"prompt", "image", "lastFrame", "video", "referenceImages"},
                            "instances[0]")) {
    return e;
  }
  if (!inst.contains("prompt") || !inst["prompt"].is_string() ||
      inst["prompt"].get<std::string>().empty()) {
    return "instances[0].prompt is required and must be a non-empty string";
  }
  task.prompt = inst["prompt"];
  // Images: {bytesBase64Encoded, mimeType} on the instance (the simulator fetches no gcsUri).
  auto read_image = [&](const json& obj, const std::string& where,
                        const std::string& role) -> std::optional<std::string> {
    if (!obj.is_object()) return where + " must be an object";
    if (auto e = CheckUnknown(obj, {"bytesBase64Encoded", "mimeType"}, where)) return e;
    if (!obj.contains("bytesBase64Encoded") || !obj["bytesBase64Encoded"].is_string()) {
      return where + ".bytesBase64Encoded is required and must be a string";
    }
    if (!obj.contains("mimeType") || !obj["mimeType"].is_string()) {
      return where + ".mimeType is required and must be a string";
    }
    auto bytes = DecodeBase64(obj["bytesBase64Encoded"].get<std::string>());
    if (!bytes) return where + ".bytesBase64Encoded is not valid base64";
    ReceivedImage image;
    if (auto why = CheckImage(*bytes, obj["mimeType"].get<std::string>(), role, image)) {
      return fmt::format("{}: Unable to process input image: {}", where, *why);
    }
    task.images.push_back(std::move(image));
    return std::nullopt;
  };
  if (inst.contains("image")) {
    if (auto e = read_image(inst["image"], "instances[0].image", "first_frame")) return e;
  }
  if (inst.contains("lastFrame")) {
    if (auto e = read_image(inst["lastFrame"], "instances[0].lastFrame", "last_frame")) return e;
  }
  bool has_references = false;
  if (inst.contains("referenceImages")) {
    const json& refs = inst["referenceImages"];
    if (!refs.is_array() || refs.empty() || refs.size() > 3) {
      return "instances[0].referenceImages must be a list of 1 to 3 reference images";
    }
    for (size_t i = 0; i < refs.size(); ++i) {
      const std::string where = fmt::format("instances[0].referenceImages[{}]", i);
      if (!refs[i].is_object()) return where + " must be an object";
      if (auto e = CheckUnknown(refs[i], {"image", "referenceType"}, where)) return e;
      if (!refs[i].contains("referenceType") || refs[i]["referenceType"] != "asset") {
        return where + ".referenceType must be \"asset\"";
      }
      if (!refs[i].contains("image")) return where + ".image is required";
      if (auto e = read_image(refs[i]["image"], where + ".image", "reference_image")) return e;
    }
    has_references = true;
  }
  std::string ratio = "16:9", resolution = "720p";
  int duration = 8;
  if (body.contains("parameters")) {
    const json& p = body["parameters"];
    if (!p.is_object()) return "parameters must be an object";
    if (auto e = CheckUnknown(
            p,
            {"aspectRatio", "durationSeconds", "resolution", "negativePrompt", "personGeneration",
             "sampleCount", "seed", "enhancePrompt", "referenceImages", "lastFrame"},
            "parameters")) {
      return e;
    }
    if (p.contains("aspectRatio")) {
      if (!p["aspectRatio"].is_string()) return "parameters.aspectRatio must be a string";
      ratio = p["aspectRatio"];
      if (ratio != "16:9" && ratio != "9:16") {
        return fmt::format("parameters.aspectRatio '{}' is not supported; use 16:9 or 9:16", ratio);
      }
    }
    if (p.contains("durationSeconds")) {
      if (!p["durationSeconds"].is_number_integer()) {
        return "parameters.durationSeconds must be an integer (4, 6 or 8)";
      }
      duration = p["durationSeconds"];
      if (duration != 4 && duration != 6 && duration != 8) {
        return fmt::format("parameters.durationSeconds {} is out of range; supported: 4, 6, 8",
                           duration);
      }
    }
    if (p.contains("resolution")) {
      if (!p["resolution"].is_string()) return "parameters.resolution must be a string";
      resolution = p["resolution"];
      if (resolution != "720p" && resolution != "1080p" && resolution != "4k") {
        return fmt::format("parameters.resolution '{}' is not supported; use 720p, 1080p or 4k",
                           resolution);
      }
      if (resolution != "720p" && duration != 8) {
        return fmt::format("parameters.resolution {} requires durationSeconds 8", resolution);
      }
      if (resolution == "4k" && model.find("fast") != std::string::npos) {
        return fmt::format("parameters.resolution 4k is not supported by {}", model);
      }
    }
    if (p.contains("negativePrompt") && !p["negativePrompt"].is_string()) {
      return "parameters.negativePrompt must be a string";
    }
    if (p.contains("personGeneration")) {
      const json& pg = p["personGeneration"];
      if (!pg.is_string() || (pg != "allow_all" && pg != "allow_adult" && pg != "dont_allow")) {
        return "parameters.personGeneration must be allow_all, allow_adult or dont_allow";
      }
    }
    if (p.contains("sampleCount") &&
        (!p["sampleCount"].is_number_integer() || p["sampleCount"] != 1)) {
      return "parameters.sampleCount must be 1 on the Gemini API";
    }
    if (p.contains("seed") && !p["seed"].is_number_integer()) {
      return "parameters.seed must be an integer";
    }
  }
  if (has_references && duration != 8) {
    return fmt::format("referenceImages require durationSeconds 8, not {}", duration);
  }
  task.duration_s = duration;
  task.ratio = ratio;
  task.audio = true;  // Veo 3.x always generates audio
  task.echo = {{"resolution", resolution}};
  return std::nullopt;
}

std::string OperationName(const Task& t) {
  return fmt::format("models/{}/operations/{}", t.model, t.id);
}

json Operation(const Sim& sim, const HttpRequest& req, const Task& t) {
  json op = {{"name", OperationName(t)}};
  if (!IsTerminal(t.phase)) return op;  // proto3 JSON omits `done` while it is false
  op["done"] = true;
  if (t.phase == Phase::kSucceeded) {
    const std::string uri =
        fmt::format("http://{}/veo/v1beta/files/{}:download?alt=media", req.host, t.id);
    op["response"] = {
        {"@type",
         "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse"},
        {"generateVideoResponse",
         {{"generatedSamples", json::array({{{"video", {{"uri", uri}}}}})}}}};
  } else if (t.outcome == Outcome::kPolicyFailure) {
    op["response"] = {
        {"@type",
         "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse"},
        {"generateVideoResponse",
         {{"raiMediaFilteredCount", 1},
          {"raiMediaFilteredReasons",
           json::array({"Your prompt or generated video was blocked by our safety filters "
                        "(support code 58061214)."})}}}};
  } else {
    op["error"] = {{"code", 13},
                   {"message", "Internal error encountered during video generation."}};
  }
  (void)sim;
  return op;
}

HttpResponse Create(Sim& sim, const HttpRequest& req, const KeyConfig& key,
                    const std::string& model_id) {
  json body = ParseBody(req.body);
  if (body.is_discarded() || !body.is_object()) {
    sim.stats().Bump(kP, key.key, "", &Counters::invalid_requests);
    return Error(400, "Invalid JSON payload received. The body must be a JSON object.");
  }
  const ModelConfig* model = sim.FindModel(kP, model_id);
  if (!model) {
    sim.stats().Bump(kP, key.key, "", &Counters::model_not_found);
    return Error(404, fmt::format("models/{} is not found for API version v1beta, or is not "
                                  "supported for predictLongRunning.",
                                  model_id));
  }
  Task task;
  task.provider = kP;
  task.key = key.key;
  task.model = model_id;
  if (auto err = Validate(body, model_id, task)) {
    sim.stats().Bump(kP, key.key, model_id, &Counters::invalid_requests);
    return Error(400, *err);
  }
  const Admission adm = sim.Admit(kP, key, /*concurrency_rejects=*/true);
  if (adm.kind != Admission::kOk) {
    const bool rate = adm.kind == Admission::kRateLimited;
    sim.stats().Bump(
        kP, key.key, model_id,
        rate ? &Counters::creates_rejected_rate_limit : &Counters::creates_rejected_concurrency);
    return Error(429, rate ? "Resource has been exhausted (e.g. check quota)."
                           : "Resource has been exhausted: too many concurrent video "
                             "generations for this project.");
  }
  const CreatePlan plan = sim.Plan(kP, *model, task.prompt);
  if (plan.fail_create) {
    sim.stats().Bump(kP, key.key, model_id, &Counters::creates_failed_injected);
    return Error(503, "The model is overloaded. Please try again later.");
  }
  task.id = sim.NewTaskId(kP);
  auto launched = sim.Launch(std::move(task), plan);
  if (!launched) return Error(500, "simulator media failure: " + launched.error().message);
  return HttpResponse::Json(200, json{{"name", OperationName(**launched)}}.dump());
}

}  // namespace

HttpResponse HandleVeo(Sim& sim, const HttpRequest& req, std::string_view path) {
  std::string api_key = req.Header("x-goog-api-key");
  if (api_key.empty() && req.query.contains("key")) api_key = req.query.at("key");
  if (api_key.empty()) {
    sim.stats().Bump(kP, "", "", &Counters::auth_failures);
    return Error(403,
                 "Method doesn't allow unregistered callers (callers without established "
                 "identity). Please use API Key or other form of API consumer identity to call "
                 "this API.");
  }
  const KeyConfig* key = sim.FindKey(kP, api_key);
  if (!key) {
    sim.stats().Bump(kP, "", "", &Counters::auth_failures);
    return Error(401, "API key not valid. Please pass a valid API key.",
                 json::array({{{"@type", "type.googleapis.com/google.rpc.ErrorInfo"},
                               {"reason", "API_KEY_INVALID"},
                               {"domain", "googleapis.com"}}}));
  }
  const auto parts = SplitPath(path);
  const auto method_name = std::string(http::to_string(req.method));
  if (parts.size() >= 3 && parts[0] == "v1beta" && parts[1] == "models") {
    // models/{model}:predictLongRunning
    if (parts.size() == 3 && req.method == http::verb::post) {
      const auto colon = parts[2].rfind(':');
      if (colon != std::string::npos && parts[2].substr(colon + 1) == "predictLongRunning") {
        return Create(sim, req, *key, parts[2].substr(0, colon));
      }
    }
    // models/{model}/operations/{id}
    if (parts.size() == 5 && parts[3] == "operations" && req.method == http::verb::get) {
      Task* t = sim.store().Find(kP, parts[4], sim.now());
      if (t && t->model != parts[2]) t = nullptr;
      sim.stats().Bump(kP, key->key, t ? t->model : "", &Counters::polls);
      if (!t) {
        return Error(
            404, fmt::format("Operation models/{}/operations/{} not found.", parts[2], parts[4]));
      }
      HttpResponse res = HttpResponse::Json(200, Operation(sim, req, *t).dump());
      BreakPollResponse(res, t->truncate_poll, t->bad_json_poll);
      return res;
    }
  }
  // files/{id}:download?alt=media -> 302 to the bytes, like the real service.
  if (parts.size() == 3 && parts[0] == "v1beta" && parts[1] == "files" &&
      req.method == http::verb::get) {
    const auto colon = parts[2].rfind(':');
    if (colon != std::string::npos && parts[2].substr(colon + 1) == "download") {
      const std::string id = parts[2].substr(0, colon);
      Task* t = sim.store().Find(kP, id, sim.now());
      if (!t || t->phase != Phase::kSucceeded) {
        return Error(404, fmt::format("File files/{} not found.", id));
      }
      if (!req.query.contains("alt") || req.query.at("alt") != "media") {
        return Error(400, "files download needs alt=media");
      }
      HttpResponse res;
      res.status = 302;
      res.content_type = "text/html; charset=UTF-8";
      res.headers.emplace_back("Location", fmt::format("http://{}/media/veo/{}.mp4", req.host, id));
      return res;
    }
  }
  return Error(404, fmt::format("The requested URL {} {} was not found on this server.",
                                method_name, std::string(path)));
}

}  // namespace reelq::sim
