#include "reelq/scheduler/activity.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "reelq/queue/job_record.h"

namespace reelq::scheduler {

std::pair<std::string, std::string> ParseDispatchDetail(std::string_view detail) {
  constexpr std::string_view kVia = " via ";
  const size_t at = detail.find(kVia);
  if (at == std::string_view::npos || at == 0 || at + kVia.size() >= detail.size()) return {};
  const std::string_view model = detail.substr(0, at), account = detail.substr(at + kVia.size());
  // Ids are single words: a sentence holding " via " (a failure's message on a DISPATCHED that
  // keeps its finished task, a hand-back's reason) names no model.
  if (model.find(' ') != std::string_view::npos || account.find(' ') != std::string_view::npos) {
    return {};
  }
  return {std::string(model), std::string(account)};
}

namespace {

// The failures dispatch.lua records with a sentence rather than "<category>: <message>", each
// with the category it records apart (the job's err_cat).
struct KnownFailure {
  std::string_view prefix;
  std::string_view category;
};
constexpr KnownFailure kKnownFailures[] = {
    {"batch budget: ", "failed_precondition"},
    {"no model this job may use has an account configured", "failed_precondition"},
    {"start deadline passed", "deadline_exceeded"},
};

}  // namespace

std::optional<FailureDetail> ParseFailureDetail(std::string_view detail) {
  for (const auto& known : kKnownFailures) {
    if (detail.starts_with(known.prefix)) {
      return FailureDetail{std::string(known.category), std::string(detail)};
    }
  }
  constexpr std::string_view kSeparator = ": ";
  const size_t colon = detail.find(kSeparator);
  if (colon == std::string_view::npos) return std::nullopt;
  const std::string_view head = detail.substr(0, colon);
  if (!queue::ErrorCategoryFromString(head)) return std::nullopt;
  return FailureDetail{std::string(head), std::string(detail.substr(colon + kSeparator.size()))};
}

std::string ParseFailureCategory(std::string_view detail) {
  auto failure = ParseFailureDetail(detail);
  return failure ? failure->category : "internal";
}

double Quantile(std::vector<int64_t>& values, double p) {
  if (values.empty()) return 0;
  const size_t rank = static_cast<size_t>(std::clamp(
      std::ceil(p * static_cast<double>(values.size())), 1.0, static_cast<double>(values.size())));
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(rank - 1),
                   values.end());
  return static_cast<double>(values[rank - 1]);
}

Activity::Activity(queue::JobStore& store, ClockPtr clock)
    : Activity(store, std::move(clock), Options{}) {}

Activity::Activity(queue::JobStore& store, ClockPtr clock, Options options)
    : store_(store), clock_(std::move(clock)), options_(options) {}

awaitable<Result<void>> Activity::Refresh() {
  const int64_t now = clock_->NowMs();
  if (refreshing_ ||
      (last_refresh_ms_ != 0 && now - last_refresh_ms_ < options_.min_refresh_interval.count())) {
    co_return Result<void>{};
  }
  refreshing_ = true;
  struct Done {
    bool& flag;
    ~Done() { flag = false; }
  } done{refreshing_};
  for (int chunk = 0; chunk < options_.max_chunks_per_refresh; ++chunk) {
    std::string start =
        last_id_.empty()
            ? std::to_string(std::max<int64_t>(0, now - options_.window.count())) + "-0"
            : "(" + last_id_;
    auto events = co_await store_.ReadEventRange(std::move(start), options_.read_chunk);
    if (!events) co_return std::unexpected(events.error());
    for (const auto& e : *events) {
      Apply(e);
      last_id_ = e.stream_id;
    }
    if (static_cast<int>(events->size()) < options_.read_chunk) break;
  }
  // An empty stream: later reads start from now, not from the window's start again.
  if (last_id_.empty()) last_id_ = std::to_string(std::max<int64_t>(0, now - 1)) + "-0";
  last_refresh_ms_ = now;
  Prune(now);
  co_return Result<void>{};
}

