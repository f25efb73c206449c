// `reelq get | list | watch | cancel | retry`: one job (or one batch) at a time.

#include <optional>
#include <set>

#include "context.h"
#include "format.h"
#include "list_jobs.h"
#include "parse.h"
#include "rpc_status.h"
#include "summary.h"
#include "watch.h"

namespace reelq::cli {
namespace {

int PrintStatus(Context& context, const v1::JobStatus& job) {
  if (context.json()) {
    context.io().out << ToJson(job, true) << "\n";
  } else {
    context.io().out << FormatJobStatus(job);
  }
  return kExitOk;
}

int RunGet(Context& context, const std::string& id) {
  v1::GetJobRequest request;
  request.set_job_id(id);
  v1::JobStatus job;
  grpc::ClientContext rpc;
  context.SetDeadline(rpc);
  const auto status = context.Jobs().GetJob(&rpc, request, &job);
  if (!status.ok()) return context.RpcError(status, "get " + id);
  return PrintStatus(context, job);
}

struct ListOptions {
  std::string state;
  std::string batch;
  std::string model;
  std::string tenant;
  size_t limit = 100;
};

int RunList(Context& context, const ListOptions& o) {
  v1::ListJobsRequest request;
  if (!o.state.empty()) {
    auto state = ParseJobState(o.state);
    if (!state) return context.UsageError("--state", state.error());
    request.set_state(*state);
  }
  request.set_batch_id(o.batch);
  request.set_model(o.model);
  request.set_tenant(o.tenant);
  std::vector<v1::JobStatus> jobs;
  const auto status = ListAllJobs(context, request, o.limit, &jobs);
  if (!status.ok()) return context.RpcError(status, "list");
  if (context.json()) {
    // One JSON object per line, so a long listing can be piped to jq as it is.
    for (const auto& job : jobs) context.io().out << ToJson(job, false) << "\n";
  } else {
    context.io().out << FormatJobList(jobs);
  }
  return kExitOk;
}

struct WatchOptions {
  std::string job;
  std::string batch;
  std::string max_wait;
};

int RunWatch(Context& context, const WatchOptions& o) {
  std::chrono::milliseconds max_wait{0};
  if (!o.max_wait.empty()) {
    auto parsed = ParseDuration(o.max_wait);
    if (!parsed) return context.UsageError("--max-wait", parsed.error());
    max_wait = *parsed;
  }
  v1::WatchJobRequest request;
  if (!o.batch.empty()) {
    request.set_batch_id(o.batch);
  } else {
    request.set_job_id(o.job);
  }
  // A reopened stream replays from the start: skip what was printed already.
  std::set<std::string> seen;
  v1::JobState last_state = v1::JOB_STATE_UNSPECIFIED;
  std::optional<v1::BatchProgress> progress;
  const bool single = o.batch.empty();
  auto result = FollowWatch(context, request, max_wait, [&](const v1::JobEvent& event) {
    if (!seen.insert(EventIdentity(event)).second) return true;
    if (context.json()) {
      context.io().out << ToJson(event, false) << "\n" << std::flush;
    } else {
      context.io().out << FormatEvent(event) << "\n" << std::flush;
    }
    // A group's watch also carries its children's events: only the group's own count. The
    // stream ends when the job has (the server ends it then); a terminal event replayed from
    // before a RetryJob is not the end, so the last state seen decides.
    if (event.parent_job_id().empty() && !event.job_id().empty()) last_state = event.state();
    if (event.has_batch()) progress = event.batch();
    return true;
  });
  if (result.end == WatchEnd::kUnsupported)
    return context.Fail(ExitCodeFor(grpc::StatusCode::UNIMPLEMENTED),
                        "watch: the server does not implement WatchJob");
  if (result.end == WatchEnd::kFailed || result.end == WatchEnd::kTimedOut) return result.exit_code;
  if (single) return last_state == v1::JOB_STATE_SUCCEEDED ? kExitOk : kExitNotSucceeded;
  // For a batch, the final counts decide.
  v1::GetBatchRequest get;
  get.set_batch_id(o.batch);
  v1::BatchProgress final_progress;
  grpc::ClientContext rpc;
  context.SetDeadline(rpc);
  const auto status = context.Jobs().GetBatch(&rpc, get, &final_progress);
  if (!status.ok()) return context.RpcError(status, "get batch " + o.batch);
  return final_progress.succeeded() == final_progress.total() ? kExitOk : kExitNotSucceeded;
}

int RunCancelOrRetry(Context& context, const std::string& id, bool cancel) {
  v1::JobStatus job;
  grpc::ClientContext rpc;
  context.SetDeadline(rpc);
  grpc::Status status;
  if (cancel) {
    v1::CancelJobRequest request;
    request.set_job_id(id);
    status = context.Jobs().CancelJob(&rpc, request, &job);
  } else {
    v1::RetryJobRequest request;
    request.set_job_id(id);
    status = context.Jobs().RetryJob(&rpc, request, &job);
  }
  if (!status.ok()) return context.RpcError(status, (cancel ? "cancel " : "retry ") + id);
  if (context.json()) {
    context.io().out << ToJson(job, true) << "\n";
  } else {
    context.io().out << job.job_id() << " " << StateName(job.state()) << "\n";
  }
  return kExitOk;
}

// Every job of a batch at once (CancelBatch, RetryBatch); a big batch takes one call of a few
// seconds per 10,000 jobs, hence the longer deadline.
int RunBatchCancelOrRetry(Context& context, const std::string& batch, bool cancel) {
  v1::BatchActionResponse response;
  grpc::ClientContext rpc;
  context.SetDeadline(rpc, std::chrono::minutes(10));
  grpc::Status status;
  if (cancel) {
    v1::CancelBatchRequest request;
    request.set_batch_id(batch);
    status = context.Jobs().CancelBatch(&rpc, request, &response);
  } else {
    v1::RetryBatchRequest request;
    request.set_batch_id(batch);
    status = context.Jobs().RetryBatch(&rpc, request, &response);
  }
  if (!status.ok()) {
    return context.RpcError(status, (cancel ? "cancel --batch " : "retry --batch ") + batch);
  }
  if (context.json()) {
    context.io().out << ToJson(response, true) << "\n";
  } else {
    const auto& p = response.progress();
    context.io().out << "batch " << batch << ": " << response.jobs_changed()
                     << (cancel ? " jobs cancelled" : " jobs run again") << "; now " << p.pending()
                     << " pending, " << p.running() << " running, " << p.succeeded()
                     << " succeeded, " << p.failed() << " failed, " << p.cancelled()
                     << " cancelled of " << p.total() << "\n";
  }
  return kExitOk;
}

}  // namespace

void AddJobCommands(CLI::App& root, Context& context, Commands& commands) {
  {
    auto* app = root.add_subcommand("get", "Show one job (--json: the full status)");
    auto id = std::make_shared<std::string>();
    app->add_option("ID", *id, "Job id")->required();
    commands.push_back({app, [&context, id] { return RunGet(context, *id); }});
  }
  {
    auto* app = root.add_subcommand("list",
                                    "List jobs, oldest first (by submit time; with --state, by "
                                    "when each entered it); pages through");
    auto o = std::make_shared<ListOptions>();
    app->add_option("--state", o->state,
                    "pending, dispatched, running, succeeded, failed or cancelled");
    app->add_option("--batch", o->batch, "Only this batch");
    app->add_option("--model", o->model, "Only this model");
    app->add_option("--tenant", o->tenant, "Only this tenant");
    app->add_option("--limit", o->limit, "At most this many jobs (0: all; default 100)");
    commands.push_back({app, [&context, o] { return RunList(context, *o); }});
  }
  {
    auto* app = root.add_subcommand(
        "watch", "Print a job's (or a batch's) events as they happen; exits when terminal");
    auto o = std::make_shared<WatchOptions>();
    auto* job = app->add_option("ID", o->job, "Job id");
    auto* batch = app->add_option("--batch", o->batch, "Watch every job of this batch");
    job->excludes(batch);
    app->add_option("--max-wait", o->max_wait, "Give up after this long (e.g. 2h; default never)");
    commands.push_back({app, [&context, o] {
                          if (o->job.empty() && o->batch.empty())
                            return context.UsageError("watch", "give a job ID or --batch B");
                          return RunWatch(context, *o);
                        }});
  }
  for (const bool cancel : {true, false}) {
    auto* app = root.add_subcommand(
        cancel ? "cancel" : "retry",
        cancel ? "Cancel a job that is not terminal yet (--batch B: every such job of batch B)"
               : "Run a FAILED or CANCELLED job again (--batch B: every such job of batch B)");
    auto id = std::make_shared<std::string>();
    auto batch = std::make_shared<std::string>();
    auto* id_option = app->add_option("ID", *id, "Job id");
    auto* batch_option = app->add_option("--batch", *batch, "Every job of this batch");
    id_option->excludes(batch_option);
    const std::string name = cancel ? "cancel" : "retry";
    commands.push_back({app, [&context, id, batch, cancel, name] {
                          if (!batch->empty())
                            return RunBatchCancelOrRetry(context, *batch, cancel);
                          if (id->empty())
                            return context.UsageError(name, "give a job ID or --batch B");
                          return RunCancelOrRetry(context, *id, cancel);
                        }});
  }
}

}  // namespace reelq::cli
