// The public face of the Redis connection: Connect(), the Connection implementation and the
// glue between Asio completion tokens and the Core's callbacks.
//
// Which executor a reply resumes on: each result is posted to the associated executor of the
// waiting operation (for a coroutine, the executor it was co_spawned on). The hiredis work
// itself runs on a strand over the executor given to Connect, so any number of coroutines, on
// any executor, may share one connection. With the usual single-threaded io_context everything
// is the same thread.
#include <signal.h>

#include <algorithm>
#include <array>
#include <mutex>

#include "core.h"
#include "reelq/common/redis.h"
#include "reply.h"

namespace reelq::redis {

namespace {

using detail::Completion;
using detail::Core;
using detail::Failure;
using detail::MapFailure;
using detail::PendingCommand;

// Turns an Asio completion handler into a Completion that posts the value to the handler's own
// executor (tracking work there, so its io_context does not run out while we wait).
template <class T, class Handler>
Completion<T> MakeCompletion(Handler handler, const asio::any_io_executor& fallback) {
  asio::any_io_executor target = asio::prefer(asio::get_associated_executor(handler, fallback),
                                              asio::execution::outstanding_work.tracked);
  return [handler = std::move(handler), target = std::move(target)](T value) mutable {
    asio::post(target, [handler = std::move(handler), value = std::move(value)]() mutable {
      std::move(handler)(std::move(value));
    });
  };
}

template <class Token>
auto AsyncCommand(std::shared_ptr<Core> core, std::shared_ptr<PendingCommand> command,
                  Token&& token) {
  return asio::async_initiate<Token, void(Result<Reply>)>(
      [](auto handler, std::shared_ptr<Core> core, std::shared_ptr<PendingCommand> command) {
        command->complete = MakeCompletion<Result<Reply>>(std::move(handler), core->strand());
        const auto strand = core->strand();
        asio::dispatch(strand, [core = std::move(core), command = std::move(command)]() mutable {
          core->Submit(std::move(command));
        });
      },
      token, std::move(core), std::move(command));
}

template <class Token>
auto AsyncStart(std::shared_ptr<Core> core, Token&& token) {
  return asio::async_initiate<Token, void(Result<void>)>(
      [](auto handler, std::shared_ptr<Core> core) {
        auto done = MakeCompletion<Result<void>>(std::move(handler), core->strand());
        const auto strand = core->strand();
        asio::dispatch(strand, [core = std::move(core), done = std::move(done)]() mutable {
          core->Start(std::move(done));
        });
      },
      token, std::move(core));
}

// Commands whose replies do not follow request/response order; hiredis would route their
// replies to subscription callbacks and the pipeline bookkeeping would break.
bool IsUnsupported(const std::string& name) {
  static constexpr std::array<std::string_view, 7> kUnsupported = {
      "SUBSCRIBE",    "PSUBSCRIBE",   "SSUBSCRIBE", "UNSUBSCRIBE",
      "PUNSUBSCRIBE", "SUNSUBSCRIBE", "MONITOR"};
  return std::find(kUnsupported.begin(), kUnsupported.end(), name) != kUnsupported.end();
}

// A free coroutine holding the Core by value: the Connection object may be destroyed while it
// is suspended.
awaitable<Result<Reply>> RunCommand(std::shared_ptr<Core> core, std::vector<std::string> args,
                                    std::chrono::milliseconds timeout) {
  if (args.empty()) {
    co_return std::unexpected(MapFailure(Failure::kUnsupported, "redis command has no arguments"));
  }
  std::string name = detail::CommandName(args);
  if (IsUnsupported(name)) {
    co_return std::unexpected(
        MapFailure(Failure::kUnsupported,
                   "redis command " + name + " is not supported on a pipelined connection"));
  }
  auto command = std::make_shared<PendingCommand>(core->strand());
  command->args = std::move(args);
  command->name = std::move(name);
  command->timeout = std::max(timeout, std::chrono::milliseconds(1));
  co_return co_await AsyncCommand(std::move(core), std::move(command), use_awaitable);
}

class ConnectionImpl final : public Connection {
 public:
  ConnectionImpl(std::shared_ptr<Core> core, std::chrono::milliseconds command_timeout)
      : core_(std::move(core)), command_timeout_(command_timeout) {}
  ~ConnectionImpl() override { Close(); }

  // Connection:
  awaitable<Result<Reply>> Command(std::vector<std::string> args) override {
    return RunCommand(core_, std::move(args), command_timeout_);
  }
  awaitable<Result<Reply>> Command(std::vector<std::string> args,
                                   std::chrono::milliseconds timeout) override {
    return RunCommand(core_, std::move(args), timeout);
  }
  uint64_t Session() const override { return core_->Session(); }
  void Close() override {
    const auto strand = core_->strand();
    asio::dispatch(strand, [core = core_] { core->Close(); });
  }

 private:
  std::shared_ptr<Core> core_;
  std::chrono::milliseconds command_timeout_;
};

std::string ValidateOptions(const Options& o) {
  using std::chrono::milliseconds;
  if (o.host.empty()) return "redis host is empty";
  if (o.port <= 0 || o.port > 65535)
    return "redis port " + std::to_string(o.port) + " is out of range";
  if (o.db < 0) return "redis db " + std::to_string(o.db) + " is negative";
  if (o.connect_timeout <= milliseconds(0)) return "redis connect_timeout must be positive";
  if (o.command_timeout <= milliseconds(0)) return "redis command_timeout must be positive";
  if (o.reconnect_min <= milliseconds(0) || o.reconnect_max < o.reconnect_min) {
    return "redis reconnect_min must be positive and not above reconnect_max";
  }
  if (!o.sentinels.empty() && o.master_name.empty()) {
    return "redis sentinels are set but master_name is empty";
  }
  for (const auto& s : o.sentinels) {
    if (s.host.empty()) return "a redis sentinel's host is empty";
    if (s.port <= 0 || s.port > 65535)
      return "redis sentinel port " + std::to_string(s.port) + " is out of range";
  }
  return {};
}

// hiredis 0.14 writes with write(2), not send(MSG_NOSIGNAL): a write to a socket the server has
// just closed raises SIGPIPE, whose default action kills the process. A daemon that talks to
// Redis must survive a Redis restart, so SIGPIPE is ignored unless the program installed its own
// handler (checked once, on the first Connect).
void IgnoreSigpipeOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction current {};
    if (sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL) {
      signal(SIGPIPE, SIG_IGN);
    }
  });
}

}  // namespace

awaitable<Result<ConnectionPtr>> Connect(asio::any_io_executor executor, Options options) {
  if (auto problem = ValidateOptions(options); !problem.empty()) {
    co_return reelq::MakeError(ErrorCategory::kInvalidRequest, std::move(problem));
  }
  IgnoreSigpipeOnce();
  asio::any_io_executor strand = asio::make_strand(executor);
  auto core = std::make_shared<Core>(strand, options);
  Result<void> started = co_await AsyncStart(core, use_awaitable);
  if (!started) co_return std::unexpected(std::move(started.error()));
  co_return std::make_shared<ConnectionImpl>(std::move(core), options.command_timeout);
}

}  // namespace reelq::redis
