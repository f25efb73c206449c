#include "core.h"

#include <algorithm>
#include <charconv>

#include <spdlog/spdlog.h>

#include "reelq/common/random.h"
#include "reply.h"

namespace reelq::redis::detail {

namespace {

std::string ContextError(const redisAsyncContext* context, std::string_view fallback) {
  if (context != nullptr && context->err != 0 && context->errstr != nullptr) {
    return context->errstr;
  }
  return std::string(fallback);
}

std::string Millis(std::chrono::milliseconds ms) { return std::to_string(ms.count()) + "ms"; }

// A sent command unanswered this long makes the connection connect again (Core::OnDeadline).
constexpr std::chrono::milliseconds kSilentServer{2'000};

// Error replies that say the server cannot run commands now, not that this one is wrong: a
// server loading its data set, one busy in a long script, a replica cut off from its master, a
// master short of `min-replicas-to-write` (just after a failover, until a replica has synced),
// a cluster slot moving or down. As a failed Result (kRetryable) they reach the callers' retry
// paths; as an error reply they read as a script's refusal, which is final.
bool RefusedForNow(std::string_view text) {
  for (std::string_view code :
       {"LOADING ", "BUSY ", "MASTERDOWN ", "NOREPLICAS ", "TRYAGAIN ", "CLUSTERDOWN "}) {
    if (text.starts_with(code)) return true;
  }
  return false;
}

}  // namespace

void PendingCommand::Finish(Result<Reply> result) {
  if (done) return;
  done = true;
  timer.cancel();
  args.clear();
  auto deliver = std::move(complete);
  complete = nullptr;
  if (deliver) deliver(std::move(result));
}

Core::Core(asio::any_io_executor strand, Options options)
    : strand_(std::move(strand)),
      options_(std::move(options)),
      connect_timer_(strand_),
      sentinel_timer_(strand_),
      reconnect_timer_(strand_),
      backoff_(options_.reconnect_min),
      rng_(NewRng()) {}

Core::~Core() {
  // Normally Close() ran long ago. This path is reached when the io_context is destroyed with
  // the connection still open: free hiredis so it does not leak, failing what is still pending.
  state_ = State::kClosed;
  DropSentinelContext();
  if (context() != nullptr) DropContext("connection destroyed");
}

std::string Core::Where() const {
  if (server_.host.empty()) {
    if (!options_.sentinels.empty()) return "master '" + options_.master_name + "'";
    return options_.host + ":" + std::to_string(options_.port);
  }
  return server_.host + ":" + std::to_string(server_.port);
}

void Core::Start(Completion<Result<void>> done) {
  first_connect_ = std::move(done);
  StartConnect();
}

void Core::StartConnect() {
  if (state_ == State::kClosed) return;
  if (context() != nullptr) DropContext("reconnecting");
  DropSentinelContext();
  const uint64_t generation = ++generation_;
  sessions_.store(generation, std::memory_order_release);
  state_ = State::kConnecting;

  // One deadline for the whole connect: asking the sentinels, TCP, handshake.
  connect_timer_.expires_after(options_.connect_timeout);
  connect_timer_.async_wait([self = shared_from_this(), generation](boost::system::error_code ec) {
    if (ec || self->generation_ != generation || self->state_ != State::kConnecting) return;
    std::string why = "connect timed out after " + Millis(self->options_.connect_timeout);
    self->DropSentinelContext();
    if (self->context() != nullptr) self->DropContext(why);
    self->OnConnectFailed(generation, why);
  });

  if (options_.sentinels.empty()) {
    ConnectTo(generation, Endpoint{options_.host, options_.port});
  } else {
    sentinel_errors_.clear();
    AskSentinel(generation, 0);
  }
}

void Core::AskSentinel(uint64_t generation, size_t tried) {
  if (generation != generation_ || state_ != State::kConnecting) return;
  const auto& sentinels = options_.sentinels;
  if (tried >= sentinels.size()) {
    std::string why = "no sentinel named the master '" + options_.master_name + "'";
    for (size_t i = 0; i < sentinel_errors_.size(); ++i) {
      why += (i == 0 ? ": " : "; ") + sentinel_errors_[i];
    }
    OnConnectFailed(generation, std::move(why));
    return;
  }
  const size_t index = (sentinel_index_ + tried) % sentinels.size();
  const Endpoint& sentinel = sentinels[index];
  const std::string where = sentinel.host + ":" + std::to_string(sentinel.port);
  auto next = [this, generation, tried](std::string why) {
    sentinel_errors_.push_back(std::move(why));
    AskSentinel(generation, tried + 1);
  };
  redisAsyncContext* context = redisAsyncConnect(sentinel.host.c_str(), sentinel.port);
  if (context == nullptr) return next("sentinel " + where + ": out of memory");
  if (context->err != 0) {
    std::string why = ContextError(context, "connect failed");
    redisAsyncFree(context);
    return next("sentinel " + where + ": " + why);
  }
  sentinel_adapter_ = AsioAdapter::Attach(context, strand_);
  if (!sentinel_adapter_) {
    redisAsyncFree(context);
    return next("sentinel " + where + ": cannot register the socket with the event loop");
  }
  // No disconnect callback: a failed connect or a drop reaches the reply callback as a NULL
  // reply, which is where the next sentinel is tried.
  context->data = this;
  if (!options_.sentinel_password.empty()) {
    // Pipelined before the question, its own answer dropped: a refused password makes the
    // question answer NOAUTH, which names the sentinel and the cause below.
    const std::string& secret = options_.sentinel_password;
    const char* auth_argv[] = {"AUTH", secret.data()};
    const size_t auth_lengths[] = {4, secret.size()};
    redisAsyncCommandArgv(context, nullptr, nullptr, 2, auth_argv, auth_lengths);
  }
  const std::vector<std::string> args = {"SENTINEL", "get-master-addr-by-name",
                                         options_.master_name};
  std::vector<const char*> argv;
  std::vector<size_t> lengths;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lengths.push_back(a.size());
  }
  const uint64_t ask = ++sentinel_asks_;
  auto* privdata = new SentinelAsk{this, generation, tried, index, ask};
  if (redisAsyncCommandArgv(context, &Core::OnSentinelReplyTrampoline, privdata,
                            static_cast<int>(argv.size()), argv.data(),
                            lengths.data()) != REDIS_OK) {
    delete privdata;
    DropSentinelContext();
    next("sentinel " + where + ": cannot queue the question");
    return;
  }
  // Each sentinel gets its share of the connect's deadline: one that takes the connection but
  // never answers (its host hung, the process stopped) must not spend all of it, every round,
  // while the others could name the master.
  const auto share = std::max(std::chrono::milliseconds(100),
                              options_.connect_timeout / static_cast<int>(sentinels.size() + 1));
  sentinel_timer_.expires_after(share);
  sentinel_timer_.async_wait([self = shared_from_this(), generation, tried, ask, where,
                              share](boost::system::error_code ec) {
    if (ec || self->generation_ != generation || self->state_ != State::kConnecting ||
        self->sentinel_asks_ != ask) {
      return;
    }
    self->DropSentinelContext();
    self->sentinel_errors_.push_back("sentinel " + where + ": no answer within " + Millis(share));
    self->AskSentinel(generation, tried + 1);
  });
}

void Core::OnSentinelAnswer(uint64_t generation, size_t tried, size_t index, uint64_t ask,
                            Result<Endpoint> master) {
  // Runs posted, outside hiredis callbacks, so the sentinel's context can be freed here.
  if (generation != generation_ || state_ != State::kConnecting || ask != sentinel_asks_) return;
  sentinel_timer_.cancel();
  DropSentinelContext();
  if (!master) {
    sentinel_errors_.push_back(master.error().message);
    AskSentinel(generation, tried + 1);
    return;
  }
  sentinel_index_ = index;
  ConnectTo(generation, std::move(*master));
}

void Core::DropSentinelContext() {
  if (!sentinel_adapter_) return;
  redisAsyncContext* context = sentinel_adapter_->context();
  auto keep = std::move(sentinel_adapter_);
  sentinel_adapter_.reset();
  if (context == nullptr) return;
  dropping_sentinel_ = true;
  redisAsyncFree(context);  // the pending question's callback gets NULL and is ignored
  dropping_sentinel_ = false;
}

void Core::ConnectTo(uint64_t generation, Endpoint server) {
  if (generation != generation_ || state_ != State::kConnecting) return;
  server_ = std::move(server);
  // hiredis 0.14 resolves the host synchronously; configurations use IP addresses or names
  // from /etc/hosts.
  redisAsyncContext* context = redisAsyncConnect(server_.host.c_str(), server_.port);
  if (context == nullptr) {
    OnConnectFailed(generation, "out of memory");
    return;
  }
  if (context->err != 0) {
    std::string why = ContextError(context, "connect failed");
    redisAsyncFree(context);
    OnConnectFailed(generation, std::move(why));
    return;
  }
  adapter_ = AsioAdapter::Attach(context, strand_);
  if (!adapter_) {
    redisAsyncFree(context);
    OnConnectFailed(generation, "cannot register the socket with the event loop");
    return;
  }
  context->data = this;
  redisAsyncSetDisconnectCallback(context, &Core::OnDisconnectTrampoline);
  redisAsyncSetConnectCallback(context, &Core::OnConnectTrampoline);  // arms the first write

  // The handshake is pipelined behind the TCP connect; commands are released only after PING
  // (and, with sentinels, ROLE) answers, so a server still loading its AOF (-LOADING) counts as
  // "not connected yet", and so does a replica that a sentinel has not yet stopped naming.
  if (!options_.password.empty()) SendHandshake(context, Step::kAuth, {"AUTH", options_.password});
  if (options_.db != 0)
    SendHandshake(context, Step::kSelect, {"SELECT", std::to_string(options_.db)});
  SendHandshake(context, Step::kPing, {"PING"});
  if (!options_.sentinels.empty()) SendHandshake(context, Step::kRole, {"ROLE"});
}

void Core::Abandon(uint64_t generation, std::string why) {
  if (generation != generation_ || state_ != State::kReady) return;
  spdlog::warn("redis {}; connecting again", why);
  DropContext(why);  // fails what is in flight on this server
  state_ = State::kDisconnected;
  last_error_ = why;
  StartConnect();
}

void Core::SendHandshake(redisAsyncContext* context, Step step, std::vector<std::string> args) {
  std::vector<const char*> argv;
  std::vector<size_t> lengths;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lengths.push_back(a.size());
  }
  auto* privdata = new HandshakeReply{this, generation_, step};
  if (redisAsyncCommandArgv(context, &Core::OnHandshakeTrampoline, privdata,
                            static_cast<int>(argv.size()), argv.data(),
                            lengths.data()) != REDIS_OK) {
    delete privdata;
    OnConnectFailed(generation_, ContextError(context, "cannot queue the handshake"));
  }
}

