// scheduler.* settings: a bad dispatch policy (from the YAML or from its environment override)
// is refused naming the key, by the loader and by the reelq-scheduler binary at start; the
// preference margin and the activation credit are read and bounded.
#include <sys/wait.h>

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <string>

#include "process.h"
#include "reelq/common/config.h"
#include "reelq/scheduler/settings.h"

namespace reelq::scheduler {
namespace {

using namespace std::chrono_literals;

constexpr std::string_view kBogus = "scheduler.dispatch_policy: expected fair or fifo, got 'bogus'";

Result<Settings> Parse(const std::string& yaml,
                       const std::map<std::string, std::string>& env = {}) {
  auto doc = config::LoadFromString(yaml, ".", env);
  if (!doc) return std::unexpected(doc.error());
  return ParseSettings(*doc);
}

TEST(SchedulerSettings, BogusDispatchPolicyInYamlIsRefused) {
  auto s = Parse("scheduler:\n  dispatch_policy: bogus\n");
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().category, ErrorCategory::kInvalidRequest);
  EXPECT_EQ(s.error().message, kBogus);
}

TEST(SchedulerSettings, BogusDispatchPolicyFromEnvironmentIsRefused) {
  auto s = Parse("scheduler:\n  dispatch_policy: fair\n",
                 {{"REELQ__SCHEDULER__DISPATCH_POLICY", "bogus"}});
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().message, kBogus);
  // Also when the YAML has no scheduler section at all.
  s = Parse("redis:\n  host: 127.0.0.1\n", {{"REELQ__SCHEDULER__DISPATCH_POLICY", "bogus"}});
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().message, kBogus);
}

TEST(SchedulerSettings, FairAndFifoAreAccepted) {
  auto fair = Parse("scheduler:\n  dispatch_policy: fair\n");
  ASSERT_TRUE(fair) << fair.error().message;
  EXPECT_EQ(fair->dispatch_policy, "fair");
  auto fifo = Parse("{}\n", {{"REELQ__SCHEDULER__DISPATCH_POLICY", "fifo"}});
  ASSERT_TRUE(fifo) << fifo.error().message;
  EXPECT_EQ(fifo->dispatch_policy, "fifo");
  auto dflt = Parse("{}\n");
  ASSERT_TRUE(dflt) << dflt.error().message;
  EXPECT_EQ(dflt->dispatch_policy, "fair");
}

TEST(SchedulerSettings, PreferenceMargin) {
  auto dflt = Parse("{}\n");
  ASSERT_TRUE(dflt);
  EXPECT_EQ(dflt->preference_margin_seconds, 0);
  auto s = Parse("scheduler:\n  preference_margin_seconds: 90\n");
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->preference_margin_seconds, 90);
  auto bad = Parse("scheduler:\n  preference_margin_seconds: -5\n");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("scheduler.preference_margin_seconds"), std::string::npos)
      << bad.error().message;
}

// The open-watch limits: defaults, a set value, and malformed ones refused naming the key.
TEST(SchedulerSettings, WatchLimits) {
  auto dflt = Parse("{}\n");
  ASSERT_TRUE(dflt);
  EXPECT_EQ(dflt->max_watches_per_tenant, 1000u);
  EXPECT_EQ(dflt->max_watches, 10000u);
  auto s = Parse("scheduler:\n  max_watches_per_tenant: 50\n  max_watches: 200\n");
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->max_watches_per_tenant, 50u);
  EXPECT_EQ(s->max_watches, 200u);
  for (const std::string key : {"max_watches_per_tenant", "max_watches"}) {
    for (const std::string bad : {"0", "-3", "lots"}) {
      auto refused = Parse("scheduler:\n  " + key + ": " + bad + "\n");
      ASSERT_FALSE(refused) << key << ": " << bad;
      EXPECT_NE(refused.error().message.find("scheduler." + key), std::string::npos)
          << refused.error().message;
    }
  }
}

TEST(SchedulerSettings, ActivationCredit) {
  auto dflt = Parse("{}\n");
  ASSERT_TRUE(dflt);
  EXPECT_EQ(dflt->activation_credit, 64);
  auto none = Parse("tenants:\n  activation_credit: 0\n");
  ASSERT_TRUE(none) << none.error().message;
  EXPECT_EQ(none->activation_credit, 0);
  for (const char* bad : {"-1", "1.5", "lots"}) {
    auto s = Parse(std::string("tenants:\n  activation_credit: ") + bad + "\n");
    ASSERT_FALSE(s) << bad;
    EXPECT_NE(s.error().message.find("tenants.activation_credit"), std::string::npos)
        << s.error().message;
  }
}

