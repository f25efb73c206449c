// reelq-scheduler: parses flags and config, publishes the catalogue to Redis, serves the gRPC
// API (with health checking and reflection), and runs dispatch, the reaper and the event hub.
#include <csignal>
#include <fstream>
#include <future>
#include <iostream>
#include <sstream>
#include <thread>

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>

#include "reelq/common/config.h"
#include "reelq/common/http_client.h"
#include "reelq/common/logging.h"
#include "reelq/common/metrics.h"
#include "reelq/common/spawn.h"
#include "reelq/queue/auth_store.h"
#include "reelq/scheduler/activity.h"
#include "reelq/scheduler/admin_api.h"
#include "reelq/scheduler/admission.h"
#include "reelq/scheduler/authenticator.h"
#include "reelq/scheduler/dashboard.h"
#include "reelq/scheduler/dispatcher.h"
#include "reelq/scheduler/grpc_services.h"
#include "reelq/scheduler/queue_settings.h"
#include "reelq/scheduler/webhooks.h"
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

// Reads a PEM file named by `key`; the error names the key, never the contents.
Result<std::string> ReadPem(const std::string& path, const std::string& key) {
  std::ifstream in(path);
  std::stringstream contents;
  if (in) contents << in.rdbuf();
  if (!in || contents.str().empty()) {
    return MakeError(ErrorCategory::kInvalidRequest,
                     "scheduler." + key + ": cannot read PEM file " + path);
  }
  return contents.str();
}

using BioPtr = std::unique_ptr<BIO, decltype(&BIO_free)>;
using X509Ptr = std::unique_ptr<X509, decltype(&X509_free)>;
using KeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;

BioPtr PemBio(const std::string& pem) {
  return BioPtr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
}
X509Ptr ReadCertificate(const std::string& pem) {
  auto bio = PemBio(pem);
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), &X509_free);
  ERR_clear_error();
  return cert;
}
KeyPtr ReadPrivateKey(const std::string& pem) {
  auto bio = PemBio(pem);
  KeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr), &EVP_PKEY_free);
  ERR_clear_error();
  return key;
}

// gRPC reports a certificate or key it cannot use only as a port it could not bind: checked here
// first, so the error names the file.
Result<void> CheckPem(const std::string& pem, const std::string& key, const std::string& path,
                      bool private_key) {
  const bool ok = private_key ? ReadPrivateKey(pem) != nullptr : ReadCertificate(pem) != nullptr;
  if (ok) return {};
  return MakeError(ErrorCategory::kInvalidRequest,
                   "scheduler." + key + ": " + path + " holds no PEM " +
                       (private_key ? "private key" : "certificate") +
                       " OpenSSL can read (unencrypted, -----BEGIN ...----- blocks)");
}

// Whether the private key belongs to the certificate (a key from another pair is refused by the
// TLS handshake only, with a listen failure that names neither file).
Result<void> CheckPair(const std::string& cert_pem, const std::string& key_pem,
                       const scheduler::Settings& settings) {
  auto cert = ReadCertificate(cert_pem);
  auto key = ReadPrivateKey(key_pem);
  const bool matches = cert && key && X509_check_private_key(cert.get(), key.get()) == 1;
  ERR_clear_error();
  if (matches) return {};
  return MakeError(ErrorCategory::kInvalidRequest,
                   "scheduler.tls_key_file: the key in " + settings.tls_key_file +
                       " does not belong to the certificate in " + settings.tls_cert_file);
}

