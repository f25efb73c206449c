#include "dashboard_host.h"

#include <future>
#include <stdexcept>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "reelq/common/config.h"
#include "reelq/common/http_client.h"
#include "reelq/common/redis.h"
#include "reelq/providers/catalogue.h"
#include "reelq/queue/auth_store.h"
#include "reelq/queue/job_store.h"
#include "reelq/scheduler/activity.h"
#include "reelq/scheduler/admission.h"
#include "reelq/scheduler/job_api.h"
#include "reelq/scheduler/settings.h"
#include "reelq/storage/factory.h"

namespace reelq::testing {

struct DashboardHost::Parts {
  config::Document doc;
  scheduler::Settings settings;
  providers::Catalogue catalogue;
  ClockPtr clock = std::make_shared<SystemClock>();
  redis::ConnectionPtr connection;
  storage::ObjectStorePtr objects;
  std::unique_ptr<queue::JobStore> store;
  std::unique_ptr<queue::AuthStore> auth;  // who holds each batch id, as a scheduler with tokens
  std::unique_ptr<scheduler::Admission> admission;
  std::unique_ptr<scheduler::JobApi> api;
  std::unique_ptr<scheduler::Activity> activity;
  std::unique_ptr<scheduler::DashboardModels> models;
  std::unique_ptr<scheduler::Dashboard> dashboard;
  std::map<std::string, scheduler::DashboardPrincipal> tokens;
};

namespace {

awaitable<Result<scheduler::DashboardPrincipal>> Lookup(
    std::map<std::string, scheduler::DashboardPrincipal> tokens, std::string token) {
  // As when Redis is out of reach and the token's cache entry has expired.
  if (token == "tok-unreachable")
    co_return MakeError(ErrorCategory::kRetryable, "redis unreachable");
  auto it = tokens.find(token);
  if (it == tokens.end()) co_return MakeError(ErrorCategory::kAuthFailed, "unknown token");
  co_return it->second;
}

awaitable<std::string> Build(DashboardHost::Parts& p, std::string redis_host, int redis_port,
                             std::string channel_target) {
  auto executor = co_await asio::this_coro::executor;
  redis::Options options;
  options.host = redis_host;
  options.port = redis_port;
  auto connection = co_await redis::Connect(executor, options);
  if (!connection) co_return "redis: " + connection.error().message;
  p.connection = *connection;
  auto objects = storage::MakeStore(p.doc.root["storage"], executor, http::MakeClient(executor),
                                    p.doc.base_dir);
  if (!objects) co_return "storage: " + objects.error().message;
  p.objects = *objects;
  p.store = std::make_unique<queue::JobStore>(p.connection, E2eStack::kRedisPrefix, p.clock);
  p.admission =
      std::make_unique<scheduler::Admission>(p.catalogue, scheduler::AdmissionLimits{}, p.clock);
  p.auth = std::make_unique<queue::AuthStore>(p.connection, E2eStack::kRedisPrefix);
  p.api = std::make_unique<scheduler::JobApi>(*p.store, *p.admission, p.settings, p.objects.get(),
                                              p.clock, p.auth.get());
  p.activity = std::make_unique<scheduler::Activity>(*p.store, p.clock);
  p.models = scheduler::DashboardModelsOverGrpc(
      executor, grpc::CreateChannel(channel_target, grpc::InsecureChannelCredentials()));
  scheduler::DashboardOptions dashboard_options;
  dashboard_options.listen = "127.0.0.1:0";
  dashboard_options.resolve_token = [tokens = p.tokens](std::string token) {
    return Lookup(tokens, std::move(token));
  };
  auto dashboard =
      scheduler::Dashboard::Start(executor, *p.api, *p.models, *p.activity, dashboard_options);
  if (!dashboard) co_return "dashboard: " + dashboard.error().message;
  p.dashboard = std::move(*dashboard);
  co_return std::string();
}

}  // namespace

DashboardHost::DashboardHost(E2eStack& stack,
                             std::map<std::string, scheduler::DashboardPrincipal> tokens)
    : parts_(std::make_unique<Parts>()) {
  auto doc = config::Load(stack.config_path().string(), config::ProcessEnvironment());
  if (!doc) throw std::runtime_error("config: " + doc.error().message);
  parts_->doc = *doc;
  auto settings = scheduler::ParseSettings(*doc);
  if (!settings) throw std::runtime_error("settings: " + settings.error().message);
  parts_->settings = *settings;
  auto catalogue = providers::ParseCatalogue(doc->root);
  if (!catalogue) throw std::runtime_error("catalogue: " + catalogue.error().message);
  parts_->catalogue = *catalogue;
  parts_->tokens = std::move(tokens);

  std::promise<std::string> built;
  auto future = built.get_future();
  asio::co_spawn(
      io_,
      Build(*parts_, stack.options().redis_host, stack.redis().port(), stack.scheduler_address(0)),
      [&built](std::exception_ptr e, std::string error) {
        built.set_value(e ? "exception while building" : error);
      });
  thread_ = std::thread([this] {
    auto work = asio::make_work_guard(io_);
    io_.run();
  });
  const std::string error = future.get();
  if (!error.empty()) {
    io_.stop();
    thread_.join();
    throw std::runtime_error("in-process dashboard: " + error);
  }
  port_ = parts_->dashboard->port();
}

DashboardHost::~DashboardHost() {
  // Everything is destroyed on the io thread it lives on, then the thread ends.
  std::promise<void> torn_down;
  asio::post(io_, [this, &torn_down] {
    if (parts_->dashboard) parts_->dashboard->Stop();
    parts_->dashboard.reset();
    if (parts_->connection) parts_->connection->Close();
    torn_down.set_value();
  });
  torn_down.get_future().wait();
  io_.stop();
  thread_.join();
}

HttpReply HttpFetch(const std::string& method, int port, const std::string& target,
                    const std::map<std::string, std::string>& headers, const std::string& body) {
  namespace beast = boost::beast;
  namespace bhttp = boost::beast::http;
  asio::io_context io;
  beast::tcp_stream stream(io);
  stream.expires_after(std::chrono::seconds(10));
  stream.connect(
      asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<uint16_t>(port)));
  bhttp::request<bhttp::string_body> req{bhttp::string_to_verb(method), target, 11};
  req.set(bhttp::field::host, "127.0.0.1:" + std::to_string(port));
  for (const auto& [k, v] : headers) req.set(k, v);
  req.body() = body;
  req.prepare_payload();
  bhttp::write(stream, req);
  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(64 * 1024 * 1024);
  bhttp::read(stream, buffer, parser);
  HttpReply reply;
  reply.status = static_cast<int>(parser.get().result_int());
  for (const auto& field : parser.get()) {
    std::string name(field.name_string());
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    reply.headers[name] = std::string(field.value());
  }
  reply.body = parser.get().body();
  boost::system::error_code ignored;
  stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  return reply;
}

}  // namespace reelq::testing
