// `reelq models` and `reelq stats`.

#include "context.h"
#include "format.h"

namespace reelq::cli {
namespace {

int RunModels(Context& context) {
  v1::ListModelsResponse response;
  grpc::ClientContext rpc;
  context.SetDeadline(rpc);
  const auto status = context.Models().ListModels(&rpc, v1::ListModelsRequest(), &response);
  if (!status.ok()) return context.RpcError(status, "models");
  context.io().out << (context.json() ? ToJson(response, true) + "\n" : FormatModels(response));
  return kExitOk;
}

int RunStats(Context& context) {
  v1::GetStatsResponse response;
  grpc::ClientContext rpc;
  context.SetDeadline(rpc);
  const auto status = context.Models().GetStats(&rpc, v1::GetStatsRequest(), &response);
  if (!status.ok()) return context.RpcError(status, "stats");
  context.io().out << (context.json() ? ToJson(response, true) + "\n" : FormatStats(response));
  return kExitOk;
}

}  // namespace

void AddModelCommands(CLI::App& root, Context& context, Commands& commands) {
  auto* models = root.add_subcommand(
      "models", "Models with live queue depth and latency, and the accounts behind them");
  commands.push_back({models, [&context] { return RunModels(context); }});
  auto* stats = root.add_subcommand("stats", "Queue, tenant and account statistics");
  commands.push_back({stats, [&context] { return RunStats(context); }});
}

}  // namespace reelq::cli
