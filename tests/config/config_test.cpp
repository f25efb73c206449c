// The config loader refuses what it does not know: a misspelt key, section or environment
// override is an error naming it (with the nearest known key), never a silent default. The
// shipped configs load with every key known.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "process.h"
#include "reelq/common/config.h"
#include "reelq/common/known_keys.h"
#include "reelq/scheduler/settings.h"
#include "reelq/worker/settings.h"

namespace reelq {
namespace {

using testing::SourcePath;

// Every check a process runs at start-up, in the order they run: its own section(s), Redis.
Result<void> ParseAll(const config::Document& doc) {
  if (auto s = scheduler::ParseSettings(doc); !s) return std::unexpected(s.error());
  if (auto w = worker::ParseSettings(doc); !w) return std::unexpected(w.error());
  if (auto r = config::ParseRedis(doc, {}); !r) return std::unexpected(r.error());
  return {};
}

std::string LoadError(const std::string& yaml, const std::map<std::string, std::string>& env = {}) {
  auto doc = config::LoadFromString(yaml, "/tmp", env);
  if (!doc) return doc.error().message;
  auto parsed = ParseAll(*doc);
  return parsed ? "" : parsed.error().message;
}

TEST(ConfigTest, ShippedConfigsLoadWithEveryKeyKnown) {
  for (const char* file : {"deploy/reelq.yaml", "deploy/demo.yaml"}) {
    auto doc = config::Load(SourcePath(file).string(), {});
    ASSERT_TRUE(doc) << file << ": " << doc.error().message;
    auto parsed = ParseAll(*doc);
    EXPECT_TRUE(parsed) << file << ": " << parsed.error().message;
  }
}

TEST(ConfigTest, MisspeltKeyIsRefusedWithTheNearestKnownKey) {
  EXPECT_EQ(LoadError("worker:\n  lease_secnds: 3\n"),
            "worker.lease_secnds: unknown key; did you mean lease_seconds?");
  EXPECT_EQ(LoadError("scheduler:\n  dispatch_polcy: fifo\n"),
            "scheduler.dispatch_polcy: unknown key; did you mean dispatch_policy?");
  EXPECT_EQ(LoadError("redis:\n  hots: redis.internal\n"),
            "redis.hots: unknown key; did you mean host?");
  EXPECT_EQ(LoadError("tenants:\n  weight:\n    a: 2\n"),
            "tenants.weight: unknown key; did you mean weights?");
  // Far from every known key: the message lists them instead of guessing.
  const auto far = LoadError("worker:\n  colour: blue\n");
  EXPECT_TRUE(far.starts_with("worker.colour: unknown key (known: ")) << far;
  EXPECT_NE(far.find("lease_seconds"), std::string::npos) << far;
}

TEST(ConfigTest, UnknownSectionAndOverrideAreRefused) {
  EXPECT_EQ(LoadError("workr:\n  lease_seconds: 3\n"),
            "<string>: workr: unknown section; did you mean worker?");
  EXPECT_EQ(LoadError("worker:\n  lease_seconds: 3\n", {{"REELQ__WORKER__LEASE_SECS", "9"}}),
            "worker.lease_secs: unknown key; did you mean lease_seconds?");
  // A good override still applies.
  EXPECT_EQ(LoadError("worker:\n  lease_seconds: 3\n", {{"REELQ__WORKER__LEASE_SECONDS", "9"}}),
            "");
}

// A malformed worker.metrics_listen (or its override) stops the start naming the key.
TEST(ConfigTest, MalformedWorkerMetricsListenIsRefusedNamingTheKey) {
  for (const std::string bad : {"9465", "0.0.0.0:metrics", "0.0.0.0:70000", "fe80::1:9465"}) {
    const auto error = LoadError("worker:\n  metrics_listen: \"" + bad + "\"\n");
    EXPECT_TRUE(error.starts_with("worker.metrics_listen: ")) << bad << ": " << error;
  }
  EXPECT_TRUE(LoadError("{}\n", {{"REELQ__WORKER__METRICS_LISTEN", "nonsense"}})
                  .starts_with("worker.metrics_listen: "));
  for (const std::string good : {"0.0.0.0:9465", ":9465", "[::]:0", "127.0.0.1:0"}) {
    EXPECT_EQ(LoadError("worker:\n  metrics_listen: \"" + good + "\"\n"), "") << good;
  }
}

// REELQ__CATALOGUE_FILE picks the catalogue that is merged, as the file's own catalogue_file
// would; other overrides still apply on top of the merged catalogue.
TEST(ConfigTest, CatalogueFileOverrideFromTheEnvironmentPicksTheCatalogue) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("reelq-config-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  for (const char* name : {"first", "second"}) {
    std::ofstream(dir / (std::string(name) + ".yaml"))
        << "routing:\n  use_cases:\n    photorealism: " << name << "-model\n";
  }
  const std::string yaml = "catalogue_file: first.yaml\n";
  auto model = [&](const std::map<std::string, std::string>& env) -> std::string {
    auto doc = config::LoadFromString(yaml, dir.string(), env);
    if (!doc) return "error: " + doc.error().message;
    return doc->root["routing"]["use_cases"]["photorealism"].as<std::string>("");
  };
  EXPECT_EQ(model({}), "first-model");
  EXPECT_EQ(model({{"REELQ__CATALOGUE_FILE", (dir / "second.yaml").string()}}), "second-model");
  EXPECT_EQ(model({{"REELQ__CATALOGUE_FILE", "second.yaml"}}), "second-model");  // beside the file
  // Another override still applies after the merge, over the catalogue's value.
  EXPECT_EQ(model({{"REELQ__CATALOGUE_FILE", "second.yaml"},
                   {"REELQ__ROUTING__USE_CASES__PHOTOREALISM", "own-model"}}),
            "own-model");
  std::filesystem::remove_all(dir);
}

// An override whose value is not YAML, or that puts a key under a plain value, is refused naming
// the variable (yaml-cpp throws for both; the process must not abort on its environment).
// redis.sentinel_password goes to the sentinels only, and only with sentinels.
TEST(ConfigTest, SentinelPasswordNeedsSentinels) {
  auto doc = config::LoadFromString(
      "redis:\n  sentinels: [127.0.0.1:26379]\n  master_name: m\n"
      "  sentinel_password: {env: SENTINEL_SECRET}\n",
      "/tmp", {{"SENTINEL_SECRET", "s3cret"}});
  ASSERT_TRUE(doc) << doc.error().message;
  auto redis = config::ParseRedis(*doc, {{"SENTINEL_SECRET", "s3cret"}});
  ASSERT_TRUE(redis) << redis.error().message;
  EXPECT_EQ(redis->options.sentinel_password, "s3cret");
  EXPECT_TRUE(redis->options.password.empty());
  auto alone = config::LoadFromString(
      "redis:\n  host: a\n  sentinel_password: {env: SENTINEL_SECRET}\n", "/tmp", {});
  ASSERT_TRUE(alone) << alone.error().message;
  auto refused = config::ParseRedis(*alone, {{"SENTINEL_SECRET", "s3cret"}});
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().message,
            "redis.sentinel_password: set without redis.sentinels to send it to");
}

