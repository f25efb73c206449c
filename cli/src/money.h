#pragma once

// Money on the command line: reelq counts integer micro-dollars (1 USD = 1,000,000).
#include <cstdint>
#include <expected>
#include <string>
#include <string_view>

#include "reelq/v1/jobs.pb.h"

namespace reelq::cli {

// "$12.345678" (exact; trailing zeros kept to two decimals: "$12.50").
std::string FormatUsd(int64_t micros);
// "12", "12.5", "$0.000001" -> micro-dollars; an error naming what is wrong (more than six
// decimals, not a number, too large).
std::expected<int64_t, std::string> ParseUsd(std::string_view text);
// The batch's money lines: budget, committed, spent per model.
std::string FormatBatchCost(const v1::BatchProgress& progress);

}  // namespace reelq::cli