// The binary: exit code 2 and the message on stderr, before it touches Redis or the network.
// Issue 11: queue.retention_hours (default a week, fractions down to a second) and the dispatch
// round interval, each refused naming its key when out of range.
TEST(SchedulerSettings, RetentionAndDispatchInterval) {
  auto defaults = Parse("scheduler:\n  listen: 127.0.0.1:1\n");
  ASSERT_TRUE(defaults) << defaults.error().message;
  EXPECT_EQ(defaults->retention_ms, int64_t{168} * 3600 * 1000);
  EXPECT_EQ(defaults->dispatch_interval_ms, 100);
  auto set = Parse("queue:\n  retention_hours: 0.5\nscheduler:\n  dispatch_interval_ms: 5000\n");
  ASSERT_TRUE(set) << set.error().message;
  EXPECT_EQ(set->retention_ms, 1800 * 1000);
  EXPECT_EQ(set->dispatch_interval_ms, 5000);
  auto negative = Parse("queue:\n  retention_hours: -1\n");
  ASSERT_FALSE(negative);
  EXPECT_NE(negative.error().message.find("queue.retention_hours"), std::string::npos)
      << negative.error().message;
  auto typo = Parse("queue:\n  retention_hour: 1\n");
  ASSERT_FALSE(typo);
  EXPECT_NE(typo.error().message.find("retention_hour"), std::string::npos) << typo.error().message;
  auto zero = Parse("scheduler:\n  dispatch_interval_ms: 0\n");
  ASSERT_FALSE(zero);
  EXPECT_NE(zero.error().message.find("dispatch_interval_ms"), std::string::npos)
      << zero.error().message;
}

// A malformed scheduler.metrics_listen stops the start naming the key (it only logged a warning,
// and without /healthz a liveness probe restarts the pod forever); a good one is kept.
TEST(SchedulerSettings, MalformedMetricsListenIsRefusedNamingTheKey) {
  for (const std::string bad :
       {"9464", "localhost:http", "0.0.0.0:99999", "0.0.0.0:", "::1:9464", "0.0.0.0:-1"}) {
    auto s = Parse("scheduler:\n  metrics_listen: \"" + bad + "\"\n");
    ASSERT_FALSE(s) << bad;
    EXPECT_EQ(s.error().category, ErrorCategory::kInvalidRequest);
    EXPECT_TRUE(s.error().message.starts_with("scheduler.metrics_listen: ")) << s.error().message;
  }
  auto env = Parse("{}\n", {{"REELQ__SCHEDULER__METRICS_LISTEN", "nonsense"}});
  ASSERT_FALSE(env);
  EXPECT_TRUE(env.error().message.starts_with("scheduler.metrics_listen: ")) << env.error().message;
  for (const std::string good : {"0.0.0.0:9464", ":9464", "[::1]:0", "metrics.internal:9464"}) {
    auto s = Parse("scheduler:\n  metrics_listen: \"" + good + "\"\n");
    ASSERT_TRUE(s) << good << ": " << s.error().message;
    EXPECT_EQ(s->metrics_listen, good);
  }
}

TEST(SchedulerBinary, RefusesAMalformedMetricsListenAtStart) {
  testing::TempDir dir;
  const auto config = dir.path() / "reelq.yaml";
  std::ofstream(config) << "redis:\n  host: 127.0.0.1\n  port: 1\n"
                        << "scheduler:\n  metrics_listen: \"9464\"\n";
  const auto log = dir.path() / "metrics.log";
  auto child = testing::ChildProcess::Start(
      {testing::BuildPath("scheduler/reelq-scheduler").string(), "--config", config.string()}, {},
      log);
  auto status = child.Wait(30s);
  ASSERT_TRUE(status.has_value()) << "reelq-scheduler did not exit";
  ASSERT_TRUE(WIFEXITED(*status));
  EXPECT_EQ(WEXITSTATUS(*status), 2);
  EXPECT_NE(testing::ReadFile(log).find("scheduler.metrics_listen: "), std::string::npos)
      << testing::ReadFile(log);
}

TEST(SchedulerBinary, RefusesBogusDispatchPolicyAtStart) {
  testing::TempDir dir;
  const auto config = dir.path() / "reelq.yaml";
  for (const bool from_env : {false, true}) {
    SCOPED_TRACE(from_env ? "environment override" : "yaml");
    std::ofstream(config) << "redis:\n  host: 127.0.0.1\n  port: 1\n"
                          << (from_env ? "" : "scheduler:\n  dispatch_policy: bogus\n");
    const auto log = dir.path() / (from_env ? "env.log" : "yaml.log");
    std::map<std::string, std::string> env;
    if (from_env) env["REELQ__SCHEDULER__DISPATCH_POLICY"] = "bogus";
    auto child = testing::ChildProcess::Start(
        {testing::BuildPath("scheduler/reelq-scheduler").string(), "--config", config.string()},
        env, log);
    auto status = child.Wait(30s);
    ASSERT_TRUE(status.has_value()) << "reelq-scheduler did not exit";
    ASSERT_TRUE(WIFEXITED(*status));
    EXPECT_EQ(WEXITSTATUS(*status), 2);
    EXPECT_NE(testing::ReadFile(log).find(std::string(kBogus)), std::string::npos)
        << testing::ReadFile(log);
  }
}

}  // namespace
}  // namespace reelq::scheduler
