// Issue 5: a worker host cut off from Redis for longer than its lease loses its jobs to another
// host, and when it comes back it publishes nothing for them.
//
// Topology, all in network namespaces this test creates (names carry the test's pid; nothing
// else on the machine gets traffic):
//
//   core  (the test itself, redis-server on 10.213.0.1, the simulator on 10.213.0.2, the
//          scheduler on 127.0.0.1)
//    ├── hostA: "lan" 10.213.11.2 (route to Redis) and "wan" 10.213.12.2 (route to the sim)
//    └── hostB: "lan" 10.213.21.2 and "wan" 10.213.22.2
//
// The cut is of Redis only: in hostA a blackhole route for 10.213.0.1, in core a blackhole rule
// for Redis's packets to hostA (nothing crosses either way; packets are dropped, not refused,
// as in a real partition). hostA keeps its path to the simulator and the object store (the
// shared filesystem), so without fencing it could go on to finish its jobs and publish them.
// Skips, saying why, where namespaces cannot be made (not root, no CAP_NET_ADMIN/SYS_ADMIN, no
// `ip`).
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "e2e_util.h"
#include "stack.h"

namespace reelq::testing {
namespace {

namespace v1 = reelq::v1;
using SteadyClock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr const char* kNetnsPrefix = "reelq-part-";
constexpr const char* kRedisAddress = "10.213.0.1";
constexpr const char* kSimAddress = "10.213.0.2";

std::string FindIp() {
  for (const char* p : {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"}) {
    if (access(p, X_OK) == 0) return p;
  }
  return "";
}

// Runs argv (no shell, through the one launcher) and waits; returns the exit status (-1 when
// it could not run) and puts stdout+stderr in `output`.
int RunTool(const std::vector<std::string>& argv, std::string* output = nullptr) {
  CommandResult result = RunCommand(argv, std::chrono::seconds(60));
  if (output != nullptr) *output = std::move(result.output);
  return result.exit_code;
}

// The namespaces and links of the topology above. The constructor throws Unavailable when
// namespaces cannot be made here (the test skips); the destructor returns the test to the
// namespace it started in and deletes everything it made, on every exit path. Namespaces left
// by a run that died (their owner pid is gone) are removed first, with whatever still runs in
// them.
class Topology {
 public:
  struct Unavailable : std::runtime_error {
    using std::runtime_error::runtime_error;
  };

  Topology() : ip_(FindIp()) {
    if (ip_.empty()) throw Unavailable("`ip` (iproute2) is not installed");
    RemoveStale();
    const std::string tag = kNetnsPrefix + std::to_string(getpid());
    core_ = tag + "-core";
    host_a_ = tag + "-a";
    host_b_ = tag + "-b";
    std::string out;
    if (RunTool({ip_, "netns", "add", core_}, &out) != 0) {
      throw Unavailable(
          "cannot create a network namespace (needs root or CAP_SYS_ADMIN + "
          "CAP_NET_ADMIN): ip netns add: " +
          out);
    }
    made_.push_back(core_);
    try {
      for (const auto& ns : {host_a_, host_b_}) {
        Ip({"netns", "add", ns});
        made_.push_back(ns);
      }
      for (const auto& ns : {core_, host_a_, host_b_}) Ip({"-n", ns, "link", "set", "lo", "up"});
      Ip({"-n", core_, "addr", "add", std::string(kRedisAddress) + "/32", "dev", "lo"});
      Ip({"-n", core_, "addr", "add", std::string(kSimAddress) + "/32", "dev", "lo"});
      AddHost(host_a_, "a", 1);
      AddHost(host_b_, "b", 2);
    } catch (const std::exception& e) {
      Cleanup();
      throw Unavailable(std::string("cannot build the namespaces: ") + e.what());
    }
  }

  ~Topology() { Cleanup(); }
  Topology(const Topology&) = delete;
  Topology& operator=(const Topology&) = delete;

  // Moves this thread (the test's only one so far) into core; threads and children made later
  // inherit it. Throws Unavailable when setns is refused.
  void EnterCore() {
    original_ = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    int fd = open(("/run/netns/" + core_).c_str(), O_RDONLY | O_CLOEXEC);
    if (original_ < 0 || fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
      const int err = errno;
      if (fd >= 0) close(fd);
      throw Unavailable(std::string("cannot enter the core namespace: ") + std::strerror(err));
    }
    close(fd);
  }

  // The worker placement for host 1 (A) or 2 (B).
  E2eWorkerPlacement Placement(int host) const {
    return {{ip_, "netns", "exec", host == 1 ? host_a_ : host_b_}, LanAddress(host)};
  }
  static std::string LanAddress(int host) { return "10.213." + std::to_string(host) + "1.2"; }

  // Redis <-> host, both directions, dropped; and back.
  void CutRedis(int host) {
    Ip({"-n", HostNs(host), "route", "replace", "blackhole", std::string(kRedisAddress) + "/32"});
    Ip({"-n", core_, "rule", "add", "from", kRedisAddress, "to", LanAddress(host), "blackhole",
        "pref", "100"});
  }
  // Slows the simulator's clip bytes to `host` down to `kbit`, leaving its API answers fast:
  // HTB on core's side of the host's "wan" link, with u32 filters sending IP packets of
  // 1024 bytes or more (clip data; poll answers are smaller) to a slow class. Keeps the host
  // in TRANSFERRING long enough to be cut off there. Throws when tc/HTB/u32 are missing.
  void SlowClipDownloads(int host, int kbit) {
    const std::string tc = std::filesystem::path(ip_).parent_path() / "tc";
    const std::string dev = std::string(host == 1 ? "a" : "b") + "-wan";
    auto run = [&](std::vector<std::string> args) {
      args.insert(args.begin(), {tc, "-n", core_});
      std::string out;
      if (RunTool(args, &out) != 0) throw std::runtime_error("tc: " + out);
    };
    run({"qdisc", "add", "dev", dev, "root", "handle", "1:", "htb", "default", "10"});
    run({"class", "add", "dev", dev, "parent", "1:", "classid", "1:10", "htb", "rate", "1gbit"});
    const std::string rate = std::to_string(kbit) + "kbit";
    run({"class", "add", "dev", dev, "parent", "1:", "classid", "1:20", "htb", "rate", rate, "ceil",
         rate, "burst", "1600", "cburst", "1600"});
    // IP total length (offset 2) >= 1024, as value/mask pairs (GSO packets can be far larger).
    for (const auto& [value, mask] :
         {std::pair{"0x0400", "0xfc00"}, std::pair{"0x0800", "0xf800"},
          std::pair{"0x1000", "0xf000"}, std::pair{"0x2000", "0xe000"},
          std::pair{"0x4000", "0xc000"}, std::pair{"0x8000", "0x8000"}}) {
      run({"filter", "add", "dev", dev, "parent", "1:", "protocol", "ip", "prio", "1", "u32",
           "match", "u16", value, mask, "at", "2", "flowid", "1:20"});
    }
  }

  void RestoreRedis(int host) {
    Ip({"-n", core_, "rule", "del", "pref", "100"});
    Ip({"-n", HostNs(host), "route", "replace", std::string(kRedisAddress) + "/32", "via",
        "10.213." + std::to_string(host) + "1.1", "dev", "lan"});
  }

 private:
  std::string HostNs(int host) const { return host == 1 ? host_a_ : host_b_; }

  void Ip(const std::vector<std::string>& args) {
    std::vector<std::string> argv{ip_};
    argv.insert(argv.end(), args.begin(), args.end());
    std::string out;
    if (RunTool(argv, &out) != 0) {
      std::string line;
      for (const auto& a : argv) line += a + " ";
      throw std::runtime_error(line + ": " + out);
    }
  }

  // Two veth pairs between core and the host: "lan" carries Redis, "wan" the provider.
  void AddHost(const std::string& ns, const std::string& name, int n) {
    const std::string net = "10.213." + std::to_string(n);
    for (const auto& [link, sub] : {std::pair{"lan", "1"}, std::pair{"wan", "2"}}) {
      const std::string outer = name + "-" + link;
      Ip({"-n", core_, "link", "add", outer, "type", "veth", "peer", "name", link, "netns", ns});
      Ip({"-n", core_, "addr", "add", net + sub + ".1/30", "dev", outer});
      Ip({"-n", ns, "addr", "add", net + sub + ".2/30", "dev", link});
      Ip({"-n", core_, "link", "set", outer, "up"});
      Ip({"-n", ns, "link", "set", link, "up"});
    }
    Ip({"-n", ns, "route", "add", std::string(kRedisAddress) + "/32", "via", net + "1.1", "dev",
        "lan"});
    Ip({"-n", ns, "route", "add", std::string(kSimAddress) + "/32", "via", net + "2.1", "dev",
        "wan"});
  }

  void Cleanup() {
    if (original_ >= 0) {
      setns(original_, CLONE_NEWNET);
      close(original_);
      original_ = -1;
    }
    // Deleting a namespace deletes its veths (and their peers). Processes still inside would
    // keep it alive unnamed; the stack has stopped them by now.
    for (auto it = made_.rbegin(); it != made_.rend(); ++it) {
      RunTool({ip_, "netns", "del", *it});
    }
    made_.clear();
  }

  // Namespaces named kNetnsPrefix<pid>-* whose pid no longer runs: a run that crashed.
  void RemoveStale() {
    std::string out;
    if (RunTool({ip_, "netns", "list"}, &out) != 0) return;
    std::istringstream lines(out);
    std::string line;
    while (std::getline(lines, line)) {
      const std::string name = line.substr(0, line.find(' '));
      if (name.rfind(kNetnsPrefix, 0) != 0) continue;
      const std::string rest = name.substr(std::string(kNetnsPrefix).size());
      const pid_t owner = static_cast<pid_t>(std::atoi(rest.c_str()));
      if (owner <= 0 || (kill(owner, 0) == 0 || errno != ESRCH)) continue;
      std::string pids;
      RunTool({ip_, "netns", "pids", name}, &pids);
      std::istringstream ps(pids);
      for (pid_t pid; ps >> pid;) kill(pid, SIGKILL);
      if (RunTool({ip_, "netns", "del", name}) == 0) {
        std::cout << "removed stale namespace " << name << " (its test run died)\n";
      }
    }
  }

  std::string ip_;
  std::string core_, host_a_, host_b_;
  std::vector<std::string> made_;
  int original_ = -1;
};

std::optional<v1::JobStatus> Get(v1::JobService::Stub& stub, const std::string& id) {
  return reelq::testing::GetJob(stub, id, 5s);
}

std::map<std::string, v1::JobStatus> GetAll(v1::JobService::Stub& stub,
                                            const std::vector<std::string>& ids) {
  std::map<std::string, v1::JobStatus> out;
  for (const auto& id : ids) {
    if (auto s = Get(stub, id)) out[id] = *s;
  }
  return out;
}

// The reelq_worker_jobs_in_flight gauge of a worker's metrics endpoint (-1 when unreadable).
int WorkerInFlight(const std::string& address) {
  const auto colon = address.rfind(':');
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(std::stoi(address.substr(colon + 1))));
  inet_pton(AF_INET, address.substr(0, colon).c_str(), &addr.sin_addr);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval tv{2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  const std::string request =
      "GET /metrics HTTP/1.1\r\nHost: " + address + "\r\nConnection: close\r\n\r\n";
  ::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::string response;
  char buf[8192];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof(buf), 0)) > 0;) {
    response.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  const std::string name = "\nreelq_worker_jobs_in_flight ";
  const auto at = response.find(name);
  if (at == std::string::npos) return -1;
  return std::atoi(response.c_str() + at + name.size());
}

// Every file under the store with its size and modification time: what "published" means.
std::map<std::string, std::pair<uintmax_t, int64_t>> StoreSnapshot(const E2eStack& stack) {
  std::map<std::string, std::pair<uintmax_t, int64_t>> out;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(stack.store_root(), ec);
       it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    if (!it->is_regular_file()) continue;
    auto t = std::filesystem::last_write_time(it->path(), ec);
    out[std::filesystem::relative(it->path(), stack.store_root()).string()] = {
        std::filesystem::file_size(it->path(), ec),
        static_cast<int64_t>(t.time_since_epoch().count())};
  }
  return out;
}

