// The dashboard's routes: who the caller is (token cookie or open loopback mode), what they may
// see (their tenant, or everything for an admin), and the JSON each page polls. Every answer
// comes from JobApi, DashboardModels and Activity, never from Redis directly.
#include <filesystem>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "internal.h"
#include "reelq/queue/job_store.h"

namespace reelq::scheduler {

using namespace dashboard_detail;
using State = Dashboard::State;

namespace {

constexpr std::string_view kCookie = "reelq_token";
constexpr std::string_view kCsrfHeader = "X-CSRF-Token";

std::string PercentDecode(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    const auto hex = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    if (in[i] == '%' && i + 2 < in.size() && hex(in[i + 1]) >= 0 && hex(in[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex(in[i + 1]) * 16 + hex(in[i + 2])));
      i += 2;
    } else if (in[i] == '+') {
      out.push_back(' ');
    } else {
      out.push_back(in[i]);
    }
  }
  return out;
}

struct Target {
  std::string path;
  std::map<std::string, std::string> query;
  std::string Param(const std::string& name) const {
    auto it = query.find(name);
    return it == query.end() ? std::string() : it->second;
  }
};

Target ParseTarget(std::string_view target) {
  Target t;
  const size_t q = target.find('?');
  t.path = std::string(target.substr(0, q));
  if (q == std::string_view::npos) return t;
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    const size_t amp = rest.find('&');
    std::string_view pair = rest.substr(0, amp);
    const size_t eq = pair.find('=');
    t.query[PercentDecode(pair.substr(0, eq))] =
        eq == std::string_view::npos ? std::string() : PercentDecode(pair.substr(eq + 1));
    if (amp == std::string_view::npos) break;
    rest = rest.substr(amp + 1);
  }
  return t;
}

struct Caller {
  bool open_mode = false;
  bool signed_in = false;
  // Set when the token could not be checked for now (Redis out of reach): not a refusal.
  std::optional<std::string> unavailable;
  DashboardPrincipal principal;
  std::string token;
  bool SeesAll() const { return open_mode || principal.admin; }
  bool MaySee(const std::string& tenant) const { return SeesAll() || tenant == principal.tenant; }
  // Empty: every tenant.
  std::string Scope() const { return SeesAll() ? std::string() : principal.tenant; }
  // The same caller as JobApi knows it (JobApi scopes every call again).
  Principal AsPrincipal() const {
    return {.tenant = principal.tenant, .is_admin = SeesAll(), .open = open_mode};
  }
};

// Tokens are opaque but must survive a cookie: printable ASCII without separators.
bool CookieSafe(std::string_view token) {
  if (token.empty() || token.size() > 4096) return false;
  for (char c : token) {
    if (c <= 0x20 || c >= 0x7f || c == ';' || c == ',' || c == '"' || c == '\\') return false;
  }
  return true;
}

awaitable<Caller> Identify(std::shared_ptr<State> s, std::string cookie_header) {
  Caller caller;
  if (!s->options.resolve_token) {
    caller.open_mode = true;
    caller.signed_in = true;
    caller.principal.admin = true;
    co_return caller;
  }
  std::string token = CookieValue(cookie_header, kCookie);
  if (token.empty() || !CookieSafe(token)) co_return caller;
  auto principal = co_await s->options.resolve_token(token);
  if (!principal) {
    if (IsRetryable(principal.error().category)) caller.unavailable = principal.error().message;
    co_return caller;
  }
  caller.signed_in = true;
  caller.principal = *principal;
  caller.token = std::move(token);
  co_return caller;
}

std::string CsrfToken(const State& s, const std::string& token) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  HMAC(EVP_sha256(), s.csrf_key.data(), static_cast<int>(s.csrf_key.size()),
       reinterpret_cast<const unsigned char*>(token.data()), token.size(), mac, &mac_len);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < mac_len; ++i) {
    out.push_back(kHex[mac[i] >> 4]);
    out.push_back(kHex[mac[i] & 15]);
  }
  return out;
}

std::string Header(const Request& req, std::string_view name) {
  auto it = req.find(beast::string_view(name.data(), name.size()));
  return it == req.end() ? std::string() : std::string(it->value());
}

