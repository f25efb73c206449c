#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "reelq/common/asio.h"
#include "reelq/common/error.h"

namespace reelq::redis {

// A RESP2 reply, owned (copied out of hiredis before the callback returns).
struct Reply {
  enum class Type { kNil, kInteger, kString, kStatus, kError, kArray };
  Type type = Type::kNil;
  int64_t integer = 0;
  std::string str;  // for kString, kStatus, kError
  std::vector<Reply> elements;

  bool IsNil() const { return type == Type::kNil; }
  bool IsError() const { return type == Type::kError; }
};

// A host:port pair (a Redis Sentinel).
struct Endpoint {
  std::string host;
  int port = 0;
};

struct Options {
  // The Redis server. Ignored when `sentinels` is set: the master is then asked of them.
  std::string host = "127.0.0.1";
  int port = 6379;
  // Redis Sentinel: the sentinels to ask for the address of `master_name` (tried in order,
  // starting with the one that answered last). Every connect and every reconnect asks again,
  // and the server found must answer ROLE with "master", so a connection never writes to a
  // replica; a READONLY answer (the server was demoted) makes it find the master again.
  std::vector<Endpoint> sentinels;
  std::string master_name;
  // Sent to each sentinel (AUTH) before it is asked; empty: the sentinels need none. Not the
  // data nodes' `password`: a sentinel has its own (`requirepass` in sentinel.conf).
  std::string sentinel_password;
  std::string password;  // empty: no AUTH
  int db = 0;
  std::chrono::milliseconds connect_timeout{2'000};
  // Deadline for one command's reply (blocking commands add their own block time).
  std::chrono::milliseconds command_timeout{5'000};
  // Reconnect with backoff when the connection drops (Redis restart, network blip).
  std::chrono::milliseconds reconnect_min{50};
  std::chrono::milliseconds reconnect_max{2'000};
};

// One asynchronous connection to Redis, driven by an Asio executor (hiredis async API with an
// Asio adapter). Commands are pipelined: any number of coroutines may have commands in flight;
// replies resume each on the connection's executor in order. When the connection drops, the
// commands in flight fail with kRetryable and the connection reconnects in the background; the
// next command waits for the reconnect (up to command_timeout).
//
// A Redis error reply (-ERR ...) is NOT a failed Result: it comes back as Reply::Type::kError,
// because scripts use error replies to report domain outcomes (except the server's own
// refusals listed under Failures below).
//
// Executors: hiredis runs on a strand over the executor given to Connect. A result is posted
// to the executor of the coroutine that awaits it (the one it was co_spawned on), never run
// inside a hiredis callback; with one io_context that is simply its thread, in reply order.
// Failures: a command's deadline -> kRetryable "redis command <NAME> timed out after <N>ms";
// connection lost with the command in flight -> kRetryable naming the cause; a READONLY answer
// (the server is a replica now) -> kRetryable, nothing was written, and the connection finds
// the master again before the next command; an answer that the server cannot run commands for
// now (LOADING, BUSY, MASTERDOWN, NOREPLICAS, TRYAGAIN, CLUSTERDOWN) -> kRetryable, nothing was
// run; Close() or the Connection object destroyed -> kCancelled. SUBSCRIBE/MONITOR are refused
// (kInvalidRequest). A command that timed out may still have been executed by Redis.
class Connection {
 public:
  virtual ~Connection() = default;

  virtual awaitable<Result<Reply>> Command(std::vector<std::string> args) = 0;

  // Like Command, with a per-call timeout (for blocking commands such as BLPOP / XREAD BLOCK,
  // which belong on a connection of their own).
  virtual awaitable<Result<Reply>> Command(std::vector<std::string> args,
                                           std::chrono::milliseconds timeout) = 0;

  // Closes the connection; commands in flight fail with kCancelled. Idempotent.
  virtual void Close() = 0;

  // Changes whenever the connection (re)connects: a command sent in one session and one sent in
  // another may have reached different servers (a failover), and Redis's WAIT counts only what
  // this session wrote.
  virtual uint64_t Session() const { return 0; }
};
using ConnectionPtr = std::shared_ptr<Connection>;

// Connects (honouring connect_timeout, then AUTH/SELECT/PING). Fails with kRetryable when Redis
// cannot be reached, kAuthFailed when AUTH is refused, kInvalidRequest for malformed Options.
// The first call sets SIGPIPE to SIG_IGN if it is still SIG_DFL (hiredis 0.14 writes with
// write(2), and a Redis restart must not kill the process).
awaitable<Result<ConnectionPtr>> Connect(asio::any_io_executor executor, Options options);

// WAIT: blocks until `replicas` replicas have acknowledged every write this connection made so
// far, or `timeout` passes. Fails with kRetryable naming how many acknowledged in time (the
// writes are on the master, but not yet on enough replicas to survive its loss), or with the
// connection's own failures. Use it on a connection of its own where a slow replica must not
// stall other work: WAIT holds up every command pipelined behind it.
// `written_in`: the connection's Session() before the writes were sent. When it has changed
// since, the writes went out on a connection that is gone (a dropped link, a failover) and a WAIT
// on the new one would confirm nothing of them: kRetryable, saying so.
awaitable<Result<void>> WaitForReplicas(Connection& connection, int replicas,
                                        std::chrono::milliseconds timeout,
                                        std::optional<uint64_t> written_in = std::nullopt);

// A Redis function library (Redis 7: FUNCTION LOAD, FCALL) whose source is its code, first line
// "#!lua name=<name>". Its top level runs once, when Redis loads it, so what a script's helpers
// cost to define is not paid again at every call as with EVALSHA. Loaded on first need: a call
// that finds its function missing (a fresh or restarted Redis, FUNCTION FLUSH, a failover to a
// replica that had not received the load yet) loads the library and retries once.
// Libraries of one family ("<family>_<hash of the source>": each build's own, so two builds
// running side by side during an upgrade each call their own code) accumulate in Redis; a load
// keeps the kKeptLibraries most recently loaded of its family and deletes the rest (a process
// still using one deleted loads it again on its next call).
class FunctionLibrary {
 public:
  static constexpr int kKeptLibraries = 4;
  // `family` prefixes `name` ("reelq" for "reelq_0123abcd4567"); the load times are kept in the
  // hash "<family>:function-libraries".
  FunctionLibrary(std::string family, std::string name, std::string source);
  const std::string& name() const { return name_; }
  const std::string& source() const { return source_; }

  // FUNCTION LOAD (a library already there is fine), then the pruning above. A Redis without
  // functions (before 7.0) is a clear kFailedPrecondition.
  awaitable<Result<void>> Load(Connection& connection) const;

 private:
  std::string family_;
  std::string name_;
  std::string source_;
};

// One function of a FunctionLibrary, registered as "<library name>_<name>".
class Function {
 public:
  Function(const FunctionLibrary& library, std::string name);
  const std::string& name() const { return name_; }
  const std::string& registered_name() const { return registered_; }

  awaitable<Result<Reply>> Call(Connection& connection, std::vector<std::string> keys,
                                std::vector<std::string> args) const;

 private:
  const FunctionLibrary& library_;
  std::string name_;
  std::string registered_;
};

}  // namespace reelq::redis
