// The connection under Redis Sentinel: it asks the sentinels for the master (skipping one that
// does not answer), follows a failover, and never has a write acknowledged by a replica; WAIT
// through WaitForReplicas. A real master, replica and sentinel on loopback; the failover is
// forced with SENTINEL FAILOVER so it takes a second, not the down-after period.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "process.h"
#include "redis_server.h"
#include "reelq/common/redis.h"
#include "run_async.h"

namespace reelq::redis {
namespace {

using namespace std::chrono_literals;
using testing::Args;
using testing::ChildProcess;
using testing::RedisServer;
using testing::RedisServerOptions;
using testing::RunAsync;
using testing::RunFor;

constexpr const char* kName = "conn-test";

std::filesystem::path SentinelBinary() {
  return std::filesystem::exists("/usr/bin/redis-sentinel") ? "/usr/bin/redis-sentinel" : "";
}

// One command to a sentinel on a throwaway synchronous connection; the reply's text or array
// element count, enough for these checks.
std::optional<redisReply*> AskSentinel(int port, const std::vector<std::string>& args) {
  timeval tv{0, 300'000};
  redisContext* c = redisConnectWithTimeout("127.0.0.1", port, tv);
  if (c == nullptr || c->err != 0) {
    if (c != nullptr) redisFree(c);
    return std::nullopt;
  }
  std::vector<const char*> argv;
  std::vector<size_t> lengths;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lengths.push_back(a.size());
  }
  auto* reply = static_cast<redisReply*>(
      redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lengths.data()));
  redisFree(c);
  if (reply == nullptr) return std::nullopt;
  return reply;
}

class SentinelConnectionTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (SentinelBinary().empty() || !RedisServer::Available()) return;
    master_ = std::make_unique<RedisServer>();
    replica_ = std::make_unique<RedisServer>(RedisServerOptions{
        .extra_args = {"--replicaof", "127.0.0.1", std::to_string(master_->port())}});
    dir_ = std::make_unique<testing::TempDir>();
    sentinel_port_ = testing::FreePort();
    const auto conf = dir_->path() / "sentinel.conf";
    std::ofstream(conf) << "port " << sentinel_port_ << "\nbind 127.0.0.1\n"
                        << "dir " << dir_->path().string() << "\n"
                        << "sentinel monitor " << kName << " 127.0.0.1 " << master_->port()
                        << " 1\n"
                        << "sentinel down-after-milliseconds " << kName << " 1000\n"
                        << "sentinel failover-timeout " << kName << " 5000\n";
    sentinel_ = std::make_unique<ChildProcess>(ChildProcess::Start(
        {SentinelBinary().string(), conf.string()}, {}, dir_->path() / "sentinel.log"));
    // Ready when the sentinel knows the replica (SENTINEL FAILOVER needs one).
    const auto deadline = std::chrono::steady_clock::now() + 15s;
    while (std::chrono::steady_clock::now() < deadline) {
      auto r = AskSentinel(sentinel_port_, {"SENTINEL", "replicas", kName});
      const bool ready = r && (*r)->type == REDIS_REPLY_ARRAY && (*r)->elements == 1 &&
                         replica_->InfoField("master_link_status", "replication") == "up";
      if (r) freeReplyObject(*r);
      if (ready) return;
      std::this_thread::sleep_for(50ms);
    }
    throw std::runtime_error("the sentinel did not find the replica in 15 s");
  }
  static void TearDownTestSuite() {
    sentinel_.reset();
    replica_.reset();
    master_.reset();
    dir_.reset();
  }
  void SetUp() override {
    if (SentinelBinary().empty()) GTEST_SKIP() << "redis-sentinel is not installed";
    if (!RedisServer::Available()) GTEST_SKIP() << "redis-server is not installed";
  }

  Options SentinelOptions() const {
    Options options;
    options.host = "192.0.2.1";  // ignored with sentinels: never dialled
    options.port = 1;
    options.master_name = kName;
    // The first sentinel does not exist: the connection goes on to the next.
    options.sentinels = {{"127.0.0.1", testing::FreePort()}, {"127.0.0.1", sentinel_port_}};
    options.command_timeout = 5s;
    options.connect_timeout = 2s;
    return options;
  }

  static std::unique_ptr<RedisServer> master_, replica_;
  static std::unique_ptr<testing::TempDir> dir_;
  static std::unique_ptr<ChildProcess> sentinel_;
  static int sentinel_port_;
  asio::io_context io_;
};

