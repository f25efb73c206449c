// bench-scale's retention soak: jobs submitted at a steady rate the bench holds, each run to its
// end, finished jobs leaving Redis after a short retention; Redis memory sampled all along.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <deque>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "e2e_util.h"
#include "parts.h"

namespace reelq::bench::scale {

namespace rt = reelq::testing;
using Clock = std::chrono::steady_clock;

namespace {

// Keys in the stack's Redis (INFO keyspace, db0).
int64_t KeyCount(rt::RedisServer& redis) {
  auto v = redis.InfoField("db0", "keyspace");
  if (!v) return 0;
  auto at = v->find("keys=");
  return at == std::string::npos ? 0 : std::atoll(v->c_str() + at + 5);
}

struct Sample {
  double t;          // seconds since the soak began
  int64_t used;      // used_memory
  int64_t keys;      // keys in db0
  int64_t finished;  // jobs known terminal by then (bench side)
};

struct WindowMean {
  double used = 0, keys = 0;
  int n = 0;
};

WindowMean Mean(const std::vector<Sample>& samples, double from, double to) {
  WindowMean m;
  for (const auto& s : samples) {
    if (s.t < from || s.t >= to) continue;
    m.used += static_cast<double>(s.used);
    m.keys += static_cast<double>(s.keys);
    ++m.n;
  }
  if (m.n > 0) {
    m.used /= m.n;
    m.keys /= m.n;
  }
  return m;
}

// Key families (every id-like segment as `*`) with their count and MEMORY USAGE: what stays in
// Redis, for finding what retention does not remove. Reads the layout only to print it.
std::string KeyFamilies(rt::RedisServer& redis) {
  struct Family {
    int64_t keys = 0, bytes = 0;
  };
  std::map<std::string, Family> families;
  std::string cursor = "0";
  do {
    auto r = redis.Run({"SCAN", cursor, "COUNT", "1000"});
    if (r.type != redis::Reply::Type::kArray || r.elements.size() != 2) break;
    cursor = r.elements[0].str;
    for (const auto& k : r.elements[1].elements) {
      std::string family;
      size_t start = 0;
      while (start <= k.str.size()) {
        size_t end = k.str.find(':', start);
        if (end == std::string::npos) end = k.str.size();
        std::string seg = k.str.substr(start, end - start);
        const bool id_like =
            seg.size() >= 12 || seg.find_first_of("0123456789") != std::string::npos;
        family += (start == 0 ? "" : ":") + (id_like && start > 0 ? std::string("*") : seg);
        start = end + 1;
      }
      auto usage = redis.Run({"MEMORY", "USAGE", k.str, "SAMPLES", "0"});
      auto& f = families[family];
      ++f.keys;
      f.bytes += usage.integer;
    }
  } while (cursor != "0");
  std::vector<std::pair<std::string, Family>> sorted(families.begin(), families.end());
  std::sort(sorted.begin(), sorted.end(),
            [](const auto& a, const auto& b) { return a.second.bytes > b.second.bytes; });
  std::string out;
  for (const auto& [name, f] : sorted) {
    char line[256];
    std::snprintf(line, sizeof line, "    %-48s %8lld keys %10.1f KB\n", name.c_str(),
                  static_cast<long long>(f.keys), f.bytes / 1024.0);
    out += line;
  }
  return out;
}

}  // namespace

// What the soak measures, and why so (bench/scale/README.md): once retention is in force, the
// jobs Redis keeps are those finished within the last retention period, so at a steady rate
// their number is steady and so must Redis memory be. The bench holds the rate (submits what
// is owed every 100 ms), samples used_memory twice a second, and compares the mean of the
// soak's last retention period with the mean of the first full period after expiry began
// ([2T, 3T): by then every job in Redis ended under retention, and the create log's sliding
// minute is full when T >= 30 s): like with like, each window holds the same number of jobs,
// and the sweep's saw-tooth averages out. A stack that falls behind the rate keeps a backlog that
// is not a leak: the lag of the oldest unfinished submission says whether it kept up.
void RunRetention(const Args& args, KeyValues& out) {
  rt::E2eStackOptions o;
  o.schedulers = 1;
  o.workers = 1;
  o.lease_seconds = 15;
  o.heartbeat_seconds = 1;
  o.min_poll_interval_ms = 1;
  o.log_level = "warn";
  UseNoopProvider(o, 512);
  o.extra_yaml += args.retention_yaml;
  std::unique_ptr<rt::E2eStack> stack;
  try {
    stack = std::make_unique<rt::E2eStack>(o);
  } catch (const std::exception& e) {
    // The binaries refuse the setting: retention is not there (yet). Say which line said so.
    std::string reason = e.what();
    for (const char* word : {"retention", "queue"}) {
      auto at = reason.find(word);
      if (at == std::string::npos) continue;
      auto start = reason.rfind('\n', at);
      auto end = reason.find('\n', at);
      reason = reason.substr(start == std::string::npos ? 0 : start + 1,
                             end == std::string::npos ? std::string::npos : end - start - 1);
      break;
    }
    std::printf("retention: unsupported: the stack refused `%s`: %s\n", args.retention_yaml.c_str(),
                reason.substr(0, 400).c_str());
    out.Add("retention_memory_growth", "unsupported");
    return;
  }
  const double T = args.retention_s;
  const double rate = args.soak_rate;
  // At least --soak-jobs, and at least four retention periods: [2T, 3T) is the first window,
  // the last period of the soak the one compared with it.
  const double duration = std::max(args.soak_jobs / rate, 4 * T);
  std::printf("retention: %.0f s retention, %.0f jobs/s for %.0f s (%.0f jobs); load average %s\n",
              T, rate, duration, std::ceil(rate * duration), LoadAverage().c_str());
  std::fflush(stdout);

  struct Batch {
    std::string id;
    Clock::time_point at;
    int count;
  };
  std::deque<Batch> outstanding;  // submitted, not known terminal, oldest first
  std::vector<Sample> samples;
  auto stub = stack->JobStub();
  const auto t0 = Clock::now();
  int64_t submitted = 0, finished = 0;
  double max_lag = 0, lag_sum = 0;
  int lag_n = 0, batch_no = 0;
  std::string families_first;
  auto next_sample = t0;
  const auto soak_end = t0 + std::chrono::milliseconds(static_cast<int64_t>(duration * 1000));
  while (Clock::now() < soak_end) {
    const auto now = Clock::now();
    const double t = Seconds(t0, now);
    // What is owed at this rate, in one SubmitBatch (each its own batch, so batch records
    // come and go too).
    const int64_t owed = static_cast<int64_t>(rate * t) - submitted;
    if (owed > 0) {
      const int n = static_cast<int>(std::min<int64_t>(owed, 10000));
      Batch b{"soak-" + std::to_string(batch_no++), now, n};
      grpc::Status status;
      rt::SubmitBatch(*stub, Specs(n, kNoopModel, b.id, "soak"), &status, std::chrono::seconds(60));
      if (!status.ok()) throw std::runtime_error("soak SubmitBatch: " + status.error_message());
      submitted += n;
      outstanding.push_back(std::move(b));
    }
    // Retire the oldest submissions that ended (a few GetBatch calls per tick).
    for (int k = 0; k < 8 && !outstanding.empty(); ++k) {
      const auto& b = outstanding.front();
      auto p = GetBatch(*stub, b.id);
      const bool expired = !p && Seconds(b.at, Clock::now()) > T;  // all its jobs already gone
      if (!expired && (!p || Terminal(*p) < static_cast<uint32_t>(b.count))) break;
      finished += b.count;
      outstanding.pop_front();
    }
    if (Clock::now() >= next_sample) {
      next_sample += std::chrono::milliseconds(500);
      const double lag = outstanding.empty() ? 0 : Seconds(outstanding.front().at, Clock::now());
      if (t >= 2 * T) {
        max_lag = std::max(max_lag, lag);
        lag_sum += lag;
        ++lag_n;
      }
      samples.push_back({Seconds(t0, Clock::now()), UsedMemory(stack->redis()),
                         KeyCount(stack->redis()), finished});
      if (samples.size() % 20 == 0) {
        const auto& s = samples.back();
        std::printf(
            "retention: %.0f s: %lld submitted, %lld finished, oldest unfinished %.1f s, "
            "used_memory %.1f MB, %lld keys\n",
            s.t, static_cast<long long>(submitted), static_cast<long long>(finished), lag,
            s.used / 1048576.0, static_cast<long long>(s.keys));
        std::fflush(stdout);
      }
    }
    if (families_first.empty() && t >= 2.5 * T) families_first = KeyFamilies(stack->redis());
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  const double end_t = Seconds(t0, Clock::now());
  const WindowMean first = Mean(samples, 2 * T, 3 * T);
  const WindowMean last = Mean(samples, end_t - T, end_t + 1);
  if (first.n == 0 || last.n == 0) throw std::runtime_error("retention: no samples in a window");
  int64_t highest = 0;
  for (const auto& s : samples)
    if (s.t >= 2 * T) highest = std::max(highest, s.used);
  const double growth = last.used / first.used - 1;
  std::printf(
      "retention: %lld jobs submitted in %.0f s (%.0f jobs/s), %lld seen finished; oldest "
      "unfinished submission from 2T on: mean %.1f s, max %.1f s\n",
      static_cast<long long>(submitted), end_t, submitted / end_t, static_cast<long long>(finished),
      lag_n ? lag_sum / lag_n : 0.0, max_lag);
  std::printf(
      "retention: used_memory mean over [2T, 3T) %.2f MB (%.0f keys, %.0f bytes a key), over "
      "the last T %.2f MB (%.0f keys, %.0f bytes a key): growth %.1f %%; highest sample after 2T "
      "%.2f MB\n",
      first.used / 1048576.0, first.keys, first.used / std::max(first.keys, 1.0),
      last.used / 1048576.0, last.keys, last.used / std::max(last.keys, 1.0), growth * 100,
      highest / 1048576.0);
  std::printf("retention: key families at 2.5 T:\n%sretention: key families at the end:\n%s",
              families_first.c_str(), KeyFamilies(stack->redis()).c_str());
  std::printf("retention: load average after: %s\n", LoadAverage().c_str());
  std::fflush(stdout);
  out.Add("soak_jobs", submitted);
  out.Add("soak_rate_jobs_s", submitted / end_t, 1);
  out.Add("soak_max_lag_s", max_lag, 1);
  out.Add("retention_first_window_mb", first.used / 1048576.0, 2);
  out.Add("retention_last_window_mb", last.used / 1048576.0, 2);
  out.Add("retention_memory_growth", growth, 3);
}

}  // namespace reelq::bench::scale