TEST(ConfigTest, AMalformedOverrideIsRefusedNamingTheVariable) {
  EXPECT_EQ(
      LoadError("redis:\n  host: a\n", {{"REELQ__WEBHOOKS__ALLOW_HOSTS", "[10.0.0.0/8"}})
          .rfind("environment override REELQ__WEBHOOKS__ALLOW_HOSTS: its value is not valid YAML",
                 0),
      0u);
  EXPECT_EQ(LoadError("redis:\n  host: a\n", {{"REELQ__REDIS__HOST__X", "1"}}),
            "environment override REELQ__REDIS__HOST__X: 'redis.host' is a value, not a section "
            "with keys");
  EXPECT_EQ(LoadError("redis:\n  host: a\n", {{"REELQ__REDIS__HOST__X__Y", "1"}}),
            "environment override REELQ__REDIS__HOST__X__Y: 'redis.host' is a value, not a "
            "section with keys");
}

TEST(ConfigTest, BadDispatchPolicyIsRefusedByName) {
  EXPECT_EQ(LoadError("scheduler:\n  dispatch_policy: bogus\n"),
            "scheduler.dispatch_policy: expected fair or fifo, got 'bogus'");
  EXPECT_EQ(LoadError("scheduler:\n  listen: 127.0.0.1:0\n",
                      {{"REELQ__SCHEDULER__DISPATCH_POLICY", "bogus"}}),
            "scheduler.dispatch_policy: expected fair or fifo, got 'bogus'");
}