void Activity::Apply(const queue::Event& e) {
  Job& job = jobs_[e.job_id];
  if (!e.tenant.empty()) job.tenant = e.tenant;
  if (!e.batch.empty()) job.batch = e.batch;
  const std::optional<queue::JobState> previous = job.state;
  job.last_ms = e.at_ms;
  if (!job.batch.empty()) {
    Batch& b = batches_[job.batch];
    if (b.tenant.empty()) b.tenant = job.tenant;
    if (b.first_ms == 0) b.first_ms = e.at_ms;
    b.last_ms = std::max(b.last_ms, e.at_ms);
  }
  if (e.state == queue::JobState::kPending) {
    job.pending_since = e.at_ms;
    job.running_since = 0;
  } else if (e.state == queue::JobState::kDispatched) {
    auto [model, account] = ParseDispatchDetail(e.detail);
    if (!model.empty()) {
      job.model = model;
      job.account = account;
    }
    if (previous == queue::JobState::kPending && job.pending_since > 0 && !job.model.empty()) {
      waits_.push_back({e.at_ms, job.model, job.tenant, e.at_ms - job.pending_since});
      dispatches_.push_back({e.at_ms, job.account, job.tenant});
    }
  } else if (e.state == queue::JobState::kRunning) {
    if (previous != queue::JobState::kRunning) job.running_since = e.at_ms;
  } else if (e.state == queue::JobState::kSucceeded) {
    if (!job.model.empty()) {
      completions_.push_back({e.at_ms, job.model, job.tenant, 0});
      if (job.running_since > 0) {
        generations_.push_back({e.at_ms, job.model, job.tenant, e.at_ms - job.running_since});
      }
    }
  } else if (e.state == queue::JobState::kFailed) {
    if (!job.model.empty()) failures_.push_back({e.at_ms, job.model, job.tenant, 0});
    if (!job.batch.empty())
      ++batches_[job.batch].failures_by_category[ParseFailureCategory(e.detail)];
  }
  job.state = e.state;
}

