// reelq-worker: parses flags and config, wires the adapters, the object store and Redis into a
// Worker, and drains on SIGTERM.
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <iostream>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "reelq/common/config.h"
#include "reelq/common/http_client.h"
#include "reelq/common/logging.h"
#include "reelq/common/metrics.h"
#include "reelq/common/spawn.h"
#include "reelq/providers/factory.h"
#include "reelq/storage/factory.h"
#include "reelq/worker/download_guard.h"
#include "reelq/worker/worker.h"

using namespace reelq;

namespace {

struct Flags {
  std::string config;
  std::string id;
  int max_in_flight = 0;
  std::string metrics_listen;
  std::string log_level = "info";
  bool log_json = false;
};

awaitable<int> Main(Flags /*flags*/, config::Document doc, worker::Settings settings,
                    providers::Catalogue catalogue) {
  auto executor = co_await asio::this_coro::executor;
  const auto env = config::ProcessEnvironment();
  auto redis_settings = config::ParseRedis(doc, env);
  if (!redis_settings) {
    spdlog::error("{}", redis_settings.error().message);
    co_return 2;
  }
  auto clock = std::make_shared<SystemClock>();
  http::ClientOptions http_options;
  http_options.max_idle_connections_per_host =
      static_cast<size_t>(settings.http_idle_connections_per_host);
  // The hosts the config names are trusted; what a provider's answer names must be public.
  std::vector<std::string> configured_hosts;
  for (const auto& account : catalogue.accounts) {
    if (auto host = http::UrlHost(account.base_url)) configured_hosts.push_back(*host);
  }
  if (const auto s3 = doc.root["storage"]["s3"]; s3 && s3["endpoint"]) {
    if (auto host = http::UrlHost(s3["endpoint"].as<std::string>(""))) {
      configured_hosts.push_back(*host);
      // Virtual-host addressing reaches the bucket at <bucket>.<endpoint host>.
      const auto bucket = s3["bucket"] ? s3["bucket"].as<std::string>("") : std::string();
      if (!bucket.empty()) configured_hosts.push_back(bucket + "." + *host);
    }
  }
  auto guard =
      std::make_shared<worker::DownloadGuard>(settings.download_allow, std::move(configured_hosts));
  http_options.refuse_address = [guard](std::string_view host, const asio::ip::address& address) {
    return guard->Refusal(host, address);
  };
  auto http = http::MakeClient(executor, http_options);

  worker::RunnerDeps deps;
  deps.settings = settings;
  deps.clock = clock;
  deps.catalogue = &catalogue;
  // An account this worker cannot serve (its key not mounted here, say, in a rollout) is said
  // loudly, and keeps /readyz at 503: its jobs that reach this worker are handed back for another
  // (attempt.h, HandBackForCapableWorker), which serves them only if some worker can.
  std::vector<std::string> unusable;
  for (const auto& account : catalogue.accounts) {
    auto provider = providers::MakeProvider(account, http, clock);
    if (!provider) {
      spdlog::error(
          "account {} cannot be served by worker {}: {}. Its jobs that reach this worker are "
          "handed back for another worker",
          account.id, settings.worker_id, provider.error().message);
      unusable.push_back(account.id);
      continue;
    }
    deps.providers[account.id] = *provider;
  }
  for (const auto& model : catalogue.models) {
    std::vector<std::string> accounts;  // those that may run it
    bool servable = false;
    for (const auto& account : catalogue.accounts) {
      if (account.provider != model.provider) continue;
      if (!account.models.empty() && std::find(account.models.begin(), account.models.end(),
                                               model.id) == account.models.end()) {
        continue;
      }
      accounts.push_back(account.id);
      servable = servable || deps.providers.contains(account.id);
    }
    if (!accounts.empty() && !servable) {
      spdlog::error("model {} cannot be run by worker {}: none of its accounts ({}) is usable here",
                    model.id, settings.worker_id, fmt::join(accounts, ", "));
    }
  }
  auto store = storage::MakeStore(doc.root["storage"], executor, http, doc.base_dir);
  if (!store) {
    spdlog::error("{}", store.error().message);
    co_return 2;
  }
  deps.objects = store->get();

  auto connection = co_await redis::Connect(executor, redis_settings->options);
  auto blocking = co_await redis::Connect(executor, redis_settings->options);
  // Its own connection: it blocks until a held job is cancelled.
  auto cancel_blocking = co_await redis::Connect(executor, redis_settings->options);
  if (!connection || !blocking || !cancel_blocking) {
    spdlog::error("cannot reach redis: {}",
                  (!connection ? connection.error()
                               : (!blocking ? blocking.error() : cancel_blocking.error()))
                      .message);
    co_return 3;
  }
  queue::JobStore job_store(*connection, redis_settings->prefix, clock);
  if (auto schema = co_await job_store.CheckSchema(); !schema) {
    spdlog::error("{}", schema.error().message);
    co_return 2;
  }
  deps.store = &job_store;

  auto registry = std::make_shared<metrics::Registry>();
  auto& in_flight_gauge =
      registry->AddGauge("reelq_worker_jobs_in_flight", "Jobs this worker drives now").Get();
  worker::RunnerMetrics runner_metrics(*registry);
  deps.metrics = &runner_metrics;
  metrics::MetricsServerOptions metrics_options;
  metrics_options.listen = settings.metrics_listen;
  auto metrics_server = metrics::MetricsServer::Start(executor, registry, metrics_options);
  if (metrics_server) {
    spdlog::info("worker={} metrics on port {}", settings.worker_id, (*metrics_server)->port());
    if (unusable.empty()) {
      (*metrics_server)->SetReady(true);
    } else {
      (*metrics_server)
          ->SetReady(false, fmt::format("accounts not usable on this worker: {}",
                                        fmt::join(unusable, ", ")));
    }
  } else if (metrics_server.error().category == ErrorCategory::kInvalidRequest) {
    // An address that can never be bound (a host that does not resolve): without /healthz a
    // liveness probe would restart the worker forever, so stop here, named.
    spdlog::error("worker.metrics_listen: {}", metrics_server.error().message);
    co_return 2;
  } else {
    // A bind failure (port in use) may pass; the worker runs without the endpoint.
    spdlog::warn("metrics endpoint not started: {}", metrics_server.error().message);
  }

  worker::Worker worker(deps, *blocking, *cancel_blocking);
  auto& outcomes = registry->AddCounter("reelq_worker_job_outcomes_total",
                                        "How this worker's job runs ended: succeeded, retrying "
                                        "(the attempt failed, the job goes again), failed, "
                                        "stopped (lease lost, cancelled), handed_back (drain)",
                                        {"outcome"});
  registry->AddCollectHook([&outcomes, &worker] {
    const auto& c = worker.counters();
    const std::pair<const char*, double> now[] = {
        {"succeeded", static_cast<double>(c.succeeded)},
        {"retrying", static_cast<double>(c.retrying)},
        {"failed", static_cast<double>(c.failed)},
        {"stopped", static_cast<double>(c.stopped)},
        {"handed_back", static_cast<double>(c.handed_back)}};
    for (const auto& [outcome, value] : now) {
      auto& counter = outcomes.WithLabels({outcome});
      counter.Inc(value - counter.Value());
    }
  });
  asio::signal_set signals(executor, SIGTERM, SIGINT);
  signals.async_wait([&worker](const boost::system::error_code& ec, int signal) {
    if (!ec) {
      spdlog::info("signal {}: draining", signal);
      worker.Drain();
    }
  });
  asio::steady_timer gauge_timer(executor);
  SpawnOrDie(executor, "in-flight-gauge",
             [](asio::steady_timer& t, metrics::Gauge& g, worker::Worker& w) -> awaitable<void> {
               while (true) {
                 g.Set(static_cast<double>(w.in_flight()));
                 t.expires_after(std::chrono::seconds(1));
                 auto [ec] = co_await t.async_wait(use_nothrow_awaitable);
                 if (ec) co_return;
               }
             }(gauge_timer, in_flight_gauge, worker));
  spdlog::info("worker={} started: max_in_flight={} lease={}ms accounts={}", settings.worker_id,
               settings.max_in_flight, settings.lease.count(), deps.providers.size());
  co_await worker.Run();
  gauge_timer.cancel();
  signals.cancel();
  if (metrics_server) (*metrics_server)->Stop();
  (*connection)->Close();
  co_return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"reelq-worker: leases video generation jobs from Redis and runs them"};
  Flags flags;
  app.add_option("--config", flags.config, "YAML config file")->required();
  app.add_option("--id", flags.id, "Worker id (default: <hostname>-<pid>)");
  app.add_option("--max-in-flight", flags.max_in_flight, "Override worker.max_in_flight")
      ->check(CLI::PositiveNumber);
  app.add_option("--metrics-listen", flags.metrics_listen, "Override worker.metrics_listen");
  app.add_option("--log-level", flags.log_level, "trace, debug, info, warn, error");
  app.add_flag("--log-json", flags.log_json, "JSON log lines");
  CLI11_PARSE(app, argc, argv);

