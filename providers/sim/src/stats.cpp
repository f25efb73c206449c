#include "stats.h"

namespace reelq::sim {

nlohmann::json Counters::ToJson() const {
  return {{"creates", creates},
          {"creates_rejected_rate_limit", creates_rejected_rate_limit},
          {"creates_rejected_concurrency", creates_rejected_concurrency},
          {"creates_failed_injected", creates_failed_injected},
          {"policy_rejections", policy_rejections},
          {"task_failures_injected", task_failures_injected},
          {"invalid_requests", invalid_requests},
          {"auth_failures", auth_failures},
          {"model_not_found", model_not_found},
          {"polls", polls},
          {"downloads", downloads},
          {"cancels", cancels},
          {"create_answers_held", create_answers_held},
          {"lists", lists}};
}

void Stats::Bump(Provider p, const std::string& key, const std::string& model, Field field) {
  auto& ps = providers_[p];
  ++(ps.total.*field);
  if (!key.empty()) ++(ps.keys[key].*field);
  if (!model.empty()) ++(ps.models[model].*field);
}

void Stats::Reset() {
  providers_.clear();
  creates_.clear();
}

}  // namespace reelq::sim
