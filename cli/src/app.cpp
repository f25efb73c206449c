#include <cstdlib>
#include <exception>

#include "context.h"
#include "parse.h"

namespace reelq::cli {
namespace {

constexpr const char* kDefaultServer = "127.0.0.1:50051";

std::string DefaultServer() {
  const char* env = std::getenv("REELQ_SERVER");
  return env && *env ? env : kDefaultServer;
}

std::string DefaultToken() {
  const char* env = std::getenv("REELQ_TOKEN");
  return env && *env ? env : "";
}

// A command whose output could not be written (a full disk, a closed pipe) has not done its job
// even when everything else went well: `reelq submit ... > job.id` must not exit 0 without the
// id. A failing command keeps its own exit code.
int CheckOutputWritten(Context& context, int code) {
  auto& out = context.io().out;
  out.flush();
  if (out.good() || code != kExitOk) return code;
  context.io().err << "error: cannot write standard output\n";
  if (!context.rerun_hint().empty()) context.io().err << context.rerun_hint() << "\n";
  return kExitInternal;
}

}  // namespace

int RunCli(const std::vector<std::string>& args, Io io) {
  Context context(io);
  CLI::App app("reelq: submit and watch AI video generation jobs", "reelq");
  app.require_subcommand(1);
  app.fallthrough();  // global flags may follow the subcommand: `reelq get ID --json`
  app.footer(ExitCodeHelp());

  auto& options = context.options();
  options.server = DefaultServer();
  app.add_option("--server", options.server,
                 "Scheduler address host:port (default: $REELQ_SERVER, else 127.0.0.1:50051)");
  app.add_option("--timeout", options.timeout,
                 "Deadline of each call, e.g. 30s, 2m (default 30s; watches are not limited)");
  app.add_flag("--json", options.json, "Machine-readable JSON on stdout");
  app.add_flag("--tls", options.tls,
               "Use TLS (the server's certificate checked against --ca, else the system roots)");
  app.add_option("--ca", options.ca_file, "PEM file of the CA that signed the server certificate");
  app.add_option("--cert", options.cert_file, "PEM client certificate, for mutual TLS");
  app.add_option("--key", options.key_file, "PEM private key of --cert");
  options.token = DefaultToken();
  app.add_option("--token", options.token,
                 "API token sent as 'authorization: Bearer <token>' (default: $REELQ_TOKEN)");

  Commands commands;
  AddSubmitCommand(app, context, commands);
  AddBatchCommand(app, context, commands);
  AddJobCommands(app, context, commands);
  AddModelCommands(app, context, commands);
  AddAdminCommands(app, context, commands);
  AddGroupCommands(app, context, commands);

  std::vector<const char*> argv;
  for (const auto& arg : args) argv.push_back(arg.c_str());
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e, io.out, io.err);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e, io.out, io.err);
  } catch (const CLI::ParseError& e) {
    io.err << "error: " << e.what() << "\n"
           << "Run with --help for usage.\n";
    return kExitUsage;
  }

  if (options.server.empty()) return context.UsageError("--server", "must not be empty");
  auto timeout = ParseDuration(options.timeout);
  if (!timeout) return context.UsageError("--timeout", timeout.error());
  if (timeout->count() == 0) return context.UsageError("--timeout", "must be more than zero");
  context.set_timeout(*timeout);
  if (auto tls_error = context.LoadTlsFiles(); !tls_error.empty()) {
    return context.Fail(kExitUsage, tls_error);
  }

  for (auto& command : commands) {
    if (command.app->parsed()) {
      try {
        return CheckOutputWritten(context, command.run());
      } catch (const std::exception& e) {
        return context.Fail(kExitInternal, e.what());
      }
    }
  }
  return context.Fail(kExitUsage, "no command given (run with --help)");
}

}  // namespace reelq::cli
