#pragma once

// reelq_e2e_stack: the whole product on loopback for end-to-end, fault and benchmark tests.
//
//   reelq::testing::E2eStack stack({.schedulers = 1, .workers = 2});
//   auto jobs = stack.JobStub();                  // reelq.v1.JobService on scheduler 0
//   ... submit, watch ...
//   stack.KillWorker(1);                          // SIGKILL worker 1
//   stack.StartWorker(1);                         // start it again (same id, same config)
//   stack.KillRedis(); stack.RestartRedis();      // AOF is on: the data survives
//   nlohmann::json stats = stack.SimStats();      // GET /_sim/stats
//
// What it starts (all children of the test, each stopped on destruction, SIGTERM then SIGKILL):
//   - redis-server on a free port, AOF on (appendfsync from the options), data in a TempDir;
//   - reelq-provider-sim on a free port (port 0 + --port-file; a restart reuses that port) with
//     the given latency scale and seed, no --config (its built-in keys and models);
//   - a YAML config written to <temp>/reelq.yaml: deploy/catalogue.yaml from the source tree,
//     two accounts per provider (kling-a/b, sora-a/b, veo-a/b, seedance-a/b) pointing at the sim
//     with its built-in keys (passed to the children through SIM_* environment variables), fs
//     storage at <temp>/store, the lease/heartbeat/poll/backoff values from the options;
//   - N schedulers (`--listen 127.0.0.1:<free port>`), ready when a gRPC call gets an answer;
//   - M workers (`--id e2e-worker-<i>`, `--metrics-listen 127.0.0.1:<free port>`), ready when
//     their metrics port accepts connections.
// Logs: <temp>/logs/{redis,sim,scheduler-<i>,worker-<i>}.log; Logs() returns their tails, for
// failure messages. The constructor throws std::runtime_error (with the logs) when something
// does not come up; MissingBinaries() says what is not built, for GTEST_SKIP.
//
// Binaries come from REELQ_BUILD_DIR (set by reelq_add_test); a test using this should
// add_dependencies(<test> reelq-scheduler reelq-worker reelq-provider-sim).
// Not thread-safe: call it from the test's thread.
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <nlohmann/json.hpp>

#include "process.h"
#include "redis_server.h"
#include "reelq/v1/jobs.grpc.pb.h"
#include "reelq/v1/models.grpc.pb.h"

namespace reelq::testing {

// Where one worker runs, for multi-host tests in network namespaces (tests/fault/partition_test).
struct E2eWorkerPlacement {
  // Put before the worker's command line, e.g. {"ip", "netns", "exec", "<netns>"}.
  std::vector<std::string> command_prefix;
  // The IPv4 address its metrics endpoint binds, reachable from the test (readiness check).
  std::string host = "127.0.0.1";
};

struct E2eStackOptions {
  int schedulers = 1;
  int workers = 2;
  // Simulator: latency multiplier (0.002 turns minutes into a fraction of a second) and seed.
  double latency_scale = 0.002;
  uint64_t sim_seed = 1;
  // Give reelq a copy of deploy/catalogue.yaml whose latency profiles are multiplied by
  // latency_scale, so that its routing (the latency seeds, the clamp of each sample to the
  // profile) describes the simulator it talks to; off: the catalogue as shipped.
  bool scale_catalogue_latency = false;
  // Draw model, shot and job id on the simulator's clips (one small ffmpeg render per create):
  // off here so that tests and benchmarks making hundreds of clips stay fast; on for tests
  // that look at the labels.
  bool sim_clip_labels = false;
  // worker: section.
  double lease_seconds = 3;
  double heartbeat_seconds = 0.5;
  int min_poll_interval_ms = 50;
  int max_in_flight = 256;
  int retry_backoff_initial_ms = 50;
  int retry_backoff_max_ms = 500;
  double drain_timeout_seconds = 10;
  // scheduler: section.
  int max_prompt_bytes = 100000;
  int max_message_bytes = 4 << 20;
  int max_attempts = 5;
  // Every account: create calls per minute and upstream tasks in flight (the sim's own
  // built-in limits are 6000/min and 64 per key).
  int account_rpm = 6000;
  int account_max_concurrent = 64;
  // Redis persistence: AOF always on; fsync policy.
  std::string appendfsync = "everysec";
  // Extra YAML appended verbatim at the end of the config (new top-level sections only).
  std::string extra_yaml;
  // Extra entries of the accounts: list, verbatim ("  - {id: noop-a, provider: noop}\n").
  std::string extra_accounts_yaml;
  // storage.backend: "fs" (under store_root()) or "null" (written quoted; discards clips, for
  // benchmarks).
  std::string storage_backend = "fs";
  // Extra environment for schedulers and workers (e.g. REELQ__SECTION__KEY overrides).
  std::map<std::string, std::string> env;
  std::string log_level = "info";
  // Placement. redis-server binds `redis_host` and the simulator `sim_host`; the config names
  // those addresses, and the test reaches both there. Both must be local addresses of the
  // network namespace the test runs in. Worker i runs as worker_placement[i] says (loopback
  // without a prefix when the list is shorter).
  std::string redis_host = "127.0.0.1";
  std::string sim_host = "127.0.0.1";
  std::vector<E2eWorkerPlacement> worker_placement;
  // Called once redis-server is up and before anything else starts; what it returns is added
  // to the config's `redis:` section (lines indented by two spaces). A test that puts replicas
  // and sentinels around this master names them here (tests/fault/sentinel_failover_test).
  std::function<std::string(RedisServer& master)> redis_section_extra;
  // Schedulers also serve the web dashboard (--dashboard-listen 127.0.0.1:<free port>).
  bool dashboard = false;
};

class E2eStack {
 public:
  explicit E2eStack(E2eStackOptions options = {});
  ~E2eStack();
  E2eStack(const E2eStack&) = delete;
  E2eStack& operator=(const E2eStack&) = delete;