TEST(ConfigTest, OnUnknownCreateNamesABadProviderOrPolicy) {
  EXPECT_EQ(LoadError("worker:\n  on_unknown_create: {veoo: recreate}\n"),
            "worker.on_unknown_create.veoo: unknown provider (expected kling, sora, veo or "
            "seedance)");
  EXPECT_EQ(LoadError("worker:\n  on_unknown_create: {veo: maybe}\n"),
            "worker.on_unknown_create.veo: must be fail or recreate, not 'maybe'");
  EXPECT_EQ(LoadError("worker:\n  on_unknown_create: {veo: recreate}\n"), "");
}

TEST(ConfigTest, MaxStartingIsReadAndBounded) {
  EXPECT_EQ(LoadError("worker:\n  max_starting: 0\n"),
            "worker.max_starting: 0 is out of range [1, 100000]");
  EXPECT_EQ(LoadError("worker:\n  max_starting: many\n"),
            "worker.max_starting: expected a whole number, got 'many'");
  auto doc = config::LoadFromString("worker:\n  max_starting: 32\n", "/tmp", {});
  ASSERT_TRUE(doc) << doc.error().message;
  auto settings = worker::ParseSettings(*doc);
  ASSERT_TRUE(settings) << settings.error().message;
  EXPECT_EQ(settings->max_starting, 32);
  EXPECT_EQ(worker::Settings{}.max_starting, 256);
}

TEST(ConfigTest, HttpIdleConnectionsPerHostIsReadAndBounded) {
  EXPECT_EQ(LoadError("worker:\n  http_idle_connections_per_host: -1\n"),
            "worker.http_idle_connections_per_host: -1 is out of range [0, 4096]");
  EXPECT_EQ(LoadError("worker:\n  http_idle_connections_per_host: lots\n"),
            "worker.http_idle_connections_per_host: expected a whole number, got 'lots'");
  auto doc = config::LoadFromString("worker:\n  http_idle_connections_per_host: 200\n", "/tmp", {});
  ASSERT_TRUE(doc) << doc.error().message;
  auto settings = worker::ParseSettings(*doc);
  ASSERT_TRUE(settings) << settings.error().message;
  EXPECT_EQ(settings->http_idle_connections_per_host, 200);
  EXPECT_EQ(worker::Settings{}.http_idle_connections_per_host, 64);
}

