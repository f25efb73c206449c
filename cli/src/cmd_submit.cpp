// `reelq submit`: one job from flags (or a shot list file).

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "context.h"
#include "format.h"
#include "jsonl.h"
#include "parse.h"
#include "reelq/common/utf8.h"
#include "resend.h"

namespace reelq::cli {
namespace {

struct SubmitOptions {
  std::string prompt;
  std::string shots_file;
  std::vector<std::string> models;
  std::string use_case;
  std::string duration;
  std::string aspect;
  std::string resolution;
  std::string audio;
  std::string priority;
  std::string idempotency_key;
  std::vector<std::string> labels;
  std::string batch;
  std::string tenant;
  std::string negative_prompt;
  std::string start_deadline;
  std::string finish_deadline;
  std::string webhook;
  std::string webhook_events;
  std::string first_frame;
  std::string last_frame;
  std::vector<std::string> ref_images;
};

// An image flag's value: a local file (its bytes are sent; the scheduler checks and stores
// them), or store:KEY for an object already in reelq's object store.
int ReadImageFlag(Context& context, const char* flag, const std::string& value,
                  v1::ImageInput& image) {
  constexpr std::string_view kStorePrefix = "store:";
  if (value.starts_with(kStorePrefix)) {
    if (value.size() == kStorePrefix.size()) return context.UsageError(flag, "store: needs a key");
    image.set_key(value.substr(kStorePrefix.size()));
    return 0;
  }
  std::ifstream in(value, std::ios::binary);
  if (!in) return context.Fail(kExitInput, std::string(flag) + ": cannot read " + value);
  std::stringstream bytes;
  bytes << in.rdbuf();
  image.set_data(bytes.str());
  return 0;
}

// Fills `spec` from the flags that were given; returns 0 or an exit code (after printing).
int ApplyFlags(Context& context, CLI::App& app, const SubmitOptions& o, v1::JobSpec& spec) {
  auto given = [&](const char* flag) { return app.count(flag) > 0; };
  if (given("--prompt")) {
    if (o.prompt.empty()) return context.UsageError("--prompt", "must not be empty");
    if (size_t bad = FindInvalidUtf8(o.prompt); bad != std::string_view::npos)
      return context.UsageError("--prompt", "invalid UTF-8 at byte " + std::to_string(bad + 1));
    spec.set_prompt(o.prompt);
  }
  if (given("--model")) {
    spec.clear_models();
    for (const auto& model : o.models) {
      if (model.empty()) return context.UsageError("--model", "must not be empty");
      if (model != "auto") spec.add_models(model);
    }
  }
  if (given("--use-case")) {
    auto use_case = ParseUseCase(o.use_case);
    if (!use_case) return context.UsageError("--use-case", use_case.error());
    spec.set_use_case(*use_case);
  }
  if (given("--duration")) {
    auto seconds = ParseClipSeconds(o.duration);
    if (!seconds) return context.UsageError("--duration", seconds.error());
    spec.set_duration_seconds(*seconds);
  }
  if (given("--aspect")) {
    auto aspect = ParseAspectRatio(o.aspect);
    if (!aspect) return context.UsageError("--aspect", aspect.error());
    spec.set_aspect_ratio(*aspect);
  }
  if (given("--resolution")) {
    auto resolution = ParseResolution(o.resolution);
    if (!resolution) return context.UsageError("--resolution", resolution.error());
    spec.set_resolution(*resolution);
  }
  if (given("--audio")) {
    auto audio = ParseOnOff(o.audio);
    if (!audio) return context.UsageError("--audio", audio.error());
    spec.set_audio(*audio);
  }
  if (given("--priority")) {
    auto priority = ParseInt32(o.priority);
    if (!priority) return context.UsageError("--priority", priority.error());
    spec.set_priority(*priority);
  }
  if (given("--idempotency-key")) spec.set_idempotency_key(o.idempotency_key);
  for (const auto& text : o.labels) {
    auto label = ParseLabel(text);
    if (!label) return context.UsageError("--label", label.error());
    (*spec.mutable_labels())[label->first] = label->second;
  }
  if (given("--batch")) spec.set_batch_id(o.batch);
  if (given("--tenant")) spec.set_tenant(o.tenant);
  if (given("--negative-prompt")) spec.set_negative_prompt(o.negative_prompt);
  if (given("--webhook")) spec.set_webhook_url(o.webhook);
  if (given("--webhook-events")) {
    if (o.webhook_events != "end" && o.webhook_events != "all")
      return context.UsageError("--webhook-events", "expected end or all");
    spec.set_webhook_events(o.webhook_events);
  }
  if (given("--first-frame")) {
    if (int code =
            ReadImageFlag(context, "--first-frame", o.first_frame, *spec.mutable_first_frame()))
      return code;
  }
  if (given("--last-frame")) {
    if (int code = ReadImageFlag(context, "--last-frame", o.last_frame, *spec.mutable_last_frame()))
      return code;
  }
  for (const auto& file : o.ref_images) {
    if (int code = ReadImageFlag(context, "--ref-image", file, *spec.add_reference_images()))
      return code;
  }
  const auto now = std::chrono::system_clock::now();
  if (given("--start-deadline")) {
    auto at = ParseDeadline(o.start_deadline, now);
    if (!at) return context.UsageError("--start-deadline", at.error());
    *spec.mutable_start_deadline() = *at;
  }
  if (given("--finish-deadline")) {
    auto at = ParseDeadline(o.finish_deadline, now);
    if (!at) return context.UsageError("--finish-deadline", at.error());
    *spec.mutable_finish_deadline() = *at;
  }
  return 0;
}

int RunSubmit(Context& context, CLI::App& app, const SubmitOptions& o) {
  v1::JobSpec spec;
  if (!o.shots_file.empty()) {
    std::ifstream in(o.shots_file, std::ios::binary);
    if (!in) return context.Fail(kExitInput, "--shots-file: cannot read " + o.shots_file);
    std::stringstream text;
    text << in.rdbuf();
    auto parsed = ParseShotsFile(text.str());
    if (!parsed)
      return context.Fail(kExitInput, "--shots-file " + o.shots_file + ": " + parsed.error());
    spec = std::move(*parsed);
  }
  if (const int code = ApplyFlags(context, app, o, spec); code != 0) return code;
  if (spec.prompt().empty() && spec.shots_size() == 0)
    return context.UsageError("--prompt", "give --prompt TEXT or --shots-file FILE");

  v1::SubmitJobResponse response;
  if (const int code = SubmitJobResending(context, std::move(spec), &response); code != kExitOk)
    return code;
  if (context.json()) {
    nlohmann::json out = {{"jobId", response.job_id()}, {"duplicate", response.duplicate()}};
    context.io().out << out.dump() << "\n";
  } else {
    context.io().out << response.job_id() << "\n";
    if (response.duplicate())
      context.io().err << "note: the idempotency key matched an existing job\n";
  }
  return kExitOk;
}

}  // namespace

void AddSubmitCommand(CLI::App& root, Context& context, Commands& commands) {
  auto* app = root.add_subcommand("submit", "Submit one job; prints its id");
  auto o = std::make_shared<SubmitOptions>();
  auto* prompt = app->add_option("--prompt", o->prompt, "What to generate");
  auto* shots = app->add_option("--shots-file", o->shots_file,
                                "JSON file: an array of shots {prompt, durationSeconds}, or a "
                                "JobSpec object; flags override its fields");
  prompt->excludes(shots);
  app->add_option("--model", o->models,
                  "Model id, repeatable (any of them may be used); 'auto' (default) lets reelq "
                  "choose");
  app->add_option("--use-case", o->use_case, "What the clip is for: " + UseCaseNames());
  app->add_option("--duration", o->duration, "Clip length in seconds, e.g. 8");
  app->add_option("--aspect", o->aspect, "Aspect ratio: 16:9 (default), 9:16, 1:1");
  app->add_option("--resolution", o->resolution, "720p (default), 1080p, 4k");
  app->add_option("--audio", o->audio, "on (default) or off");
  app->add_option("--priority", o->priority, "Higher runs first within the tenant");
  app->add_option("--idempotency-key", o->idempotency_key,
                  "Same key from the same tenant returns the same job (default: a new random "
                  "one, kept when the submit is sent again)");
  app->add_option("--label", o->labels, "key=value, repeatable");
  app->add_option("--batch", o->batch, "Batch id to file the job under");
  app->add_option("--tenant", o->tenant, "Studio that owns the job");
  app->add_option("--negative-prompt", o->negative_prompt, "What to avoid");
  app->add_option("--start-deadline", o->start_deadline,
                  "Fail if not started by then: RFC 3339 time or +30m");
  app->add_option("--finish-deadline", o->finish_deadline,
                  "Fail if not finished by then: RFC 3339 time or +2h");
  app->add_option("--webhook", o->webhook,
                  "http(s) URL that gets the job's end, signed (README: Webhooks)");
  app->add_option("--webhook-events", o->webhook_events,
                  "end (default) or all: every state change to --webhook");
  app->add_option("--first-frame", o->first_frame,
                  "Image the clip starts from (PNG, JPEG or WebP file, or store:KEY)");
  app->add_option("--last-frame", o->last_frame,
                  "Image the clip ends on (PNG, JPEG or WebP file, or store:KEY)");
  app->add_option("--ref-image", o->ref_images,
                  "Reference image (file or store:KEY), repeatable; for models that take them");
  commands.push_back({app, [&context, app, o] { return RunSubmit(context, *app, *o); }});
}

}  // namespace reelq::cli
