// The test/operator control plane under /_sim (no auth: the simulator listens on loopback).
#include "sim.h"

namespace reelq::sim {
namespace {

HttpResponse Error(unsigned status, const std::string& message) {
  return HttpResponse::Json(status, nlohmann::json{{"error", message}}.dump());
}

}  // namespace

HttpResponse HandleControl(Sim& sim, const HttpRequest& req, std::string_view path) {
  const bool get = req.method == http::verb::get;
  const bool post = req.method == http::verb::post;
  if (path == "/health" && get) return HttpResponse::Json(200, R"({"ok":true})");
  if (path == "/stats" && get) return HttpResponse::Json(200, sim.StatsJson().dump());
  if (path == "/config" && get) {
    return HttpResponse::Json(200, ConfigToJson(sim.config()).dump());
  }
  if (path == "/config" && post) {
    auto doc = nlohmann::json::parse(req.body, nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded() || !doc.is_object()) {
      return Error(400, "body must be a JSON object (see providers/sim/README.md)");
    }
    if (auto ok = sim.ApplyControl(doc); !ok) return Error(400, ok.error().message);
    return HttpResponse::Json(200, ConfigToJson(sim.config()).dump());
  }
  if (path == "/reset" && post) {
    sim.ResetStats();
    return HttpResponse::Json(200, R"({"ok":true})");
  }
  return Error(404,
               "unknown control endpoint; use GET /_sim/stats, GET|POST /_sim/config, "
               "POST /_sim/reset, GET /_sim/health");
}

}  // namespace reelq::sim
