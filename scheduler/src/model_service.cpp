#include "reelq/scheduler/grpc_services.h"

#include "reelq/scheduler/grpc_auth.h"

#include <algorithm>

namespace reelq::scheduler {
namespace {

double Num(const std::map<std::string, std::string>& m, const std::string& key) {
  auto it = m.find(key);
  if (it == m.end()) return 0;
  try {
    return std::stod(it->second);
  } catch (...) {
    return 0;
  }
}

v1::AccountStats ToAccountStats(const queue::Stats::Account& a, int64_t now_ms) {
  v1::AccountStats s;
  s.set_account(a.id);
  auto it = a.fields.find("provider");
  if (it != a.fields.end()) s.set_provider(it->second);
  s.set_requests_per_minute(Num(a.fields, "rpm"));
  // The rate dispatch uses now: a learned lower rate climbs back to the configured one (the
  // same formula as effective_rpm in queue/lua/common.lua).
  const double rpm = Num(a.fields, "rpm");
  double effective = rpm;
  const double learned = Num(a.fields, "learned_rpm");
  if (learned > 0 && learned < rpm) {
    const double since = std::max(0.0, static_cast<double>(now_ms) - Num(a.fields, "learned_at"));
    effective = std::min(rpm, learned + since * rpm / 600000.0);
  }
  s.set_learned_requests_per_minute(effective);
  s.set_max_concurrent(static_cast<uint32_t>(Num(a.fields, "max_concurrent")));
  s.set_in_flight(static_cast<uint32_t>(Num(a.fields, "in_flight")));
  s.set_daily_cap(static_cast<uint32_t>(Num(a.fields, "daily_cap")));
  s.set_used_today(static_cast<uint32_t>(Num(a.fields, "used_today")));
  const double cooldown_until = Num(a.fields, "cooldown_until");
  s.set_cooling_down(cooldown_until > static_cast<double>(now_ms));
  s.set_cooldown_remaining_seconds(
      std::max(0.0, (cooldown_until - static_cast<double>(now_ms)) / 1000.0));
  s.set_rate_limited_total(static_cast<uint64_t>(Num(a.fields, "rate_limited")));
  s.set_polls_per_minute(Num(a.fields, "ppm"));
  return s;
}

// A per-model depth counter (queue/lua/common.lua, depth_add). Clamped: jobs that were in flight
// before the counters existed decrement them when they end.
uint64_t Depth(const std::map<std::string, std::string>& fields, const std::string& key) {
  return static_cast<uint64_t>(std::max(0.0, Num(fields, key)));
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

ModelServiceImpl::ModelServiceImpl(asio::any_io_executor io, queue::JobStore& store,
                                   const providers::Catalogue& catalogue, const Settings& settings,
                                   Authenticator& auth)
    : io_(std::move(io)), store_(store), catalogue_(catalogue), settings_(settings), auth_(auth) {}

grpc::ServerUnaryReactor* ModelServiceImpl::ListModels(grpc::CallbackServerContext* context,
                                                       const v1::ListModelsRequest* /*request*/,
                                                       v1::ListModelsResponse* response) {
  auto* reactor = context->DefaultReactor();
  asio::co_spawn(
      io_,
      [](queue::JobStore& store, const providers::Catalogue& catalogue,
         v1::ListModelsResponse* response, Authenticator& auth,
         std::string authorization) -> awaitable<grpc::Status> {
        auto who = co_await auth.AuthenticateHeader(std::move(authorization));
        if (!who) co_return AuthStatus(who.error());
        auto stats = co_await store.GetStats();
        if (!stats) co_return ToGrpcStatus(stats.error());
        const int64_t now = NowMs();
        for (const auto& m : catalogue.models) {
          auto* info = response->add_models();
          info->set_id(m.id);
          info->set_provider(m.provider);
          info->set_upstream_model(m.upstream_model);
          for (int d : m.durations) info->add_durations(static_cast<uint32_t>(d));
          info->set_max_clip_seconds(static_cast<uint32_t>(m.max_clip_seconds));
          for (const auto& a : m.aspect_ratios) info->add_aspect_ratios(a);
          for (const auto& r : m.resolutions) info->add_resolutions(r);
          info->set_max_shots(static_cast<uint32_t>(m.max_shots));
          info->set_audio(m.audio);
          info->set_price_per_second(m.price_per_second);
          info->set_latency_estimate_seconds(m.latency.p50_seconds);
          for (const auto& live : stats->models) {
            if (live.id != m.id) continue;
            if (Num(live.fields, "lat") > 0) {
              info->set_latency_estimate_seconds(Num(live.fields, "lat"));
            }
            info->set_succeeded(static_cast<uint64_t>(Num(live.fields, "succeeded")));
            info->set_failed(static_cast<uint64_t>(Num(live.fields, "failed")));
            info->set_queue_depth(Depth(live.fields, "q_pending"));
            info->set_dispatched(Depth(live.fields, "q_dispatched"));
            info->set_in_flight(Depth(live.fields, "q_running"));
          }
          for (const auto* account : catalogue.AccountsFor(m)) {
            for (const auto& a : stats->accounts) {
              if (a.id == account->id) *info->add_accounts() = ToAccountStats(a, now);
            }
          }
        }
        co_return grpc::Status::OK;
      }(store_, catalogue_, response, auth_, AuthorizationOf(*context)),
      [reactor](std::exception_ptr error, grpc::Status status) {
        reactor->Finish(error ? grpc::Status(grpc::StatusCode::INTERNAL, "internal error")
                              : status);
      });
  return reactor;
}

grpc::ServerUnaryReactor* ModelServiceImpl::GetStats(grpc::CallbackServerContext* context,
                                                     const v1::GetStatsRequest* /*request*/,
                                                     v1::GetStatsResponse* response) {
  auto* reactor = context->DefaultReactor();
  asio::co_spawn(
      io_,
      [](queue::JobStore& store, const Settings& settings, v1::GetStatsResponse* response,
         Authenticator& auth, std::string authorization) -> awaitable<grpc::Status> {
        auto who = co_await auth.AuthenticateHeader(std::move(authorization));
        if (!who) co_return AuthStatus(who.error());
        auto stats = co_await store.GetStats();
        if (!stats) co_return ToGrpcStatus(stats.error());
        const int64_t now = NowMs();
        uint64_t pending = 0;
        for (const auto& [tenant, count] : stats->tenant_pending) {
          if (!who->CanSee(tenant)) continue;  // a tenant sees only its own queue
          auto* t = response->add_tenants();
          t->set_tenant(tenant);
          auto w = settings.tenant_weights.find(tenant);
          t->set_weight(w == settings.tenant_weights.end() ? settings.default_weight : w->second);
          t->set_pending(static_cast<uint64_t>(count));
          pending += static_cast<uint64_t>(count);
        }
        for (const auto& a : stats->accounts) *response->add_accounts() = ToAccountStats(a, now);
        // Retry waits are not counted per tenant: only an admin sees them in `pending`.
        response->set_pending(pending +
                              (who->is_admin ? static_cast<uint64_t>(stats->delayed) : 0));
        response->set_dispatched(static_cast<uint64_t>(stats->ready));
        response->set_running(static_cast<uint64_t>(stats->leased));
        response->set_workers(static_cast<uint64_t>(stats->workers));
        auto models = stats->models;
        std::sort(models.begin(), models.end(),
                  [](const auto& a, const auto& b) { return a.id < b.id; });
        for (const auto& m : models) {
          auto* depth = response->add_models();
          depth->set_model(m.id);
          depth->set_queue_depth(Depth(m.fields, "q_pending"));
          depth->set_dispatched(Depth(m.fields, "q_dispatched"));
          depth->set_in_flight(Depth(m.fields, "q_running"));
        }
        co_return grpc::Status::OK;
      }(store_, settings_, response, auth_, AuthorizationOf(*context)),
      [reactor](std::exception_ptr error, grpc::Status status) {
        reactor->Finish(error ? grpc::Status(grpc::StatusCode::INTERNAL, "internal error")
                              : status);
      });
  return reactor;
}

}  // namespace reelq::scheduler
