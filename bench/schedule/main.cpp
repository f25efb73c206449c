// bench-schedule: the scheduling benchmark of issue 4. Starts the whole stack on loopback
// (tests/e2e: redis, the provider simulator, a scheduler, workers), with the simulator's
// latencies scaled down and its hidden per-key limits set equal to the configured quotas, and
// runs one scenario: tenant `big` submits a batch at once, two small tenants submit theirs a
// little later; every job allows a subset of the four models (its clip shape decides which).
// The same scenario runs under fair dispatch and under plain FIFO (scheduler.dispatch_policy),
// then each small tenant alone, each on a fresh stack. Prints the figures, and as its last line
// all of them as key=value pairs.
//
//   bench-schedule [--big N] [--small N] [--scale X] [--small-delay S] [--workers N]
//                  [--no-fifo] [--no-alone]
//   --smoke: a small, quick run (the ctest).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <google/protobuf/util/time_util.h>

#include "bench_util.h"
#include "e2e_util.h"
#include "stack.h"

namespace rb = reelq::bench;
namespace v1 = reelq::v1;
using reelq::testing::E2eStack;
using reelq::testing::E2eStackOptions;
using Clock = std::chrono::steady_clock;

namespace {

struct Provider {
  std::string name;       // sim provider
  std::string model;      // reelq model id
  std::string sim_model;  // the sim's model id (latency profile)
  std::string key_field;  // the sim config's key field
  std::string key_a, key_b;
  int max_concurrent;
  int rpm;
  // The sim's latency profile (seconds, before scaling): min, p50, p95, max.
  double lmin, p50, p95, lmax;
  double mean_latency = 0;  // scaled, seconds
  double capacity = 0;      // jobs/s per account: min(concurrency / latency, rpm / 60)
};

// Mean of the sim's latency draw: a lognormal through p50 and p95, clamped to [min, max].
double MeanLatency(const Provider& p) {
  const double mu = std::log(p.p50);
  const double sigma = (std::log(p.p95) - mu) / 1.6448536269514722;
  double sum = 0, weight = 0;
  for (double z = -8; z <= 8; z += 0.001) {
    const double w = std::exp(-z * z / 2);
    sum += w * std::clamp(std::exp(mu + sigma * z), p.lmin, p.lmax);
    weight += w;
  }
  return sum / weight;
}

struct Params {
  int big = 3000;
  int small = 50;
  double scale = 0.01;
  double small_delay_s = 3;
  int workers = 2;
  bool fifo = true;
  bool alone = true;
};

struct JobShape {
  uint32_t seconds;
  std::string ratio;
  std::vector<int> providers;  // indexes into the provider table
};

// The constraint mix: what each kind of clip allows (all four models can make 8 s 16:9; only
// Kling and Seedance make 15 s; 9:16 at 6 s excludes Sora; some jobs pin one model).
std::vector<JobShape> Shapes() {
  return {
      {8, "16:9", {0, 1, 2, 3}},  // any model
      {12, "16:9", {0, 1, 3}},    // Sora, Kling or Seedance
      {15, "16:9", {0, 3}},       // long: Kling or Seedance
      {6, "9:16", {0, 2, 3}},     // not Sora
      {8, "16:9", {1}},           // pinned to Sora
      {4, "16:9", {2}},           // pinned to Veo
      {10, "1:1", {0}},           // pinned to Kling
  };
}
const std::vector<double> kShapeWeights = {0.35, 0.15, 0.10, 0.15, 0.10, 0.10, 0.05};

struct Job {
  v1::JobSpec spec;
  int shape;
};

std::vector<Job> MakeJobs(const std::string& tenant, int n, const std::vector<Provider>& providers,
                          uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::discrete_distribution<int> pick(kShapeWeights.begin(), kShapeWeights.end());
  auto shapes = Shapes();
  std::vector<Job> out;
  for (int i = 0; i < n; ++i) {
    const int s = pick(rng);
    Job job{reelq::testing::MakeSpec(tenant + " shot " + std::to_string(i) + ": a harbour at dawn",
                                     "", shapes[s].seconds, shapes[s].ratio),
            s};
    job.spec.set_tenant(tenant);
    job.spec.set_batch_id(tenant + "-batch");
    for (int p : shapes[s].providers) job.spec.add_models(providers[p].model);
    out.push_back(std::move(job));
  }
  return out;
}

double Ms(const google::protobuf::Timestamp& t) {
  return static_cast<double>(google::protobuf::util::TimeUtil::TimestampToMilliseconds(t));
}

double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size()))) - 1;
  return v[std::min(i, v.size() - 1)];
}

