#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include <grpcpp/channel.h>

#include "reelq/common/asio.h"
#include "reelq/common/error.h"
#include "reelq/scheduler/activity.h"
#include "reelq/scheduler/job_api.h"
#include "reelq/scheduler/model_api.h"
#include "reelq/v1/models.pb.h"

namespace reelq::scheduler {

// Who a dashboard visitor is, as their API token says.
struct DashboardPrincipal {
  std::string tenant;
  bool admin = false;  // sees and acts on every tenant
};

// The model and account figures the dashboard shows: the same answers the ModelService gives
// over gRPC (ListModels, GetStats). An interface so the dashboard is built on the API classes,
// never on Redis keys.
class DashboardModels {
 public:
  virtual ~DashboardModels() = default;
  virtual awaitable<Result<v1::ListModelsResponse>> ListModels() = 0;
  virtual awaitable<Result<v1::GetStatsResponse>> GetStats() = 0;
};

// DashboardModels answered by a ModelService over `channel` (the scheduler's own, in process),
// for wiring where no ModelApi object is at hand. Calls complete on `io`.
std::unique_ptr<DashboardModels> DashboardModelsOverGrpc(asio::any_io_executor io,
                                                         std::shared_ptr<grpc::Channel> channel);

// DashboardModels answered by the scheduler's own ModelApi (the admin view: the dashboard scopes
// what a tenant sees itself).
std::unique_ptr<DashboardModels> DashboardModelsOf(ModelApi& api);

// Resolves an API token. kAuthFailed (or any error) refuses it.
using TokenResolver = std::function<awaitable<Result<DashboardPrincipal>>(std::string token)>;

struct DashboardOptions {
  // host:port (port 0 picks a free one). Without a token resolver it must be a loopback address.
  std::string listen = "127.0.0.1:0";
  // Empty: no tokens exist. The dashboard then answers loopback peers only and is read-only
  // (Retry and Cancel are refused). Set: every page needs a token, entered once and kept in an
  // HttpOnly SameSite=Strict cookie; a tenant sees only its own jobs, an admin sees all.
  TokenResolver resolve_token;
  // For the tenants page: share of capacity against weight.
  double default_weight = 1;
  std::map<std::string, double> tenant_weights;
  std::chrono::milliseconds io_timeout{10'000};
  // A clip streams for at most this long per request (a paused video keeps its connection).
  std::chrono::milliseconds clip_timeout{300'000};
  size_t max_connections = 128;
  size_t max_request_bytes = 16 * 1024;
};

// The web dashboard (scheduler.dashboard_listen): HTML, CSS and JS compiled into the binary, a
// JSON API the pages poll, and a streamed, seekable (HTTP Range) proxy for clips in the
// filesystem store. Every connection is a coroutine on the given executor, which must be the one
// the JobApi, the DashboardModels and the Activity live on.
//
//   GET  /, /app.js, /app.css, /favicon.svg        the single-page app
//   GET  /api/session                               mode, principal, CSRF token
//   POST /api/login {"token": ...} · /api/logout    token mode only
//   GET  /api/overview · /api/batches · /api/batch?id= · /api/job?id= · /api/accounts ·
//        /api/tenants
//   POST /api/job/retry?id= · /api/job/cancel?id=   token mode; same-origin and CSRF token
//   GET  /clip/<job id>                             the job's clip (Range supported)
class Dashboard {
 public:
  // Binds before returning: a bad or busy address comes back as an error naming it.
  static Result<std::unique_ptr<Dashboard>> Start(asio::any_io_executor executor, JobApi& jobs,
                                                  DashboardModels& models, Activity& activity,
                                                  DashboardOptions options);
  ~Dashboard();  // Stop()
  Dashboard(const Dashboard&) = delete;
  Dashboard& operator=(const Dashboard&) = delete;

  uint16_t port() const;
  // Closes the listener and every connection (on the executor); thread-safe, idempotent.
  void Stop();

  struct State;

 private:
  explicit Dashboard(std::shared_ptr<State> state) : state_(std::move(state)) {}
  std::shared_ptr<State> state_;
};

// Helpers with rules worth testing on their own.
struct ByteRange {
  uint64_t first = 0, last = 0;  // inclusive
};
// A "Range: bytes=..." header against an object of `size` bytes: nullopt for no range (or one
// the server may ignore, like several ranges); an error when it cannot be satisfied (416).
std::optional<Result<ByteRange>> ParseRange(std::string_view header, uint64_t size);
// The local path of a file:// URL (percent-decoded); empty for any other URL.
std::string FileUrlPath(std::string_view url);
// The value of cookie `name` in a Cookie header; empty when absent.
std::string CookieValue(std::string_view header, std::string_view name);

}  // namespace reelq::scheduler
