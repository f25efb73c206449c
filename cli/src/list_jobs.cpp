#include "list_jobs.h"

#include <algorithm>

namespace reelq::cli {

grpc::Status ListAllJobs(Context& context, v1::ListJobsRequest request, size_t limit,
                         std::vector<v1::JobStatus>* jobs) {
  constexpr uint32_t kPageSize = 1000;  // the server's maximum
  for (;;) {
    uint32_t page = kPageSize;
    if (limit > 0) page = static_cast<uint32_t>(std::min<size_t>(kPageSize, limit - jobs->size()));
    request.set_page_size(page);
    v1::ListJobsResponse response;
    grpc::ClientContext rpc;
    context.SetDeadline(rpc);
    const auto status = context.Jobs().ListJobs(&rpc, request, &response);
    if (!status.ok()) return status;
    for (auto& job : *response.mutable_jobs()) {
      if (limit > 0 && jobs->size() >= limit) break;
      jobs->push_back(std::move(job));
    }
    if (response.next_page_token().empty() || (limit > 0 && jobs->size() >= limit))
      return grpc::Status::OK;
    if (response.next_page_token() == request.page_token()) {
      return grpc::Status(grpc::StatusCode::INTERNAL,
                          "the server returned the same page token twice");
    }
    request.set_page_token(response.next_page_token());
  }
}

}  // namespace reelq::cli