// A state-changing request must come from a page of this dashboard: its Origin names this very
// host (browsers always send Origin on POST), or, failing that, Sec-Fetch-Site says so.
bool SameOrigin(const Request& req) {
  const std::string host = Header(req, "Host");
  const std::string origin = Header(req, "Origin");
  if (!origin.empty()) {
    return !host.empty() && (origin == "http://" + host || origin == "https://" + host);
  }
  return Header(req, "Sec-Fetch-Site") == "same-origin";
}

// Whether a Host header names this machine's loopback ("localhost", 127.0.0.0/8, ::1; any
// port). Without tokens the dashboard trusts loopback peers, and a web page elsewhere can point
// its own name at 127.0.0.1 (DNS rebinding) to become such a peer: its requests still carry its
// own name as Host, so only loopback names are answered.
bool LoopbackHost(std::string_view host) {
  std::string_view name = host;
  if (name.starts_with('[')) {
    const size_t close = name.find(']');
    if (close == std::string_view::npos) return false;
    name = name.substr(1, close - 1);
  } else if (const size_t colon = name.find(':'); colon != std::string_view::npos) {
    name = name.substr(0, colon);
  }
  if (name == "localhost") return true;
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(std::string(name), ec);
  return !ec && address.is_loopback();
}

std::string SessionCookie(const std::string& token, bool clear) {
  std::string cookie =
      std::string(kCookie) + "=" + (clear ? "" : token) + "; Path=/; HttpOnly; SameSite=Strict";
  cookie += clear ? "; Max-Age=0" : "; Max-Age=2592000";
  return cookie;
}

Reply NotFound(const std::string& what) { return ErrorReply(http::status::not_found, what); }

// ---- pages' data -----------------------------------------------------------------------------

awaitable<Reply> Overview(std::shared_ptr<State> s, Caller caller) {
  auto refreshed = co_await s->activity.Refresh();
  const ActivitySnapshot a = s->activity.Snapshot(caller.Scope());
  Json out;
  out["scope"] = caller.SeesAll() ? "all" : caller.principal.tenant;
  out["window_seconds"] = a.window_ms / 1000;
  out["now_ms"] = a.now_ms;
  out["stale"] = !refreshed ? refreshed.error().message : "";
  std::map<std::string, Json> models;
  Json totals = {{"queued", a.queued}, {"dispatched", a.dispatched}, {"running", a.running}};
  if (caller.SeesAll()) {
    auto listed = co_await s->models.ListModels();
    if (!listed) co_return ErrorReply(listed.error());
    for (const auto& m : listed->models()) {
      models[m.id()] = {{"id", m.id()},
                        {"provider", m.provider()},
                        {"queued", m.queue_depth()},
                        {"dispatched", m.dispatched()},
                        {"running", m.in_flight()},
                        {"succeeded_total", m.succeeded()},
                        {"failed_total", m.failed()},
                        {"latency_estimate_s", m.latency_estimate_seconds()}};
    }
    auto stats = co_await s->models.GetStats();
    if (!stats) co_return ErrorReply(stats.error());
    totals = {{"queued", stats->pending()},
              {"dispatched", stats->dispatched()},
              {"running", stats->running()},
              {"workers", stats->workers()}};
  }
  for (const auto& m : a.models) {
    Json& j = models[m.model];
    j["id"] = m.model;
    if (!caller.SeesAll()) {
      j["dispatched"] = m.dispatched;
      j["running"] = m.running;
    }
    j["succeeded"] = m.succeeded;
    j["succeeded_last_minute"] = m.succeeded_last_minute;
    j["failed"] = m.failed;
    j["completions_per_minute"] = m.completions_per_minute;
    j["generation"] = {
        {"p50_s", m.generation_p50_s}, {"p95_s", m.generation_p95_s}, {"n", m.generation_samples}};
    j["wait"] = {{"p50_s", m.wait_p50_s}, {"p95_s", m.wait_p95_s}, {"n", m.wait_samples}};
  }
  int64_t completed = 0;
  for (const auto& m : a.models) completed += m.succeeded;
  totals["succeeded_window"] = completed;
  out["totals"] = totals;
  out["models"] = Json::array();
  for (auto& [id, j] : models) out["models"].push_back(std::move(j));
  co_return JsonReply(out);
}

