// The dashboard over real HTTP against the whole stack: the scheduler binary's open mode
// (loopback, read-only) and the token mode (cookie, tenant scope, same-origin + CSRF on
// actions, the clip proxy's Range answers), without a browser.
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "dashboard_host.h"
#include "e2e_util.h"

namespace reelq::testing {
namespace {

namespace v1 = reelq::v1;
using nlohmann::json;

int PortOf(const std::string& address) { return std::stoi(address.substr(address.rfind(':') + 1)); }

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<v1::JobSpec> Specs(const std::string& tenant, int n) {
  std::vector<v1::JobSpec> specs;
  for (int i = 0; i < n; ++i) {
    auto spec = MakeSpec("a lighthouse in fog, take " + std::to_string(i), "seedance-2.0", 5);
    spec.set_tenant(tenant);
    specs.push_back(spec);
  }
  return specs;
}

TEST(DashboardHttp, OpenModeIsReadOnlyAndTokenModeScopesAndGuards) {
  if (auto missing = E2eStack::MissingBinaries(); !missing.empty()) GTEST_SKIP() << missing;
  E2eStack stack({.schedulers = 1, .workers = 1, .dashboard = true});
  auto stub = stack.JobStub();
  grpc::Status status;
  auto acme = SubmitBatch(*stub, Specs("acme", 3), &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  auto globex = SubmitBatch(*stub, Specs("globex", 1), &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  std::vector<std::string> ids;
  for (const auto& item : acme.items()) ids.push_back(item.job_id());
  const std::string globex_job = globex.items(0).job_id();
  ids.push_back(globex_job);
  auto done = stack.WaitTerminal(ids, std::chrono::seconds(60));
  for (const auto& id : ids) {
    ASSERT_EQ(done[id].state(), v1::JOB_STATE_SUCCEEDED) << stack.Logs();
  }
  const std::string acme_job = ids[0];

  // --- open mode: the scheduler binary, no tokens -------------------------------------------
  const int open = PortOf(stack.dashboard_address());
  auto page = HttpFetch("GET", open, "/");
  EXPECT_EQ(page.status, 200);
  EXPECT_NE(page.headers["content-type"].find("text/html"), std::string::npos);
  EXPECT_NE(page.body.find("/app.js"), std::string::npos);
  EXPECT_NE(page.headers["content-security-policy"].find("default-src 'self'"), std::string::npos);
  auto script = HttpFetch("GET", open, "/app.js");
  EXPECT_EQ(script.status, 200);
  EXPECT_NE(script.headers["content-type"].find("javascript"), std::string::npos);
  auto session = json::parse(HttpFetch("GET", open, "/api/session").body);
  EXPECT_EQ(session["mode"], "open");
  EXPECT_EQ(session["can_act"], false);
  auto overview = HttpFetch("GET", open, "/api/overview");
  ASSERT_EQ(overview.status, 200) << overview.body;
  auto o = json::parse(overview.body);
  bool seedance_seen = false;
  for (const auto& m : o["models"]) {
    if (m["id"] == "seedance-2.0") {
      seedance_seen = true;
      EXPECT_EQ(m["succeeded"], 4) << m.dump();
      EXPECT_GT(m["generation"]["p50_s"].get<double>(), 0) << m.dump();
      EXPECT_EQ(m["wait"]["n"], 4) << m.dump();
    }
  }
  EXPECT_TRUE(seedance_seen) << overview.body;
  // A page elsewhere whose name resolves to 127.0.0.1 (DNS rebinding) is a loopback peer too,
  // but its requests name its own host.
  for (const std::string& host :
       std::vector<std::string>{"localhost:" + std::to_string(open), "[::1]:8080", "127.0.0.2"}) {
    EXPECT_EQ(HttpFetch("GET", open, "/api/overview", {{"Host", host}}).status, 200) << host;
  }
  for (const std::string& host :
       std::vector<std::string>{"evil.example:" + std::to_string(open), "127.0.0.1.evil.example",
                                "localhost.evil.example", "[::2]:80", ""}) {
    auto rebound = HttpFetch("GET", open, "/api/overview", {{"Host", host}});
    EXPECT_EQ(rebound.status, 403) << host;
    EXPECT_NE(rebound.body.find("not a loopback name"), std::string::npos) << rebound.body;
  }
  auto refused = HttpFetch("POST", open, "/api/job/retry?id=" + acme_job,
                           {{"Origin", "http://127.0.0.1:" + std::to_string(open)}});
  EXPECT_EQ(refused.status, 403);
  EXPECT_NE(refused.body.find("read-only"), std::string::npos) << refused.body;

  // --- token mode: the same classes in process, with a test resolver ----------------------
  DashboardHost host(stack, {{"tok-acme", {"acme", false}}, {"tok-admin", {"", true}}});
  const int port = host.port();
  const std::string origin = "http://127.0.0.1:" + std::to_string(port);
  EXPECT_EQ(HttpFetch("GET", port, "/api/overview").status, 401);
  EXPECT_EQ(HttpFetch("GET", port, "/").status, 200);  // the sign-in page itself is public
  EXPECT_EQ(
      HttpFetch("POST", port, "/api/login", {{"Origin", origin}}, R"({"token":"nope"})").status,
      401);
  EXPECT_EQ(HttpFetch("POST", port, "/api/login", {{"Origin", "http://evil.example"}},
                      R"({"token":"tok-acme"})")
                .status,
            403);
  EXPECT_EQ(HttpFetch("POST", port, "/api/login", {{"Origin", origin}}, "not json").status, 400);
  // A token that cannot be checked for now (Redis out of reach) is not refused: 503, so the page
  // keeps its session and asks again instead of signing the user out.
  const std::map<std::string, std::string> unreachable{{"Cookie", "reelq_token=tok-unreachable"}};
  for (const char* api : {"/api/overview", "/api/session"}) {
    auto down = HttpFetch("GET", port, api, unreachable);
    EXPECT_EQ(down.status, 503) << api << " " << down.body;
    EXPECT_NE(down.body.find("redis unreachable"), std::string::npos) << down.body;
  }
  EXPECT_EQ(
      HttpFetch("POST", port, "/api/login", {{"Origin", origin}}, R"({"token":"tok-unreachable"})")
          .status,
      503);
  auto login =
      HttpFetch("POST", port, "/api/login", {{"Origin", origin}}, R"({"token":"tok-acme"})");
  ASSERT_EQ(login.status, 200) << login.body;
  const std::string cookie = login.headers["set-cookie"];
  EXPECT_NE(cookie.find("reelq_token=tok-acme"), std::string::npos) << cookie;
  EXPECT_NE(cookie.find("HttpOnly"), std::string::npos) << cookie;
  EXPECT_NE(cookie.find("SameSite=Strict"), std::string::npos) << cookie;
  const std::map<std::string, std::string> as_acme{{"Cookie", "reelq_token=tok-acme"}};

  auto me = json::parse(HttpFetch("GET", port, "/api/session", as_acme).body);
  EXPECT_EQ(me["tenant"], "acme");
  EXPECT_EQ(me["can_act"], true);
  const std::string csrf = me["csrf"];
  EXPECT_EQ(csrf.size(), 64u);

  // Another tenant's job, batch and clip look like nothing at all; accounts are admin-only.
  EXPECT_EQ(HttpFetch("GET", port, "/api/job?id=" + globex_job, as_acme).status, 404);
  EXPECT_EQ(HttpFetch("GET", port, "/clip/" + globex_job, as_acme).status, 404);
  EXPECT_EQ(HttpFetch("GET", port, "/api/batch?id=" + globex.batch_id(), as_acme).status, 404);
  EXPECT_EQ(HttpFetch("GET", port, "/api/accounts", as_acme).status, 403);
  auto batches = json::parse(HttpFetch("GET", port, "/api/batches", as_acme).body);
  ASSERT_EQ(batches["batches"].size(), 1u) << batches.dump();
  EXPECT_EQ(batches["batches"][0]["batch_id"], acme.batch_id());
  EXPECT_EQ(batches["batches"][0]["succeeded"], 3);
  auto admin_batches = json::parse(
      HttpFetch("GET", port, "/api/batches", {{"Cookie", "reelq_token=tok-admin"}}).body);
  EXPECT_EQ(admin_batches["batches"].size(), 2u) << admin_batches.dump();
  EXPECT_EQ(HttpFetch("GET", port, "/api/accounts", {{"Cookie", "reelq_token=tok-admin"}}).status,
            200);

  // The clip proxy: whole file and ranges, byte for byte what the store holds.
  auto job = json::parse(HttpFetch("GET", port, "/api/job?id=" + acme_job, as_acme).body);
  ASSERT_EQ(job["clip"]["src"], "/clip/" + acme_job) << job.dump();
  const std::string file = ReadFile(stack.store_root() / done[acme_job].output_key());
  ASSERT_GT(file.size(), 200u);
  auto whole = HttpFetch("GET", port, "/clip/" + acme_job, as_acme);
  EXPECT_EQ(whole.status, 200);
  EXPECT_EQ(whole.headers["content-type"], "video/mp4");
  EXPECT_EQ(whole.headers["accept-ranges"], "bytes");
  EXPECT_TRUE(whole.body == file);
  auto part = HttpFetch("GET", port, "/clip/" + acme_job,
                        {{"Cookie", "reelq_token=tok-acme"}, {"Range", "bytes=100-199"}});
  EXPECT_EQ(part.status, 206);
  EXPECT_EQ(part.headers["content-range"], "bytes 100-199/" + std::to_string(file.size()));
  EXPECT_TRUE(part.body == file.substr(100, 100));
  auto tail = HttpFetch("GET", port, "/clip/" + acme_job,
                        {{"Cookie", "reelq_token=tok-acme"}, {"Range", "bytes=-50"}});
  EXPECT_EQ(tail.status, 206);
  EXPECT_TRUE(tail.body == file.substr(file.size() - 50));
  auto past = HttpFetch("GET", port, "/clip/" + acme_job,
                        {{"Cookie", "reelq_token=tok-acme"},
                         {"Range", "bytes=" + std::to_string(file.size()) + "-"}});
  EXPECT_EQ(past.status, 416);
  EXPECT_EQ(past.headers["content-range"], "bytes */" + std::to_string(file.size()));

  // Actions: POST only, same origin, the session's CSRF token; then the API's own answer.
  const std::string retry = "/api/job/retry?id=" + acme_job;
  EXPECT_EQ(HttpFetch("GET", port, retry, as_acme).status, 405);
  EXPECT_EQ(HttpFetch("POST", port, retry, {{"Cookie", "reelq_token=tok-acme"}, {"Origin", origin}})
                .status,
            403);  // no CSRF token
  EXPECT_EQ(HttpFetch("POST", port, retry,
                      {{"Cookie", "reelq_token=tok-acme"},
                       {"Origin", "http://evil.example"},
                       {"X-CSRF-Token", csrf}})
                .status,
            403);
  EXPECT_EQ(HttpFetch("POST", port, retry,
                      {{"Cookie", "reelq_token=tok-acme"},
                       {"Origin", origin},
                       {"X-CSRF-Token", std::string(64, '0')}})
                .status,
            403);
  auto conflict =
      HttpFetch("POST", port, retry,
                {{"Cookie", "reelq_token=tok-acme"}, {"Origin", origin}, {"X-CSRF-Token", csrf}});
  EXPECT_EQ(conflict.status, 409) << conflict.body;  // a SUCCEEDED job cannot be retried
  EXPECT_NE(conflict.body.find("only FAILED or CANCELLED"), std::string::npos) << conflict.body;
  EXPECT_EQ(
      HttpFetch("POST", port, "/api/job/cancel?id=" + globex_job,
                {{"Cookie", "reelq_token=tok-acme"}, {"Origin", origin}, {"X-CSRF-Token", csrf}})
          .status,
      404);  // another tenant's job
  auto logout = HttpFetch("POST", port, "/api/logout", {{"Origin", origin}});
  EXPECT_NE(logout.headers["set-cookie"].find("Max-Age=0"), std::string::npos);

  // A batch id is the tenant's that Redis records as holding it, not the one the dashboard saw
  // first: as when acme's batch expired and globex then took the id, its page and list entry
  // are no longer acme's, and the page lists only the holder's jobs under that id.
  stack.redis().Run({"SET",
                     std::string(E2eStack::kRedisPrefix) + ":{q}:auth:batch:" + acme.batch_id(),
                     "globex"});
  EXPECT_EQ(HttpFetch("GET", port, "/api/batch?id=" + acme.batch_id(), as_acme).status, 404);
  auto after = json::parse(HttpFetch("GET", port, "/api/batches", as_acme).body);
  EXPECT_EQ(after["batches"].size(), 0u) << after.dump();
  auto as_holder = HttpFetch("GET", port, "/api/batch?id=" + acme.batch_id(),
                             {{"Cookie", "reelq_token=tok-admin"}});
  ASSERT_EQ(as_holder.status, 200) << as_holder.body;
  auto held = json::parse(as_holder.body);
  EXPECT_EQ(held["tenant"], "globex");
  EXPECT_EQ(held["jobs"].size(), 0u) << held.dump();  // acme's three rows are not globex's
}

}  // namespace
}  // namespace reelq::testing