struct TenantResult {
  int jobs = 0, succeeded = 0, failed = 0;
  double p50 = 0, p95 = 0;  // wait (submit to dispatch), seconds
  // Submit to clip stored, seconds: routing minimises this, not the wait (a job held for a
  // faster model waits longer and finishes sooner), so it is printed beside it.
  double turnaround_p95 = 0;
  std::vector<double> dispatch_ms;
  double first_created_ms = 0;
  std::map<std::string, int> slow_by_model;  // jobs that waited over a second, by model
  std::map<std::string, std::vector<double>> waits_by_model;  // seconds, by the model it got
};

struct Result {
  double makespan_s = 0;
  double bound_s = 0;
  int rejected_429 = 0;
  int rejected_rate = 0;                      // of which over the create rate
  int rejected_concurrency = 0;               // of which over the concurrency cap
  std::map<std::string, double> utilisation;  // account -> creates / (capacity * makespan)
  std::map<std::string, int> account_429;     // account -> 429s the sim answered
  std::map<std::string, TenantResult> tenants;
  // Per model, mean seconds a slot is held before and after the upstream task runs: dispatch
  // to lease, lease to the upstream id, and the whole slot (dispatch to TRANSFERRING).
  struct SlotTimes {
    int jobs = 0;
    double to_lease_s = 0, to_create_s = 0, held_s = 0;
    // Of lease to upstream id: lease to the simulator taking the create (its own clock, the
    // same machine's); the rest is the answer and the phase write.
    double to_sim_s = 0;
    int sim_jobs = 0;
  };
  std::map<std::string, SlotTimes> slot_times;
  // Per model: from a slot's release to the dispatch that refills its account (per account,
  // each dispatch paired with the newest release not yet refilled): the dispatcher's wake-up
  // latency when the model is wanted, longer when routing leaves it idle or (Seedance) the
  // create rate holds it.
  struct SlotGaps {
    std::vector<double> gaps_ms;
  };
  std::map<std::string, SlotGaps> slot_gaps;
  double jain = 0;
  int failed = 0;
  // Redis commands (INFO commandstats, commands inside scripts included) and Redis CPU per job
  // over the whole scenario: what the dispatch rounds cost.
  double redis_cmds_per_job = 0;
  double redis_cpu_ms_per_job = 0;
  std::string redis_top_commands;  // per job, most first
};

// Sum of calls= over INFO commandstats, and used_cpu_sys + used_cpu_user in ms.
std::string Fmt(double v, int digits = 3) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

struct RedisCostSample {
  int64_t calls = 0;
  double cpu_ms = 0;
  std::map<std::string, int64_t> by_command;  // calls
};

RedisCostSample RedisCost(reelq::testing::RedisServer& redis) {
  RedisCostSample c;
  std::istringstream in(redis.Info("commandstats"));
  for (std::string line; std::getline(in, line);) {
    auto at = line.find("calls=");
    if (line.starts_with("cmdstat_") && at != std::string::npos) {
      const int64_t n = std::atoll(&line[at + 6]);
      c.calls += n;
      c.by_command[line.substr(8, line.find(':') - 8)] = n;
    }
  }
  for (const char* field : {"used_cpu_sys", "used_cpu_user"}) {
    if (auto v = redis.InfoField(field, "cpu")) c.cpu_ms += std::stod(*v) * 1000;
  }
  return c;
}