// Plaintext, TLS, or mutual TLS (a client CA file): scheduler.tls_*.
Result<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials(
    const scheduler::Settings& settings) {
  if (settings.tls_cert_file.empty()) return grpc::InsecureServerCredentials();
  auto cert = ReadPem(settings.tls_cert_file, "tls_cert_file");
  if (!cert) return std::unexpected(cert.error());
  auto key = ReadPem(settings.tls_key_file, "tls_key_file");
  if (!key) return std::unexpected(key.error());
  for (auto checked : {CheckPem(*cert, "tls_cert_file", settings.tls_cert_file, false),
                       CheckPem(*key, "tls_key_file", settings.tls_key_file, true),
                       CheckPair(*cert, *key, settings)}) {
    if (!checked) return std::unexpected(checked.error());
  }
  grpc::SslServerCredentialsOptions options(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  options.pem_key_cert_pairs.push_back({*key, *cert});
  if (!settings.tls_client_ca_file.empty()) {
    auto ca = ReadPem(settings.tls_client_ca_file, "tls_client_ca_file");
    if (!ca) return std::unexpected(ca.error());
    if (auto checked = CheckPem(*ca, "tls_client_ca_file", settings.tls_client_ca_file, false);
        !checked) {
      return std::unexpected(checked.error());
    }
    options.pem_root_certs = *ca;
    options.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(options);
}

awaitable<int> Main(Flags /*flags*/, config::Document doc, scheduler::Settings settings,
                    scheduler::AuthSettings auth_settings, providers::Catalogue catalogue,
                    scheduler::WebhookSettings webhook_settings) {
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
  auto dispatch_wake = co_await redis::Connect(executor, redis_settings->options);
  if (!connection || !blocking || !dispatch_wake) {
    spdlog::error("cannot reach redis: {}", (!connection ? connection.error()
                                             : !blocking ? blocking.error()
                                                         : dispatch_wake.error())
                                                .message);
    co_return 3;
  }
  queue::JobStore store(*connection, redis_settings->prefix, clock);
  if (auto synced = co_await store.SyncSettings(scheduler::ToQueueSettings(catalogue, settings));
      !synced) {
    spdlog::error("{}", synced.error().message);
    co_return 2;
  }
  if (auto advice = co_await store.AdviseOnRedisSettings(); !advice.empty()) {
    spdlog::warn("{}", advice);
  }
  queue::AuthStore auth_store(*connection, redis_settings->prefix);
  // Weights an admin set (reelq admin weight) outlive the configured ones just published.
  if (auto applied = co_await auth_store.ApplyWeights(); !applied) {
    spdlog::error("{}", applied.error().message);
    co_return 2;
  }
  auto credentials = ServerCredentials(settings);
  if (!credentials) {
    spdlog::error("{}", credentials.error().message);
    co_return 2;
  }
  scheduler::Authenticator authenticator(std::move(auth_settings), &auth_store, clock);

  scheduler::AdmissionLimits limits;
  limits.max_prompt_bytes = settings.max_prompt_bytes;
  limits.max_image_bytes = settings.max_image_bytes;
  scheduler::Admission admission(catalogue, limits, clock);
  // With redis.wait_replicas, submissions write on a connection of their own: WAIT holds up
  // every command pipelined behind it, and dispatch must not queue behind a slow replica.
  redis::ConnectionPtr submit_connection = *connection;
  if (redis_settings->wait_replicas > 0) {
    auto own = co_await redis::Connect(executor, redis_settings->options);
    if (!own) {
      spdlog::error("cannot reach redis: {}", own.error().message);
      co_return 3;
    }
    submit_connection = *own;
  }
  queue::JobStore submit_store(submit_connection, redis_settings->prefix, clock);
  queue::WalletStore wallet_store(*connection, redis_settings->prefix);
  // Top-ups and limits wait for the replicas as submits do, on the connection that wrote them.
  queue::WalletStore admin_wallet_store(submit_connection, redis_settings->prefix);
  admin_wallet_store.RequireReplicas(redis_settings->wait_replicas, redis_settings->wait_timeout);
  scheduler::JobApi api(store, admission, settings, objects->get(), clock, &auth_store,
                        &wallet_store);
  api.RequireReplicas(submit_store, submit_connection, redis_settings->wait_replicas,
                      redis_settings->wait_timeout);
  scheduler::Dispatcher dispatcher(store, settings);
  api.OnSubmitted([&dispatcher, executor] { asio::post(executor, [&] { dispatcher.Wake(); }); });
  scheduler::EventHub events(store, *blocking);

  scheduler::JobServiceImpl job_service(executor, api, events, settings, authenticator);
  scheduler::ModelApi model_api(store, catalogue, settings, clock);
  scheduler::ModelServiceImpl model_service(executor, model_api, authenticator);
  scheduler::AdminApi admin_api(auth_store, authenticator, settings, clock, &admin_wallet_store);
  scheduler::AdminServiceImpl admin_service(executor, admin_api, authenticator);
  // Webhooks: every scheduler delivers (a claimed delivery is leased, so they share the work).
  queue::WebhookStore webhook_store(*connection, redis_settings->prefix);
  scheduler::WebhookGuard webhook_guard(webhook_settings);
  scheduler::WebhookSecrets webhook_secrets(webhook_store, webhook_settings.secret,
                                            authenticator.enabled(), clock);
  api.EnableWebhooks(&webhook_guard, &webhook_store);
  admin_api.EnableWebhooks(&webhook_secrets);
  scheduler::WebhookDeliverer deliverer(webhook_store, webhook_secrets, webhook_settings,
                                        scheduler::MakeWebhookHttpClient(executor, webhook_guard),
                                        clock);
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int bound_port = 0;
  builder.AddListeningPort(settings.listen, *credentials, &bound_port);
  builder.SetMaxReceiveMessageSize(settings.max_message_bytes);
  builder.RegisterService(&job_service);
  builder.RegisterService(&model_service);
  builder.RegisterService(&admin_service);
  auto server = builder.BuildAndStart();
  if (!server || bound_port == 0) {
    spdlog::error("cannot listen on {} (scheduler.listen)", settings.listen);
    co_return 2;
  }
  spdlog::info("scheduler serving reelq.v1 on {} (port {}; {}, authentication {})", settings.listen,
               bound_port,
               settings.tls_cert_file.empty()        ? "plaintext"
               : settings.tls_client_ca_file.empty() ? "TLS"
                                                     : "mutual TLS",
               authenticator.enabled() ? "on" : "off");

  scheduler::Activity activity(store, clock);
  auto dashboard_models = scheduler::DashboardModelsOf(model_api);
  std::unique_ptr<scheduler::Dashboard> dashboard;
  if (!settings.dashboard_listen.empty()) {
    scheduler::DashboardOptions options;
    options.listen = settings.dashboard_listen;
    options.default_weight = settings.default_weight;
    options.tenant_weights = settings.tenant_weights;
    if (authenticator.enabled()) {
      options.resolve_token =
          [&authenticator](std::string token) -> awaitable<Result<scheduler::DashboardPrincipal>> {
        auto who = co_await authenticator.Authenticate(std::move(token));
        if (!who) co_return std::unexpected(who.error());
        co_return scheduler::DashboardPrincipal{.tenant = who->tenant, .admin = who->is_admin};
      };
    }
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
  } else if (metrics_server.error().category == ErrorCategory::kInvalidRequest) {
    // An address that can never be bound (a host that does not resolve): without /healthz a
    // liveness probe would restart the scheduler forever, so stop here, named.
    spdlog::error("scheduler.metrics_listen: {}", metrics_server.error().message);
    server->Shutdown();
    co_return 2;
  } else {
    // A bind failure (port in use) may pass; the scheduler runs without the endpoint.
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

  auto& expired_leases = registry
                             ->AddCounter("reelq_scheduler_leases_expired_total",
                                          "Leases this scheduler's reaper found expired and "
                                          "handed back (the worker died, froze or lost Redis)")
                             .Get();
  auto& reaper_failures = registry
                              ->AddCounter("reelq_scheduler_reaper_failures_total",
                                           "Reaper rounds that failed (Redis out of reach)")
                              .Get();
  auto& webhook_attempts = registry->AddCounter(
      "reelq_webhook_attempts_total",
      "Webhook delivery attempts this scheduler made, by outcome (delivered, retry, failed)",
      {"outcome"});
  auto& webhook_in_flight =
      registry->AddGauge("reelq_webhook_in_flight", "Webhook deliveries being attempted now").Get();
  registry->AddCollectHook([&] {
    for (auto [outcome, total] : {std::pair{"delivered", deliverer.delivered_total()},
                                  std::pair{"retry", deliverer.retried_total()},
                                  std::pair{"failed", deliverer.failed_total()}}) {
      auto& counter = webhook_attempts.WithLabels({outcome});
      counter.Inc(static_cast<double>(total) - counter.Value());
    }
    webhook_in_flight.Set(deliverer.in_flight());
  });
  registry->AddCollectHook([&] {
    expired_leases.Inc(static_cast<double>(dispatcher.expired_leases_total()) -
                       expired_leases.Value());
    reaper_failures.Inc(static_cast<double>(dispatcher.reaper_failures_total()) -
                        reaper_failures.Value());
  });

  SpawnOrDie(executor, "dispatch", dispatcher.RunDispatch());
  SpawnOrDie(executor, "reaper", dispatcher.RunReaper());
  SpawnOrDie(executor, "retention", dispatcher.RunRetention());
  SpawnOrDie(executor, "dispatch-wake", dispatcher.RunWakeListener(**dispatch_wake));
  SpawnOrDie(executor, "events", events.Run());
  if (webhook_settings.deliver) SpawnOrDie(executor, "webhooks", deliverer.Run());

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
  deliverer.Stop();
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
  if (auto ok = config::CheckListenAddress(
          settings->metrics_listen,
          flags.metrics_listen.empty() ? "scheduler.metrics_listen" : "--metrics-listen");
      !ok) {
    std::cerr << "reelq-scheduler: " << ok.error().message << "\n";
    return 2;
  }
  auto auth_settings = scheduler::ParseAuthSettings(*doc, config::ProcessEnvironment());
  if (!auth_settings) {
    std::cerr << "reelq-scheduler: " << auth_settings.error().message << "\n";
    return 2;
  }
  if (auto allowed = scheduler::CheckListenAllowed(*auth_settings, settings->listen); !allowed) {
    std::cerr << "reelq-scheduler: " << allowed.error().message << "\n";
    return 2;
  }
  if (!flags.dashboard_listen.empty()) settings->dashboard_listen = flags.dashboard_listen;
  auto catalogue = providers::ParseCatalogue(doc->root);
  if (!catalogue) {
    std::cerr << "reelq-scheduler: " << catalogue.error().message << "\n";
    return 2;
  }
  auto webhook_settings = scheduler::ParseWebhookSettings(*doc, config::ProcessEnvironment());
  if (!webhook_settings) {
    std::cerr << "reelq-scheduler: " << webhook_settings.error().message << "\n";
    return 2;
  }
  asio::io_context io(1);
  int exit_code = 1;
  asio::co_spawn(io,
                 Main(flags, *doc, *settings, std::move(*auth_settings), *catalogue,
                      std::move(*webhook_settings)),
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