void Core::Submit(std::shared_ptr<PendingCommand> command) {
  if (state_ == State::kClosed) {
    command->Finish(std::unexpected(MapFailure(
        Failure::kClosed, "redis command " + command->name + " cancelled: connection closed")));
    return;
  }
  const auto now = std::chrono::steady_clock::now();
  command->timer.expires_at(now + command->timeout);
  command->timer.async_wait([self = shared_from_this(), command](boost::system::error_code ec) {
    if (ec == asio::error::operation_aborted) return;
    self->OnDeadline(command);
  });
  if (state_ == State::kReady && context() != nullptr) {
    Send(command, now);
  } else {
    waiting_.push_back(std::move(command));
  }
}

namespace {

// The command in Redis's wire format, built in one buffer: hiredis's own formatting
// (redisAsyncCommandArgv) appends each length through a printf-like routine, about a tenth of
// the scheduler's CPU in a SubmitBatch of 100,000 jobs (thousands of arguments per script call).
std::string FormatCommand(const std::vector<std::string>& args) {
  size_t total = 16;
  for (const auto& a : args) total += a.size() + 16;
  std::string out;
  out.reserve(total);
  char digits[24];
  auto header = [&](char kind, size_t n) {
    out.push_back(kind);
    auto [end, ec] = std::to_chars(digits, digits + sizeof(digits), n);
    out.append(digits, end);
    out.append("\r\n", 2);
  };
  header('*', args.size());
  for (const auto& a : args) {
    header('$', a.size());
    out.append(a);
    out.append("\r\n", 2);
  }
  return out;
}

}  // namespace

