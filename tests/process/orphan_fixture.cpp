// Not a test to run on its own: child_cleanup_test starts this binary with a --gtest_filter and
// kills it in the middle of a test. Each test starts real children through the one launcher
// (ChildProcess, via RedisServer for redis), writes their pids to $REELQ_ORPHAN_PID_FILE, then
// either waits to be killed or crashes without running a destructor.
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "process.h"
#include "redis_server.h"

namespace reelq::testing {
namespace {

// Starts a redis-server and a simulator and publishes their pids (written to a temporary name
// and renamed, so the reader never sees half a file).
void StartChildrenAndPublish(std::optional<RedisServer>& redis, ChildProcess& sim) {
  const char* pid_file = std::getenv("REELQ_ORPHAN_PID_FILE");
  ASSERT_NE(pid_file, nullptr) << "run by child_cleanup_test only";
  redis.emplace();
  sim = ChildProcess::Start(
      {BuildPath("providers/sim/reelq-provider-sim").string(), "--listen", "127.0.0.1:0"});
  const std::string tmp = std::string(pid_file) + ".tmp";
  std::ofstream(tmp) << redis->pid() << "\n" << sim.pid() << "\n";
  std::rename(tmp.c_str(), pid_file);
}

TEST(OrphanFixture, StartsChildrenThenWaitsToBeKilled) {
  std::optional<RedisServer> redis;
  ChildProcess sim;
  StartChildrenAndPublish(redis, sim);
  std::this_thread::sleep_for(std::chrono::seconds(60));
  FAIL() << "child_cleanup_test should have killed this binary by now";
}

TEST(OrphanFixture, StartsChildrenThenCrashes) {
  std::optional<RedisServer> redis;
  ChildProcess sim;
  StartChildrenAndPublish(redis, sim);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  std::abort();  // no destructor runs: only the kernel can stop the children now
}

}  // namespace
}  // namespace reelq::testing