// For lookups the dashboard scopes itself (a batch's tenant is checked against the caller before
// its progress is read): a batch submitted while authentication was off has no recorded owner,
// which JobApi shows only to an admin, yet its tenant's token may see it here.
Principal DashboardItself() { return {.tenant = "", .is_admin = true, .open = false}; }

awaitable<Reply> Batches(std::shared_ptr<State> s, Caller caller) {
  auto refreshed = co_await s->activity.Refresh();
  (void)refreshed;  // the page shows what was read before; the overview reports staleness
  const ActivitySnapshot a = s->activity.Snapshot(caller.Scope());
  Json list = Json::array();
  size_t shown = 0;
  for (const auto& b : a.batches) {
    if (++shown > 50) break;
    // The stream remembers the tenant it saw first; the id may since have expired and been
    // claimed by another tenant, whose counts are not this one's to see.
    auto owner = co_await s->jobs.BatchOwner(b.batch);
    if (!owner || (!owner->empty() && *owner != b.tenant)) continue;
    auto progress = co_await s->jobs.GetBatch(DashboardItself(), b.batch);
    if (!progress) continue;  // expired from Redis since
    Json j = BatchJson(*progress);
    j["tenant"] = b.tenant;
    j["first_ms"] = b.first_ms;
    j["last_ms"] = b.last_ms;
    j["failures_by_category"] = b.failures_by_category;
    list.push_back(std::move(j));
  }
  co_return JsonReply({{"batches", list}});
}

// The batch's tenant: the one Redis records as holding the id; for a batch submitted while
// authentication was off (no holder), from the stream when it was seen there, else from its
// first job. (The stream's memory alone could name a tenant whose batch expired and whose id
// another tenant has since taken.)
awaitable<Result<std::string>> BatchTenant(std::shared_ptr<State> s, std::string batch) {
  auto owner = co_await s->jobs.BatchOwner(batch);
  if (!owner || !owner->empty()) co_return owner;
  std::string tenant = s->activity.BatchTenant(batch);
  if (!tenant.empty()) co_return tenant;
  v1::ListJobsRequest request;
  request.set_batch_id(batch);
  request.set_page_size(1);
  auto page = co_await s->jobs.List(DashboardItself(), request);
  if (page && page->jobs_size() > 0) co_return page->jobs(0).spec().tenant();
  co_return std::string();
}

awaitable<Reply> BatchPage(std::shared_ptr<State> s, Caller caller, Target target) {
  const std::string id = target.Param("id");
  if (id.empty()) co_return ErrorReply(http::status::bad_request, "id: required");
  auto owner = co_await BatchTenant(s, id);
  if (!owner) co_return ErrorReply(owner.error());
  const std::string tenant = *owner;
  if (!caller.MaySee(tenant)) co_return NotFound("no batch with id '" + id + "'");
  auto progress = co_await s->jobs.GetBatch(DashboardItself(), id);
  if (!progress) co_return ErrorReply(progress.error());
  Json out = BatchJson(*progress);
  out["tenant"] = tenant;
  // The rows are the owner's alone, whatever else the index holds under that id.
  v1::ListJobsRequest request;
  request.set_tenant(tenant);
  request.set_batch_id(id);
  request.set_page_size(50);
  const std::string state = target.Param("state");
  if (!state.empty()) {
    auto parsed = queue::JobStateFromString(state);
    if (!parsed) {
      co_return ErrorReply(http::status::bad_request, "state: unknown value '" + state + "'");
    }
    request.set_state(ToProto(*parsed));
  }
  request.set_page_token(target.Param("page"));
  auto page = co_await s->jobs.List(DashboardItself(), request);
  if (!page) co_return ErrorReply(page.error());
  out["jobs"] = Json::array();
  for (const auto& job : page->jobs()) out["jobs"].push_back(JobRowJson(job));
  out["next_page"] = page->next_page_token();
  // Failures by category: every failed job of the batch (up to 1000), read through the API.
  v1::ListJobsRequest failed;
  failed.set_tenant(tenant);
  failed.set_batch_id(id);
  failed.set_state(v1::JOB_STATE_FAILED);
  failed.set_page_size(1000);
  std::map<std::string, int64_t> by_category;
  if (progress->failed() > 0) {
    if (auto failures = co_await s->jobs.List(DashboardItself(), failed)) {
      for (const auto& job : failures->jobs()) ++by_category[CategoryName(job.error().category())];
    }
  }
  out["failures_by_category"] = by_category;
  co_return JsonReply(out);
}

