// `reelq storyboard FILE` and `reelq compare`: submit a group (issue 13), follow it (the group's
// watch carries its shots' or takes' events), then print its children as a table and where the
// result is. `reelq pick GROUP TAKE` records a compare's chosen take.

#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>

#include <yaml-cpp/yaml.h>
#include <nlohmann/json.hpp>

#include "context.h"
#include "format.h"
#include "jsonl.h"
#include "parse.h"
#include "resend.h"
#include "rpc_status.h"
#include "summary.h"
#include "watch.h"

namespace reelq::cli {
namespace {

// YAML to JSON for a shot list: plain (unquoted) scalars that read as whole numbers or true /
// false become numbers and booleans; everything else stays text (a quoted "12" is a prompt).
nlohmann::json YamlToJson(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Sequence: {
      auto out = nlohmann::json::array();
      for (const auto& item : node) out.push_back(YamlToJson(item));
      return out;
    }
    case YAML::NodeType::Map: {
      auto out = nlohmann::json::object();
      for (const auto& kv : node) out[kv.first.as<std::string>()] = YamlToJson(kv.second);
      return out;
    }
    case YAML::NodeType::Scalar: {
      const std::string text = node.Scalar();
      if (node.Tag() != "!") {
        if (text == "true") return true;
        if (text == "false") return false;
        if (!text.empty() && text.find_first_not_of("0123456789") == std::string::npos &&
            text.size() < 10) {
          return std::stoll(text);
        }
      }
      return text;
    }
    default:
      return nullptr;
  }
}

// The shot list of FILE (.yaml/.yml as YAML, else JSON): an array of shots or a JobSpec object.
Parsed<v1::JobSpec> ReadShotList(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::unexpected("cannot read " + path);
  std::stringstream text;
  text << in.rdbuf();
  std::string json_text = text.str();
  if (path.ends_with(".yaml") || path.ends_with(".yml")) {
    try {
      json_text = YamlToJson(YAML::Load(json_text)).dump();
    } catch (const YAML::Exception& e) {
      return std::unexpected(std::string("not valid YAML: ") + e.what());
    }
  }
  return ParseShotsFile(json_text);
}

std::string Money(double usd) {
  if (usd <= 0) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "$%.2f", usd);
  return buf;
}

// Follows the group's watch (its own transitions and its children's), printing each event once;
// then reads the group. Returns an exit code, or kExitOk with `out` filled.
int FollowGroup(Context& context, const std::string& id, std::chrono::milliseconds max_wait,
                v1::JobStatus& out) {
  v1::WatchJobRequest request;
  request.set_job_id(id);
  std::set<std::string> seen;
  auto result = FollowWatch(context, request, max_wait, [&](const v1::JobEvent& event) {
    if (!seen.insert(EventIdentity(event)).second) return true;
    if (context.json()) {
      context.io().err << ToJson(event, false) << "\n" << std::flush;
    } else {
      context.io().err << FormatEvent(event) << "\n" << std::flush;
    }
    return !(IsTerminal(event.state()) && event.parent_job_id().empty());
  });
  if (result.end == WatchEnd::kFailed || result.end == WatchEnd::kTimedOut) return result.exit_code;
  v1::GetJobRequest get;
  get.set_job_id(id);
  grpc::ClientContext rpc;
  context.SetDeadline(rpc);
  const auto status = context.Jobs().GetJob(&rpc, get, &out);
  if (!status.ok()) return context.RpcError(status, "get " + id);
  return kExitOk;
}

