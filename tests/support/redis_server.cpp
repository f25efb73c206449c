#include "redis_server.h"

#include <hiredis/hiredis.h>
#include <signal.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <stdexcept>
#include <thread>

namespace reelq::testing {

namespace {

std::filesystem::path ServerBinary() {
  if (const char* env = std::getenv("REELQ_REDIS_SERVER"); env != nullptr && *env != '\0') {
    return env;
  }
  return "/usr/bin/redis-server";
}

redis::Reply Convert(const redisReply& r) {
  redis::Reply out;
  switch (r.type) {
    case REDIS_REPLY_INTEGER:
      out.type = redis::Reply::Type::kInteger;
      out.integer = r.integer;
      break;
    case REDIS_REPLY_STRING:
      out.type = redis::Reply::Type::kString;
      out.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = redis::Reply::Type::kStatus;
      out.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = redis::Reply::Type::kError;
      out.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_ARRAY:
      out.type = redis::Reply::Type::kArray;
      for (size_t i = 0; i < r.elements; ++i) out.elements.push_back(Convert(*r.element[i]));
      break;
    default:
      break;  // nil
  }
  return out;
}

// One synchronous command on a fresh or existing context; nullptr reply means an I/O error.
redisReply* RunOn(redisContext* c, const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<size_t> lengths;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lengths.push_back(a.size());
  }
  return static_cast<redisReply*>(
      redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lengths.data()));
}

redisContext* ConnectSync(const std::string& host, int port, std::chrono::milliseconds timeout) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  redisContext* c = redisConnectWithTimeout(host.c_str(), port, tv);
  if (c != nullptr && c->err == 0) redisSetTimeout(c, timeval{5, 0});
  return c;
}

}  // namespace

bool RedisServer::Available() { return std::filesystem::exists(ServerBinary()); }

RedisServer::RedisServer(RedisServerOptions options)
    : options_(std::move(options)), host_(options_.bind) {
  if (!Available()) {
    throw std::runtime_error("redis-server not found at " + ServerBinary().string() +
                             " (apt-get install -y redis-server, or set REELQ_REDIS_SERVER)");
  }
  // FreePort() can race with another test grabbing the port; a failed bind shows up as an early
  // exit, and then another port is tried.
  std::string last_error;
  for (int attempt = 0; attempt < 5; ++attempt) {
    port_ = FreePort();
    try {
      Launch();
      WaitUntilReady(std::chrono::seconds(10));
      return;
    } catch (const std::exception& e) {
      last_error = e.what();
      process_.Kill();
    }
  }
  throw std::runtime_error("cannot start redis-server: " + last_error);
}

RedisServer::~RedisServer() {
  Disconnect();
  if (process_.pid() > 0) process_.Kill();  // data is thrown away with the TempDir anyway
}

bool RedisServer::running() { return process_.running(); }

void RedisServer::Launch() {
  std::vector<std::string> argv = {
      ServerBinary().string(),
      "--port",
      std::to_string(port_),
      "--bind",
      host_,
      "--dir",
      dir_.path().string(),
      "--daemonize",
      "no",
      "--logfile",
      "",  // stdout, which goes to log_path()
      "--loglevel",
      "notice",
      "--save",
      options_.save,
      "--appendonly",
      options_.appendonly ? "yes" : "no",
      "--appendfsync",
      options_.appendfsync,
      "--enable-debug-command",
      "yes",
      "--tcp-backlog",
      "128",
      // As deploy/redis/reelq-redis.conf recommends (job records stay compact); the benchmarks'
      // peers (BullMQ) get their redis-server from here too, so they run with it as well.
      "--hash-max-listpack-value",
      "1024",
  };
  if (options_.bind != "127.0.0.1") {
    // Protected mode refuses clients from other addresses when no password is set; a test
    // binds elsewhere only inside network namespaces it made itself.
    argv.push_back("--protected-mode");
    argv.push_back("no");
  }
  if (!options_.password.empty()) {
    argv.push_back("--requirepass");
    argv.push_back(options_.password);
  }
  argv.insert(argv.end(), options_.extra_args.begin(), options_.extra_args.end());
  process_ = ChildProcess::Start(argv, {}, log_path());
}