void Core::Send(const std::shared_ptr<PendingCommand>& command,
                std::chrono::steady_clock::time_point now) {
  const std::string formatted = FormatCommand(command->args);
  auto* privdata = new std::shared_ptr<PendingCommand>(command);
  redisAsyncContext* ctx = context();
  if (redisAsyncFormattedCommand(ctx, &Core::OnReplyTrampoline, privdata, formatted.data(),
                                 formatted.size()) != REDIS_OK) {
    delete privdata;
    command->Finish(std::unexpected(
        MapFailure(Failure::kSendFailed, "redis command " + command->name + " could not be sent: " +
                                             ContextError(ctx, "connection is shutting down"))));
    return;
  }
  command->sent = true;
  command->sent_at = now;
  // hiredis has serialised the arguments into its output buffer; the copy is not needed.
  command->args.clear();
  command->args.shrink_to_fit();
}

void Core::OnDeadline(const std::shared_ptr<PendingCommand>& command) {
  if (command->done) return;
  std::string message =
      "redis command " + command->name + " timed out after " + Millis(command->timeout);
  if (!command->sent) {
    std::erase(waiting_, command);
    message += " (not connected to " + Where() + ": " +
               (last_error_.empty() ? std::string("connecting") : last_error_) + ")";
  }
  // A reply that still arrives is matched to this command by hiredis and dropped (done is set).
  const bool sent = command->sent;
  const auto unanswered = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - command->sent_at);
  command->Finish(std::unexpected(MapFailure(Failure::kTimedOut, std::move(message))));
  // Nothing answered on this connection for that long (replies come in order): the server may
  // be gone without the socket knowing (its host powered off or cut off: no reset arrives, and
  // the kernel gives up on the link only after ~15 minutes). Connecting again finds out, and
  // with sentinels finds the master they promoted meanwhile, instead of timing every command
  // out on the old socket. A shorter deadline is a caller choosing to stop waiting (a blocking
  // pop it gives up on, a probe), not a sign of a dead server: the connection is kept, and the
  // late reply dropped. What counts is how long the server has had the command, not how long
  // the caller waited: one queued while Redis was down (restarting, loading its AOF) is sent on
  // the new connection with little of its deadline left, and that connection, ready a moment
  // ago, is not silent; dropping it would fail every command just sent on it.
  if (sent && state_ == State::kReady && command->timeout >= kSilentServer &&
      unanswered >= kSilentServer) {
    asio::post(strand_, [self = shared_from_this(), g = generation_,
                         why = Where() + " did not answer " + command->name + " within " +
                               Millis(unanswered)] { self->Abandon(g, why); });
  }
}

