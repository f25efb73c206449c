// reelq-scheduler: parses flags and config, publishes the catalogue to Redis, serves the gRPC
// API (with health checking and reflection), and runs dispatch, the reaper and the event hub.
#include <csignal>
#include <future>
#include <iostream>
#include <thread>

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "reelq/common/config.h"
#include "reelq/common/http_client.h"
#include "reelq/common/logging.h"
#include "reelq/common/metrics.h"
#include "reelq/scheduler/activity.h"
#include "reelq/scheduler/admission.h"
#include "reelq/scheduler/dashboard.h"
#include "reelq/scheduler/dispatcher.h"
#include "reelq/scheduler/grpc_services.h"
#include "reelq/storage/factory.h"

using namespace reelq;

namespace {

struct Flags {
  std::string config;
  std::string listen;
  std::string metrics_listen;
  std::string dashboard_listen;
  std::string log_level = "info";
  bool log_json = false;
};

queue::QueueSettings ToQueueSettings(const providers::Catalogue& catalogue,
                                     const scheduler::Settings& settings) {
  queue::QueueSettings q;
  for (const auto& m : catalogue.models) {
    queue::ModelSetting ms;
    ms.id = m.id;
    ms.latency_seed_seconds = m.latency.p50_seconds;
    for (const auto* a : catalogue.AccountsFor(m)) ms.accounts.push_back(a->id);
    q.models.push_back(std::move(ms));
  }
  for (const auto& a : catalogue.accounts) {
    q.accounts.push_back({a.id, a.provider, a.requests_per_minute, a.max_concurrent, a.daily_cap,
                          a.polls_per_minute});
  }
  q.default_weight = settings.default_weight;
  q.tenant_weights = settings.tenant_weights;
  return q;
}

awaitable<int> Main(Flags /*flags*/, config::Document doc, scheduler::Settings settings,
                    providers::Catalogue catalogue) {
  auto executor = co_await asio::this_coro::executor;
  const auto env = config::ProcessEnvironment();
  auto redis_settings = config::ParseRedis(doc, env);
  if (!redis_settings) {
    spdlog::error("{}", redis_settings.error().message);
    co_return 2;
  }
  auto clock = std::make_shared<SystemClock>();
  auto http = http::MakeClient(executor);
  auto objects = storage::MakeStore(doc.root["storage"], executor, http, doc.base_dir);
  if (!objects) {
    spdlog::error("{}", objects.error().message);
    co_return 2;
  }
  auto connection = co_await redis::Connect(executor, redis_settings->options);
  auto blocking = co_await redis::Connect(executor, redis_settings->options);
  if (!connection || !blocking) {
    spdlog::error("cannot reach redis at {}:{}: {}", redis_settings->options.host,
                  redis_settings->options.port,
                  (!connection ? connection.error() : blocking.error()).message);
    co_return 3;
  }
  queue::JobStore store(*connection, redis_settings->prefix, clock);
  if (auto synced = co_await store.SyncSettings(ToQueueSettings(catalogue, settings)); !synced) {
    spdlog::error("{}", synced.error().message);
    co_return 2;
  }

  scheduler::AdmissionLimits limits;
  limits.max_prompt_bytes = settings.max_prompt_bytes;
  scheduler::Admission admission(catalogue, limits, clock);
  scheduler::JobApi api(store, admission, settings, objects->get(), clock);
  scheduler::Dispatcher dispatcher(store, settings);
  api.OnSubmitted([&dispatcher, executor] { asio::post(executor, [&] { dispatcher.Wake(); }); });
  scheduler::EventHub events(store, *blocking);

  scheduler::JobServiceImpl job_service(executor, api, events, settings);
  scheduler::ModelServiceImpl model_service(executor, store, catalogue, settings);
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int bound_port = 0;
  builder.AddListeningPort(settings.listen, grpc::InsecureServerCredentials(), &bound_port);
  builder.SetMaxReceiveMessageSize(settings.max_message_bytes);
  builder.RegisterService(&job_service);
  builder.RegisterService(&model_service);
  auto server = builder.BuildAndStart();
  if (!server || bound_port == 0) {
    spdlog::error("cannot listen on {} (scheduler.listen)", settings.listen);
    co_return 2;
  }
  spdlog::info("scheduler serving reelq.v1 on {} (port {})", settings.listen, bound_port);

  scheduler::Activity activity(store, clock);
  auto dashboard_models =
      scheduler::DashboardModelsOverGrpc(executor, server->InProcessChannel({}));
  std::unique_ptr<scheduler::Dashboard> dashboard;
  if (!settings.dashboard_listen.empty()) {
    scheduler::DashboardOptions options;
    options.listen = settings.dashboard_listen;
    options.default_weight = settings.default_weight;
    options.tenant_weights = settings.tenant_weights;
    auto started = scheduler::Dashboard::Start(executor, api, *dashboard_models, activity, options);
    if (!started) {
      spdlog::error("{}", started.error().message);
      server->Shutdown();
      co_return 2;
    }
    dashboard = std::move(*started);
    spdlog::info("dashboard on {} (port {})", settings.dashboard_listen, dashboard->port());
  }

  auto registry = std::make_shared<metrics::Registry>();
  metrics::MetricsServerOptions metrics_options;
  metrics_options.listen = settings.metrics_listen;
  auto metrics_server = metrics::MetricsServer::Start(executor, registry, metrics_options);
  if (metrics_server) {
    spdlog::info("metrics on port {}", (*metrics_server)->port());
    (*metrics_server)->SetReady(true);
  } else {
    spdlog::warn("metrics endpoint not started: {}", metrics_server.error().message);
  }
  auto& dispatched_counter =
      registry->AddGauge("reelq_scheduler_dispatched_total", "Jobs this scheduler dispatched")
          .Get();
  auto& pending_gauge =
      registry
          ->AddGauge("reelq_queue_pending",
                     "Jobs waiting for dispatch, fleet-wide (pending plus waiting out a retry)")
          .Get();

  asio::co_spawn(executor, dispatcher.RunDispatch(), asio::detached);
  asio::co_spawn(executor, dispatcher.RunReaper(), asio::detached);
  asio::co_spawn(executor, events.Run(), asio::detached);

  asio::signal_set signals(executor, SIGTERM, SIGINT);
  asio::steady_timer ticker(executor);
  bool stopping = false;
  signals.async_wait([&](const boost::system::error_code& ec, int signal) {
    if (ec) return;
    spdlog::info("signal {}: stopping", signal);
    stopping = true;
    ticker.cancel();
  });
  while (!stopping) {
    dispatched_counter.Set(static_cast<double>(dispatcher.dispatched_total()));
    // Read from Redis so every scheduler reports the same queue; a failed read keeps the last.
    if (auto stats = co_await store.GetStats(); stats) {
      pending_gauge.Set(static_cast<double>(stats->Pending()));
    }
    ticker.expires_after(std::chrono::seconds(1));
    co_await ticker.async_wait(use_nothrow_awaitable);
  }
  // Shutdown runs off the io thread: calls still in flight need the io executor to finish, so
  // this coroutine keeps yielding to it until Shutdown returns.
  dispatcher.Stop();
  if (dashboard) dashboard->Stop();
  std::promise<void> shut;
  auto shut_future = shut.get_future();
  std::thread stopper([&server, &shut] {
    server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
    shut.set_value();
  });
  asio::steady_timer grace(executor);
  while (shut_future.wait_for(std::chrono::milliseconds(0)) != std::future_status::ready) {
    grace.expires_after(std::chrono::milliseconds(20));
    co_await grace.async_wait(use_nothrow_awaitable);
  }
  stopper.join();
  events.Stop();
  if (metrics_server) (*metrics_server)->Stop();
  (*connection)->Close();
  co_return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"reelq-scheduler: the reelq gRPC API, admission, dispatch and lease reaper"};
  Flags flags;
  app.add_option("--config", flags.config, "YAML config file")->required();
  app.add_option("--listen", flags.listen, "Override scheduler.listen (host:port)");
  app.add_option("--metrics-listen", flags.metrics_listen, "Override scheduler.metrics_listen");
  app.add_option("--dashboard-listen", flags.dashboard_listen,
                 "Override scheduler.dashboard_listen (host:port; the web dashboard)");
  app.add_option("--log-level", flags.log_level, "trace, debug, info, warn, error");
  app.add_flag("--log-json", flags.log_json, "JSON log lines");
  CLI11_PARSE(app, argc, argv);