void RedisServer::WaitUntilReady(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string last = "no answer";
  while (std::chrono::steady_clock::now() < deadline) {
    if (!process_.running()) {
      throw std::runtime_error("redis-server on port " + std::to_string(port_) +
                               " exited during start; log:\n" + ReadFile(log_path()));
    }
    redisContext* c = ConnectSync(host_, port_, std::chrono::milliseconds(100));
    if (c != nullptr && c->err == 0) {
      bool ok = true;
      if (!options_.password.empty()) {
        redisReply* auth = RunOn(c, {"AUTH", options_.password});
        ok = auth != nullptr && auth->type != REDIS_REPLY_ERROR;
        if (auth != nullptr) freeReplyObject(auth);
      }
      if (ok) {
        redisReply* pong = RunOn(c, {"PING"});
        // -LOADING while the AOF is replayed: not ready yet.
        ok = pong != nullptr && pong->type == REDIS_REPLY_STATUS;
        if (pong != nullptr) {
          last = std::string(pong->str ? pong->str : "", pong->str ? pong->len : 0);
          freeReplyObject(pong);
        }
      }
      redisFree(c);
      if (ok) return;
    } else if (c != nullptr) {
      last = c->errstr;
      redisFree(c);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  throw std::runtime_error("redis-server on port " + std::to_string(port_) +
                           " did not answer PING (" + last + "); log:\n" + ReadFile(log_path()));
}

redis::Options RedisServer::ClientOptions() const {
  redis::Options o;
  o.host = host_;
  o.port = port_;
  o.password = options_.password;
  o.connect_timeout = std::chrono::milliseconds(1000);
  o.command_timeout = std::chrono::milliseconds(3000);
  o.reconnect_min = std::chrono::milliseconds(10);
  o.reconnect_max = std::chrono::milliseconds(200);
  return o;
}

void RedisServer::Stop() {
  Disconnect();
  if (process_.pid() > 0) process_.Stop(std::chrono::seconds(10));
}

void RedisServer::Kill() {
  Disconnect();
  process_.Kill();
}

void RedisServer::Restart() {
  if (process_.running()) Stop();
  Launch();
  WaitUntilReady(std::chrono::seconds(30));
}

void RedisServer::Disconnect() {
  if (client_ != nullptr) redisFree(client_);
  client_ = nullptr;
}

redis::Reply RedisServer::Run(const std::vector<std::string>& args) {
  // One retry on a fresh connection: the cached one may predate a Kill()/Restart().
  std::string error;
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (client_ == nullptr) {
      client_ = ConnectSync(host_, port_, std::chrono::milliseconds(1000));
      if (client_ == nullptr || client_->err != 0) {
        error = client_ != nullptr ? client_->errstr : "out of memory";
        Disconnect();
        continue;
      }
      if (!options_.password.empty()) {
        redisReply* auth = RunOn(client_, {"AUTH", options_.password});
        if (auth != nullptr) freeReplyObject(auth);
      }
    }
    redisReply* reply = RunOn(client_, args);
    if (reply == nullptr) {
      error = client_->errstr;
      Disconnect();
      continue;
    }
    redis::Reply out = Convert(*reply);
    freeReplyObject(reply);
    return out;
  }
  throw std::runtime_error("redis on port " + std::to_string(port_) + ": " +
                           (args.empty() ? std::string("?") : args.front()) + " failed: " + error);
}

std::string RedisServer::Info(std::string_view section) {
  std::vector<std::string> args = {"INFO"};
  if (!section.empty()) args.emplace_back(section);
  redis::Reply reply = Run(args);
  if (reply.type != redis::Reply::Type::kString) {
    throw std::runtime_error("INFO " + std::string(section) + " failed: " + reply.str);
  }
  return reply.str;
}

std::optional<std::string> RedisServer::InfoField(std::string_view field,
                                                  std::string_view section) {
  const std::string text = Info(section);
  const std::string prefix = std::string(field) + ":";
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find("\r\n", pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    if (line.starts_with(prefix)) return std::string(line.substr(prefix.size()));
    pos = end + 2;
  }
  return std::nullopt;
}

int64_t RedisServer::CommandCalls(std::string_view command) {
  std::string name = "cmdstat_";
  for (char c : command)
    name.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  auto value = InfoField(name, "commandstats");
  if (!value) return 0;
  auto calls = value->find("calls=");
  if (calls == std::string::npos) return 0;
  return std::strtoll(value->c_str() + calls + 6, nullptr, 10);
}

void RedisServer::ResetStats() { Run({"CONFIG", "RESETSTAT"}); }

}  // namespace reelq::testing
