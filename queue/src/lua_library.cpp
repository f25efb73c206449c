#include "lua_library.h"

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "lua_scripts.h"

namespace reelq::queue {

const redis::FunctionLibrary& LuaLibrary() {
  static const auto* library =
      new redis::FunctionLibrary("reelq", lua::k_library_name, lua::k_library);
  return *library;
}

const redis::Function& LuaFunction(std::string_view name) {
  static std::mutex mutex;
  // Leaked on purpose, like the library: callers keep references for the process's life.
  static auto* functions =
      new std::map<std::string, std::unique_ptr<redis::Function>, std::less<>>();
  std::lock_guard lock(mutex);
  auto it = functions->find(name);
  if (it == functions->end()) {
    it = functions
             ->emplace(std::string(name),
                       std::make_unique<redis::Function>(LuaLibrary(), std::string(name)))
             .first;
  }
  return *it->second;
}

}  // namespace reelq::queue