void Core::OnReady(uint64_t generation) {
  if (generation != generation_ || state_ != State::kConnecting) return;
  state_ = State::kReady;
  connect_timer_.cancel();
  backoff_ = options_.reconnect_min;
  last_error_.clear();
  if (ever_ready_) spdlog::info("redis {}: reconnected", Where());
  ever_ready_ = true;
  if (first_connect_) {
    auto done = std::move(first_connect_);
    first_connect_ = nullptr;
    done(Result<void>{});
  }
  // Oldest first, so commands keep the order in which they were issued.
  auto waiting = std::move(waiting_);
  waiting_.clear();
  for (auto& command : waiting) {
    if (command->done) continue;
    if (state_ == State::kReady && context() != nullptr) {
      Send(command, std::chrono::steady_clock::now());
    } else {
      waiting_.push_back(std::move(command));
    }
  }
}

void Core::OnConnectFailed(uint64_t generation, std::string why, bool auth) {
  if (generation != generation_ || state_ != State::kConnecting) return;
  state_ = State::kDisconnected;
  connect_timer_.cancel();
  sentinel_timer_.cancel();
  last_error_ = why;
  // The next round asks another sentinel first: the one asked first this time may be the one
  // that cannot help (gone, or naming a master that is not one any more).
  if (!options_.sentinels.empty()) {
    sentinel_index_ = (sentinel_index_ + 1) % options_.sentinels.size();
  }
  auto self = shared_from_this();
  // This may run inside a hiredis callback, where the context must not be freed: later.
  asio::post(strand_, [self, generation] {
    if (self->generation_ == generation && self->context() != nullptr) {
      self->DropContext(self->last_error_.empty() ? "connect failed" : self->last_error_);
    }
  });
  if (first_connect_) {
    auto done = std::move(first_connect_);
    first_connect_ = nullptr;
    done(std::unexpected(MapFailure(auth ? Failure::kAuthFailed : Failure::kConnectFailed,
                                    "cannot connect to redis at " + Where() + ": " + why)));
    asio::post(strand_, [self] { self->Close(); });
    return;
  }
  spdlog::debug("redis {}: reconnect failed: {}", Where(), why);
  if (auth) spdlog::error("redis {}: AUTH refused on reconnect: {}", Where(), why);
  ScheduleReconnect();
}