// The commands Redis ran most between two samples, per job, most first.
std::string TopCommandsPerJob(const RedisCostSample& before, const RedisCostSample& after, int jobs,
                              size_t n = 8) {
  std::vector<std::pair<double, std::string>> per_job;
  for (const auto& [name, calls] : after.by_command) {
    const auto was = before.by_command.find(name);
    const int64_t d = calls - (was == before.by_command.end() ? 0 : was->second);
    if (d > 0) per_job.push_back({static_cast<double>(d) / jobs, name});
  }
  std::sort(per_job.rbegin(), per_job.rend());
  std::string out;
  for (size_t i = 0; i < per_job.size() && i < n; ++i) {
    out += (out.empty() ? "" : ", ") + per_job[i].second + " " + Fmt(per_job[i].first, 1);
  }
  return out;
}

// Fluid lower bound: for every set S of providers, the jobs that may only use S need at least
// N(S) / capacity(S) seconds (two accounts per provider).
double LowerBound(const std::vector<int>& shape_counts, const std::vector<Provider>& providers) {
  auto shapes = Shapes();
  double bound = 0;
  const int np = static_cast<int>(providers.size());
  for (int mask = 1; mask < (1 << np); ++mask) {
    double cap = 0;
    for (int p = 0; p < np; ++p)
      if (mask & (1 << p)) cap += 2 * providers[p].capacity;
    int n = 0;
    for (size_t s = 0; s < shapes.size(); ++s) {
      bool inside = true;
      for (int p : shapes[s].providers) inside = inside && (mask & (1 << p));
      if (inside) n += shape_counts[s];
    }
    bound = std::max(bound, n / cap);
  }
  return bound;
}

nlohmann::json SimLimits(const std::vector<Provider>& providers) {
  nlohmann::json patch;
  for (const auto& p : providers) {
    nlohmann::json keys = nlohmann::json::array();
    for (const auto& k : {p.key_a, p.key_b}) {
      keys.push_back({{p.key_field, k}, {"rpm", p.rpm}, {"max_concurrent", p.max_concurrent}});
    }
    patch["providers"][p.name]["keys"] = keys;
  }
  return patch;
}