awaitable<Result<v1::JobStatus>> VisibleJob(std::shared_ptr<State> s, Caller caller,
                                            std::string id) {
  auto job = co_await s->jobs.Get(caller.AsPrincipal(), id);
  // Another tenant's job looks like no job at all.
  if (job && !caller.MaySee(job->spec().tenant())) {
    co_return MakeError(ErrorCategory::kNotFound, queue::JobStore::NoSuchJob(id));
  }
  co_return job;
}

awaitable<Reply> JobPage(std::shared_ptr<State> s, Caller caller, Target target) {
  const std::string id = target.Param("id");
  if (id.empty()) co_return ErrorReply(http::status::bad_request, "id: required");
  auto job = co_await VisibleJob(s, caller, id);
  if (!job) co_return ErrorReply(job.error());
  Json out = JobJson(*job);
  const std::string& url = job->output_url();
  if (job->state() == v1::JOB_STATE_SUCCEEDED && !url.empty()) {
    if (!FileUrlPath(url).empty()) {
      out["clip"] = {{"src", "/clip/" + id}, {"via", "proxy"}};
    } else if (url.starts_with("https://") || url.starts_with("http://")) {
      out["clip"] = {{"src", url}, {"via", "presigned"}};
    }
  }
  out["can_act"] = !caller.open_mode;
  co_return JsonReply(out);
}

awaitable<Reply> JobAction(std::shared_ptr<State> s, Caller caller, Request req, Target target,
                           bool retry) {
  if (caller.open_mode) {
    co_return ErrorReply(http::status::forbidden,
                         "read-only: the dashboard takes actions only where API tokens exist");
  }
  if (!SameOrigin(req)) {
    co_return ErrorReply(http::status::forbidden, "cross-site request refused (Origin)");
  }
  const std::string csrf = Header(req, kCsrfHeader);
  const std::string expected = CsrfToken(*s, caller.token);
  if (csrf.size() != expected.size() ||
      CRYPTO_memcmp(csrf.data(), expected.data(), expected.size()) != 0) {
    co_return ErrorReply(http::status::forbidden, "missing or wrong X-CSRF-Token");
  }
  const std::string id = target.Param("id");
  if (id.empty()) co_return ErrorReply(http::status::bad_request, "id: required");
  auto job = co_await VisibleJob(s, caller, id);
  if (!job) co_return ErrorReply(job.error());
  // Two statements, not `retry ? co_await ... : co_await ...`: g++ 12 destroys the result of a
  // co_await inside a conditional expression twice.
  Result<v1::JobStatus> done = MakeError(ErrorCategory::kInternal, "no action");
  if (retry) {
    done = co_await s->jobs.Retry(caller.AsPrincipal(), id);
  } else {
    done = co_await s->jobs.Cancel(caller.AsPrincipal(), id);
  }
  if (!done) co_return ErrorReply(done.error());
  co_return JsonReply(JobJson(*done));
}

awaitable<Reply> Accounts(std::shared_ptr<State> s, Caller caller) {
  if (!caller.SeesAll()) {
    co_return ErrorReply(http::status::forbidden, "accounts are shown to admin tokens only");
  }
  auto stats = co_await s->models.GetStats();
  if (!stats) co_return ErrorReply(stats.error());
  auto refreshed = co_await s->activity.Refresh();
  (void)refreshed;
  const ActivitySnapshot a = s->activity.Snapshot("");
  Json list = Json::array();
  for (const auto& account : stats->accounts()) {
    Json j = AccountJson(account);
    j["dispatched_last_minute"] = 0;
    for (const auto& live : a.accounts) {
      if (live.account == account.account())
        j["dispatched_last_minute"] = live.dispatched_last_minute;
    }
    list.push_back(std::move(j));
  }
  co_return JsonReply({{"accounts", list}});
}

