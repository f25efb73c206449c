#pragma once

#include <string_view>

#include "reelq/common/redis.h"

namespace reelq::queue {

// The queue's scripts as one Redis function library (lua_scripts.h, queue/CMakeLists.txt),
// loaded into Redis by the first call that finds it missing.
const redis::FunctionLibrary& LuaLibrary();

// The library's function for the script `name` (one of lua_scripts.h's k_<script>), made once
// and kept for the process's life.
const redis::Function& LuaFunction(std::string_view name);

}  // namespace reelq::queue
