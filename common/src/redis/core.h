#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <hiredis/async.h>

#include "asio_adapter.h"
#include "reelq/common/asio.h"
#include "reelq/common/redis.h"

namespace reelq::redis::detail {

// Delivers a result to whoever waits for it. It never runs the waiter inline: it posts to the
// waiter's own executor, so a waiting coroutine never resumes inside a hiredis callback.
template <class T>
using Completion = std::move_only_function<void(T)>;

// One command from the moment Command() is called until its result is delivered. Shared by the
// waiting caller side (via the timer) and by hiredis (via the callback's privdata), so whichever
// of reply / deadline / connection loss comes first wins and the others find `done` set.
struct PendingCommand {
  explicit PendingCommand(const asio::any_io_executor& strand) : timer(strand) {}

  std::vector<std::string> args;
  std::string name;  // for messages
  std::chrono::milliseconds timeout{0};
  Completion<Result<Reply>> complete;
  asio::steady_timer timer;
  bool sent = false;  // handed to hiredis (else waiting for a connection)
  // When it was handed to hiredis: a command queued while disconnected is sent, on a new
  // connection, long after its deadline started.
  std::chrono::steady_clock::time_point sent_at;
  bool done = false;

  void Finish(Result<Reply> result);
};

// The shared state behind a Connection. Lives in a shared_ptr so that hiredis callbacks, socket
// waits and timers that are still pending when the user's Connection object goes away find it
// alive; Close() (run by the Connection's destructor) frees the hiredis context, which fails
// every pending command and ends every wait.
//
// Threading: every member function below runs on `strand_` (a strand over the executor given
// to Connect), and so do all hiredis calls and callbacks. Results are posted to the executor of
// the waiting coroutine.
class Core : public std::enable_shared_from_this<Core> {
 public:
  Core(asio::any_io_executor strand, Options options);
  ~Core();
  Core(const Core&) = delete;
  Core& operator=(const Core&) = delete;

  const asio::any_io_executor& strand() const { return strand_; }
  // Counts connects: what was written in one session is not what a command of a later one
  // (WAIT) sees as this client's. Read from any thread.
  uint64_t Session() const { return sessions_.load(std::memory_order_acquire); }

  // Starts the first connect; `done` gets its outcome. A failed first connect does not retry.
  void Start(Completion<Result<void>> done);
  void Submit(std::shared_ptr<PendingCommand> command);
  void Close();

 private:
  enum class State { kDisconnected, kConnecting, kReady, kClosed };
  enum class Step { kAuth, kSelect, kPing, kRole };
  struct HandshakeReply {
    Core* core;
    uint64_t generation;
    Step step;
  };
  struct SentinelAsk {
    Core* core;
    uint64_t generation;
    size_t tried;
    size_t index;
    uint64_t ask;  // sentinel_asks_ when asked: a sentinel given up on is not heard late
  };

  void StartConnect();
  // Sentinel mode: asks sentinel number `tried` (counting from sentinel_index_) for the master,
  // then connects to it, or asks the next one.
  void AskSentinel(uint64_t generation, size_t tried);
  void OnSentinelAnswer(uint64_t generation, size_t tried, size_t index, uint64_t ask,
                        Result<Endpoint> master);
  void DropSentinelContext();
  void ConnectTo(uint64_t generation, Endpoint server);
  // The server is not the one to talk to any more (`why`: a READONLY answer, it was demoted; a
  // command unanswered past its deadline, it may be dead without the socket knowing): drop the
  // connection and connect again (with sentinels: find the master again).
  void Abandon(uint64_t generation, std::string why);
  void SendHandshake(redisAsyncContext* context, Step step, std::vector<std::string> args);
  // `now`: when it is sent (Submit passes the instant its deadline started from).
  void Send(const std::shared_ptr<PendingCommand>& command,
            std::chrono::steady_clock::time_point now);
  void OnReady(uint64_t generation);
  // `auth` marks a refused AUTH (a configuration problem, not a transient one).
  void OnConnectFailed(uint64_t generation, std::string why, bool auth = false);
  void OnConnectionLost(std::string why);
  void ScheduleReconnect();
  // Frees the current hiredis context (never call from inside a hiredis callback).
  void DropContext(std::string reason);
  void OnDeadline(const std::shared_ptr<PendingCommand>& command);
  redisAsyncContext* context() const { return adapter_ ? adapter_->context() : nullptr; }
  std::string Where() const;

  static void OnConnectTrampoline(const redisAsyncContext* context, int status) noexcept;
  static void OnDisconnectTrampoline(const redisAsyncContext* context, int status) noexcept;
  static void OnReplyTrampoline(redisAsyncContext* context, void* reply, void* privdata) noexcept;
  static void OnHandshakeTrampoline(redisAsyncContext* context, void* reply,
                                    void* privdata) noexcept;
  static void OnSentinelReplyTrampoline(redisAsyncContext* context, void* reply,
                                        void* privdata) noexcept;

  asio::any_io_executor strand_;
  Options options_;
  State state_ = State::kDisconnected;
  uint64_t generation_ = 0;            // one per hiredis context, so stale callbacks are recognised
  std::atomic<uint64_t> sessions_{0};  // generation_, readable off the strand
  std::shared_ptr<AsioAdapter> adapter_;
  Endpoint server_;  // the server connected to (options_'s, or the master a sentinel named)
  std::shared_ptr<AsioAdapter> sentinel_adapter_;  // the sentinel being asked, if any
  size_t sentinel_index_ = 0;                      // the sentinel that answered last
  std::vector<std::string> sentinel_errors_;       // this round's, for the message
  bool dropping_sentinel_ = false;
  std::deque<std::shared_ptr<PendingCommand>> waiting_;  // submitted while not ready
  asio::steady_timer connect_timer_;
  asio::steady_timer sentinel_timer_;  // one sentinel's time to answer
  uint64_t sentinel_asks_ = 0;
  asio::steady_timer reconnect_timer_;
  std::chrono::milliseconds backoff_;
  std::mt19937_64 rng_;
  std::string last_error_;   // why the connection is down, for messages
  std::string drop_reason_;  // set while we free a context ourselves
  Completion<Result<void>> first_connect_;
  bool ever_ready_ = false;
};

}  // namespace reelq::redis::detail
