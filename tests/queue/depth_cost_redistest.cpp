// Issue 11, depth: what the life of a job at the head of the queue costs in Redis when 1,000 jobs
// wait behind it and when tens of thousands do (bench/scale's depth_ratio). The same steps as
// cost_redistest (dispatch, lease, create permit, phases, complete), with the scheduler's dispatch
// sizes, measured per step: commands per job (INFO commandstats) and Redis CPU per job (INFO cpu,
// informational: the machine is shared). A queue scanned per job or per round in proportion to
// its depth shows up here as commands, so the commands must not depend on the depth.
// REELQ_DEPTH_BEHIND=<n> sets the deep case's queue (default 20,000; bench/scale uses 100,000).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "store_fixture.h"

namespace reelq::queue {
namespace {

using namespace std::chrono_literals;
using testing::RunAsync;

class DepthCostTest : public StoreTest {
 protected:
  static constexpr int kJobs = 1000;  // measured: the head of the queue

  struct Step {
    std::string name;
    double commands_per_job = 0;
    double cpu_us_per_job = 0;
    double faults_per_job = 0;  // redis-server's minor page faults
    double sys_us_per_job = 0;  // the kernel's part of cpu_us_per_job
  };

  // With the append-only file, as deployed (deploy/redis/reelq-redis.conf) and as bench/scale runs.
  static void SetUpTestSuite() {
    server_ =
        std::make_unique<testing::RedisServer>(testing::RedisServerOptions{.appendonly = true});
  }

  void SetUp() override {
    StoreTest::SetUp();
    Sync(OneModel());
  }

  double RedisCpuUs() {
    auto field = [&](const char* name) {
      return std::stod(server_->InfoField(name, "cpu").value_or("0")) * 1e6;
    };
    return field("used_cpu_user") + field("used_cpu_sys");
  }

  int64_t Commands() {
    std::istringstream in(server_->Info("commandstats"));
    std::string line;
    int64_t total = 0;
    while (std::getline(in, line)) {
      if (line.rfind("cmdstat_", 0) != 0) continue;
      const std::string name = line.substr(8, line.find(':') - 8);
      if (name == "info" || name.rfind("config", 0) == 0) continue;
      total += std::stoll(line.substr(line.find("calls=") + 6));
    }
    return total;
  }

  double RedisSysUs() {
    return std::stod(server_->InfoField("used_cpu_sys", "cpu").value_or("0")) * 1e6;
  }

  double MinorFaults() {
    std::ifstream in("/proc/" + std::to_string(server_->pid()) + "/stat");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::istringstream fields(text.substr(text.rfind(')') + 2));
    std::string field;
    for (int i = 3; i <= 10 && fields >> field; ++i) {
      if (i == 10) return std::stod(field);
    }
    return 0;
  }

  template <class Fn>
  void Measure(std::vector<Step>& steps, const std::string& name, Fn fn) {
    server_->ResetStats();
    const double cpu = RedisCpuUs();
    const double faults = MinorFaults();
    const double sys = RedisSysUs();
    fn();
    steps.push_back({name, static_cast<double>(Commands()) / kJobs, (RedisCpuUs() - cpu) / kJobs,
                     (MinorFaults() - faults) / kJobs, (RedisSysUs() - sys) / kJobs});
  }

  void Submit(const std::string& prefix, int count) {
    for (int at = 0; at < count; at += 1000) {
      std::vector<NewJob> chunk;
      for (int i = at; i < std::min(count, at + 1000); ++i) {
        chunk.push_back(NewJob{.id = prefix + std::to_string(i),
                               .tenant = "studio",
                               .batch = "b-" + prefix,
                               .spec_bytes = std::string(300, 's'),
                               .candidate_models = {"m1"}});
      }
      auto r = RunAsync(io_, store_->SubmitMany(chunk, 3600));
      ASSERT_TRUE(r) << r.error().Describe();
    }
  }