// The worker's --id names its Redis keys and every clip's metadata: an id the object store would
// refuse (S3 metadata is printable ASCII) failed every job after its paid generation.
TEST(WorkerIdTest, PlainIdsPassAndOthersAreRefusedNamingTheFlag) {
  for (const char* ok : {"gpu-3", "reelq-worker-7d9f8-x2k", "host.example.com-12", "w@a:1_b"}) {
    EXPECT_TRUE(worker::ValidateWorkerId(ok)) << ok;
  }
  for (const std::string& bad : {std::string(),
                                 std::string("gpu-\xc3\xbc"
                                             "1"),
                                 std::string("a b"), std::string(129, 'a'), std::string("a\nb")}) {
    auto r = worker::ValidateWorkerId(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_NE(r.error().message.find("--id"), std::string::npos) << r.error().message;
  }
}

// heartbeat_seconds above 1 was capped in silence (the file said 3, the worker beat at 1): it is
// refused, saying why.
TEST(ConfigTest, HeartbeatAboveOneSecondIsRefusedSayingWhy) {
  EXPECT_NE(
      LoadError("worker:\n  heartbeat_seconds: 3\n").find("worker.heartbeat_seconds: at most 1"),
      std::string::npos);
  auto doc = config::LoadFromString("worker:\n  heartbeat_seconds: 0.5\n", "/tmp", {});
  ASSERT_TRUE(doc) << doc.error().message;
  auto ok = worker::ParseSettings(*doc);
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(ok->heartbeat, std::chrono::milliseconds(500));
}

TEST(ConfigTest, MaxClipMbIsReadAndBounded) {
  EXPECT_EQ(LoadError("worker:\n  max_clip_mb: 0\n"),
            "worker.max_clip_mb: 0 is out of range [1, 1048576]");
  auto doc = config::LoadFromString("worker:\n  max_clip_mb: 512\n", "/tmp", {});
  ASSERT_TRUE(doc) << doc.error().message;
  auto settings = worker::ParseSettings(*doc);
  ASSERT_TRUE(settings) << settings.error().message;
  EXPECT_EQ(settings->max_clip_bytes, uint64_t{512} << 20);
  EXPECT_EQ(worker::Settings{}.max_clip_bytes, uint64_t{4096} << 20);
}

TEST(ConfigTest, DownloadAllowHostsIsReadAndEachEntryChecked) {
  EXPECT_EQ(LoadError("worker:\n  download_allow_hosts: clips.internal\n"),
            "worker.download_allow_hosts: expected a list of host names, addresses or CIDR ranges");
  EXPECT_NE(LoadError("worker:\n  download_allow_hosts: ['https://clips.internal/x']\n")
                .find("worker.download_allow_hosts: 'https://clips.internal/x' is neither"),
            std::string::npos);
  auto doc = config::LoadFromString(
      "worker:\n  download_allow_hosts: [Clips.Internal, 10.20.0.0/16, 'fd00::/8']\n", "/tmp", {});
  ASSERT_TRUE(doc) << doc.error().message;
  auto settings = worker::ParseSettings(*doc);
  ASSERT_TRUE(settings) << settings.error().message;
  EXPECT_EQ(settings->download_allow.hosts, std::vector<std::string>{"clips.internal"});
  EXPECT_EQ(settings->download_allow.ranges.size(), 2u);
  EXPECT_TRUE(worker::Settings{}.download_allow.hosts.empty());
}

TEST(ConfigTest, RedisSentinelsAndWaitReplicas) {
  auto doc = config::LoadFromString(
      "redis:\n  sentinels: [10.0.0.1:26379, 'sentinel-b:26380']\n  master_name: reelq\n"
      "  wait_replicas: 1\n  wait_timeout_ms: 250\n",
      "/tmp", {});
  ASSERT_TRUE(doc) << doc.error().message;
  auto redis = config::ParseRedis(*doc, {});
  ASSERT_TRUE(redis) << redis.error().message;
  ASSERT_EQ(redis->options.sentinels.size(), 2u);
  EXPECT_EQ(redis->options.sentinels[1].host, "sentinel-b");
  EXPECT_EQ(redis->options.sentinels[1].port, 26380);
  EXPECT_EQ(redis->options.master_name, "reelq");
  EXPECT_EQ(redis->wait_replicas, 1);
  EXPECT_EQ(redis->wait_timeout, std::chrono::milliseconds(250));
  // An environment override gives one string: a comma-separated list.
  auto overridden =
      config::LoadFromString("redis:\n  master_name: m\n", "/tmp",
                             {{"REELQ__REDIS__SENTINELS", "127.0.0.1:1, 127.0.0.1:2"}});
  ASSERT_TRUE(overridden) << overridden.error().message;
  auto from_env = config::ParseRedis(*overridden, {});
  ASSERT_TRUE(from_env) << from_env.error().message;
  EXPECT_EQ(from_env->options.sentinels.size(), 2u);

  EXPECT_EQ(LoadError("redis:\n  sentinels: [10.0.0.1:26379]\n"),
            "redis.master_name: required with redis.sentinels (the name the sentinels monitor, "
            "as in `sentinel monitor <name> ...`)");
  EXPECT_EQ(LoadError("redis:\n  master_name: reelq\n"),
            "redis.master_name: set without redis.sentinels to ask for it");
  EXPECT_EQ(LoadError("redis:\n  sentinels: [a:1, b]\n  master_name: m\n"),
            "redis.sentinels[1]: expected host:port, got 'b'");
  EXPECT_EQ(LoadError("redis:\n  sentinels: {a: 1}\n  master_name: m\n"),
            "redis.sentinels: expected a list of host:port");
  EXPECT_NE(LoadError("redis:\n  wait_replicas: -1\n").find("redis.wait_replicas"),
            std::string::npos);
  EXPECT_EQ(LoadError("redis:\n  wait_replica: 1\n"),
            "redis.wait_replica: unknown key; did you mean wait_replicas?");
}

// yaml-cpp reads .nan and .inf as numbers; NaN compares false with everything, so a range check
// written as `v < min || v > max` let .nan through (a retention window of .nan hours became one
// second). Not-a-number and infinities are refused naming the key, in the file and in an
// environment override.
TEST(ConfigTest, NanAndInfinityAreRefusedNamingTheKey) {
  EXPECT_EQ(LoadError("scheduler:\n  idempotency_retention_hours: .nan\n"),
            "scheduler.idempotency_retention_hours: .nan is not a finite number; expected one "
            "[0.000277778, 8760]");
  EXPECT_EQ(LoadError("worker:\n  lease_seconds: .NaN\n"),
            "worker.lease_seconds: .NaN is not a finite number; expected one [0.2, 3600]");
  EXPECT_EQ(LoadError("tenants:\n  default_weight: .inf\n"),
            "tenants.default_weight: .inf is not a finite number; expected one [0.001, 1e+06]");
  EXPECT_EQ(LoadError("queue:\n  retention_hours: -.inf\n")
                .rfind("queue.retention_hours: -.inf "
                       "is not a finite number",
                       0),
            0u);
  EXPECT_EQ(LoadError("{}\n", {{"REELQ__WORKER__DRAIN_TIMEOUT_SECONDS", ".nan"}}),
            "worker.drain_timeout_seconds: .nan is not a finite number; expected one [0, 86400]");
  // A finite value out of range keeps its message.
  EXPECT_EQ(LoadError("worker:\n  lease_seconds: 0.1\n"),
            "worker.lease_seconds: 0.1 is out of range [0.2, 3600]");
}

TEST(ConfigTest, SectionThatIsNotAMappingIsRefused) {
  EXPECT_EQ(LoadError("worker: 3\n"), "worker: expected a mapping");
}

// The rule itself, shared by this loader, the model catalogue and the simulator's config.
TEST(KnownKeys, NamesTheFirstUnknownKeyAndANearMissOrTheKnownOnes) {
  const std::set<std::string> known = {"host", "port", "prefix"};
  EXPECT_EQ(FindUnknownKey({"host", "port"}, "redis", known), std::nullopt);
  EXPECT_EQ(FindUnknownKey({"host", "prot", "hots"}, "redis", known),
            "redis.prot: unknown key; did you mean port?");
  EXPECT_EQ(FindUnknownKey({"colour"}, "redis", known),
            "redis.colour: unknown key (known: host port prefix)");
  EXPECT_EQ(FindUnknownKey({"redsi"}, "", {"redis", "worker"}, "section"),
            "redsi: unknown section; did you mean redis?");
  EXPECT_EQ(FindUnknownKey({"anything"}, "empty", {}), "empty.anything: unknown key (known:)");
}

}  // namespace
}  // namespace reelq
