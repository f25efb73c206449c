#pragma once

// Shared by bench/throughput and bench/scale: what the benches measure from the outside only —
// gRPC (GetBatch, ListJobs), /proc of the processes they start, and Redis INFO — so they keep
// working whatever the Redis layout inside.
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "redis_server.h"
#include "reelq/v1/jobs.grpc.pb.h"
#include "stack.h"

namespace reelq::bench {

// --- flags ------------------------------------------------------------------------------------

// The value of `flag` as a whole number / a number, all of `text` (std::stoi would take "10x"
// as 10); throws naming the flag and the text otherwise.
int IntFlag(const std::string& flag, const std::string& text);
double NumberFlag(const std::string& flag, const std::string& text);

// --- Redis INFO -------------------------------------------------------------------------------

// INFO commandstats -> calls per command ("evalsha", "hset", ...). Commands run inside Lua
// scripts are counted too (Redis counts them under their own names).
std::map<std::string, int64_t> CommandStats(testing::RedisServer& redis);
// Every call, less the bench's own INFO and CONFIG RESETSTAT.
int64_t TotalCommands(const std::map<std::string, int64_t>& stats);
// "evalsha 3.00, hset 2.10, ..." per `per` (jobs), the n largest.
std::string TopCommands(const std::map<std::string, int64_t>& stats, double per, size_t n = 12);
// The script a queue function runs: "reelq_<hash>_<script>" (queue/CMakeLists.txt registers
// each script of queue/lua as a function of the build's library) -> "<script>"; any other name
// as it is.
std::string ScriptOfFunction(const std::string& function);
// INFO memory used_memory, bytes.
int64_t UsedMemory(testing::RedisServer& redis);

// --- /proc ------------------------------------------------------------------------------------

// User + system CPU of a live process so far (all its threads), in milliseconds.
double CpuMs(pid_t pid);
// VmHWM (peak resident set) and VmRSS of a live process, in kB; 0 when unreadable.
int64_t PeakRssKb(pid_t pid);
int64_t RssKb(pid_t pid);
// The 1-, 5- and 15-minute load averages, as /proc/loadavg has them ("0.52 0.40 0.31").
std::string LoadAverage();

// CPU of several processes between two moments.
class CpuWindow {
 public:
  explicit CpuWindow(std::vector<std::pair<std::string, pid_t>> processes);
  void Start();
  void Stop();
  // Milliseconds of CPU used by `name` between Start and Stop.
  double Ms(const std::string& name) const;

 private:
  std::vector<std::pair<std::string, pid_t>> processes_;
  std::map<std::string, double> start_, used_;
};

// --- the stack --------------------------------------------------------------------------------

// The benchmark model served by the in-process noop provider (providers/noop_provider.h).
inline constexpr const char* kNoopModel = "noop-1";
// Sets `o` up for the queue alone: one noop account (no rate limit; `max_concurrent` upstream
// tasks at once), the noop model, the null object store.
void UseNoopProvider(testing::E2eStackOptions& o, int max_concurrent = 100000);

// GetBatch through gRPC; nullopt when the call fails.
std::optional<reelq::v1::BatchProgress> GetBatch(reelq::v1::JobService::Stub& stub,
                                                 const std::string& batch_id);
// Terminal jobs of a batch (succeeded + failed + cancelled).
inline uint32_t Terminal(const reelq::v1::BatchProgress& p) {
  return p.succeeded() + p.failed() + p.cancelled();
}
// Redis commands one GetBatch of `batch_id` costs, measured by `calls` calls with nothing else
// running (the caller makes sure of that): the benches poll GetBatch and take their own polls
// out of the queue's count.
double GetBatchCost(testing::E2eStack& stack, const std::string& batch_id, int calls = 20);

// `count` specs for `model`, in batch `batch_id`, prompts "<prefix> <i>".
std::vector<reelq::v1::JobSpec> Specs(int count, const std::string& model,
                                      const std::string& batch_id, const std::string& prefix);

// --- node peers -------------------------------------------------------------------------------

// Runs `node <script> args...` (script under the source tree), waits up to `timeout`, and
// returns the JSON object on its last line that starts with '{'. Throws with the output on
// failure, or when tools/node_modules/bullmq is missing.
nlohmann::json RunNodePeer(const std::string& script, const std::vector<std::string>& args,
                           const std::map<std::string, std::string>& env,
                           const std::filesystem::path& log, std::chrono::seconds timeout);
bool BullmqAvailable();

// --- output -----------------------------------------------------------------------------------

// The last line of a bench: key=value pairs in the order added.
class KeyValues {
 public:
  void Add(const std::string& key, const std::string& value) { pairs_.emplace_back(key, value); }
  void Add(const std::string& key, double value, int decimals = 1);
  void Add(const std::string& key, int64_t value) { Add(key, std::to_string(value)); }
  void Add(const std::string& key, int value) { Add(key, std::to_string(value)); }
  std::string Line() const;

 private:
  std::vector<std::pair<std::string, std::string>> pairs_;
};

}  // namespace reelq::bench
