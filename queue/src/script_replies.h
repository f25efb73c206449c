#pragma once

// How the queue's scripts answer, read in one place: their error replies become reelq errors,
// and a many-jobs script's reply becomes one outcome per job (job_store.cpp,
// job_store_worker.cpp).

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "reelq/common/error.h"
#include "reelq/common/redis.h"

namespace reelq::queue::detail {

int64_t ReplyInt(const redis::Reply& r);

// Script error replies carry a keyword first ("LEASELOST", "NOTRUNNING CANCELLED", ...): the
// one place they become reelq errors.
Error ScriptError(std::string_view script, const std::string& message);

// A many-jobs script's reply: per job "OK" or its refusal, in order.
Result<std::vector<Result<void>>> PerJobOutcomes(std::string_view script, const redis::Reply& reply,
                                                 size_t expected);

}  // namespace reelq::queue::detail
