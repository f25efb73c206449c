#pragma once

// The scheduler's plain classes and gRPC services wired as reelq-scheduler wires them, inside
// the test process: a real redis-server, one io thread, an in-process gRPC channel (no port, no
// child process but redis-server). Time is a ManualClock shared by the queue and the APIs.
// Dispatch does not run by itself: tests call store().Dispatch() when they want it.
// Authentication is off unless a fixture sets with_auth_ before SetUp: then the admin token is
// kAdminToken and tenants are made through auth_store_.

#include <gtest/gtest.h>

#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "redis_server.h"
#include "reelq/common/clock.h"
#include "reelq/common/redis.h"
#include "reelq/queue/auth_store.h"
#include "reelq/queue/job_store.h"
#include "reelq/scheduler/admission.h"
#include "reelq/scheduler/event_hub.h"
#include "reelq/scheduler/grpc_services.h"
#include "reelq/scheduler/job_api.h"
#include "reelq/scheduler/model_api.h"
#include "reelq/scheduler/queue_settings.h"
#include "reelq/v1/jobs.grpc.pb.h"
#include "reelq/v1/models.grpc.pb.h"
#include "test_catalogue.h"

namespace reelq::testing {

// The shipped models with one or two accounts per provider.
inline providers::Catalogue CatalogueWithAccounts() {
  providers::Catalogue c = ShippedCatalogue();
  c.accounts = {
      {.id = "kling-main", .provider = "kling", .requests_per_minute = 60, .max_concurrent = 5},
      {.id = "sora-a", .provider = "sora", .requests_per_minute = 30, .max_concurrent = 2},
      {.id = "sora-b",
       .provider = "sora",
       .requests_per_minute = 30,
       .polls_per_minute = 60,
       .max_concurrent = 2,
       .daily_cap = 100},
      {.id = "veo-main", .provider = "veo", .requests_per_minute = 10, .max_concurrent = 2},
      {.id = "seedance-main",
       .provider = "seedance",
       .requests_per_minute = 600,
       .max_concurrent = 10},
  };
  return c;
}

class InProcessScheduler : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { redis_ = std::make_unique<RedisServer>(); }
  static void TearDownTestSuite() { redis_.reset(); }

