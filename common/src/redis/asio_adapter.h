#pragma once

#include <memory>

#include <hiredis/async.h>

#include "reelq/common/asio.h"

namespace reelq::redis::detail {

// Drives one hiredis async context from an Asio executor: hiredis's ev.addRead/delRead/
// addWrite/delWrite hooks arm `async_wait` on the context's socket, and readiness calls
// redisAsyncHandleRead/Write. hiredis owns the fd (it closes it in redisFree), so the descriptor
// is release()d, never closed, when hiredis calls ev.cleanup.
//
// All hooks and all wait handlers run on `executor`, which must be the only place the context is
// touched (the connection passes its strand).
class AsioAdapter : public std::enable_shared_from_this<AsioAdapter> {
 public:
  // Attaches the hooks to `context`. Returns nullptr (and leaves the context untouched) when the
  // socket cannot be registered with the reactor. The adapter keeps itself alive until hiredis
  // calls ev.cleanup; after that, pending waits complete as aborted and are ignored.
  static std::shared_ptr<AsioAdapter> Attach(redisAsyncContext* context,
                                             asio::any_io_executor executor);

  AsioAdapter(redisAsyncContext* context, asio::any_io_executor executor);
  AsioAdapter(const AsioAdapter&) = delete;
  AsioAdapter& operator=(const AsioAdapter&) = delete;

  // The context while it is alive; nullptr once hiredis has called ev.cleanup (freed or freeing).
  redisAsyncContext* context() const { return context_; }

 private:
  static void AddRead(void* self) noexcept;
  static void DelRead(void* self) noexcept;
  static void AddWrite(void* self) noexcept;
  static void DelWrite(void* self) noexcept;
  static void Cleanup(void* self) noexcept;

  void ArmRead();
  void ArmWrite();

  redisAsyncContext* context_;
  asio::any_io_executor executor_;
  asio::posix::stream_descriptor socket_;
  bool want_read_ = false;
  bool want_write_ = false;
  bool read_waiting_ = false;
  bool write_waiting_ = false;
  std::shared_ptr<AsioAdapter> keep_alive_;  // dropped (by a posted handler) after ev.cleanup
};

}  // namespace reelq::redis::detail