void Core::OnConnectionLost(std::string why) {
  state_ = State::kDisconnected;
  last_error_ = why;
  spdlog::warn("redis {}: connection lost ({}); reconnecting", Where(), why);
  ScheduleReconnect();
}

void Core::ScheduleReconnect() {
  if (state_ == State::kClosed) return;
  // Jittered: when Redis restarts, every worker's connections lose it at the same instant and
  // would otherwise come back in lockstep, each doubling step a thundering herd.
  const auto delay = std::max(options_.reconnect_min, EqualJitter(backoff_, rng_));
  // During a failover the new master appears at a moment nobody knows, and asking a sentinel
  // is cheap: keep retrying often instead of backing off to the usual maximum.
  const auto ceiling = options_.sentinels.empty()
                           ? options_.reconnect_max
                           : std::min(options_.reconnect_max, std::chrono::milliseconds(250));
  backoff_ = std::max(options_.reconnect_min, std::min(backoff_ * 2, ceiling));
  reconnect_timer_.expires_after(delay);
  reconnect_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (ec || self->state_ != State::kDisconnected) return;
    self->StartConnect();
  });
}

void Core::DropContext(std::string reason) {
  redisAsyncContext* ctx = context();
  if (ctx == nullptr) return;
  drop_reason_ = std::move(reason);
  // Runs every pending callback with a NULL reply, then ev.cleanup (and onDisconnect).
  redisAsyncFree(ctx);
  drop_reason_.clear();
  adapter_.reset();
}

void Core::Close() {
  if (state_ == State::kClosed && context() == nullptr) return;
  state_ = State::kClosed;
  connect_timer_.cancel();
  sentinel_timer_.cancel();
  reconnect_timer_.cancel();
  auto waiting = std::move(waiting_);
  waiting_.clear();
  for (auto& command : waiting) {
    command->Finish(std::unexpected(MapFailure(
        Failure::kClosed, "redis command " + command->name + " cancelled: connection closed")));
  }
  if (first_connect_) {
    auto done = std::move(first_connect_);
    first_connect_ = nullptr;
    done(std::unexpected(MapFailure(Failure::kClosed, "redis connection closed while connecting")));
  }
  DropSentinelContext();
  DropContext("connection closed");
}

// ---- hiredis trampolines: C calls these; nothing may throw out of them. ----

