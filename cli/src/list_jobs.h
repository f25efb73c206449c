#pragma once

#include <cstddef>
#include <vector>

#include "context.h"

namespace reelq::cli {

// Pages through ListJobs until the server has no more or `limit` jobs were read (0: no limit).
// Each page gets its own --timeout deadline.
grpc::Status ListAllJobs(Context& context, v1::ListJobsRequest request, size_t limit,
                         std::vector<v1::JobStatus>* jobs);

}  // namespace reelq::cli