  // Empty when redis-server and the sim, scheduler and worker binaries are all present;
  // otherwise what is missing (use with GTEST_SKIP).
  static std::string MissingBinaries();

  const E2eStackOptions& options() const { return options_; }
  const std::filesystem::path& dir() const { return dir_.path(); }
  std::filesystem::path config_path() const { return dir_.path() / "reelq.yaml"; }
  std::filesystem::path store_root() const { return dir_.path() / "store"; }
  std::filesystem::path log_dir() const { return dir_.path() / "logs"; }
  // Last `lines` lines of every log, labelled (for failure messages).
  std::string Logs(int lines = 40) const;
  // The redis.prefix of the config ("reelq-e2e").
  static constexpr const char* kRedisPrefix = "reelq-e2e";

  // --- gRPC -----------------------------------------------------------------------------------
  std::string scheduler_address(int i = 0) const;
  // host:port of scheduler i's web dashboard (options.dashboard).
  std::string dashboard_address(int i = 0) const;
  std::shared_ptr<grpc::Channel> Channel(int scheduler = 0) const;
  std::unique_ptr<reelq::v1::JobService::Stub> JobStub(int scheduler = 0) const;
  std::unique_ptr<reelq::v1::ModelService::Stub> ModelStub(int scheduler = 0) const;

  // --- processes ------------------------------------------------------------------------------
  int scheduler_count() const { return static_cast<int>(schedulers_.size()); }
  int worker_count() const { return static_cast<int>(workers_.size()); }
  ChildProcess& scheduler(int i) { return schedulers_.at(i).process; }
  ChildProcess& worker(int i) { return workers_.at(i).process; }
  std::string worker_id(int i) const { return "e2e-worker-" + std::to_string(i); }
  // host:port of worker i's metrics endpoint (GET /metrics).
  std::string worker_metrics_address(int i) const;

  // Start (again) on the same port / id, and wait until ready. Throws when it does not come up.
  void StartScheduler(int i);
  void StartWorker(int i);
  // A new worker (index returned), started and ready.
  int AddWorker();
  // SIGKILL and reap.
  void KillScheduler(int i);
  void KillWorker(int i);
  // SIGTERM and wait up to `grace` for exit; the waitpid status, or nullopt when it did not
  // exit in time (it is then still running).
  std::optional<int> TermScheduler(int i,
                                   std::chrono::milliseconds grace = std::chrono::seconds(30));
  std::optional<int> TermWorker(int i, std::chrono::milliseconds grace = std::chrono::seconds(30));
  // SIGSTOP / SIGCONT (a frozen process: its leases lapse while its sockets stay open).
  void PauseWorker(int i);
  void ResumeWorker(int i);

  RedisServer& redis() { return *redis_; }
  void KillRedis() { redis_->Kill(); }
  void RestartRedis() { redis_->Restart(); }  // same port and data dir (AOF replayed)

  // The simulator: SIGKILL / start again on the same port.
  void KillSim();
  void StartSim();
  int sim_port() const { return sim_port_; }
  pid_t sim_pid() const { return sim_.pid(); }

  // --- simulator control (GET /_sim/stats, POST /_sim/config, POST /_sim/reset) ---------------
  nlohmann::json SimStats();
  nlohmann::json SimConfigure(const nlohmann::json& patch);
  void SimReset();

  // --- conveniences for tests -----------------------------------------------------------------
  // GetJob until every id is terminal (SUCCEEDED, FAILED, CANCELLED) or `timeout` passes;
  // returns the last status seen per id (missing when GetJob never answered OK).
  // Polls GetJob on the first running scheduler.
  std::map<std::string, reelq::v1::JobStatus> WaitTerminal(const std::vector<std::string>& ids,
                                                           std::chrono::seconds timeout);
  // Every regular file under store_root(), as paths relative to it.
  std::vector<std::string> StoreFiles() const;
  // The environment schedulers and workers get (the simulator's keys, options().env), for a
  // test that starts one of its own against this stack's config.
  std::map<std::string, std::string> ChildEnv() const;

 private:
  struct Proc {
    ChildProcess process;
    int port = 0;            // scheduler: gRPC; worker: metrics
    int dashboard_port = 0;  // scheduler with options.dashboard
  };
  void WriteConfig();
  // The catalogue the config names: the shipped one, or its latency-scaled copy (options).
  std::filesystem::path CatalogueFile() const;
  void WaitSchedulerReady(int i);
  std::string SimHttp(const std::string& method, const std::string& path, const std::string& body,
                      int* status);

  E2eWorkerPlacement Placement(int worker) const;

  E2eStackOptions options_;
  TempDir dir_;
  std::unique_ptr<RedisServer> redis_;
  std::string redis_section_extra_;
  ChildProcess sim_;
  int sim_port_ = 0;
  std::vector<Proc> schedulers_;
  std::vector<Proc> workers_;
};

bool IsTerminal(reelq::v1::JobState state);

}  // namespace reelq::testing
