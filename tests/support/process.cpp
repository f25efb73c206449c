#include "process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace reelq::testing {

ChildProcess::ChildProcess(ChildProcess&& other) noexcept : pid_(other.pid_) { other.pid_ = -1; }

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  if (this != &other) {
    if (pid_ > 0) Stop();
    pid_ = other.pid_;
    other.pid_ = -1;
  }
  return *this;
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0) Stop();
}

namespace {

// PATH lookup done before fork: between fork and exec only async-signal-safe calls are allowed
// (the test binary has threads), and execvpe is not one of them.
std::string ResolveExecutable(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/local/bin:/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    const std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return name;  // execve fails with ENOENT and Start reports it
}

// Writes errno to the parent and exits; only async-signal-safe calls.
[[noreturn]] void ChildFail(int report_fd) {
  const int err = errno;
  ssize_t ignored = write(report_fd, &err, sizeof(err));
  (void)ignored;
  _exit(127);
}

}  // namespace

ChildProcess ChildProcess::Start(const std::vector<std::string>& argv,
                                 const std::map<std::string, std::string>& extra_env,
                                 const std::filesystem::path& log_path) {
  if (argv.empty()) throw std::invalid_argument("ChildProcess::Start: empty argv");
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e) {
    std::string entry(*e);
    auto eq = entry.find('=');
    if (eq != std::string::npos && extra_env.contains(entry.substr(0, eq))) continue;
    env_strings.push_back(std::move(entry));
  }
  for (const auto& [k, v] : extra_env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = argv;
  std::vector<char*> argp;
  for (auto& a : args) argp.push_back(a.data());
  argp.push_back(nullptr);
  const std::string executable = ResolveExecutable(argv[0]);

  int log_fd = -1;
  if (!log_path.empty()) {
    log_fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) {
      throw std::runtime_error("cannot open " + log_path.string() + ": " + std::strerror(errno));
    }
  }
  // The child reports a failed exec through this pipe; a successful exec closes it (CLOEXEC).
  int report[2];
  if (pipe2(report, O_CLOEXEC) != 0) {
    if (log_fd >= 0) close(log_fd);
    throw std::runtime_error(std::string("pipe2: ") + std::strerror(errno));
  }
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0) {
    // Dies with the test binary, even when it is SIGKILLed or crashes and no destructor runs.
    // (The signal follows the death of the forking *thread*: Start is called from test threads
    // that live as long as the test.)
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) ChildFail(report[1]);
    // The parent may have died before prctl took effect: then no signal will ever come.
    if (getppid() != parent) _exit(126);
    // Own process group, so a Ctrl-C on the test runner is not what stops it.
    setpgid(0, 0);
    if (log_fd >= 0 && (dup2(log_fd, 1) < 0 || dup2(log_fd, 2) < 0)) ChildFail(report[1]);
    execve(executable.c_str(), argp.data(), envp.data());
    ChildFail(report[1]);
  }
  const int fork_errno = errno;
  if (pid > 0) setpgid(pid, pid);  // also from this side, so Stop can signal the group at once
  close(report[1]);
  if (log_fd >= 0) close(log_fd);
  if (pid < 0) {
    close(report[0]);
    throw std::runtime_error("cannot start " + argv[0] + ": fork: " + std::strerror(fork_errno));
  }
  int child_errno = 0;
  ssize_t n;
  do {
    n = read(report[0], &child_errno, sizeof(child_errno));
  } while (n < 0 && errno == EINTR);
  close(report[0]);
  if (n == sizeof(child_errno)) {
    waitpid(pid, nullptr, 0);
    throw std::runtime_error("cannot start " + argv[0] + ": " + std::strerror(child_errno));
  }
  ChildProcess child;
  child.pid_ = pid;
  return child;
}

bool ChildProcess::running() {
  if (pid_ <= 0) return false;
  int status = 0;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    pid_ = -1;
    return false;
  }
  return true;
}

void ChildProcess::Signal(int signal) {
  if (pid_ > 0) kill(pid_, signal);
}

std::optional<int> ChildProcess::Wait(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return 0;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    int status = 0;
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_ || r < 0) {
      pid_ = -1;
      return status;
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

// The whole group: whatever the child started itself goes too.
void ChildProcess::SignalGroup(int signal) {
  if (pid_ <= 0) return;
  if (kill(-pid_, signal) != 0) kill(pid_, signal);
}

int ChildProcess::Stop(std::chrono::milliseconds grace) {
  if (pid_ <= 0) return 0;
  SignalGroup(SIGTERM);
  if (auto status = Wait(grace)) return *status;
  Kill();
  return -1;
}

void ChildProcess::Kill() {
  if (pid_ <= 0) return;
  SignalGroup(SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
}

CommandResult RunCommand(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
  CommandResult result;
  TempDir dir;
  const auto output = dir.path() / "output";
  try {
    ChildProcess child = ChildProcess::Start(argv, {}, output);
    if (auto status = child.Wait(timeout); status && WIFEXITED(*status)) {
      result.exit_code = WEXITSTATUS(*status);
    }
  } catch (const std::exception& e) {
    result.output = e.what();
    return result;
  }
  result.output = ReadFile(output);
  return result;
}

CommandResult RunShell(const std::string& command, std::chrono::milliseconds timeout) {
  return RunCommand({"/bin/sh", "-c", command}, timeout);
}

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    throw std::runtime_error("cannot bind a free port");
  }
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  int port = ntohs(addr.sin_port);
  close(fd);
  return port;
}

bool WaitForPort(int port, std::chrono::milliseconds timeout) {
  return WaitForPort("127.0.0.1", port, timeout);
}

bool WaitForPort(const std::string& host, int port, std::chrono::milliseconds timeout) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    throw std::invalid_argument("WaitForPort: not an IPv4 address: " + host);
  }
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int rc = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    close(fd);
    if (rc == 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

TempDir::TempDir() {
  std::random_device rd;
  for (int i = 0; i < 100; ++i) {
    auto candidate = std::filesystem::temp_directory_path() /
                     ("reelq-test-" + std::to_string(getpid()) + "-" + std::to_string(rd()));
    if (std::filesystem::create_directory(candidate)) {
      path_ = candidate;
      return;
    }
  }
  throw std::runtime_error("cannot create a temporary directory");
}

TempDir::~TempDir() {
  std::error_code ec;
  if (!path_.empty()) std::filesystem::remove_all(path_, ec);
}

std::filesystem::path BuildPath(const std::string& relative) {
  const char* dir = std::getenv("REELQ_BUILD_DIR");
  return std::filesystem::path(dir ? dir : ".") / relative;
}

std::filesystem::path SourcePath(const std::string& relative) {
  const char* dir = std::getenv("REELQ_SOURCE_DIR");
  return std::filesystem::path(dir ? dir : "..") / relative;
}

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace reelq::testing