std::unique_ptr<RedisServer> SentinelConnectionTest::master_;
std::unique_ptr<RedisServer> SentinelConnectionTest::replica_;
std::unique_ptr<testing::TempDir> SentinelConnectionTest::dir_;
std::unique_ptr<ChildProcess> SentinelConnectionTest::sentinel_;
int SentinelConnectionTest::sentinel_port_ = 0;

// WAIT counts what its own connection wrote: after the connection is made again (here its link
// killed; in production a dropped link or a failover), a WAIT answers at once with the replicas
// online, whatever they hold. A write sent before the reconnect is thus not confirmed by it.
TEST_F(SentinelConnectionTest, AWaitAfterAReconnectDoesNotConfirmTheWriteBeforeIt) {
  auto connected = RunAsync(io_, Connect(io_.get_executor(), SentinelOptions()));
  ASSERT_TRUE(connected) << connected.error().Describe();
  auto& connection = **connected;
  auto other = RunAsync(io_, Connect(io_.get_executor(), SentinelOptions()));
  ASSERT_TRUE(other) << other.error().Describe();

  const uint64_t session = connection.Session();
  ASSERT_TRUE(RunAsync(io_, connection.Command(Args("SET", "written", "1"))));
  auto same = RunAsync(io_, WaitForReplicas(connection, 1, 2000ms, session));
  EXPECT_TRUE(same) << same.error().Describe();

  const uint64_t before_kill = connection.Session();
  ASSERT_TRUE(RunAsync(io_, connection.Command(Args("SET", "written", "2"))));
  auto id = RunAsync(io_, connection.Command(Args("CLIENT", "ID")));
  ASSERT_TRUE(id) << id.error().Describe();
  auto killed =
      RunAsync(io_, (*other)->Command(Args("CLIENT", "KILL", "ID", std::to_string(id->integer))));
  ASSERT_TRUE(killed) << killed.error().Describe();
  // The connection is made again (the command that finds it dropped fails; the next goes on).
  bool again = false;
  for (int i = 0; i < 20 && !again; ++i)
    again = bool(RunAsync(io_, connection.Command(Args("PING"))));
  ASSERT_TRUE(again);
  ASSERT_NE(connection.Session(), before_kill);

  auto wait = RunAsync(io_, WaitForReplicas(connection, 1, 2000ms, before_kill));
  ASSERT_FALSE(wait) << "a WAIT of the new connection confirmed a write of the old one";
  EXPECT_EQ(wait.error().category, ErrorCategory::kRetryable);
  EXPECT_NE(wait.error().message.find("made again after the write"), std::string::npos)
      << wait.error().message;
}