  void SetUp() override {
    redis_->Run({"FLUSHALL"});
    catalogue_ = CatalogueWithAccounts();
    EditCatalogue(catalogue_);
    settings_.tenant_weights = {{"studio", 3}};
    settings_.default_weight = 1;
    clock_ = std::make_shared<ManualClock>();
    io_thread_ = std::thread([this] { io_.run(); });
    auto connection = Call(redis::Connect(io_.get_executor(), redis_->ClientOptions()));
    auto blocking = Call(redis::Connect(io_.get_executor(), redis_->ClientOptions()));
    ASSERT_TRUE(connection && blocking);
    connection_ = *connection;
    blocking_ = *blocking;
    store_ = std::make_unique<queue::JobStore>(connection_, "t", clock_);
    auto synced = Call(store_->SyncSettings(scheduler::ToQueueSettings(catalogue_, settings_)));
    ASSERT_TRUE(synced) << synced.error().Describe();
    admission_ =
        std::make_unique<scheduler::Admission>(catalogue_, scheduler::AdmissionLimits{}, clock_);
    scheduler::AuthSettings auth_settings;
    if (with_auth_) {
      auth_store_ = std::make_unique<queue::AuthStore>(connection_, "t");
      auth_settings.admin_tokens = {kAdminToken};
    }
    jobs_ = std::make_unique<scheduler::JobApi>(*store_, *admission_, settings_, nullptr, clock_,
                                                auth_store_.get());
    models_ = std::make_unique<scheduler::ModelApi>(*store_, catalogue_, settings_, clock_);
    hub_ = std::make_unique<scheduler::EventHub>(*store_, blocking_);
    hub_done_ = asio::co_spawn(io_, hub_->Run(), asio::use_future);
    // Authentication off (unless with_auth_): every call acts as the open principal, as before
    // tokens existed.
    auth_ = std::make_unique<scheduler::Authenticator>(auth_settings, auth_store_.get(), clock_);
    job_service_ = std::make_unique<scheduler::JobServiceImpl>(io_.get_executor(), *jobs_, *hub_,
                                                               settings_, *auth_);
    model_service_ =
        std::make_unique<scheduler::ModelServiceImpl>(io_.get_executor(), *models_, *auth_);
    grpc::ServerBuilder builder;
    builder.RegisterService(job_service_.get());
    builder.RegisterService(model_service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_TRUE(server_);
    channel_ = server_->InProcessChannel(grpc::ChannelArguments());
  }

  // A suite's changes to the catalogue (prices, say), made before it is synced and admitted by.
  virtual void EditCatalogue(providers::Catalogue&) {}

  void TearDown() override {
    // Calls still open need the io thread to finish, so the server stops first.
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    if (hub_) {
      asio::post(io_, [this] { hub_->Stop(); });
      hub_done_.wait_for(std::chrono::seconds(5));
    }
    if (connection_) asio::post(io_, [c = connection_] { c->Close(); });
    work_.reset();
    io_.stop();
    if (io_thread_.joinable()) io_thread_.join();
  }

  // Runs `task` on the io thread and waits for it (every use of the store happens there).
  template <class T>
  T Call(awaitable<T> task) {
    auto future = asio::co_spawn(io_, std::move(task), asio::use_future);
    if (future.wait_for(std::chrono::seconds(20)) != std::future_status::ready) {
      throw std::runtime_error("a call on the io thread did not finish in 20 s");
    }
    return future.get();
  }

  queue::JobStore& store() { return *store_; }

  std::string Submit(v1::JobSpec spec) {
    auto r = Call(jobs_->Submit(OpenPrincipal(), std::move(spec)));
    if (!r) throw std::runtime_error(r.error().Describe());
    return r->job_id();
  }

  int Dispatch() {
    auto r = Call(store_->Dispatch(100, 16, settings_.default_weight, "fair", 0));
    if (!r) throw std::runtime_error(r.error().Describe());
    return r->dispatched;
  }

  std::vector<queue::LeasedJob> Lease(int max = 100) {
    auto r = Call(store_->Lease("w1", max, std::chrono::minutes(10)));
    if (!r) throw std::runtime_error(r.error().Describe());
    return *r;
  }

  static v1::JobSpec Spec(const std::string& model, uint32_t seconds, const std::string& batch = "",
                          const std::string& tenant = "") {
    v1::JobSpec spec;
    spec.set_prompt("a lighthouse at dusk");
    if (!model.empty()) spec.add_models(model);
    spec.set_duration_seconds(seconds);
    spec.set_batch_id(batch);
    spec.set_tenant(tenant);
    return spec;
  }

  // A compare of two 5 s takes (Seedance, Kling).
  static v1::JobSpec CompareSpec(const std::string& batch = "") {
    v1::JobSpec spec = Spec("seedance-2.0", 5, batch);
    spec.add_models("kling-3.0");
    spec.set_compare(true);
    return spec;
  }

  // A chained storyboard on Seedance, one 5 s shot per prompt.
  static v1::JobSpec ChainSpec(const std::vector<std::string>& prompts) {
    v1::JobSpec spec;
    spec.set_storyboard(true);
    spec.set_chain(true);
    spec.add_models("seedance-2.0");
    for (const auto& prompt : prompts) {
      auto* shot = spec.add_shots();
      shot->set_prompt(prompt);
      shot->set_duration_seconds(5);
    }
    return spec;
  }

  static std::unique_ptr<RedisServer> redis_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_{io_.get_executor()};
  std::thread io_thread_;
  providers::Catalogue catalogue_;
  scheduler::Settings settings_;
  std::shared_ptr<ManualClock> clock_;
  redis::ConnectionPtr connection_, blocking_;
  std::unique_ptr<queue::JobStore> store_;
  static constexpr const char* kAdminToken = "admin-token";
  bool with_auth_ = false;                        // set before SetUp
  std::unique_ptr<queue::AuthStore> auth_store_;  // with_auth_ only
  std::unique_ptr<scheduler::Admission> admission_;
  std::unique_ptr<scheduler::JobApi> jobs_;
  std::unique_ptr<scheduler::ModelApi> models_;
  std::unique_ptr<scheduler::EventHub> hub_;
  std::future<void> hub_done_;
  // What every call acts as with authentication off.
  static scheduler::Principal OpenPrincipal() {
    return {.tenant = "", .is_admin = true, .open = true};
  }
  std::unique_ptr<scheduler::Authenticator> auth_;
  std::unique_ptr<scheduler::JobServiceImpl> job_service_;
  std::unique_ptr<scheduler::ModelServiceImpl> model_service_;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

inline std::unique_ptr<RedisServer> InProcessScheduler::redis_;

}  // namespace reelq::testing
