// One worker daemon core (reelq_worker) running on the test's io_context against a real
// redis-server, with a filesystem object store and one model "m" on account "a" served by the
// test's provider. The test sets deps.settings, then Start()s the worker with its provider.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>

#include "../redis_conn/run_async.h"
#include "process.h"
#include "redis_server.h"
#include "reelq/common/clock.h"
#include "reelq/common/redis.h"
#include "reelq/providers/provider.h"
#include "reelq/queue/job_store.h"
#include "reelq/queue/wallet_store.h"
#include "reelq/storage/fs_store.h"
#include "reelq/v1/jobs.pb.h"
#include "reelq/worker/worker.h"

namespace reelq::worker {

struct WorkerHarness {
  testing::RedisServer server;
  testing::TempDir dir;
  asio::io_context io;
  std::shared_ptr<SystemClock> clock = std::make_shared<SystemClock>();
  std::unique_ptr<queue::JobStore> admin;  // the test's own view (submit, dispatch, get)
  std::unique_ptr<queue::JobStore> store;  // the worker's
  redis::ConnectionPtr blocking;
  storage::ObjectStorePtr objects;
  providers::Catalogue catalogue;
  RunnerDeps deps;
  std::unique_ptr<Worker> worker;
  bool worker_done = false;
  // Jobs submitted while set are billed to tenant "t"'s wallet (Fund it first): 5 s at
  // kPricePerSecond.
  bool bill = false;
  static constexpr int64_t kPricePerSecond = 100'000;

  // Account "a" takes `max_concurrent` jobs at once.
  explicit WorkerHarness(int max_concurrent) {
    admin = std::make_unique<queue::JobStore>(Connect(), "rq", clock);
    store = std::make_unique<queue::JobStore>(Connect(), "rq", clock);
    blocking = Connect();
    queue::QueueSettings settings;
    queue::ModelSetting model;
    model.id = "m";
    model.accounts = {"a"};
    model.price_micros_per_second = kPricePerSecond;
    settings.models.push_back(model);
    queue::AccountSetting account;
    account.id = "a";
    account.provider = "fake";
    account.requests_per_minute = 6000;
    account.max_concurrent = max_concurrent;
    settings.accounts.push_back(account);
    auto synced = testing::RunAsync(io, admin->SyncSettings(settings));
    if (!synced) throw std::runtime_error(synced.error().Describe());

    auto fs = storage::MakeFsStore(dir.path() / "store");
    if (!fs) throw std::runtime_error(fs.error().Describe());
    objects = *fs;
    providers::ModelSpec spec;
    spec.id = "m";
    spec.provider = "fake";
    spec.upstream_model = "fake-1";
    spec.durations = {5};
    spec.max_clip_seconds = 5;
    catalogue.models.push_back(spec);

    deps.store = store.get();
    deps.objects = objects.get();
    deps.catalogue = &catalogue;
    deps.clock = clock;
    deps.settings.worker_id = "w1";
    deps.settings.min_poll_interval = std::chrono::milliseconds(20);
    deps.settings.drain_timeout = std::chrono::milliseconds(0);
  }

  ~WorkerHarness() {
    if (worker && !worker_done) {
      worker->Drain();
      for (int i = 0; i < 200 && !worker_done; ++i)
        testing::RunFor(io, std::chrono::milliseconds(50));
    }
  }

  // Runs the worker with `provider` behind account "a", as deps.settings say.
  void Start(std::shared_ptr<providers::Provider> provider) {
    deps.providers["a"] = std::move(provider);
    worker = std::make_unique<Worker>(deps, blocking);
    asio::co_spawn(io, RunWorker(worker.get(), &worker_done), asio::detached);
  }

  redis::ConnectionPtr Connect() {
    auto connected =
        testing::RunAsync(io, redis::Connect(io.get_executor(), server.ClientOptions()));
    if (!connected) throw std::runtime_error(connected.error().Describe());
    return *connected;
  }

  // Queues job `id`: a 5 s clip on model "m", three attempts.
  void Submit(const std::string& id) {
    v1::JobSpec spec;
    spec.set_prompt("prompt of " + id);
    spec.add_models("m");
    spec.set_duration_seconds(5);
    queue::NewJob job;
    job.id = id;
    job.tenant = "t";
    job.batch = "b";
    job.spec_bytes = spec.SerializeAsString();
    job.candidate_models = {"m"};
    job.max_attempts = 3;
    job.bill = bill;
    job.billed_seconds = 5;
    auto submitted = testing::RunAsync(io, admin->Submit(job, 3600));
    ASSERT_TRUE(submitted) << submitted.error().Describe();
  }

  void Dispatch(int max) {
    auto dispatched = testing::RunAsync(io, admin->Dispatch(max, 100, 1));
    ASSERT_TRUE(dispatched) << dispatched.error().Describe();
  }

  // Gives tenant "t" a wallet holding `micros`.
  void Fund(int64_t micros) {
    server.Run({"SADD", "rq:{q}:auth:tenants", "t"});
    queue::WalletStore wallets(Connect(), "rq");
    auto topped = testing::RunAsync(io, wallets.TopUp("t", micros, clock->NowMs()));
    if (!topped) throw std::runtime_error(topped.error().Describe());
  }

  queue::WalletView Wallet() {
    queue::WalletStore wallets(Connect(), "rq");
    auto wallet = testing::RunAsync(io, wallets.Get("t", clock->NowMs(), 0));
    if (!wallet) throw std::runtime_error(wallet.error().Describe());
    return *wallet;
  }

  queue::JobRecord Get(const std::string& id) {
    auto record = testing::RunAsync(io, admin->Get(id));
    if (!record) throw std::runtime_error(record.error().Describe());
    return *record;
  }

  // Runs job `id` to its end as a scheduler would around the worker: promotes retries whose
  // backoff is over and dispatches what is pending; false when it has not ended in 15 s.
  bool RunToEnd(const std::string& id) {
    return PumpUntil(
        [&] {
          auto reaped = testing::RunAsync(io, admin->Reap(100));
          if (!reaped) throw std::runtime_error(reaped.error().Describe());
          Dispatch(10);
          return queue::IsTerminal(Get(id).state);
        },
        std::chrono::seconds(15));
  }

  // Pumps the io_context until `done` or `limit`; false on timeout.
  template <class Pred>
  bool PumpUntil(Pred done, std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      testing::RunFor(io, std::chrono::milliseconds(20));
    }
    return true;
  }

 private:
  static awaitable<void> RunWorker(Worker* worker, bool* done) {
    co_await worker->Run();
    *done = true;
  }
};

}  // namespace reelq::worker
