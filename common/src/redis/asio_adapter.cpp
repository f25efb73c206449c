#include "asio_adapter.h"

#include <spdlog/spdlog.h>

namespace reelq::redis::detail {

std::shared_ptr<AsioAdapter> AsioAdapter::Attach(redisAsyncContext* context,
                                                 asio::any_io_executor executor) {
  auto adapter = std::make_shared<AsioAdapter>(context, std::move(executor));
  boost::system::error_code ec;
  adapter->socket_.assign(context->c.fd, ec);
  if (ec) {
    spdlog::error("redis: cannot register socket {} with the event loop: {}", context->c.fd,
                  ec.message());
    return nullptr;
  }
  adapter->keep_alive_ = adapter;
  context->ev.data = adapter.get();
  context->ev.addRead = &AsioAdapter::AddRead;
  context->ev.delRead = &AsioAdapter::DelRead;
  context->ev.addWrite = &AsioAdapter::AddWrite;
  context->ev.delWrite = &AsioAdapter::DelWrite;
  context->ev.cleanup = &AsioAdapter::Cleanup;
  return adapter;
}

AsioAdapter::AsioAdapter(redisAsyncContext* context, asio::any_io_executor executor)
    : context_(context), executor_(executor), socket_(executor) {}

// The hooks are called from inside hiredis (C): nothing may throw out of them. Arming a wait
// can only fail on allocation failure; the connection then notices nothing ever completes and
// its command deadlines fire, which is the best that can be done without a reactor.
void AsioAdapter::AddRead(void* self) noexcept {
  auto* adapter = static_cast<AsioAdapter*>(self);
  adapter->want_read_ = true;
  try {
    adapter->ArmRead();
  } catch (const std::exception& e) {
    spdlog::error("redis: cannot wait for readability: {}", e.what());
  }
}

void AsioAdapter::DelRead(void* self) noexcept {
  // A wait already armed stays armed; its completion is ignored while reads are not wanted.
  static_cast<AsioAdapter*>(self)->want_read_ = false;
}

void AsioAdapter::AddWrite(void* self) noexcept {
  auto* adapter = static_cast<AsioAdapter*>(self);
  adapter->want_write_ = true;
  try {
    adapter->ArmWrite();
  } catch (const std::exception& e) {
    spdlog::error("redis: cannot wait for writability: {}", e.what());
  }
}

void AsioAdapter::DelWrite(void* self) noexcept {
  static_cast<AsioAdapter*>(self)->want_write_ = false;
}

void AsioAdapter::Cleanup(void* self) noexcept {
  auto* adapter = static_cast<AsioAdapter*>(self);
  // hiredis may call cleanup more than once (disconnect, then free): only the first counts.
  if (adapter->context_ == nullptr) return;
  adapter->context_ = nullptr;
  adapter->want_read_ = adapter->want_write_ = false;
  // hiredis closes the fd itself; release() deregisters it and aborts the pending waits.
  adapter->socket_.release();
  // Drop the self-reference later, never inside hiredis: it may still hold ev.data for the rest
  // of this free and call cleanup again.
  try {
    asio::post(adapter->executor_, [keep = std::move(adapter->keep_alive_)] {});
  } catch (...) {
    // Allocation failure: leak the adapter rather than destroy it under hiredis's feet.
  }
}

void AsioAdapter::ArmRead() {
  if (context_ == nullptr || !want_read_ || read_waiting_) return;
  read_waiting_ = true;
  socket_.async_wait(asio::posix::stream_descriptor::wait_read, [self = shared_from_this()](
                                                                    boost::system::error_code ec) {
    self->read_waiting_ = false;
    if (ec == asio::error::operation_aborted || self->context_ == nullptr || !self->want_read_) {
      return;
    }
    // Other errors (EPOLLERR/HUP) are reported by the read itself.
    redisAsyncHandleRead(self->context_);
    self->ArmRead();  // no-op unless hiredis still wants reads
  });
}

void AsioAdapter::ArmWrite() {
  if (context_ == nullptr || !want_write_ || write_waiting_) return;
  write_waiting_ = true;
  socket_.async_wait(asio::posix::stream_descriptor::wait_write, [self = shared_from_this()](
                                                                     boost::system::error_code ec) {
    self->write_waiting_ = false;
    if (ec == asio::error::operation_aborted || self->context_ == nullptr || !self->want_write_) {
      return;
    }
    redisAsyncHandleWrite(self->context_);
    self->ArmWrite();
  });
}

}  // namespace reelq::redis::detail