void Core::OnConnectTrampoline(const redisAsyncContext* context, int status) noexcept {
  if (status == REDIS_OK) return;  // readiness is decided by the handshake's PING
  auto* core = static_cast<Core*>(context->data);
  try {
    core->OnConnectFailed(core->generation_, ContextError(context, "connect failed"));
  } catch (const std::exception& e) {
    spdlog::error("redis: connect callback failed: {}", e.what());
  }
}

void Core::OnDisconnectTrampoline(const redisAsyncContext* context, int /*status*/) noexcept {
  auto* core = static_cast<Core*>(context->data);
  if (!core->drop_reason_.empty()) return;  // we are freeing it ourselves
  try {
    std::string why = ContextError(context, "disconnected");
    if (core->state_ == State::kReady) {
      core->OnConnectionLost(std::move(why));
    } else if (core->state_ == State::kConnecting) {
      core->OnConnectFailed(core->generation_, std::move(why));
    }
  } catch (const std::exception& e) {
    spdlog::error("redis: disconnect callback failed: {}", e.what());
  }
}

void Core::OnReplyTrampoline(redisAsyncContext* context, void* reply, void* privdata) noexcept {
  std::unique_ptr<std::shared_ptr<PendingCommand>> holder(
      static_cast<std::shared_ptr<PendingCommand>*>(privdata));
  PendingCommand& command = **holder;
  if (command.done) return;  // its deadline passed earlier: the late reply is dropped
  auto* core = static_cast<Core*>(context->data);
  try {
    if (reply != nullptr) {
      const auto* r = static_cast<const redisReply*>(reply);
      if (r->type == REDIS_REPLY_ERROR &&
          std::string_view(r->str, r->len).starts_with("READONLY")) {
        // The server is a replica now; nothing was written. The caller may retry: the
        // connection reconnects to whichever server the sentinels name as master.
        command.Finish(std::unexpected(MapFailure(
            Failure::kConnectionLost, "redis command " + command.name + " refused by " +
                                          core->Where() + ": it is a read-only replica now")));
        asio::post(core->strand_, [self = core->shared_from_this(), g = core->generation_] {
          // Nothing in flight on it was written.
          self->Abandon(g, self->Where() + " answered READONLY (it is a replica now)");
        });
        return;
      }
      if (r->type == REDIS_REPLY_ERROR) {
        const std::string_view text(r->str, r->len);
        if (RefusedForNow(text)) {
          // Redis ran none of it (a script neither: these are checked before it starts); the
          // caller's retry may succeed once the server is ready.
          command.Finish(std::unexpected(MapFailure(
              Failure::kServerNotReady, "redis command " + command.name + " refused by " +
                                            core->Where() + " for now: " + std::string(text))));
          return;
        }
      }
      command.Finish(CopyReply(*r));
    } else if (core->state_ == State::kClosed) {
      command.Finish(std::unexpected(MapFailure(
          Failure::kClosed, "redis command " + command.name + " cancelled: connection closed")));
    } else {
      std::string why = !core->drop_reason_.empty() ? core->drop_reason_
                                                    : ContextError(context, "connection closed");
      command.Finish(std::unexpected(MapFailure(
          Failure::kConnectionLost, "redis command " + command.name + " failed: connection to " +
                                        core->Where() + " lost (" + why + ")")));
    }
  } catch (const std::exception& e) {
    try {
      command.Finish(std::unexpected(
          MapFailure(Failure::kInternal, "redis command " + command.name + ": " + e.what())));
    } catch (...) {
      spdlog::error("redis: cannot deliver the result of {}", command.name);
    }
  }
}

