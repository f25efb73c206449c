// A test binary that is SIGKILLed or crashes mid-test leaves no process behind: each child dies
// with it (PR_SET_PDEATHSIG, set by ChildProcess), which scripts/test.sh relies on and checks.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <algorithm>

#include "process.h"
#include "redis_server.h"

namespace reelq::testing {
namespace {

// The pids the fixture published, once both are written.
std::vector<pid_t> WaitForPids(const std::filesystem::path& file, ChildProcess& fixture) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline && fixture.running()) {
    std::ifstream in(file);
    std::vector<pid_t> pids;
    for (pid_t pid; in >> pid;) pids.push_back(pid);
    if (pids.size() == 2) return pids;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return {};
}

// Alive and not a zombie waiting for a reaper (PID 1 in a container may never reap).
bool Alive(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  const auto close_paren = line.rfind(')');
  return close_paren != std::string::npos && close_paren + 2 < line.size() &&
         line[close_paren + 2] != 'Z' && line[close_paren + 2] != 'X';
}

// Processes whose environment carries `entry` (NAME=value), as scripts/test.sh scans for them.
std::vector<pid_t> ProcessesWithEnvironment(const std::string& entry) {
  std::vector<pid_t> found;
  for (const auto& dir : std::filesystem::directory_iterator("/proc")) {
    const std::string name = dir.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(dir.path() / "environ", std::ios::binary);
    std::string environ_text((std::istreambuf_iterator<char>(in)), {});
    std::stringstream entries(environ_text);
    for (std::string e; std::getline(entries, e, '\0');) {
      if (e == entry) {
        const pid_t pid = std::stoi(name);
        if (Alive(pid)) found.push_back(pid);
        break;
      }
    }
  }
  return found;
}

class ChildCleanup : public ::testing::TestWithParam<const char*> {};

TEST_P(ChildCleanup, NothingOutlivesAKilledTestBinary) {
  if (!RedisServer::Available()) GTEST_SKIP() << "redis-server is not installed";
  TempDir dir;
  const auto pid_file = dir.path() / "pids";
  const std::string tag_value = std::to_string(getpid()) + "-" + GetParam();
  const std::string tag = "REELQ_ORPHAN_TAG=" + tag_value;
  const std::string filter = std::string("--gtest_filter=OrphanFixture.") + GetParam();
  ChildProcess fixture = ChildProcess::Start(
      {BuildPath("tests/process/reelq_orphan_fixture").string(), filter},
      // TMPDIR: the killed fixture's own temp dirs (its redis-server's, the simulator's media)
      // are made inside ours, which goes with this test; nothing it left could clean them.
      {{"REELQ_ORPHAN_PID_FILE", pid_file.string()},
       {"REELQ_ORPHAN_TAG", tag_value},
       {"TMPDIR", dir.path().string()}},
      dir.path() / "fixture.log");
  const std::vector<pid_t> children = WaitForPids(pid_file, fixture);
  ASSERT_EQ(children.size(), 2u) << "the fixture did not start its children; log:\n"
                                 << ReadFile(dir.path() / "fixture.log");
  for (pid_t pid : children) EXPECT_TRUE(Alive(pid)) << pid;
  // The fixture and the simulator; redis-server writes its process title over its environment,
  // which is why scripts/test.sh also looks for leftovers by session id.
  EXPECT_GE(ProcessesWithEnvironment(tag).size(), 2u);

  if (std::string(GetParam()) == "StartsChildrenThenWaitsToBeKilled") {
    fixture.Signal(SIGKILL);  // the binary only: no destructor, no handler runs
  }
  const auto status = fixture.Wait(std::chrono::seconds(20));
  ASSERT_TRUE(status.has_value()) << "the fixture did not end";
  EXPECT_TRUE(WIFSIGNALED(*status)) << "status " << *status;

  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  // Both ways of finding them must agree: a child whose environment cannot be read for a moment
  // (exiting, or redis-server rewriting its title) is still looked for by its pid.
  auto any_alive = [&] {
    return std::any_of(children.begin(), children.end(), [](pid_t pid) { return Alive(pid); });
  };
  // Clean in three scans in a row: a scan can miss a process for a moment (its environment
  // unreadable while it exits), and a full suite once saw one carrying the tag right after a
  // clean scan; what is still there at the deadline outlived the test.
  int clean_scans = 0;
  while (std::chrono::steady_clock::now() < deadline && clean_scans < 3) {
    if (ProcessesWithEnvironment(tag).empty() && !any_alive()) {
      ++clean_scans;
    } else {
      clean_scans = 0;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (pid_t pid : children) EXPECT_FALSE(Alive(pid)) << "child " << pid << " outlived the test";
  const auto left = ProcessesWithEnvironment(tag);
  for (pid_t pid : left) {
    std::ifstream cmdline("/proc/" + std::to_string(pid) + "/cmdline");
    std::string command((std::istreambuf_iterator<char>(cmdline)), {});
    std::replace(command.begin(), command.end(), '\0', ' ');
    ADD_FAILURE() << "process " << pid << " (" << command << ") carries the test's tag";
  }
}

INSTANTIATE_TEST_SUITE_P(KilledOrCrashed, ChildCleanup,
                         ::testing::Values("StartsChildrenThenWaitsToBeKilled",
                                           "StartsChildrenThenCrashes"));

}  // namespace
}  // namespace reelq::testing