// The children as a table, then where the group's output is.
void PrintGroup(Context& context, const v1::JobStatus& group, const std::string& child_word) {
  if (context.json()) {
    context.io().out << ToJson(group, false) << "\n";
    return;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& c : group.children()) {
    std::optional<double> seconds;
    if (c.seconds() > 0) seconds = c.seconds();
    std::string state = StateName(c.state());
    if (c.job_id() == group.picked_job_id()) state += " (picked)";
    rows.push_back({std::to_string(c.index()), c.job_id(), c.model().empty() ? "-" : c.model(),
                    state, FormatSeconds(seconds), Money(c.cost_usd_estimate()),
                    c.output_key().empty() ? "-" : c.output_key()});
  }
  auto& o = context.io().out;
  o << FormatTable({child_word, "job", "model", "state", "time", "cost", "clip"}, rows);
  o << group.kind() << " " << group.job_id() << ": " << StateName(group.state()) << "\n";
  if (group.has_error() && !group.error().message().empty()) {
    o << "error: " << group.error().message() << "\n";
  }
  if (!group.output_key().empty()) {
    o << "output: " << (group.output_url().empty() ? group.output_key() : group.output_url())
      << "\n";
  }
  if (!group.sheet_key().empty()) o << "sheet: " << group.sheet_key() << "\n";
  if (!group.sidecar_key().empty()) o << "sidecar: " << group.sidecar_key() << "\n";
}

int SubmitAndFollow(Context& context, const v1::JobSpec& spec, bool follow,
                    const std::string& max_wait_text, const std::string& child_word) {
  std::chrono::milliseconds max_wait{0};
  if (!max_wait_text.empty()) {
    auto parsed = ParseDuration(max_wait_text);
    if (!parsed) return context.UsageError("--max-wait", parsed.error());
    max_wait = *parsed;
  }
  v1::SubmitJobResponse response;
  if (const int code = SubmitJobResending(context, spec, &response); code != kExitOk) return code;
  if (!follow) {
    context.io().out << response.job_id() << "\n";
    return kExitOk;
  }
  const std::string kind = response.status().kind().empty() ? "job" : response.status().kind();
  context.io().err << kind << " " << response.job_id() << " submitted\n";
  v1::JobStatus group;
  if (const int code = FollowGroup(context, response.job_id(), max_wait, group); code != kExitOk) {
    return code;
  }
  PrintGroup(context, group, child_word);
  return group.state() == v1::JOB_STATE_SUCCEEDED ? kExitOk : kExitNotSucceeded;
}

struct StoryboardOptions {
  std::string file;
  std::vector<std::string> models;
  std::string aspect, resolution, max_wait;
  std::string idempotency_key;
  bool no_follow = false;
  bool chain = false;
};

int RunStoryboard(Context& context, CLI::App& app, const StoryboardOptions& o) {
  auto spec = ReadShotList(o.file);
  if (!spec) return context.Fail(kExitInput, o.file + ": " + spec.error());
  spec->set_storyboard(true);
  if (o.chain) spec->set_chain(true);
  if (app.count("--model") > 0) {
    spec->clear_models();
    for (const auto& m : o.models) spec->add_models(m);
  }
  if (app.count("--aspect") > 0) {
    auto aspect = ParseAspectRatio(o.aspect);
    if (!aspect) return context.UsageError("--aspect", aspect.error());
    spec->set_aspect_ratio(*aspect);
  }
  if (app.count("--resolution") > 0) {
    auto resolution = ParseResolution(o.resolution);
    if (!resolution) return context.UsageError("--resolution", resolution.error());
    spec->set_resolution(*resolution);
  }
  if (app.count("--idempotency-key") > 0) spec->set_idempotency_key(o.idempotency_key);
  return SubmitAndFollow(context, *spec, !o.no_follow, o.max_wait, "shot");
}

struct CompareOptions {
  std::string prompt, duration, aspect, resolution, max_wait, audio;
  std::vector<std::string> models;
  std::string idempotency_key;
  bool no_follow = false;
};

int RunCompare(Context& context, CLI::App& app, const CompareOptions& o) {
  v1::JobSpec spec;
  spec.set_compare(true);
  spec.set_prompt(o.prompt);
  for (const auto& m : o.models) spec.add_models(m);
  if (app.count("--duration") > 0) {
    auto seconds = ParseClipSeconds(o.duration);
    if (!seconds) return context.UsageError("--duration", seconds.error());
    spec.set_duration_seconds(*seconds);
  }
  if (app.count("--aspect") > 0) {
    auto aspect = ParseAspectRatio(o.aspect);
    if (!aspect) return context.UsageError("--aspect", aspect.error());
    spec.set_aspect_ratio(*aspect);
  }
  if (app.count("--resolution") > 0) {
    auto resolution = ParseResolution(o.resolution);
    if (!resolution) return context.UsageError("--resolution", resolution.error());
    spec.set_resolution(*resolution);
  }
  if (app.count("--audio") > 0) {
    auto audio = ParseOnOff(o.audio);
    if (!audio) return context.UsageError("--audio", audio.error());
    spec.set_audio(*audio);
  }
  if (app.count("--idempotency-key") > 0) spec.set_idempotency_key(o.idempotency_key);
  return SubmitAndFollow(context, spec, !o.no_follow, o.max_wait, "take");
}