  // As bench/scale's deployment: the jobs' model "m1" has an account of 256 concurrent tasks;
  // the catalogue has another model ("m2", a free account) that no queued job asks for.
  static QueueSettings CappedWithAnIdleModel() {
    AccountSetting capped = UnboundedAccount("a1");
    capped.max_concurrent = 256;
    QueueSettings s = OneModel({capped, UnboundedAccount("a2")});
    s.models[0].accounts = {"a1"};
    s.models.push_back(ModelSetting{.id = "m2", .accounts = {"a2"}});
    return s;
  }

  // The steady state of a worker on a queue: each slot a completion frees is refilled by a
  // dispatch round (one round per completion call, as the scheduler's wake does), with
  // `queued` jobs in the queue at the start: 256 dispatched first, then 1,000 completions and
  // as many dispatches measured.
  Step Steady(int queued) {
    server_->Run({"FLUSHALL"});
    Sync(CappedWithAnIdleModel());
    Submit("q", queued);
    SettleAof();
    auto dispatch = [&] {
      auto r = RunAsync(io_, store_->Dispatch(256, 64, 1));
      ASSERT_TRUE(r) << r.error().Describe();
    };
    dispatch();  // the first 256 slots, before the worker starts
    std::vector<Step> steps;
    int completed = 0;
    Measure(steps, "steady", [&] {
      while (completed < kJobs) {
        auto r = RunAsync(io_, store_->Lease("w1", 50, 15s));
        ASSERT_TRUE(r) << r.error().Describe();
        ASSERT_FALSE(r->empty());
        std::vector<CompleteRequest> done;
        for (const auto& j : *r)
          done.push_back({.job_id = j.id, .token = j.token, .output_key = "k"});
        auto c = RunAsync(io_, store_->CompleteMany(done));
        ASSERT_TRUE(c) << c.error().Describe();
        completed += static_cast<int>(done.size());
        dispatch();
      }
    });
    steps.back().commands_per_job = steps.back().commands_per_job * kJobs / completed;
    steps.back().cpu_us_per_job = steps.back().cpu_us_per_job * kJobs / completed;
    steps.back().faults_per_job = steps.back().faults_per_job * kJobs / completed;
    steps.back().sys_us_per_job = steps.back().sys_us_per_job * kJobs / completed;
    return steps.back();
  }

  // Writing the queue grows the append-only file past auto-aof-rewrite-min-size, and the
  // rewrite Redis then starts (a forked child, the parent's pages copied on write) would fall
  // into the measurement: it is run now and waited for (bench/scale does the same).
  void SettleAof() {
    server_->Run({"BGREWRITEAOF"});
    for (int i = 0; i < 600; ++i) {
      if (server_->InfoField("aof_rewrite_in_progress", "persistence") == "0" &&
          server_->InfoField("aof_rewrite_scheduled", "persistence") == "0") {
        return;
      }
      std::this_thread::sleep_for(100ms);
    }
    FAIL() << "the AOF rewrite did not end in 60 s";
  }