Result RunScenario(const Params& params, const std::vector<Provider>& providers,
                   const std::string& policy,
                   const std::vector<std::pair<std::string, int>>& tenants,
                   const std::vector<double>& delays_s) {
  E2eStackOptions options;
  options.workers = params.workers;
  options.latency_scale = params.scale;
  // reelq's catalogue describes the providers it talks to: here the simulator, whose latencies
  // are scaled. Unscaled, every generation-time sample is clamped to the catalogue profile's
  // [min / 2, max * 2] (complete.lua), so Kling's estimate could not fall below 30 s nor
  // Sora's below 45 s against real means of 1.2 s and 1.9 s, and routing starved both.
  options.scale_catalogue_latency = true;
  options.log_level = "warn";
  options.env["REELQ__SCHEDULER__DISPATCH_POLICY"] = policy;
  // Accounts in the stack's order: kling, sora, veo, seedance for suffix a, then for b.
  for (int s = 0; s < 2; ++s) {
    for (size_t p = 0; p < providers.size(); ++p) {
      const std::string i = std::to_string(s * 4 + static_cast<int>(p));
      options.env["REELQ__ACCOUNTS__" + i + "__MAX_CONCURRENT"] =
          std::to_string(providers[p].max_concurrent);
      options.env["REELQ__ACCOUNTS__" + i + "__REQUESTS_PER_MINUTE"] =
          std::to_string(providers[p].rpm);
    }
  }
  E2eStack stack(options);
  stack.SimConfigure(SimLimits(providers));
  stack.SimReset();
  const auto cost_before = RedisCost(stack.redis());

  std::vector<std::vector<Job>> jobs;
  std::vector<int> shape_counts(Shapes().size(), 0);
  int total = 0;
  for (size_t t = 0; t < tenants.size(); ++t) {
    jobs.push_back(MakeJobs(tenants[t].first, tenants[t].second, providers, 1000 + t));
    for (const auto& j : jobs.back()) shape_counts[j.shape]++;
    total += tenants[t].second;
  }

  // Each tenant submits from its own thread and channel, after its delay.
  const auto start = Clock::now();
  std::vector<std::thread> threads;
  std::vector<std::string> batch_ids(tenants.size());
  std::vector<std::string> errors(tenants.size());
  for (size_t t = 0; t < tenants.size(); ++t) {
    threads.emplace_back([&, t] {
      std::this_thread::sleep_until(
          start + std::chrono::milliseconds(static_cast<int64_t>(delays_s[t] * 1000)));
      std::vector<v1::JobSpec> specs;
      for (const auto& j : jobs[t]) specs.push_back(j.spec);
      auto stub = v1::JobService::NewStub(
          grpc::CreateChannel(stack.scheduler_address(0), grpc::InsecureChannelCredentials()));
      grpc::Status status;
      auto resp = reelq::testing::SubmitBatch(*stub, specs, &status, std::chrono::seconds(300));
      if (!status.ok() || resp.rejected() > 0) {
        errors[t] = status.error_message() + " rejected=" + std::to_string(resp.rejected());
      }
      batch_ids[t] = resp.batch_id();
    });
  }
  for (auto& th : threads) th.join();
  for (size_t t = 0; t < tenants.size(); ++t) {
    if (!errors[t].empty()) {
      throw std::runtime_error("submit of " + tenants[t].first + " failed: " + errors[t]);
    }
  }

  // Done when every batch is terminal.
  auto stub = stack.JobStub(0);
  const auto deadline = Clock::now() + std::chrono::minutes(15);
  for (;;) {
    int done = 0;
    for (const auto& b : batch_ids) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
      v1::GetBatchRequest req;
      req.set_batch_id(b);
      v1::BatchProgress progress;
      if (stub->GetBatch(&ctx, req, &progress).ok()) {
        done += static_cast<int>(progress.succeeded() + progress.failed() + progress.cancelled());
      }
    }
    if (done >= total) break;
    if (Clock::now() > deadline) {
      throw std::runtime_error("scenario did not finish in 15 minutes\n" + stack.Logs());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }

  Result r;
  auto stats = stack.SimStats();
  std::map<std::string, double> sim_created_ms;  // upstream task id -> the sim's create time
  for (const auto& c : stats["creates"]) {
    sim_created_ms[c.value("task_id", "")] = c.value("created_at_ms", 0.0);
  }
  const auto cost_after = RedisCost(stack.redis());
  r.redis_cmds_per_job = static_cast<double>(cost_after.calls - cost_before.calls) / total;
  r.redis_cpu_ms_per_job = (cost_after.cpu_ms - cost_before.cpu_ms) / total;
  r.redis_top_commands = TopCommandsPerJob(cost_before, cost_after, total);
  double first_ms = 1e300, last_ms = 0;
  // account -> (time, +1 slot released / -1 slot taken), for the slot gaps.
  std::map<std::string, std::vector<std::pair<double, int>>> slot_events;
  std::map<std::string, std::string> model_of_account;
  for (size_t t = 0; t < tenants.size(); ++t) {
    TenantResult tr;
    std::vector<double> waits, turnarounds;
    tr.first_created_ms = 1e300;
    for (const auto& s : reelq::testing::ListBatch(*stub, batch_ids[t])) {
      tr.jobs++;
      if (s.state() == v1::JOB_STATE_SUCCEEDED) {
        tr.succeeded++;
        turnarounds.push_back((Ms(s.updated_at()) - Ms(s.created_at())) / 1000);
      }
      if (s.state() == v1::JOB_STATE_FAILED) tr.failed++;
      const double created = Ms(s.created_at());
      first_ms = std::min(first_ms, created);
      last_ms = std::max(last_ms, Ms(s.updated_at()));
      tr.first_created_ms = std::min(tr.first_created_ms, created);
      double dispatched = 0, leased = 0, upstream = 0, transferring = 0;
      for (const auto& tn : s.transitions()) {
        if (tn.state() == v1::JOB_STATE_DISPATCHED && dispatched == 0) {
          dispatched = Ms(tn.at());
          waits.push_back((dispatched - created) / 1000);
          if (dispatched - created > 1000) tr.slow_by_model[s.model()]++;
          tr.waits_by_model[s.model()].push_back((dispatched - created) / 1000);
          tr.dispatch_ms.push_back(dispatched);
        } else if (tn.state() == v1::JOB_STATE_RUNNING && leased == 0) {
          leased = Ms(tn.at());
        } else if (tn.phase() == v1::JOB_PHASE_GENERATING && upstream == 0) {
          upstream = Ms(tn.at());
        } else if (tn.phase() == v1::JOB_PHASE_TRANSFERRING && transferring == 0) {
          transferring = Ms(tn.at());
        }
      }
      if (!s.account().empty() && s.attempt() <= 1) {
        model_of_account[s.account()] = s.model();
        if (dispatched > 0) slot_events[s.account()].push_back({dispatched, -1});
        if (transferring > 0) slot_events[s.account()].push_back({transferring, +1});
      }
      if (s.state() == v1::JOB_STATE_SUCCEEDED && dispatched > 0 && leased > 0 && upstream > 0 &&
          transferring > 0) {
        auto& st = r.slot_times[s.model()];
        st.jobs++;
        st.to_lease_s += (leased - dispatched) / 1000;
        st.to_create_s += (upstream - leased) / 1000;
        if (auto c = sim_created_ms.find(s.upstream_task_id()); c != sim_created_ms.end()) {
          st.to_sim_s += (c->second - leased) / 1000;
          st.sim_jobs++;
        }
        st.held_s += (transferring - dispatched) / 1000;
      }
    }
    tr.p50 = Percentile(waits, 0.50);
    tr.p95 = Percentile(waits, 0.95);
    tr.turnaround_p95 = Percentile(turnarounds, 0.95);
    r.failed += tr.failed;
    r.tenants[tenants[t].first] = std::move(tr);
  }
  for (auto& [account, events] : slot_events) {
    // A release and a dispatch in the same millisecond: the release first.
    std::sort(events.begin(), events.end(), [](const auto& a, const auto& b) {
      return a.first != b.first ? a.first < b.first : a.second > b.second;
    });
    // The newest release first: the one whose wake-up ran the round that refilled the account
    // (an older free slot was left by routing, not by a late wake-up).
    std::vector<double> free_since;
    for (const auto& [at, kind] : events) {
      if (kind > 0) {
        free_since.push_back(at);
      } else if (!free_since.empty()) {
        r.slot_gaps[model_of_account[account]].gaps_ms.push_back(at - free_since.back());
        free_since.pop_back();
      }
    }
  }
  r.makespan_s = (last_ms - first_ms) / 1000;
  r.bound_s = LowerBound(shape_counts, providers);

  for (const auto& p : providers) {
    const auto& prov = stats["providers"][p.name];
    for (const auto& [key, account] :
         {std::pair{p.key_a, p.name + "-a"}, std::pair{p.key_b, p.name + "-b"}}) {
      const auto& k = prov["keys"][key];
      const int creates = k.value("creates", 0);
      const int over_rate = k.value("creates_rejected_rate_limit", 0);
      const int over_concurrency = k.value("creates_rejected_concurrency", 0);
      const int rejected = over_rate + over_concurrency;
      r.rejected_429 += rejected;
      r.rejected_rate += over_rate;
      r.rejected_concurrency += over_concurrency;
      if (rejected > 0) r.account_429[account] = rejected;
      r.utilisation[account] = creates / (p.capacity * std::max(r.makespan_s, 1e-3));
    }
  }

  // Jain's index over the tenants' dispatch counts while all of them had work waiting: from the
  // last tenant's first submission to the first tenant's last dispatch.
  if (tenants.size() > 1) {
    double lo = 0, hi = 1e300;
    for (const auto& [name, tr] : r.tenants) {
      lo = std::max(lo, tr.first_created_ms);
      if (!tr.dispatch_ms.empty()) {
        hi = std::min(hi, *std::max_element(tr.dispatch_ms.begin(), tr.dispatch_ms.end()));
      }
    }
    double sum = 0, sq = 0;
    for (const auto& [name, tr] : r.tenants) {
      double x = 0;
      for (double d : tr.dispatch_ms) x += (d >= lo && d <= hi) ? 1 : 0;
      sum += x;
      sq += x * x;
    }
    r.jain = sq > 0 ? sum * sum / (static_cast<double>(r.tenants.size()) * sq) : 1;
  }
  return r;
}

