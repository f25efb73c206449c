#pragma once

// What every command shares: the output streams, the global flags and the gRPC channel.

#include <chrono>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <CLI/CLI.hpp>

#include "reelq/v1/admin.grpc.pb.h"
#include "reelq/v1/jobs.grpc.pb.h"
#include "reelq/v1/models.grpc.pb.h"

namespace reelq::cli {

// Exit codes (documented in `reelq --help` and cli/README.md).
enum ExitCode : int {
  kExitOk = 0,
  kExitInternal = 1,      // an unexpected failure inside the CLI
  kExitUsage = 2,         // a bad flag or flag value
  kExitInput = 3,         // an input file that cannot be read or has no usable line
  kExitNotSucceeded = 4,  // a job ended FAILED/CANCELLED, or a batch line was rejected
  kExitWaitTimeout = 5,   // --max-wait ran out before the job/batch finished
  kExitRpcBase = 20,      // a gRPC error: 20 + the gRPC status code (UNAVAILABLE 14 -> 34)
};

std::string ExitCodeHelp();

struct Io {
  std::ostream& out;
  std::ostream& err;
  bool err_is_tty = false;
};

struct GlobalOptions {
  std::string server;
  std::string timeout = "30s";
  bool json = false;
  bool tls = false;
  // Bearer token for every call (--token, else $REELQ_TOKEN); never printed.
  std::string token;
  // PEM files: the CA that signed the server's certificate (else the system roots), and this
  // client's certificate and key for mutual TLS. Any of them implies --tls.
  std::string ca_file, cert_file, key_file;
};

class Context {
 public:
  explicit Context(Io io) : io_(io) {}

  Io& io() { return io_; }
  GlobalOptions& options() { return options_; }
  bool json() const { return options_.json; }
  std::chrono::milliseconds timeout() const { return timeout_; }
  void set_timeout(std::chrono::milliseconds timeout) { timeout_ = timeout; }

  v1::JobService::Stub& Jobs();
  v1::ModelService::Stub& Models();
  v1::AdminService::Stub& Admin();

  // Reads the --ca/--cert/--key files; an error message naming the flag, or empty.
  std::string LoadTlsFiles();

  // Adds the bearer token (when there is one) to a call.
  void Authorize(grpc::ClientContext& context) const;
  // A deadline of --timeout (plus `extra`) from now, and the bearer token.
  void SetDeadline(grpc::ClientContext& context,
                   std::chrono::milliseconds extra = std::chrono::milliseconds(0)) const;

  // Prints "error: <what>: <CODE NAME>: <message>" and returns the exit code for the status.
  int RpcError(const grpc::Status& status, std::string_view what);
  // Prints "error: <flag>: <message>" and returns kExitUsage.
  int UsageError(std::string_view flag, std::string_view message);
  // Prints "error: <message>" and returns `code`.
  int Fail(int code, std::string_view message);

  // What to run again when the command did what it was asked but its output could not be
  // written (a submit: its idempotency key, so that the rerun prints the id without a second
  // job); empty when there is nothing to say.
  void set_rerun_hint(std::string hint) { rerun_hint_ = std::move(hint); }
  const std::string& rerun_hint() const { return rerun_hint_; }

 private:
  std::shared_ptr<grpc::Channel> Channel();

  Io io_;
  GlobalOptions options_;
  std::chrono::milliseconds timeout_{30'000};
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::JobService::Stub> jobs_;
  std::unique_ptr<v1::ModelService::Stub> models_;
  std::unique_ptr<v1::AdminService::Stub> admin_;
  std::string ca_pem_, cert_pem_, key_pem_;
  std::string rerun_hint_;
};

// A subcommand and what to run when it was chosen.
struct Command {
  CLI::App* app = nullptr;
  std::function<int()> run;
};
using Commands = std::vector<Command>;

// Each command group adds its subcommands to `root`.
void AddSubmitCommand(CLI::App& root, Context& context, Commands& commands);
void AddBatchCommand(CLI::App& root, Context& context, Commands& commands);
void AddJobCommands(CLI::App& root, Context& context, Commands& commands);
void AddModelCommands(CLI::App& root, Context& context, Commands& commands);
void AddAdminCommands(CLI::App& root, Context& context, Commands& commands);
void AddGroupCommands(CLI::App& root, Context& context, Commands& commands);  // storyboard, compare
// `reelq wallet`, and `top-up` / `set-limits` under `admin` (cmd_wallet.cpp).
void AddWalletCommands(CLI::App& root, CLI::App& admin, Context& context, Commands& commands);

// Runs the CLI as if from the command line (args[0] is the program name).
int RunCli(const std::vector<std::string>& args, Io io);

}  // namespace reelq::cli
