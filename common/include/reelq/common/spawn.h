#pragma once

#include <exception>
#include <string>
#include <string_view>

#include "reelq/common/asio.h"

namespace reelq {

// Exit status of a process whose detached task ended by an exception (EX_SOFTWARE).
inline constexpr int kExitDetachedTaskFailed = 70;

// Logs that the detached task `name` ended by `error` and ends the process at once with
// kExitDetachedTaskFailed. A daemon whose dispatch loop, reaper or heartbeat has died must not
// go on half alive (answering health checks while its work silently stops): dying loudly lets
// the supervisor restart it, and the leases it held expire and are reaped as after any crash.
// std::_Exit, not exit: other threads (gRPC) are still running and must not see static
// destructors run under them.
[[noreturn]] void DieOfDetachedException(std::string_view name, std::exception_ptr error);

namespace detail {
// True when the test-only fault hook names this task: REELQ_FAULT_INJECT_TASK=<name>, read once
// per process. Lets a test see a detached loop die by an exception in the real binary.
bool FaultInjectedInto(std::string_view name);
awaitable<void> InjectedFault(std::string name);
}  // namespace detail

// Starts `task` detached on `where` (an executor or an io_context), the one way reelq starts a
// coroutine nobody awaits. If it ends by an exception, the process logs the task's name and the
// exception and exits non-zero (DieOfDetachedException). `name` says which task it is in that
// log line.
template <class ExecutorOrContext>
void SpawnOrDie(ExecutorOrContext&& where, std::string name, awaitable<void> task) {
  const bool inject = detail::FaultInjectedInto(name);
  auto on_exit = [name](std::exception_ptr error) {
    if (error) DieOfDetachedException(name, error);
  };
  if (inject) {
    asio::co_spawn(where, detail::InjectedFault(std::move(name)), std::move(on_exit));
  } else {
    asio::co_spawn(where, std::move(task), std::move(on_exit));
  }
}

}  // namespace reelq