void Report(const std::string& label, const Result& r, std::vector<std::string>& kv) {
  std::cout << "== " << label << " ==\n"
            << "  makespan " << Fmt(r.makespan_s, 1) << " s, lower bound " << Fmt(r.bound_s, 1)
            << " s, ratio " << Fmt(r.makespan_s / r.bound_s) << "\n"
            << "  429s received: " << r.rejected_429 << " (rate " << r.rejected_rate
            << ", concurrency " << r.rejected_concurrency << ")";
  for (const auto& [acct, n] : r.account_429) std::cout << " " << acct << "=" << n;
  std::cout << ", failed jobs: " << r.failed << "\n"
            << "  quota utilisation:";
  for (const auto& [acct, u] : r.utilisation) std::cout << " " << acct << "=" << Fmt(u, 2);
  std::cout << "\n";
  for (const auto& [model, st] : r.slot_times) {
    if (st.jobs == 0) continue;
    std::cout << "  slot held per " << model << " job: " << Fmt(st.held_s / st.jobs, 3)
              << " s (dispatch to lease " << Fmt(st.to_lease_s / st.jobs, 3)
              << " s, lease to upstream id " << Fmt(st.to_create_s / st.jobs, 3)
              << " s, of which lease to the simulator's create "
              << Fmt(st.sim_jobs ? st.to_sim_s / st.sim_jobs : 0, 3) << " s)\n";
    kv.push_back(label + "_slot_held_s_" + model + "=" + Fmt(st.held_s / st.jobs, 3));
  }
  for (const auto& [model, g] : r.slot_gaps) {
    if (g.gaps_ms.empty()) continue;
    std::cout << "  slot released to refilled, " << model << ": p50 "
              << Fmt(Percentile(g.gaps_ms, 0.5), 0) << " ms, p90 "
              << Fmt(Percentile(g.gaps_ms, 0.9), 0) << " ms (" << g.gaps_ms.size() << " reuses)\n";
    kv.push_back(label + "_slot_gap_p50_ms_" + model + "=" + Fmt(Percentile(g.gaps_ms, 0.5), 0));
  }
  for (const auto& [name, tr] : r.tenants) {
    std::cout << "  " << name << ": " << tr.jobs << " jobs (" << tr.succeeded << " ok, "
              << tr.failed << " failed), wait p50 " << Fmt(tr.p50, 2) << " s, p95 "
              << Fmt(tr.p95, 2) << " s\n";
    // Where a small tenant's tail waits: the model each job went to, and its waits there.
    if (tr.jobs <= 200) {
      std::cout << "    wait by model (jobs, p50, max):";
      for (const auto& [model, w] : tr.waits_by_model) {
        std::cout << " " << model << " " << w.size() << " " << Fmt(Percentile(w, 0.5), 2) << " "
                  << Fmt(Percentile(w, 1.0), 2);
      }
      std::cout << "\n";
    }
    kv.push_back(label + "_" + name + "_p50_s=" + Fmt(tr.p50, 2));
    kv.push_back(label + "_" + name + "_p95_s=" + Fmt(tr.p95, 2));
  }
  std::cout << "  Redis per job: " << Fmt(r.redis_cmds_per_job, 1) << " commands, "
            << Fmt(r.redis_cpu_ms_per_job, 3) << " ms CPU; by command: " << r.redis_top_commands
            << "\n";
  kv.push_back(label + "_redis_cmds_per_job=" + Fmt(r.redis_cmds_per_job, 1));
  std::cout << "  Jain's fairness index (dispatches while all tenants wait): " << Fmt(r.jain)
            << "\n"
            << std::flush;
  kv.push_back(label + "_makespan_s=" + Fmt(r.makespan_s, 1));
  kv.push_back(label + "_bound_s=" + Fmt(r.bound_s, 1));
  kv.push_back(label + "_makespan_ratio=" + Fmt(r.makespan_s / r.bound_s));
  kv.push_back(label + "_429s=" + std::to_string(r.rejected_429));
  kv.push_back(label + "_429s_rate=" + std::to_string(r.rejected_rate));
  kv.push_back(label + "_429s_concurrency=" + std::to_string(r.rejected_concurrency));
  kv.push_back(label + "_failed=" + std::to_string(r.failed));
  for (const auto& [acct, n] : r.account_429)
    kv.push_back(label + "_429s_" + acct + "=" + std::to_string(n));
  kv.push_back(label + "_jain=" + Fmt(r.jain));
  for (const auto& [acct, u] : r.utilisation)
    kv.push_back(label + "_util_" + acct + "=" + Fmt(u, 2));
}

