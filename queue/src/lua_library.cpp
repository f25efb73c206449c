#include "lua_library.h"

#include "lua_scripts.h"

namespace reelq::queue {

const redis::FunctionLibrary& LuaLibrary() {
  static const auto* library =
      new redis::FunctionLibrary("reelq", lua::k_library_name, lua::k_library);
  return *library;
}

}  // namespace reelq::queue