TEST_F(SentinelConnectionTest, FindsTheMasterWaitsForTheReplicaAndFollowsAFailover) {
  auto connected = RunAsync(io_, Connect(io_.get_executor(), SentinelOptions()));
  ASSERT_TRUE(connected) << connected.error().Describe();
  auto& connection = **connected;
  auto set = RunAsync(io_, connection.Command(Args("SET", "before", "1")));
  ASSERT_TRUE(set) << set.error().Describe();
  EXPECT_EQ(master_->Run({"GET", "before"}).str, "1") << "the write went to the master";

  // WAIT: the one replica acknowledges; two cannot.
  auto one = RunAsync(io_, WaitForReplicas(connection, 1, 2000ms));
  EXPECT_TRUE(one) << one.error().Describe();
  EXPECT_EQ(replica_->Run({"GET", "before"}).str, "1");
  auto two = RunAsync(io_, WaitForReplicas(connection, 2, 200ms));
  ASSERT_FALSE(two);
  EXPECT_EQ(two.error().category, ErrorCategory::kRetryable);
  EXPECT_NE(two.error().message.find("only 1 of 2 replicas"), std::string::npos)
      << two.error().message;

  // A forced failover: the replica becomes the master, the old master its replica.
  auto failover = AskSentinel(sentinel_port_, {"SENTINEL", "failover", kName});
  ASSERT_TRUE(failover);
  ASSERT_NE((*failover)->type, REDIS_REPLY_ERROR) << (*failover)->str;
  freeReplyObject(*failover);

  // Keep writing through the failover. Every write is either acknowledged or refused as
  // retryable; each acknowledged one is on whichever server was master when it answered, and
  // once the failover is over every new write lands on the new master.
  int acknowledged = 0, refused = 0;
  bool on_new_master = false;
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  for (int i = 0; std::chrono::steady_clock::now() < deadline && !on_new_master; ++i) {
    const std::string key = "during-" + std::to_string(i);
    auto r = RunAsync(io_, connection.Command(Args("SET", key, "x")));
    if (!r) {
      EXPECT_EQ(r.error().category, ErrorCategory::kRetryable) << r.error().Describe();
      ++refused;
    } else {
      ASSERT_FALSE(r->IsError()) << "a write answered with an error reply: " << r->str;
      ++acknowledged;
      on_new_master = replica_->Run({"ROLE"}).elements.at(0).str == "master" &&
                      replica_->Run({"GET", key}).str == "x";
    }
    RunFor(io_, 20ms);
  }
  EXPECT_TRUE(on_new_master) << "writes never reached the promoted replica (acknowledged "
                             << acknowledged << ", refused " << refused << ")";
  // The sentinel turns the old master into the new master's replica: after the promotion,
  // not with it (a fresh-clone run once checked in between), so within a bounded wait. It
  // learns the old master's role from INFO, which it asks every 10 s outside a failover, so
  // the wait is 30 s (a loaded `ctest -j2` run once went past 10).
  std::string old_master_role;
  const auto demoted_by = std::chrono::steady_clock::now() + 30s;
  do {
    old_master_role = master_->Run({"ROLE"}).elements.at(0).str;
    if (old_master_role == "slave") break;
    std::this_thread::sleep_for(50ms);
  } while (std::chrono::steady_clock::now() < demoted_by);
  EXPECT_EQ(old_master_role, "slave");
  std::cout << "writes during the failover: " << acknowledged << " acknowledged, " << refused
            << " refused as retryable\n";
}

