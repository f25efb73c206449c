#pragma once

#include "reelq/common/redis.h"

namespace reelq::queue {

// The queue's scripts as one Redis function library (lua_scripts.h, queue/CMakeLists.txt),
// loaded into Redis by the first call that finds it missing.
const redis::FunctionLibrary& LuaLibrary();

}  // namespace reelq::queue