  InitLogging("scheduler", flags.log_level, flags.log_json);
  auto doc = config::Load(flags.config, config::ProcessEnvironment());
  if (!doc) {
    std::cerr << "reelq-scheduler: " << doc.error().message << "\n";
    return 2;
  }
  auto settings = scheduler::ParseSettings(*doc);
  if (!settings) {
    std::cerr << "reelq-scheduler: " << settings.error().message << "\n";
    return 2;
  }
  if (!flags.listen.empty()) settings->listen = flags.listen;
  if (!flags.metrics_listen.empty()) settings->metrics_listen = flags.metrics_listen;
  if (!flags.dashboard_listen.empty()) settings->dashboard_listen = flags.dashboard_listen;
  auto catalogue = providers::ParseCatalogue(doc->root);
  if (!catalogue) {
    std::cerr << "reelq-scheduler: " << catalogue.error().message << "\n";
    return 2;
  }
  asio::io_context io(1);
  int exit_code = 1;
  asio::co_spawn(io, Main(flags, *doc, *settings, *catalogue),
                 [&](std::exception_ptr error, int code) {
                   if (error) {
                     try {
                       std::rethrow_exception(error);
                     } catch (const std::exception& e) {
                       spdlog::error("scheduler stopped by an exception: {}", e.what());
                     }
                   } else {
                     exit_code = code;
                   }
                   io.stop();
                 });
  io.run();
  return exit_code;
}
