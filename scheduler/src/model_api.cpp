#include "reelq/scheduler/model_api.h"

#include <algorithm>

namespace reelq::scheduler {

ModelApi::ModelApi(queue::JobStore& store, const providers::Catalogue& catalogue,
                   const Settings& settings, ClockPtr clock)
    : store_(store), catalogue_(catalogue), settings_(settings), clock_(std::move(clock)) {}

awaitable<Result<v1::ListModelsResponse>> ModelApi::ListModels() {
  auto stats = co_await store_.GetStats();
  if (!stats) co_return std::unexpected(stats.error());
  co_return ToModels(*stats, clock_->NowMs());
}

awaitable<Result<v1::ListModelsResponse>> ModelApi::ListModels(Principal who) {
  auto response = co_await ListModels();
  if (response && !who.is_admin && !who.open) {
    for (auto& model : *response->mutable_models()) model.clear_accounts();
  }
  co_return response;
}

awaitable<Result<v1::GetStatsResponse>> ModelApi::GetStats() {
  auto stats = co_await store_.GetStats();
  if (!stats) co_return std::unexpected(stats.error());
  co_return ToStats(*stats, clock_->NowMs());
}

awaitable<Result<v1::GetStatsResponse>> ModelApi::GetStats(Principal who) {
  auto stats = co_await store_.GetStats();
  if (!stats) co_return std::unexpected(stats.error());
  auto response = ToStats(*stats, clock_->NowMs());
  if (who.is_admin) co_return response;
  if (!who.open) response.clear_accounts();  // the operator's (see ListModels)
  auto* tenants = response.mutable_tenants();
  uint64_t pending = 0;
  for (int i = tenants->size() - 1; i >= 0; --i) {
    if (who.CanSee(tenants->Get(i).tenant())) {
      pending += tenants->Get(i).pending();
    } else {
      tenants->DeleteSubrange(i, 1);
    }
  }
  response.set_pending(pending);
  co_return response;
}

v1::AccountStats ModelApi::ToAccountStats(const queue::Stats::Account& a, int64_t now_ms) {
  v1::AccountStats s;
  s.set_account(a.id);
  s.set_provider(a.provider);
  s.set_requests_per_minute(a.requests_per_minute);
  s.set_learned_requests_per_minute(a.effective_requests_per_minute);
  s.set_max_concurrent(static_cast<uint32_t>(a.max_concurrent));
  s.set_learned_max_concurrent(static_cast<uint32_t>(a.effective_max_concurrent));
  s.set_in_flight(static_cast<uint32_t>(a.in_flight));
  s.set_daily_cap(static_cast<uint32_t>(a.daily_cap));
  s.set_used_today(static_cast<uint32_t>(a.used_today));
  const int64_t cooldown_left_ms = std::max<int64_t>(0, a.cooldown_until_ms - now_ms);
  s.set_cooling_down(cooldown_left_ms > 0);
  s.set_cooldown_remaining_seconds(static_cast<double>(cooldown_left_ms) / 1000.0);
  s.set_rate_limited_total(static_cast<uint64_t>(a.rate_limited_total));
  s.set_polls_per_minute(a.polls_per_minute);
  return s;
}

v1::ListModelsResponse ModelApi::ToModels(const queue::Stats& stats, int64_t now_ms) const {
  v1::ListModelsResponse response;
  for (const auto& m : catalogue_.models) {
    auto* info = response.add_models();
    info->set_id(m.id);
    info->set_provider(m.provider);
    info->set_upstream_model(m.upstream_model);
    for (int d : m.durations) info->add_durations(static_cast<uint32_t>(d));
    info->set_max_clip_seconds(static_cast<uint32_t>(m.max_clip_seconds));
    for (const auto& a : m.aspect_ratios) info->add_aspect_ratios(a);
    for (const auto& r : m.resolutions) info->add_resolutions(r);
    info->set_max_shots(static_cast<uint32_t>(m.max_shots));
    info->set_audio(m.audio);
    info->set_first_frame_input(m.inputs.first_frame);
    info->set_last_frame_input(m.inputs.last_frame);
    info->set_max_reference_images(static_cast<uint32_t>(m.inputs.reference_images));
    info->set_price_per_second(m.price_per_second);
    info->set_latency_estimate_seconds(m.latency.p50_seconds);
    auto live = std::find_if(stats.models.begin(), stats.models.end(),
                             [&](const auto& s) { return s.id == m.id; });
    if (live != stats.models.end()) {
      if (live->latency_estimate_seconds > 0) {
        info->set_latency_estimate_seconds(live->latency_estimate_seconds);
      }
      info->set_succeeded(static_cast<uint64_t>(live->succeeded));
      info->set_failed(static_cast<uint64_t>(live->failed));
      info->set_queue_depth(static_cast<uint64_t>(live->queue_depth));
      info->set_dispatched(static_cast<uint64_t>(live->dispatched));
      info->set_in_flight(static_cast<uint64_t>(live->in_flight));
    }
    for (const auto* account : catalogue_.AccountsFor(m)) {
      for (const auto& a : stats.accounts) {
        if (a.id == account->id) *info->add_accounts() = ToAccountStats(a, now_ms);
      }
    }
  }
  return response;
}

v1::GetStatsResponse ModelApi::ToStats(const queue::Stats& stats, int64_t now_ms) const {
  v1::GetStatsResponse response;
  for (const auto& [tenant, count] : stats.tenant_pending) {
    auto* t = response.add_tenants();
    t->set_tenant(tenant);
    // What dispatch uses: Redis's weights hash (the config's, or an admin's SetWeight since).
    auto live = stats.tenant_weights.find(tenant);
    auto w = settings_.tenant_weights.find(tenant);
    t->set_weight(live != stats.tenant_weights.end()    ? live->second
                  : w == settings_.tenant_weights.end() ? settings_.default_weight
                                                        : w->second);
    t->set_pending(static_cast<uint64_t>(count));
  }
  for (const auto& a : stats.accounts) *response.add_accounts() = ToAccountStats(a, now_ms);
  response.set_pending(static_cast<uint64_t>(stats.Pending()));
  response.set_dispatched(static_cast<uint64_t>(stats.ready));
  response.set_running(static_cast<uint64_t>(stats.leased));
  response.set_workers(static_cast<uint64_t>(stats.workers));
  auto models = stats.models;
  std::sort(models.begin(), models.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  for (const auto& m : models) {
    auto* depth = response.add_models();
    depth->set_model(m.id);
    depth->set_queue_depth(static_cast<uint64_t>(m.queue_depth));
    depth->set_dispatched(static_cast<uint64_t>(m.dispatched));
    depth->set_in_flight(static_cast<uint64_t>(m.in_flight));
  }
  return response;
}

}  // namespace reelq::scheduler