void Core::OnHandshakeTrampoline(redisAsyncContext* context, void* reply, void* privdata) noexcept {
  std::unique_ptr<HandshakeReply> step(static_cast<HandshakeReply*>(privdata));
  Core* core = step->core;
  try {
    if (reply == nullptr) {
      std::string why = !core->drop_reason_.empty()
                            ? core->drop_reason_
                            : ContextError(context, "connection closed during the handshake");
      core->OnConnectFailed(step->generation, std::move(why));
      return;
    }
    const auto* r = static_cast<const redisReply*>(reply);
    if (r->type == REDIS_REPLY_ERROR) {
      std::string error(r->str, r->len);
      switch (step->step) {
        case Step::kAuth:
          core->OnConnectFailed(step->generation, "AUTH refused: " + error, /*auth=*/true);
          break;
        case Step::kSelect:
          core->OnConnectFailed(step->generation, "SELECT " + std::to_string(core->options_.db) +
                                                      " failed: " + error);
          break;
        case Step::kRole:
          core->OnConnectFailed(step->generation, "ROLE failed: " + error);
          break;
        case Step::kPing:
          // -NOAUTH here means a password is required but none is configured.
          core->OnConnectFailed(step->generation, "PING failed: " + error,
                                error.starts_with("NOAUTH"));
          break;
      }
      return;
    }
    if (step->step == Step::kRole) {
      // ROLE answers ["master", ...] or ["slave", ...] / ["sentinel", ...].
      std::string role = r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
                                 r->element[0]->type == REDIS_REPLY_STRING
                             ? std::string(r->element[0]->str, r->element[0]->len)
                             : std::string("unknown");
      if (role == "master") {
        core->OnReady(step->generation);
      } else {
        core->OnConnectFailed(step->generation, core->Where() + " is a " + role +
                                                    ", not the master (failover in progress?)");
      }
      return;
    }
    if (step->step == Step::kPing && core->options_.sentinels.empty()) {
      core->OnReady(step->generation);
    }
  } catch (const std::exception& e) {
    spdlog::error("redis: handshake callback failed: {}", e.what());
  }
}

void Core::OnSentinelReplyTrampoline(redisAsyncContext* /*context*/, void* reply,
                                     void* privdata) noexcept {
  std::unique_ptr<SentinelAsk> ask(static_cast<SentinelAsk*>(privdata));
  Core* core = ask->core;
  if (core->dropping_sentinel_ || core->state_ == State::kClosed) return;
  try {
    const Endpoint& sentinel = core->options_.sentinels.at(ask->index);
    const std::string where = "sentinel " + sentinel.host + ":" + std::to_string(sentinel.port);
    Result<Endpoint> master = MakeError(ErrorCategory::kRetryable, where + ": no answer");
    const auto* r = static_cast<const redisReply*>(reply);
    if (r == nullptr) {
      master = MakeError(ErrorCategory::kRetryable, where + ": cannot reach it");
    } else if (r->type == REDIS_REPLY_NIL) {
      master = MakeError(ErrorCategory::kRetryable,
                         where + " does not know master '" + core->options_.master_name + "'");
    } else if (r->type == REDIS_REPLY_ERROR) {
      master = MakeError(ErrorCategory::kRetryable, where + ": " + std::string(r->str, r->len));
    } else if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
               r->element[0]->type == REDIS_REPLY_STRING &&
               r->element[1]->type == REDIS_REPLY_STRING) {
      const std::string host(r->element[0]->str, r->element[0]->len);
      const std::string port_text(r->element[1]->str, r->element[1]->len);
      int port = 0;
      auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
      if (ec == std::errc() && end == port_text.data() + port_text.size() && port > 0 &&
          port <= 65535 && !host.empty()) {
        master = Endpoint{host, port};
      } else {
        master = MakeError(ErrorCategory::kRetryable,
                           where + " named a malformed address '" + host + ":" + port_text + "'");
      }
    } else {
      master = MakeError(ErrorCategory::kRetryable, where + ": unexpected answer");
    }
    asio::post(core->strand_,
               [self = core->shared_from_this(), g = ask->generation, tried = ask->tried,
                index = ask->index, id = ask->ask, master = std::move(master)]() mutable {
                 self->OnSentinelAnswer(g, tried, index, id, std::move(master));
               });
  } catch (const std::exception& e) {
    spdlog::error("redis: sentinel callback failed: {}", e.what());
  }
}

}  // namespace reelq::redis::detail