  // The life of kJobs jobs at the head of the queue with `behind` more queued after them.
  std::vector<Step> Life(int behind) {
    server_->Run({"FLUSHALL"});
    Sync(OneModel());
    std::vector<Step> steps;
    Submit("head", kJobs);
    clock_->Advance(1ms);
    Submit("behind", behind);
    SettleAof();
    Measure(steps, "dispatch", [&] {
      int dispatched = 0;
      while (dispatched < kJobs) {
        // The scheduler's defaults: scheduler.dispatch_batch 256, dispatch_scan_depth 64.
        auto r = RunAsync(io_, store_->Dispatch(256, 64, 1));
        ASSERT_TRUE(r) << r.error().Describe();
        ASSERT_GT(r->dispatched, 0);
        dispatched += std::min(r->dispatched, kJobs - dispatched);
      }
    });
    std::vector<LeasedJob> leased;
    Measure(steps, "lease", [&] {
      while (static_cast<int>(leased.size()) < kJobs) {
        auto r = RunAsync(io_, store_->Lease("w1", 64, 15s));
        ASSERT_TRUE(r) << r.error().Describe();
        ASSERT_FALSE(r->empty());
        for (auto& j : *r) {
          if (static_cast<int>(leased.size()) < kJobs) leased.push_back(std::move(j));
        }
      }
    });
    constexpr size_t kGathered = 50;
    Measure(steps, "create permit", [&] { TakePermitsGathered(leased, kGathered); });
    Measure(steps, "GENERATING",
            [&] { SetPhaseGathered(leased, JobPhase::kGenerating, kGathered); });
    Measure(steps, "TRANSFERRING",
            [&] { SetPhaseGathered(leased, JobPhase::kTransferring, kGathered); });
    Measure(steps, "complete", [&] { CompleteGathered(leased, kGathered); });
    return steps;
  }
};

TEST_F(DepthCostTest, AJobCostsTheSameCommandsWithADeepQueueBehindIt) {
  const char* env = std::getenv("REELQ_DEPTH_BEHIND");
  const int deep = env ? std::atoi(env) : 20000;
  const auto shallow_steps = Life(kJobs);
  const auto deep_steps = Life(deep);
  ASSERT_EQ(shallow_steps.size(), deep_steps.size());
  std::printf(
      "per job at the head, %d then %d queued behind: commands, Redis CPU (us), page faults\n",
      kJobs, deep);
  double shallow_cpu = 0, deep_cpu = 0;
  for (size_t i = 0; i < deep_steps.size(); ++i) {
    std::printf("  %-14s %6.2f %6.2f   %7.1f %7.1f   %5.2f %5.2f\n", deep_steps[i].name.c_str(),
                shallow_steps[i].commands_per_job, deep_steps[i].commands_per_job,
                shallow_steps[i].cpu_us_per_job, deep_steps[i].cpu_us_per_job,
                shallow_steps[i].faults_per_job, deep_steps[i].faults_per_job);
    shallow_cpu += shallow_steps[i].cpu_us_per_job;
    deep_cpu += deep_steps[i].cpu_us_per_job;
    EXPECT_LE(deep_steps[i].commands_per_job, shallow_steps[i].commands_per_job + 0.05)
        << deep_steps[i].name << ": commands grow with the depth of the queue";
  }
  std::printf("  %-14s %22.1f %7.1f\n", "whole life", shallow_cpu, deep_cpu);
}

// What the bench measures: a worker draining a queue, its jobs' account full between
// completions, with 1,306 queued (never dry in the window) and with 20,000. Commands per job must
// not grow with the depth (dispatch_redistest checks that a round reads no held job records for
// nothing; this is the whole loop).
TEST_F(DepthCostTest, DrainingADeepQueueCostsTheSameCommandsPerJob) {
  const char* env = std::getenv("REELQ_DEPTH_BEHIND");
  const int deep = env ? std::atoi(env) : 20000;
  // 1,000 to dispatch in the window and a few more: the shallow queue never runs dry.
  const Step shallow = Steady(256 + kJobs + 50);
  const Step at_depth = Steady(deep);
  std::printf(
      "steady draining, per completed job: %d queued %.2f commands %.1f us Redis CPU (%.1f in the "
      "kernel) %.2f page faults; %d queued %.2f commands %.1f us (%.1f) %.2f page faults\n",
      256 + kJobs + 50, shallow.commands_per_job, shallow.cpu_us_per_job, shallow.sys_us_per_job,
      shallow.faults_per_job, deep, at_depth.commands_per_job, at_depth.cpu_us_per_job,
      at_depth.sys_us_per_job, at_depth.faults_per_job);
  EXPECT_LE(at_depth.commands_per_job, shallow.commands_per_job + 0.05)
      << "a job costs more commands with a deep queue";
}

}  // namespace
}  // namespace reelq::queue
