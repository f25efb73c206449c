#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "process.h"
#include "reelq/common/redis.h"

struct redisContext;

namespace reelq::testing {

struct RedisServerOptions {
  bool appendonly = false;
  std::string appendfsync = "everysec";  // always | everysec | no
  std::string save;                      // RDB snapshot rule ("900 1"); empty: no snapshots
  std::string password;                  // requirepass; empty: none
  std::vector<std::string> extra_args;   // more "--name value" pairs, passed through as given
  // The address it binds and clients connect to (another local address for tests in network
  // namespaces, where other namespaces must reach it).
  std::string bind = "127.0.0.1";
};

// A real redis-server (/usr/bin/redis-server, or $REELQ_REDIS_SERVER) on <bind>:FreePort()
// with its data in a TempDir. Started by the constructor (throws std::runtime_error with the
// server's log when it does not come up), stopped on destruction. Never touches port 6379.
//
// Kill() / Stop() / Restart() keep the port and the data directory, so with appendonly the data
// survives a SIGKILL + Restart(). DEBUG commands are enabled (DEBUG SLEEP for timeout tests).
class RedisServer {
 public:
  explicit RedisServer(RedisServerOptions options = {});
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  // True when redis-server is installed (for GTEST_SKIP in tests that need it).
  static bool Available();

  int port() const { return port_; }
  const std::string& host() const { return host_; }
  const std::filesystem::path& data_dir() const { return dir_.path(); }
  std::filesystem::path log_path() const { return dir_.path() / "redis.log"; }
  pid_t pid() const { return process_.pid(); }
  bool running();

  // Connection options for reelq::redis::Connect (host, port, password; short timeouts).
  redis::Options ClientOptions() const;

  void Stop();     // SIGTERM, wait for exit (redis flushes the AOF on a clean shutdown)
  void Kill();     // SIGKILL, no chance to flush anything
  void Restart();  // Stop() if running, then start again on the same port and data directory

  // --- synchronous client for test assertions (hiredis sync API, own connection) ---
  // Runs one command; throws std::runtime_error when Redis cannot be reached. Error replies
  // come back as Reply::Type::kError.
  redis::Reply Run(const std::vector<std::string>& args);
  // The text of INFO <section>.
  std::string Info(std::string_view section = "");
  // One "name:value" field of INFO <section>, e.g. InfoField("cmdstat_evalsha", "commandstats")
  // -> "calls=3,usec=...", InfoField("aof_enabled", "persistence") -> "1".
  std::optional<std::string> InfoField(std::string_view field, std::string_view section = "");
  // calls= of INFO commandstats for a command ("evalsha", "script|load"); 0 when never called.
  int64_t CommandCalls(std::string_view command);
  // Per-command call counts since start are reset by this (CONFIG RESETSTAT).
  void ResetStats();

 private:
  void Launch();
  void WaitUntilReady(std::chrono::milliseconds timeout);
  void Disconnect();

  RedisServerOptions options_;
  std::string host_ = "127.0.0.1";
  int port_ = 0;
  TempDir dir_;
  ChildProcess process_;
  redisContext* client_ = nullptr;
};

}  // namespace reelq::testing