int RunPick(Context& context, const std::string& group, const std::string& take,
            bool delete_others) {
  v1::PickTakeRequest request;
  request.set_job_id(group);
  request.set_take_job_id(take);
  request.set_delete_others(delete_others);
  v1::JobStatus status;
  grpc::ClientContext rpc;
  context.SetDeadline(rpc);
  const auto rpc_status = context.Jobs().PickTake(&rpc, request, &status);
  if (!rpc_status.ok()) return context.RpcError(rpc_status, "pick");
  PrintGroup(context, status, "take");
  return kExitOk;
}

}  // namespace

void AddGroupCommands(CLI::App& root, Context& context, Commands& commands) {
  {
    auto* app = root.add_subcommand(
        "storyboard",
        "Submit a shot list (YAML or JSON) as one storyboard, follow it, print its shots");
    auto o = std::make_shared<StoryboardOptions>();
    app->add_option("FILE", o->file,
                    "Shots: a list of {prompt, durationSeconds, model?, useCase?}, or a JobSpec "
                    "object with `shots` (.yaml/.yml read as YAML)")
        ->required();
    app->add_option("--model", o->models, "Model for shots that name none (repeatable; auto)");
    app->add_option("--aspect", o->aspect, "Aspect ratio of the joined clip (16:9 default)");
    app->add_option("--resolution", o->resolution, "Resolution of the joined clip (720p)");
    app->add_option("--max-wait", o->max_wait, "Give up following after this long (e.g. 10m)");
    app->add_flag("--no-follow", o->no_follow, "Print the id and return at once");
    app->add_option("--idempotency-key", o->idempotency_key,
                    "Same key from the same tenant returns the same group (default: a new random "
                    "one, kept when the submit is sent again)");
    app->add_flag("--chain", o->chain,
                  "Run the shots in order, each starting from the last frame of the one before "
                  "(or `chain: true` in FILE)");
    commands.push_back({app, [&context, app, o] { return RunStoryboard(context, *app, *o); }});
  }
  {
    auto* app = root.add_subcommand(
        "compare", "One prompt on several models; follow it; print the takes and the sheet");
    auto o = std::make_shared<CompareOptions>();
    app->add_option("--prompt", o->prompt, "What to generate")->required();
    app->add_option("--model", o->models, "A model to compare (repeat, at least two)")->required();
    app->add_option("--duration", o->duration, "Clip length in seconds");
    app->add_option("--aspect", o->aspect, "Aspect ratio (16:9 default)");
    app->add_option("--resolution", o->resolution, "Resolution (720p default)");
    app->add_option("--audio", o->audio, "on (default) or off");
    app->add_option("--idempotency-key", o->idempotency_key,
                    "Same key from the same tenant returns the same group (default: a new random "
                    "one, kept when the submit is sent again)");
    app->add_option("--max-wait", o->max_wait, "Give up following after this long (e.g. 10m)");
    app->add_flag("--no-follow", o->no_follow, "Print the id and return at once");
    commands.push_back({app, [&context, app, o] { return RunCompare(context, *app, *o); }});
  }
  {
    auto* app = root.add_subcommand("pick", "Record the chosen take of a finished compare");
    auto group = std::make_shared<std::string>();
    auto take = std::make_shared<std::string>();
    auto delete_others = std::make_shared<bool>(false);
    app->add_option("GROUP", *group, "The compare's job id")->required();
    app->add_option("TAKE", *take, "The chosen take's job id")->required();
    app->add_flag("--delete-others", *delete_others,
                  "Delete the other takes' clips and sidecars from the store");
    commands.push_back({app, [&context, group, take, delete_others] {
                          return RunPick(context, *group, *take, *delete_others);
                        }});
  }
}

}  // namespace reelq::cli
