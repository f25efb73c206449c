#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

namespace reelq::testing {

// A child process started for a test: the one way tests start processes that outlive a call.
// It is stopped (SIGTERM, then SIGKILL, to its whole process group) when destroyed, and it dies
// with the test binary even when that binary crashes or is SIGKILLed: the child asks the kernel
// for SIGKILL on its parent's death (PR_SET_PDEATHSIG) before it execs. The kernel ties that
// signal to the *thread* that started the child, so start children from a thread that lives as
// long as they should (a test's own thread). Output goes to `log_path` when set.
class ChildProcess {
 public:
  ChildProcess() = default;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ~ChildProcess();

  static ChildProcess Start(const std::vector<std::string>& argv,
                            const std::map<std::string, std::string>& extra_env = {},
                            const std::filesystem::path& log_path = {});

  pid_t pid() const { return pid_; }
  bool running();
  void Signal(int signal);
  // Sends SIGTERM and waits up to `grace`, then SIGKILL. Returns the exit status as from
  // waitpid (or -1 when it had to be killed).
  int Stop(std::chrono::milliseconds grace = std::chrono::milliseconds(5000));
  void Kill();  // SIGKILL and reap
  // Waits for exit up to `timeout`; returns the waitpid status, or nullopt on timeout.
  std::optional<int> Wait(std::chrono::milliseconds timeout);

 private:
  void SignalGroup(int signal);

  pid_t pid_ = -1;
};

// A short command run to completion through ChildProcess (so it, too, dies with the test
// binary): stdout and stderr together in `output`; `exit_code` is -1 when it could not start,
// was killed by a signal or ran past `timeout` (then it is killed).
struct CommandResult {
  int exit_code = -1;
  std::string output;
};
CommandResult RunCommand(const std::vector<std::string>& argv,
                         std::chrono::milliseconds timeout = std::chrono::seconds(120));
// The same through `/bin/sh -c command` (for pipelines and redirections).
CommandResult RunShell(const std::string& command,
                       std::chrono::milliseconds timeout = std::chrono::seconds(120));

// A TCP port on 127.0.0.1 that was free a moment ago.
int FreePort();

// Polls until something accepts TCP connections on 127.0.0.1:port.
bool WaitForPort(int port, std::chrono::milliseconds timeout);
// The same on another IPv4 address (e.g. a worker in another network namespace).
bool WaitForPort(const std::string& host, int port, std::chrono::milliseconds timeout);

// A fresh directory under the system temp dir, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Path of a built executable (REELQ_BUILD_DIR/<relative>), e.g. "providers/sim/reelq-provider-sim".
std::filesystem::path BuildPath(const std::string& relative);
// Path inside the source tree (REELQ_SOURCE_DIR/<relative>).
std::filesystem::path SourcePath(const std::string& relative);

// Reads a whole file; empty when missing.
std::string ReadFile(const std::filesystem::path& path);

}  // namespace reelq::testing