awaitable<Reply> Tenants(std::shared_ptr<State> s, Caller caller) {
  auto stats = co_await s->models.GetStats();
  if (!stats) co_return ErrorReply(stats.error());
  auto refreshed = co_await s->activity.Refresh();
  (void)refreshed;
  const ActivitySnapshot a = s->activity.Snapshot("");
  std::map<std::string, Json> rows;
  auto row = [&](const std::string& tenant) -> Json& {
    Json& j = rows[tenant];
    if (j.is_null()) {
      auto w = s->options.tenant_weights.find(tenant);
      j = {{"tenant", tenant},
           {"weight", w == s->options.tenant_weights.end() ? s->options.default_weight : w->second},
           {"pending", 0},
           {"queued", 0},
           {"dispatched", 0},
           {"running", 0},
           {"dispatched_recently", 0}};
    }
    return j;
  };
  for (const auto& t : stats->tenants()) {
    row(t.tenant())["pending"] = t.pending();
    row(t.tenant())["weight"] = t.weight();
  }
  for (const auto& t : a.tenants) {
    Json& j = row(t.tenant);
    j["queued"] = t.queued;
    j["dispatched"] = t.dispatched;
    j["running"] = t.running;
    j["dispatched_recently"] = t.dispatched_recently;
  }
  // Shares among the tenants that want capacity now (something queued or in flight).
  double weights = 0, recent = 0;
  for (auto& [id, j] : rows) {
    const bool active = j["pending"].get<int64_t>() + j["queued"].get<int64_t>() +
                            j["dispatched"].get<int64_t>() + j["running"].get<int64_t>() >
                        0;
    j["active"] = active;
    if (active) weights += j["weight"].get<double>();
    recent += static_cast<double>(j["dispatched_recently"].get<int64_t>());
  }
  Json list = Json::array();
  for (auto& [id, j] : rows) {
    j["weight_share"] =
        j["active"].get<bool>() && weights > 0 ? j["weight"].get<double>() / weights : 0.0;
    j["dispatch_share"] =
        recent > 0 ? static_cast<double>(j["dispatched_recently"].get<int64_t>()) / recent : 0.0;
    if (caller.MaySee(id)) list.push_back(j);
  }
  co_return JsonReply({{"tenants", list}, {"share_window_seconds", a.share_window_ms / 1000}});
}

awaitable<Reply> Clip(std::shared_ptr<State> s, Caller caller, Request req, std::string id) {
  auto job = co_await VisibleJob(s, caller, id);
  if (!job) co_return ErrorReply(job.error());
  if (job->state() != v1::JOB_STATE_SUCCEEDED || job->output_url().empty()) {
    co_return NotFound("job " + id + " has no clip (state " + StateName(job->state()) + ")");
  }
  const std::string path = FileUrlPath(job->output_url());
  if (path.empty()) {
    Reply redirect;
    redirect.status = http::status::found;
    redirect.headers.emplace_back(http::field::location, job->output_url());
    co_return redirect;
  }
  std::error_code ec;
  const uint64_t size = std::filesystem::file_size(path, ec);
  if (ec) co_return NotFound("the clip of job " + id + " is not in the store: " + ec.message());
  Reply reply;
  reply.content_type = "video/mp4";
  reply.file = Reply::File{path, size, std::nullopt};
  if (auto range_header = Header(req, "Range"); !range_header.empty()) {
    auto range = ParseRange(range_header, size);
    if (range && !*range) {
      Reply refused = ErrorReply(http::status::range_not_satisfiable, range->error().message);
      refused.headers.emplace_back(http::field::content_range, "bytes */" + std::to_string(size));
      co_return refused;
    }
    if (range) {
      reply.status = http::status::partial_content;
      reply.file->range = **range;
    }
  }
  co_return reply;
}

Reply Static(const std::string& path) {
  const std::string wanted = path == "/" ? "/index.html" : path;
  for (const auto& file : EmbeddedFiles()) {
    if (file.path != wanted) continue;
    Reply reply;
    reply.content_type = std::string(file.content_type);
    reply.body = std::string(file.body);
    // index.html names the others; it must not be cached past an upgrade.
    reply.cacheable = wanted != "/index.html";
    return reply;
  }
  return NotFound("no page " + path);
}

}  // namespace