double Seconds(SteadyClock::duration d) { return std::chrono::duration<double>(d).count(); }

TEST(Partition, HostCutFromRedisLosesItsJobsAndPublishesNothingForThemWhenBack) {
  if (auto missing = E2eStack::MissingBinaries(); !missing.empty()) GTEST_SKIP() << missing;
  std::unique_ptr<Topology> net;
  try {
    net = std::make_unique<Topology>();
    net->EnterCore();
  } catch (const Topology::Unavailable& e) {
    GTEST_SKIP() << "network namespaces unavailable here, partition test skipped: " << e.what();
  }

  constexpr double kLease = 2;
  constexpr int kJobs = 10;
  // hostA's clip bytes: a ~3 KB clip takes ~3 s (longer than the lease), its API traffic
  // stays fast.
  constexpr int kSlowKbit = 8;
  // Kling (latency p50 120 s, at this scale ~3.6 s): it takes a client-chosen idempotency id,
  // so even a job cut off between its create call and recording the upstream id is found
  // again instead of created twice.
  E2eStack stack({.schedulers = 1,
                  .workers = 1,  // hostA; hostB is added once hostA holds the batch
                  .latency_scale = 0.03,
                  .lease_seconds = kLease,
                  .heartbeat_seconds = 0.5,
                  .min_poll_interval_ms = 200,
                  .redis_host = kRedisAddress,
                  .sim_host = kSimAddress,
                  .worker_placement = {net->Placement(1), net->Placement(2)}});
  const std::string host_a = stack.worker_id(0), host_b = stack.worker_id(1);
  auto stub = stack.JobStub();
  try {
    net->SlowClipDownloads(1, kSlowKbit);
  } catch (const std::exception& e) {
    GTEST_SKIP() << "cannot shape hostA's link (HTB and u32 needed): " << e.what();
  }

  std::vector<v1::JobSpec> specs;
  for (int i = 0; i < kJobs; ++i) {
    specs.push_back(MakeSpec("partition clip " + std::to_string(i), "kling-3.0", 5));
  }
  grpc::Status status;
  auto batch = SubmitBatch(*stub, specs, &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  std::vector<std::string> ids;
  for (const auto& item : batch.items()) {
    ASSERT_EQ(item.code(), 0) << item.message();
    ids.push_back(item.job_id());
  }
  ASSERT_EQ(ids.size(), static_cast<size_t>(kJobs));

  // hostA leases the whole batch (hostB is not up yet). Its clips come slowly over its link,
  // so jobs pile up in TRANSFERRING; cut when two are there.
  auto on_a = [&](v1::JobPhase phase) {
    int n = 0;
    for (const auto& [id, s] : GetAll(*stub, ids)) {
      n += s.state() == v1::JOB_STATE_RUNNING && s.worker() == host_a && s.phase() == phase;
    }
    return n;
  };
  for (auto until = SteadyClock::now() + 30s; SteadyClock::now() < until;) {
    if (on_a(v1::JOB_PHASE_TRANSFERRING) >= 2) break;
    std::this_thread::sleep_for(20ms);
  }
  const int transferring_at_cut = on_a(v1::JOB_PHASE_TRANSFERRING);
  ASSERT_GE(transferring_at_cut, 1) << "hostA never reached TRANSFERRING\n" << stack.Logs();

  // --- the cut -----------------------------------------------------------------------------
  // The wall clock too: sidecars record when they were stored in it.
  const int64_t cut_wall_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                  std::chrono::system_clock::now().time_since_epoch())
                                  .count();
  net->CutRedis(1);
  const auto cut_at = SteadyClock::now();
  // Read after the cut is in place: from here on hostA cannot change any record.
  std::this_thread::sleep_for(200ms);
  std::vector<std::string> held;  // RUNNING on hostA when it was cut off
  for (const auto& [id, s] : GetAll(*stub, ids)) {
    if (s.state() == v1::JOB_STATE_RUNNING && s.worker() == host_a) held.push_back(id);
  }
  ASSERT_GE(held.size(), 2u) << "hostA finished its jobs before the cut\n" << stack.Logs();

  // hostB comes up only once hostA has let go of every job it held (its in-flight gauge is 0:
  // its slow downloads have ended) and 3 leases have passed. So nothing can hide a late
  // publication by hostA: a clip it stored after its lease lapsed would be the one that stays.
  const auto a_metrics = stack.worker_metrics_address(0);
  int a_in_flight = -1;
  for (auto until = cut_at + 40s; SteadyClock::now() < until;) {
    a_in_flight = WorkerInFlight(a_metrics);
    if (a_in_flight == 0 &&
        SteadyClock::now() - cut_at >= 3 * std::chrono::duration<double>(kLease)) {
      break;
    }
    std::this_thread::sleep_for(200ms);
  }
  const double a_idle_seconds = Seconds(SteadyClock::now() - cut_at);
  EXPECT_EQ(a_in_flight, 0) << "hostA still runs jobs " << a_idle_seconds << " s after the cut";
  ASSERT_EQ(stack.AddWorker(), 1);
  const auto b_started = SteadyClock::now();

  // hostA stays cut off until hostB has finished every job hostA held.
  std::map<std::string, double> releases;  // job -> seconds from hostB's start to its lease
  std::map<std::string, v1::JobStatus> last;
  for (auto until = b_started + 60s; SteadyClock::now() < until;) {
    last = GetAll(*stub, ids);
    bool all_done = true;
    for (const auto& id : held) {
      const auto& s = last[id];
      if (s.worker() == host_b && !releases.contains(id)) {
        releases[id] = Seconds(SteadyClock::now() - b_started);
      }
      all_done = all_done && IsTerminal(s.state());
    }
    if (all_done) break;
    std::this_thread::sleep_for(50ms);
  }
  const double cut_seconds = Seconds(SteadyClock::now() - cut_at);
  auto before_restore = stack.WaitTerminal(ids, 60s);
  for (const auto& id : ids) {
    ASSERT_EQ(before_restore[id].state(), v1::JOB_STATE_SUCCEEDED)
        << before_restore[id].DebugString() << stack.Logs();
  }
  const auto store_before = StoreSnapshot(stack);

  // --- hostA comes back ---------------------------------------------------------------------
  net->RestoreRedis(1);
  // Long enough for it to reconnect, heartbeat and lease again (several leases).
  std::this_thread::sleep_for(std::chrono::duration<double>(4 * kLease));
  ASSERT_TRUE(stack.worker(0).running()) << "hostA exited\n" << stack.Logs();
  const auto a_log = ReadFile(stack.log_dir() / "worker-0.log");
  ASSERT_NE(a_log.find("heartbeat failed"), std::string::npos)
      << "hostA's log shows no lost Redis: was it cut off at all?\n"
      << stack.Logs();

  // 1. Every job hostA held was taken over by hostB and finished there.
  for (const auto& id : held) {
    const auto& s = before_restore[id];
    EXPECT_EQ(s.worker(), host_b) << "not re-leased by hostB: " << s.DebugString();
    EXPECT_TRUE(releases.contains(id)) << id;
    // hostA stopped the job by its own clock while it could not reach Redis (self-fence).
    EXPECT_NE(a_log.find("job=" + id + " lease lapses by this worker's clock"), std::string::npos)
        << "hostA did not fence itself for " << id << "\n"
        << a_log.substr(a_log.size() > 6000 ? a_log.size() - 6000 : 0);
  }

  // 2. Nothing paid twice: one accepted create per job, hostB resumed hostA's upstream tasks.
  auto stats = stack.SimStats();
  std::map<std::string, int> creates_per_prompt;
  for (const auto& c : stats["creates"]) {
    creates_per_prompt[c["prompt_sha256"].get<std::string>()] += 1;
  }
  int creates = stats["providers"]["kling"]["creates"].get<int>();
  EXPECT_EQ(creates, kJobs) << stats["providers"]["kling"].dump();
  for (const auto& [sha, n] : creates_per_prompt) EXPECT_EQ(n, 1) << "prompt " << sha;

  // 3. Every clip exactly once, nothing else in the store; every clip of a moved job (and its
  //    sidecar) came from hostB, with the upstream task hostA had started.
  const auto after = GetAll(*stub, ids);
  std::set<std::string> expected;
  int clips_by_a = 0, clips_by_b = 0;
  int legit_by_a = 0;  // moved jobs whose clip hostA stored before its lease lapsed
  for (const auto& id : ids) {
    const auto& s = after.at(id);
    ASSERT_FALSE(s.output_key().empty()) << s.DebugString();
    expected.insert(s.output_key());
    expected.insert(s.sidecar_key());
    auto sidecar = nlohmann::json::parse(ReadFile(stack.store_root() / s.sidecar_key()), nullptr,
                                         /*allow_exceptions=*/false);
    ASSERT_TRUE(sidecar.is_object()) << "sidecar of " << id;
    EXPECT_EQ(sidecar.value("upstream_id", ""), s.upstream_task_id()) << id;
    const std::string by = sidecar.value("worker", "");
    (by == host_a ? clips_by_a : clips_by_b) += 1;
    if (std::find(held.begin(), held.end(), id) != held.end() && by != host_b) {
      // hostA may have stored it while its lease was still valid (its Complete then lost to
      // the cut), never later: its last renewal was before the cut, so its lease ended by
      // cut + lease at the latest.
      const int64_t stored_ms = sidecar["timings_ms"].value("stored", int64_t{0});
      EXPECT_EQ(by, host_a) << id;
      EXPECT_LT(stored_ms, cut_wall_ms + static_cast<int64_t>(kLease * 1000))
          << "hostA published " << id << " " << stored_ms - cut_wall_ms
          << " ms after it was cut off, after its lease had lapsed";
      ++legit_by_a;
    }
  }
  std::set<std::string> files;
  for (const auto& [path, meta] : StoreSnapshot(stack)) {
    if (path.find("/.") == std::string::npos) files.insert(path);  // fs metadata files
  }
  EXPECT_EQ(files, expected);

  // 4. hostA, back, published nothing and changed no record: the store and every job record
  //    are as they were before the restore.
  EXPECT_EQ(StoreSnapshot(stack), store_before);
  for (const auto& id : ids) {
    EXPECT_EQ(after.at(id).SerializeAsString(), before_restore[id].SerializeAsString())
        << "changed after hostA came back: " << after.at(id).DebugString();
  }

  std::vector<double> times;
  for (const auto& [id, t] : releases) times.push_back(t);
  std::sort(times.begin(), times.end());
  std::cout << "partition: jobs " << kJobs << "; hostA held " << held.size() << " at the cut ("
            << transferring_at_cut << " transferring); hostA let go of them all " << a_idle_seconds
            << " s after the cut (lease " << kLease << " s); hostB re-leased " << releases.size()
            << " of them, p50 " << (times.empty() ? 0 : times[times.size() / 2]) << " s, max "
            << (times.empty() ? 0 : times.back()) << " s after it started; cut lasted "
            << cut_seconds << " s; creates " << creates << " (duplicates " << creates - kJobs
            << "); clips " << files.size() / 2 << " (hostA " << clips_by_a << ", of them "
            << legit_by_a << " moved jobs stored before its lease lapsed; hostB " << clips_by_b
            << "); store and records unchanged after hostA came back\n";
}

}  // namespace
}  // namespace reelq::testing