  InitLogging("worker", flags.log_level, flags.log_json);
  auto doc = config::Load(flags.config, config::ProcessEnvironment());
  if (!doc) {
    std::cerr << "reelq-worker: " << doc.error().message << "\n";
    return 2;
  }
  auto settings = worker::ParseSettings(*doc);
  if (!settings) {
    std::cerr << "reelq-worker: " << settings.error().message << "\n";
    return 2;
  }
  if (flags.id.empty()) {
    char host[256] = {};
    gethostname(host, sizeof(host) - 1);
    flags.id = std::string(host) + "-" + std::to_string(getpid());
  }
  if (auto valid = worker::ValidateWorkerId(flags.id); !valid) {
    std::cerr << "reelq-worker: " << valid.error().message << "\n";
    return 2;
  }
  settings->worker_id = flags.id;
  if (flags.max_in_flight > 0) settings->max_in_flight = flags.max_in_flight;
  if (!flags.metrics_listen.empty()) settings->metrics_listen = flags.metrics_listen;
  if (auto ok = config::CheckListenAddress(settings->metrics_listen, flags.metrics_listen.empty()
                                                                         ? "worker.metrics_listen"
                                                                         : "--metrics-listen");
      !ok) {
    std::cerr << "reelq-worker: " << ok.error().message << "\n";
    return 2;
  }
  auto catalogue = providers::ParseCatalogue(doc->root);
  if (!catalogue) {
    std::cerr << "reelq-worker: " << catalogue.error().message << "\n";
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
                       spdlog::error("worker stopped by an exception: {}", e.what());
                     }
                     exit_code = 1;
                   } else {
                     exit_code = code;
                   }
                   io.stop();
                 });
  io.run();
  return exit_code;
}
