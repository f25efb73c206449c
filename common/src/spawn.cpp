#include "reelq/common/spawn.h"

#include <cstdlib>
#include <stdexcept>

#include <spdlog/spdlog.h>

namespace reelq {

void DieOfDetachedException(std::string_view name, std::exception_ptr error) {
  std::string what = "an exception that is not a std::exception";
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    what = e.what();
  } catch (...) {
  }
  spdlog::critical("detached task '{}' ended by an exception: {}; exiting with status {}", name,
                   what, kExitDetachedTaskFailed);
  spdlog::default_logger()->flush();
  std::_Exit(kExitDetachedTaskFailed);
}

namespace detail {

bool FaultInjectedInto(std::string_view name) {
  static const std::string target = [] {
    const char* value = std::getenv("REELQ_FAULT_INJECT_TASK");
    return std::string(value ? value : "");
  }();
  return !target.empty() && target == name;
}

awaitable<void> InjectedFault(std::string name) {
  // After a moment, so the process is fully up (serving, leasing) when the loop dies.
  asio::steady_timer delay(co_await asio::this_coro::executor, std::chrono::milliseconds(200));
  co_await delay.async_wait(use_awaitable);
  spdlog::warn("REELQ_FAULT_INJECT_TASK={}: throwing in place of the task", name);
  throw std::runtime_error("injected fault (REELQ_FAULT_INJECT_TASK=" + name + ")");
}

}  // namespace detail
}  // namespace reelq