void Activity::Prune(int64_t now_ms) {
  const int64_t horizon = now_ms - options_.window.count();
  for (auto* samples : {&generations_, &waits_, &completions_, &failures_}) {
    while (!samples->empty() && samples->front().at_ms < horizon) samples->pop_front();
  }
  const int64_t share_horizon =
      now_ms - std::max(options_.share_window, std::chrono::milliseconds(60'000)).count();
  while (!dispatches_.empty() && dispatches_.front().at_ms < share_horizon) {
    dispatches_.pop_front();
  }
  // Ended jobs leave once their last event is out of the window; jobs still queued stay (they
  // are what the queue holds), up to the cap, oldest activity first.
  for (auto it = jobs_.begin(); it != jobs_.end();) {
    if (it->second.state && queue::IsTerminal(*it->second.state) && it->second.last_ms < horizon) {
      it = jobs_.erase(it);
    } else {
      ++it;
    }
  }
  if (jobs_.size() > options_.max_tracked_jobs) {
    std::vector<std::pair<int64_t, std::string>> by_age;
    by_age.reserve(jobs_.size());
    for (const auto& [id, job] : jobs_) by_age.emplace_back(job.last_ms, id);
    const size_t excess = jobs_.size() - options_.max_tracked_jobs;
    std::nth_element(by_age.begin(), by_age.begin() + static_cast<std::ptrdiff_t>(excess),
                     by_age.end());
    for (size_t i = 0; i < excess; ++i) jobs_.erase(by_age[i].second);
  }
  const int64_t batch_horizon = now_ms - options_.batch_retention.count();
  for (auto it = batches_.begin(); it != batches_.end();) {
    it = it->second.last_ms < batch_horizon ? batches_.erase(it) : std::next(it);
  }
}

std::string Activity::BatchTenant(const std::string& batch) const {
  auto it = batches_.find(batch);
  return it == batches_.end() ? std::string() : it->second.tenant;
}

ActivitySnapshot Activity::Snapshot(const std::string& tenant) const {
  ActivitySnapshot s;
  s.now_ms = clock_->NowMs();
  s.window_ms = options_.window.count();
  s.share_window_ms = options_.share_window.count();
  const auto in_scope = [&](const std::string& t) { return tenant.empty() || t == tenant; };
  const int64_t horizon = s.now_ms - s.window_ms;
  const int minutes = static_cast<int>(std::max<int64_t>(1, s.window_ms / 60'000));

  std::map<std::string, ModelActivity> models;
  std::map<std::string, std::vector<int64_t>> generation, wait;
  auto model = [&](const std::string& id) -> ModelActivity& {
    ModelActivity& m = models[id];
    if (m.model.empty()) {
      m.model = id;
      m.completions_per_minute.assign(static_cast<size_t>(minutes), 0);
    }
    return m;
  };
  for (const auto& c : completions_) {
    if (c.at_ms < horizon || !in_scope(c.tenant)) continue;
    ModelActivity& m = model(c.model);
    ++m.succeeded;
    if (c.at_ms >= s.now_ms - 60'000) ++m.succeeded_last_minute;
    const int64_t age_minutes = (s.now_ms - c.at_ms) / 60'000;
    if (age_minutes >= 0 && age_minutes < minutes) {
      ++m.completions_per_minute[static_cast<size_t>(minutes - 1 - age_minutes)];
    }
  }
  for (const auto& f : failures_) {
    if (f.at_ms >= horizon && in_scope(f.tenant)) ++model(f.model).failed;
  }
  for (const auto& g : generations_) {
    if (g.at_ms >= horizon && in_scope(g.tenant)) generation[g.model].push_back(g.value_ms);
  }
  for (const auto& w : waits_) {
    if (w.at_ms >= horizon && in_scope(w.tenant)) wait[w.model].push_back(w.value_ms);
  }
  std::map<std::string, TenantActivity> tenants;
  for (const auto& [id, job] : jobs_) {
    if (!in_scope(job.tenant)) continue;
    TenantActivity* t = job.tenant.empty() ? nullptr : &tenants[job.tenant];
    if (job.state == queue::JobState::kPending) {
      ++s.queued;
      if (t) ++t->queued;
    } else if (job.state == queue::JobState::kDispatched) {
      ++s.dispatched;
      if (t) ++t->dispatched;
      if (!job.model.empty()) ++model(job.model).dispatched;
    } else if (job.state == queue::JobState::kRunning) {
      ++s.running;
      if (t) ++t->running;
      if (!job.model.empty()) ++model(job.model).running;
    }
  }
  for (auto& [id, values] : generation) {
    ModelActivity& m = model(id);
    m.generation_samples = static_cast<int64_t>(values.size());
    m.generation_p50_s = Quantile(values, 0.5) / 1000.0;
    m.generation_p95_s = Quantile(values, 0.95) / 1000.0;
  }
  for (auto& [id, values] : wait) {
    ModelActivity& m = model(id);
    m.wait_samples = static_cast<int64_t>(values.size());
    m.wait_p50_s = Quantile(values, 0.5) / 1000.0;
    m.wait_p95_s = Quantile(values, 0.95) / 1000.0;
  }
  for (auto& [id, m] : models) s.models.push_back(std::move(m));

  std::map<std::string, int64_t> per_account;
  for (const auto& d : dispatches_) {
    if (!in_scope(d.tenant)) continue;
    if (d.at_ms >= s.now_ms - 60'000 && !d.account.empty()) ++per_account[d.account];
    if (d.at_ms >= s.now_ms - s.share_window_ms && !d.tenant.empty()) {
      TenantActivity& t = tenants[d.tenant];
      ++t.dispatched_recently;
    }
  }
  for (const auto& [id, n] : per_account) s.accounts.push_back({id, n});
  for (auto& [id, t] : tenants) {
    t.tenant = id;
    s.tenants.push_back(std::move(t));
  }
  for (const auto& [id, b] : batches_) {
    if (!in_scope(b.tenant)) continue;
    s.batches.push_back({id, b.tenant, b.first_ms, b.last_ms, b.failures_by_category});
  }
  std::sort(s.batches.begin(), s.batches.end(),
            [](const auto& a, const auto& b) { return a.first_ms > b.first_ms; });
  return s;
}

}  // namespace reelq::scheduler