awaitable<Reply> Route(std::shared_ptr<State> s, Request req, bool loopback_peer) {
  if (!s->options.resolve_token && !loopback_peer) {
    co_return ErrorReply(http::status::forbidden,
                         "this dashboard serves loopback only (no API tokens are configured)");
  }
  if (!s->options.resolve_token && !LoopbackHost(Header(req, "Host"))) {
    co_return ErrorReply(http::status::forbidden,
                         "Host: \"" + Header(req, "Host").substr(0, 100) +
                             "\" is not a loopback name; without API tokens this dashboard "
                             "answers only requests addressed to localhost, 127.0.0.1 or [::1]");
  }
  const Target target = ParseTarget(std::string_view(req.target().data(), req.target().size()));
  const bool get = req.method() == http::verb::get || req.method() == http::verb::head;
  const bool post = req.method() == http::verb::post;
  const std::string& path = target.path;

  if (!path.starts_with("/api/") && !path.starts_with("/clip/")) {
    if (!get) co_return ErrorReply(http::status::method_not_allowed, "use GET");
    co_return Static(path);
  }
  Caller caller = co_await Identify(s, Header(req, "Cookie"));
  // A session whose token cannot be checked for now stays signed in: the page shows why and
  // asks again, rather than dropping the session and sending the user to sign in.
  if (caller.unavailable && path != "/api/login" && path != "/api/logout") {
    co_return ErrorReply(
        http::status::service_unavailable,
        "cannot check your token now (" + *caller.unavailable + "); the page tries again");
  }

  if (path == "/api/session") {
    co_return JsonReply(
        {{"mode", caller.open_mode ? "open" : "token"},
         {"signed_in", caller.signed_in},
         {"tenant", caller.principal.tenant},
         {"admin", caller.principal.admin},
         {"can_act", caller.signed_in && !caller.open_mode},
         {"csrf",
          caller.signed_in && !caller.open_mode ? CsrfToken(*s, caller.token) : std::string()}});
  }
  if (path == "/api/login" || path == "/api/logout") {
    if (!post) co_return ErrorReply(http::status::method_not_allowed, "use POST");
    if (caller.open_mode) {
      co_return ErrorReply(http::status::bad_request, "no API tokens are configured");
    }
    if (!SameOrigin(req)) {
      co_return ErrorReply(http::status::forbidden, "cross-site request refused (Origin)");
    }
    Reply reply = JsonReply({{"ok", true}});
    if (path == "/api/logout") {
      reply.headers.emplace_back(http::field::set_cookie, SessionCookie("", true));
      co_return reply;
    }
    const Json body = Json::parse(req.body(), nullptr, /*allow_exceptions=*/false);
    if (!body.is_object() || !body.contains("token") || !body["token"].is_string()) {
      co_return ErrorReply(http::status::bad_request, "body: expected {\"token\": \"...\"}");
    }
    const std::string token = body["token"].get<std::string>();
    if (!CookieSafe(token)) {
      co_return ErrorReply(http::status::bad_request,
                           "token: empty, too long or has characters no token has");
    }
    auto principal = co_await s->options.resolve_token(token);
    if (!principal && IsRetryable(principal.error().category)) {
      co_return ErrorReply(
          http::status::service_unavailable,
          "cannot check the token now (" + principal.error().message + "); try again in a moment");
    }
    if (!principal) co_return ErrorReply(http::status::unauthorized, "token refused");
    reply.headers.emplace_back(http::field::set_cookie, SessionCookie(token, false));
    co_return reply;
  }
  if (!caller.signed_in) {
    co_return ErrorReply(http::status::unauthorized, "sign in with an API token");
  }
  if (path.starts_with("/clip/")) {
    if (!get) co_return ErrorReply(http::status::method_not_allowed, "use GET");
    co_return co_await Clip(s, caller, std::move(req), path.substr(6));
  }
  if (path == "/api/job/retry" || path == "/api/job/cancel") {
    if (!post) co_return ErrorReply(http::status::method_not_allowed, "use POST");
    co_return co_await JobAction(s, caller, std::move(req), target, path == "/api/job/retry");
  }
  if (!get) co_return ErrorReply(http::status::method_not_allowed, "use GET");
  if (path == "/api/overview") co_return co_await Overview(s, caller);
  if (path == "/api/batches") co_return co_await Batches(s, caller);
  if (path == "/api/batch") co_return co_await BatchPage(s, caller, target);
  if (path == "/api/job") co_return co_await JobPage(s, caller, target);
  if (path == "/api/accounts") co_return co_await Accounts(s, caller);
  if (path == "/api/tenants") co_return co_await Tenants(s, caller);
  co_return NotFound("no API " + path);
}

}  // namespace reelq::scheduler