// The flags as Params; nullopt for an unknown flag (usage printed), and a throw naming a flag
// whose value is missing or not a number.
std::optional<Params> ParseFlags(int argc, char** argv) {
  Params params;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error(a + " needs a value");
      return argv[++i];
    };
    if (a == "--big")
      params.big = rb::IntFlag(a, next());
    else if (a == "--small")
      params.small = rb::IntFlag(a, next());
    else if (a == "--scale")
      params.scale = rb::NumberFlag(a, next());
    else if (a == "--small-delay")
      params.small_delay_s = rb::NumberFlag(a, next());
    else if (a == "--workers")
      params.workers = rb::IntFlag(a, next());
    else if (a == "--no-fifo")
      params.fifo = false;
    else if (a == "--no-alone")
      params.alone = false;
    else if (a == "--smoke") {
      params.big = 100;
      params.small = 8;
      params.small_delay_s = 1;
    } else {
      std::cerr << "usage: bench-schedule [--big N] [--small N] [--scale X] [--small-delay S] "
                   "[--workers N] [--no-fifo] [--no-alone] [--smoke]\n";
      return std::nullopt;
    }
  }
  return params;
}

}  // namespace

int main(int argc, char** argv) {
  Params params;
  try {
    auto parsed = ParseFlags(argc, argv);
    if (!parsed) return 2;
    params = *parsed;
  } catch (const std::exception& e) {
    std::cerr << "bench-schedule: " << e.what() << "\n";
    return 2;
  }
  // Run from the build tree without ctest: find the binaries and the catalogue.
  setenv("REELQ_BUILD_DIR", REELQ_BENCH_BUILD_DIR, 0);
  setenv("REELQ_SOURCE_DIR", REELQ_BENCH_SOURCE_DIR, 0);
  if (auto missing = E2eStack::MissingBinaries(); !missing.empty()) {
    std::cerr << "bench-schedule: " << missing << "\n";
    return 2;
  }

  // Quotas (both accounts of a provider alike); the sim's limits are set to the same values.
  // Kling, Sora and Veo are bound by concurrency, Seedance (fast) by its create rate.
  std::vector<Provider> providers = {
      {"kling", "kling-3.0", "kling-v3", "access_key", "sim-kling-ak-a", "sim-kling-ak-b", 8, 600,
       60, 120, 180, 300, 0, 0},
      {"sora", "sora-2", "sora-2", "key", "sim-sora-key-a", "sim-sora-key-b", 8, 600, 90, 180, 280,
       360, 0, 0},
      {"veo", "veo-3.1", "veo-3.1-generate-preview", "key", "sim-veo-key-a", "sim-veo-key-b", 6,
       600, 11, 75, 240, 360, 0, 0},
      {"seedance", "seedance-2.0", "dreamina-seedance-2-0-260128", "key", "sim-seedance-key-a",
       "sim-seedance-key-b", 8, 240, 20, 45, 60, 90, 0, 0},
  };
  std::cout << "bench-schedule: big=" << params.big << " small=2x" << params.small
            << " latency_scale=" << params.scale << " workers=" << params.workers << "\n";
  for (auto& p : providers) {
    p.mean_latency = MeanLatency(p) * params.scale;
    p.capacity = std::min(p.max_concurrent / p.mean_latency, p.rpm / 60.0);
    std::cout << "  " << p.model << ": 2 accounts x {max_concurrent " << p.max_concurrent
              << ", rpm " << p.rpm << "}, mean latency " << Fmt(p.mean_latency, 2)
              << " s, capacity " << Fmt(p.capacity, 2) << " jobs/s per account\n";
  }
  std::cout << std::flush;

  const std::vector<std::pair<std::string, int>> tenants = {
      {"big", params.big}, {"small1", params.small}, {"small2", params.small}};
  const std::vector<double> delays = {0, params.small_delay_s, params.small_delay_s};
  std::vector<std::string> kv;
  try {
    Result fair = RunScenario(params, providers, "fair", tenants, delays);
    Report("fair", fair, kv);
    if (params.fifo) {
      Result fifo = RunScenario(params, providers, "fifo", tenants, delays);
      Report("fifo", fifo, kv);
    }
    if (params.alone) {
      for (const std::string name : {"small1", "small2"}) {
        const int n = params.small;
        Result alone = RunScenario(params, providers, "fair", {{name, n}}, {0});
        const auto& tr = alone.tenants.at(name);
        const auto& shared = fair.tenants.at(name);
        std::cout << "== " << name << " alone ==\n  wait p50 " << Fmt(tr.p50, 2) << " s, p95 "
                  << Fmt(tr.p95, 2) << " s; with the others (fair) p95 " << Fmt(shared.p95, 2)
                  << " s = " << Fmt(shared.p95 / std::max(tr.p95, 1e-3), 2) << " x alone\n";
        const double turnaround_ratio = shared.turnaround_p95 / std::max(tr.turnaround_p95, 1e-3);
        std::cout << "  submit to clip stored: p95 " << Fmt(tr.turnaround_p95, 2) << " s alone, "
                  << Fmt(shared.turnaround_p95, 2)
                  << " s with the others = " << Fmt(turnaround_ratio, 2)
                  << " x alone (not the goal's measure)\n";
        kv.push_back("alone_" + name + "_turnaround_p95_s=" + Fmt(tr.turnaround_p95, 2));
        kv.push_back("fair_" + name + "_turnaround_p95_over_alone=" + Fmt(turnaround_ratio, 2));
        std::cout << "  waited over 1 s alone, by model:";
        for (const auto& [model, count] : tr.slow_by_model)
          std::cout << " " << model << "=" << count;
        std::cout << "\n" << std::flush;
        kv.push_back("alone_" + name + "_p50_s=" + Fmt(tr.p50, 2));
        kv.push_back("alone_" + name + "_p95_s=" + Fmt(tr.p95, 2));
        kv.push_back("fair_" + name +
                     "_p95_over_alone=" + Fmt(shared.p95 / std::max(tr.p95, 1e-3), 2));
      }
    }
  } catch (const std::exception& e) {
    std::cerr << "bench-schedule: " << e.what() << "\n";
    return 1;
  }
  std::string line;
  for (const auto& s : kv) line += (line.empty() ? "" : " ") + s;
  std::cout << line << std::endl;
  return 0;
}