// A sentinel that takes connections but never answers (its host hung, its process stopped: the
// kernel still completes the TCP handshake) gets its share of the connect's deadline, not all
// of it: the next sentinel names the master in time.
TEST_F(SentinelConnectionTest, ASentinelThatNeverAnswersIsPassedWithinTheDeadline) {
  const int silent = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(silent, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(silent, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(silent, 16), 0);  // never accepted, never answered
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(silent, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  Options options = SentinelOptions();
  options.sentinels = {{"127.0.0.1", ntohs(addr.sin_port)}, {"127.0.0.1", sentinel_port_}};
  auto connected = RunAsync(io_, Connect(io_.get_executor(), options));
  ::close(silent);
  ASSERT_TRUE(connected) << connected.error().Describe();
  auto set = RunAsync(io_, (*connected)->Command(Args("SET", "past-the-silent-one", "1")));
  EXPECT_TRUE(set) << set.error().Describe();
}

TEST_F(SentinelConnectionTest, NoSentinelAnsweringIsAClearConnectFailure) {
  Options options = SentinelOptions();
  options.sentinels = {{"127.0.0.1", testing::FreePort()}};
  auto connected = RunAsync(io_, Connect(io_.get_executor(), options));
  ASSERT_FALSE(connected);
  EXPECT_EQ(connected.error().category, ErrorCategory::kRetryable);
  EXPECT_NE(connected.error().message.find("no sentinel named the master 'conn-test'"),
            std::string::npos)
      << connected.error().message;

  options.sentinels = {{"127.0.0.1", sentinel_port_}};
  options.master_name = "nobody";
  connected = RunAsync(io_, Connect(io_.get_executor(), options));
  ASSERT_FALSE(connected);
  EXPECT_NE(connected.error().message.find("does not know master 'nobody'"), std::string::npos)
      << connected.error().message;

  options.master_name.clear();
  connected = RunAsync(io_, Connect(io_.get_executor(), options));
  ASSERT_FALSE(connected);
  EXPECT_EQ(connected.error().category, ErrorCategory::kInvalidRequest);
}

// Without sentinels: a server that turned into a replica answers a write with READONLY, which
// the connection reports as a retryable failure (never as an acknowledged write).
TEST(ReadOnlyReplica, WriteToADemotedServerIsRetryableNotAcknowledged) {
  if (!RedisServer::Available()) GTEST_SKIP() << "redis-server is not installed";
  RedisServer primary;
  RedisServer demoted;
  asio::io_context io;
  auto connected = RunAsync(io, Connect(io.get_executor(), demoted.ClientOptions()));
  ASSERT_TRUE(connected) << connected.error().Describe();
  ASSERT_TRUE(RunAsync(io, (*connected)->Command(Args("SET", "k", "1"))));
  demoted.Run({"REPLICAOF", "127.0.0.1", std::to_string(primary.port())});
  auto write = RunAsync(io, (*connected)->Command(Args("SET", "k", "2")));
  ASSERT_FALSE(write) << "acknowledged: " << write->str;
  EXPECT_EQ(write.error().category, ErrorCategory::kRetryable);
  EXPECT_NE(write.error().message.find("read-only replica"), std::string::npos)
      << write.error().message;
  // It reconnects by itself; reads still work there.
  auto read = RunAsync(io, (*connected)->Command(Args("PING")));
  EXPECT_TRUE(read) << read.error().Describe();
}

// Sentinels that require a password (`requirepass` in sentinel.conf) are sent it
// (redis.sentinel_password) before they are asked; without it the connect fails naming NOAUTH.
// Its own master and sentinel, apart from the suite's (whose failover test moves roles).
TEST(SentinelAuthTest, ASentinelWithAPasswordIsAskedWithIt) {
  if (SentinelBinary().empty()) GTEST_SKIP() << "redis-sentinel is not installed";
  if (!RedisServer::Available()) GTEST_SKIP() << "redis-server is not installed";
  RedisServer master;
  testing::TempDir dir;
  const int port = testing::FreePort();
  const auto conf = dir.path() / "sentinel.conf";
  std::ofstream(conf) << "port " << port << "\nbind 127.0.0.1\n"
                      << "dir " << dir.path().string() << "\n"
                      << "requirepass s3cret-sentinel\n"
                      << "sentinel monitor guarded 127.0.0.1 " << master.port() << " 1\n";
  auto sentinel = ChildProcess::Start({SentinelBinary().string(), conf.string()}, {},
                                      dir.path() / "sentinel.log");
  asio::io_context io;
  Options options;
  options.master_name = "guarded";
  options.sentinels = {{"127.0.0.1", port}};
  options.connect_timeout = 2s;
  options.sentinel_password = "s3cret-sentinel";
  Result<ConnectionPtr> connected = std::unexpected(Error{});
  const auto deadline = std::chrono::steady_clock::now() + 15s;
  while (std::chrono::steady_clock::now() < deadline) {
    connected = RunAsync(io, Connect(io.get_executor(), options));
    if (connected) break;
    std::this_thread::sleep_for(100ms);  // the sentinel is still starting
  }
  ASSERT_TRUE(connected) << connected.error().Describe();
  auto set = RunAsync(io, (*connected)->Command(Args("SET", "guarded", "1")));
  ASSERT_TRUE(set) << set.error().Describe();
  EXPECT_EQ(master.Run({"GET", "guarded"}).str, "1");

  options.sentinel_password.clear();
  auto refused = RunAsync(io, Connect(io.get_executor(), options));
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("NOAUTH"), std::string::npos) << refused.error().message;
}

}  // namespace
}  // namespace reelq::redis
