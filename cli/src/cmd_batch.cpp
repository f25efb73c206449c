// `reelq batch FILE.jsonl`: validate every line, stream the good ones with SubmitBatch, follow
// the batch with a progress bar, then summarise per model.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <thread>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <openssl/sha.h>
#include <nlohmann/json.hpp>

#include "context.h"
#include "format.h"
#include "jsonl.h"
#include "list_jobs.h"
#include "money.h"
#include "parse.h"
#include "resend.h"
#include "rpc_status.h"
#include "summary.h"
#include "watch.h"

namespace reelq::cli {
namespace {

using nlohmann::json;

struct BatchOptions {
  std::string file;
  std::string tenant;
  std::string batch_id;
  bool no_wait = false;
  bool dry_run = false;
  std::string output_json;
  std::string max_wait;
  std::string poll_interval = "1s";
  std::string budget;  // USD, when budget_given
  bool budget_given = false;
  std::string webhook;
  std::string webhook_events;
};

struct Rejection {
  size_t line = 0;
  int code = 0;
  std::string message;
};

bool Done(const v1::BatchProgress& p) {
  return p.total() > 0 && uint64_t{p.succeeded()} + p.failed() + p.cancelled() >= p.total();
}

grpc::Status GetBatch(Context& context, const std::string& batch_id, v1::BatchProgress* out) {
  v1::GetBatchRequest request;
  request.set_batch_id(batch_id);
  grpc::ClientContext rpc;
  context.SetDeadline(rpc);
  return context.Jobs().GetBatch(&rpc, request, out);
}

// Follows the batch until every job is terminal. Returns 0 or an exit code (already reported).
int WaitForBatch(Context& context, const std::string& batch_id, std::chrono::milliseconds max_wait,
                 std::chrono::milliseconds poll_interval, v1::BatchProgress* final_progress) {
  ProgressReporter reporter(context.io().err, context.io().err_is_tty);
  auto last_poll = std::chrono::steady_clock::time_point{};
  v1::WatchJobRequest request;
  request.set_batch_id(batch_id);
  grpc::Status poll_status = grpc::Status::OK;
  auto result = FollowWatch(context, request, max_wait, [&](const v1::JobEvent& event) {
    if (event.has_batch() && event.batch().total() > 0) {
      reporter.Update(event.batch());
      return true;
    }
    // The server sent no counts with this event: ask for them, at most once per poll interval.
    const auto now = std::chrono::steady_clock::now();
    if (now - last_poll >= poll_interval) {
      last_poll = now;
      v1::BatchProgress progress;
      poll_status = GetBatch(context, batch_id, &progress);
      if (!poll_status.ok()) return false;
      reporter.Update(progress);
    }
    return true;
  });
  if (!poll_status.ok()) return context.RpcError(poll_status, "get batch " + batch_id);
  if (result.end == WatchEnd::kFailed || result.end == WatchEnd::kTimedOut) {
    reporter.Finish();
    return result.exit_code;
  }
  // UNIMPLEMENTED watch, or a finished one: poll GetBatch until done (at once if it is).
  const auto give_up_at = std::chrono::steady_clock::now() + max_wait;
  for (;;) {
    const auto status = GetBatch(context, batch_id, final_progress);
    if (!status.ok()) {
      reporter.Finish();
      return context.RpcError(status, "get batch " + batch_id);
    }
    reporter.Update(*final_progress);
    if (Done(*final_progress)) break;
    if (max_wait.count() > 0 && std::chrono::steady_clock::now() >= give_up_at) {
      reporter.Finish();
      return context.Fail(kExitWaitTimeout, "batch " + batch_id + ": gave up after --max-wait");
    }
    std::this_thread::sleep_for(poll_interval);
  }
  reporter.Finish();
  return 0;
}

json SummaryJson(const std::vector<ModelSummary>& rows) {
  json out = json::array();
  for (const auto& row : rows) {
    json r = {{"model", row.model},   {"jobs", row.jobs},           {"succeeded", row.succeeded},
              {"failed", row.failed}, {"cancelled", row.cancelled}, {"unfinished", row.unfinished}};
    r["meanSeconds"] = row.MeanSeconds() ? json(*row.MeanSeconds()) : json(nullptr);
    r["meanGenerationSeconds"] =
        row.MeanGenerationSeconds() ? json(*row.MeanGenerationSeconds()) : json(nullptr);
    out.push_back(std::move(r));
  }
  return out;
}

// A batch id made here when the command names none, so that it can be shown before the upload
// (and named for a re-run if the upload breaks off): "cli-<UTC time>-<random>".
std::string NewBatchId() {
  const auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm utc{};
  gmtime_r(&now, &utc);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &utc);
  std::random_device rd;
  char random[9];
  std::snprintf(random, sizeof random, "%08x", static_cast<unsigned>(rd()));
  return std::string("cli-") + stamp + "-" + random;
}

// A line's idempotency key when it sets none: made from its batch id, its content (the spec,
// serialised deterministically) and which occurrence of that content in the file it is (the
// first, the second, ...). A file sent again with the same --batch-id (after an upload that broke
// off) makes none of the jobs already stored twice, even with lines deleted, added or moved since
// (its line number is no part of it); a line edited since is a new job, and two identical lines
// stay two jobs.
std::string LineKey(const v1::JobSpec& spec, std::map<std::string, size_t>& seen) {
  std::string content;
  {
    // Deterministic: a map field (labels) serialises in key order, run after run.
    google::protobuf::io::StringOutputStream stream(&content);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    spec.SerializeToCodedStream(&coded);
  }
  const size_t occurrence = ++seen[content];
  const std::string material = spec.batch_id() + "\n" + std::to_string(occurrence) + "\n" + content;
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(material.data()), material.size(), digest);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string key = "cli-";
  for (int i = 0; i < 16; ++i) {
    key.push_back(kHex[digest[i] >> 4]);
    key.push_back(kHex[digest[i] & 15]);
  }
  return key;
}

// What the scheduler answered for one item (code 0: accepted, maybe as a duplicate).
struct Outcome {
  int code = -1;
  std::string message;
};

// How a stream went: its status and how many messages gRPC took before it ended.
struct StreamEnd {
  grpc::Status status;
  size_t messages_written = 0;
};

// One SubmitBatch stream of specs[items[0]], specs[items[1]], ...; the answer's item indices
// count in `items`. The deadline grows with the batch: --timeout plus 10 ms per item. The
// batch's budget and webhook go on the stream's first message, so a stream that sends items
// again names them as the first one did.
StreamEnd SendStream(Context& context, const std::vector<SpecLine>& specs,
                     const std::vector<size_t>& items, const BatchOptions& o, int64_t budget_micros,
                     v1::SubmitBatchResponse* response) {
  grpc::ClientContext rpc;
  context.SetDeadline(rpc, std::chrono::milliseconds(10) * items.size());
  auto writer = context.Jobs().SubmitBatch(&rpc, response);
  // Many items to a message (SubmitBatchRequest.specs): gRPC's work per message is paid once
  // per message, on both sides. A message is filled up to kItemsPerMessage items or
  // kBytesPerMessage bytes of specs, whichever comes first, and holds at least one item: a
  // line with an inline image (up to scheduler.max_image_bytes, 10 MiB) goes alone, well
  // under the scheduler's message limit (scheduler.max_message_bytes, 32 MiB). All of them in
  // `specs`, none in `spec`: a scheduler older than `specs` sees each message as one empty item
  // and refuses it (no job made), and the count of answers says why.
  constexpr size_t kItemsPerMessage = 100;
  constexpr size_t kBytesPerMessage = 4 << 20;
  StreamEnd end;
  for (size_t at = 0; at < items.size();) {
    v1::SubmitBatchRequest request;
    size_t bytes = 0;
    while (at < items.size() && static_cast<size_t>(request.specs_size()) < kItemsPerMessage) {
      const auto& spec = specs[items[at]].spec;
      const size_t size = spec.ByteSizeLong();
      if (request.specs_size() > 0 && bytes + size > kBytesPerMessage) break;
      *request.add_specs() = spec;
      bytes += size;
      ++at;
    }
    if (end.messages_written == 0) {
      request.set_budget_micros(budget_micros);
      if (!o.webhook.empty()) {
        request.set_batch_webhook_url(o.webhook);
        request.set_batch_webhook_events(o.webhook_events);
      }
    }
    if (!writer->Write(request)) break;  // the server ended the call; Finish says why
    ++end.messages_written;
  }
  writer->WritesDone();
  end.status = writer->Finish();
  return end;
}

// Whether a stream that ended with `end` can have stored none of its items: the scheduler
// authenticates a stream before it reads an item, and a message over its size limit ends the
// call before that message is read (so, when it was the stream's only one, nothing was).
bool StoredNothing(const StreamEnd& end) {
  switch (end.status.error_code()) {
    case grpc::StatusCode::UNAUTHENTICATED:
    case grpc::StatusCode::PERMISSION_DENIED:
    case grpc::StatusCode::UNIMPLEMENTED:
      return true;
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return end.messages_written <= 1 &&
             end.status.error_message().find("larger than max") != std::string::npos;
    default:
      return false;
  }
}

json RejectionsJson(const std::vector<LineError>& bad, const std::vector<Rejection>& rejected) {
  json out = json::array();
  for (const auto& e : bad)
    out.push_back({{"line", e.line}, {"sent", false}, {"message", e.message}});
  for (const auto& r : rejected) {
    out.push_back({{"line", r.line},
                   {"sent", true},
                   {"code", std::string(StatusCodeName(static_cast<grpc::StatusCode>(r.code)))},
                   {"message", r.message}});
  }
  return out;
}

int RunBatch(Context& context, const BatchOptions& o) {
  auto& err = context.io().err;
  auto& out = context.io().out;
  if (!o.webhook_events.empty() && o.webhook.empty()) {
    return context.UsageError("--webhook-events", "needs --webhook (the URL the events go to)");
  }
  std::chrono::milliseconds max_wait{0};
  if (!o.max_wait.empty()) {
    auto parsed = ParseDuration(o.max_wait);
    if (!parsed) return context.UsageError("--max-wait", parsed.error());
    max_wait = *parsed;
  }
  auto poll = ParseDuration(o.poll_interval);
  if (!poll || poll->count() < 100)
    return context.UsageError("--poll-interval", poll ? "must be at least 100ms" : poll.error());
  int64_t budget_micros = 0;  // none
  if (o.budget_given) {
    // A budget of 0 means none on the wire: an empty or zero --budget must not turn into that.
    auto parsed = ParseUsd(o.budget);
    if (!parsed) return context.UsageError("--budget", parsed.error());
    if (*parsed <= 0) {
      return context.UsageError("--budget",
                                "must be more than $0; leave --budget out for no budget");
    }
    budget_micros = *parsed;
  }

  JsonlFile file;
  if (o.file == "-") {
    file = ReadJsonl(std::cin);
  } else {
    std::ifstream in(o.file, std::ios::binary);
    if (!in) return context.Fail(kExitInput, "cannot read " + o.file);
    file = ReadJsonl(in);
  }
  for (const auto& e : file.errors) err << o.file << ":" << e.line << ": " << e.message << "\n";
  const std::string stream_batch = o.batch_id.empty() ? NewBatchId() : o.batch_id;
  std::map<std::string, size_t> seen;  // each line's content: how often it came so far
  for (auto& line : file.specs) {
    if (line.spec.tenant().empty()) line.spec.set_tenant(o.tenant);
    if (line.spec.batch_id().empty()) line.spec.set_batch_id(stream_batch);
    if (line.spec.idempotency_key().empty())
      line.spec.set_idempotency_key(LineKey(line.spec, seen));
  }
  if (!file.errors.empty()) {
    err << file.errors.size() << " bad line(s) will not be sent; " << file.specs.size()
        << " good line(s)\n";
  }
  if (o.dry_run) {
    if (context.json()) {
      out << json({{"good", file.specs.size()}, {"rejected", RejectionsJson(file.errors, {})}})
                 .dump()
          << "\n";
    } else {
      out << o.file << ": " << file.specs.size() << " good line(s), " << file.errors.size()
          << " bad\n";
    }
    return file.errors.empty() ? kExitOk : kExitNotSucceeded;
  }
  if (file.specs.empty()) return context.Fail(kExitInput, o.file + ": no job to submit");

  // Upload. Items answered UNAVAILABLE or DEADLINE_EXCEEDED may be stored all the same (the
  // scheduler's wait for a replica fell short, a script timed out after it was sent): they go
  // again in a new stream with the same specs, so the same idempotency keys, and the scheduler
  // answers for the job it already holds instead of making (and billing) a second one.
  const std::string& hint_batch = file.specs.front().spec.batch_id();
  std::vector<Outcome> outcomes(file.specs.size());
  std::vector<size_t> pending(file.specs.size());
  for (size_t i = 0; i < pending.size(); ++i) pending[i] = i;
  std::string batch_id;
  for (int attempt = 1;; ++attempt) {
    v1::SubmitBatchResponse response;
    const auto stream = SendStream(context, file.specs, pending, o, budget_micros, &response);
    const auto& status = stream.status;
    if (!status.ok()) {
      if (status.error_code() == grpc::StatusCode::UNAVAILABLE && attempt < kSendAttempts) {
        err << "batch " << hint_batch
            << ": the upload broke off (UNAVAILABLE: " << status.error_message()
            << "); sending its " << pending.size()
            << " item(s) again with the same idempotency keys\n";
        std::this_thread::sleep_for(ResendBackoff(attempt));
        continue;
      }
      if (status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED &&
          status.error_message().find("larger than max") != std::string::npos) {
        // Name the biggest line: most likely the one the scheduler refused.
        size_t biggest = pending.front();
        for (size_t i : pending) {
          if (file.specs[i].spec.ByteSizeLong() > file.specs[biggest].spec.ByteSizeLong())
            biggest = i;
        }
        err << o.file << ":" << file.specs[biggest].line << ": its job is "
            << file.specs[biggest].spec.ByteSizeLong()
            << " bytes, the biggest of the file; the scheduler takes messages up to "
               "scheduler.max_message_bytes (32 MiB unless set): name its images by key "
               "(\"key\": \"inputs/...\") instead of inline, or raise that setting\n";
      }
      if (attempt == 1 && StoredNothing(stream)) {
        err << "batch " << hint_batch << ": the upload was refused; no job was stored\n";
        return context.RpcError(status, "submit batch");
      }
      // Lines read before the break may be stored, and they run and are billed.
      err << "batch " << hint_batch
          << ": the upload broke off; jobs already stored run on. Send the same file again with "
             "--batch-id "
          << hint_batch
          << ": each line carries an idempotency key made from the batch id and its content (not "
             "its line number), so no line already stored is made (or paid for) twice\n";
      return context.RpcError(status, "submit batch");
    }
    if (static_cast<size_t>(response.items_size()) != pending.size()) {
      return context.Fail(kExitInternal,
                          "submit batch: the scheduler answered for " +
                              std::to_string(response.items_size()) + " of " +
                              std::to_string(pending.size()) +
                              " items; it may predate SubmitBatchRequest.specs (many items to a "
                              "message): upgrade it");
    }
    if (batch_id.empty()) batch_id = response.batch_id();
    std::vector<size_t> again;
    for (const auto& item : response.items()) {
      if (item.index() >= pending.size()) continue;
      const size_t i = pending[item.index()];
      outcomes[i] = Outcome{item.code(), item.message()};
      if (MayBeStored(item.code())) again.push_back(i);
    }
    if (again.empty() || attempt >= kSendAttempts) break;
    err << "batch " << batch_id << ": " << again.size()
        << " item(s) answered UNAVAILABLE or DEADLINE_EXCEEDED may be stored; sending them again "
           "with the same idempotency keys\n";
    std::this_thread::sleep_for(ResendBackoff(attempt));
    pending = std::move(again);
  }
  std::vector<Rejection> rejected;
  size_t accepted = 0;
  size_t maybe_stored = 0;
  for (size_t i = 0; i < outcomes.size(); ++i) {
    const auto& outcome = outcomes[i];
    if (outcome.code == 0) {
      ++accepted;
      continue;
    }
    if (MayBeStored(outcome.code)) ++maybe_stored;
    rejected.push_back({file.specs[i].line, outcome.code, outcome.message});
    err << o.file << ":" << file.specs[i].line
        << ": rejected: " << StatusCodeName(static_cast<grpc::StatusCode>(outcome.code)) << ": "
        << outcome.message << "\n";
  }
  err << "batch " << batch_id << ": " << accepted << " accepted, " << rejected.size()
      << " rejected";
  if (!file.errors.empty()) err << ", " << file.errors.size() << " bad line(s) not sent";
  err << "\n";
  if (maybe_stored > 0) {
    err << "batch " << batch_id << ": " << maybe_stored << " item(s) were still answered "
        << "UNAVAILABLE or DEADLINE_EXCEEDED after " << kSendAttempts
        << " sends and may be stored; send the same file again with --batch-id " << batch_id
        << " (its lines carry the same idempotency keys, so no line already stored is made or "
           "paid for twice)\n";
  }
  const bool all_sent_ok = file.errors.empty() && rejected.empty();

  if (o.no_wait || accepted == 0) {
    if (context.json()) {
      out << json({{"batchId", batch_id},
                   {"accepted", accepted},
                   {"rejected", RejectionsJson(file.errors, rejected)}})
                 .dump()
          << "\n";
    } else {
      out << batch_id << "\n";
    }
    return all_sent_ok ? kExitOk : kExitNotSucceeded;
  }

  err << "following the batch (Ctrl-C stops watching, not the batch; resume with "
         "`reelq watch --batch "
      << batch_id << "`)\n";
  v1::BatchProgress progress;
  if (const int code = WaitForBatch(context, batch_id, max_wait, *poll, &progress); code != 0)
    return code;

  v1::ListJobsRequest list;
  list.set_batch_id(batch_id);
  std::vector<v1::JobStatus> jobs;
  if (const auto status = ListAllJobs(context, list, 0, &jobs); !status.ok())
    return context.RpcError(status, "list jobs of batch " + batch_id);
  const auto rows = SummarizeByModel(jobs);
  const bool all_succeeded = progress.succeeded() == progress.total() && !jobs.empty() &&
                             rows.back().succeeded == rows.back().jobs;
  const int exit_code = all_succeeded && all_sent_ok ? kExitOk : kExitNotSucceeded;

  if (!o.output_json.empty()) {
    json dump = {{"batchId", batch_id}, {"rejected", RejectionsJson(file.errors, rejected)}};
    dump["jobs"] = json::array();
    for (const auto& job : jobs) dump["jobs"].push_back(json::parse(ToJson(job, false)));
    std::ofstream f(o.output_json, std::ios::trunc);
    f << dump.dump(2) << "\n";
    if (!f) return context.Fail(kExitInput, "--output-json: cannot write " + o.output_json);
  }
  if (context.json()) {
    json summary = {{"batchId", batch_id},
                    {"progress", json::parse(ToJson(progress, false))},
                    {"models", SummaryJson(rows)},
                    {"rejected", RejectionsJson(file.errors, rejected)},
                    {"exitCode", exit_code}};
    out << summary.dump(2) << "\n";
  } else {
    out << "batch " << batch_id << "\n" << FormatBatchSummary(rows) << FormatBatchCost(progress);
    for (const auto& job : jobs) {
      if (job.state() == v1::JOB_STATE_FAILED) {
        out << "failed " << job.job_id() << ": " << ErrorCategoryName(job.error().category())
            << ": " << job.error().message() << "\n";
      }
    }
  }
  return exit_code;
}

}  // namespace

void AddBatchCommand(CLI::App& root, Context& context, Commands& commands) {
  auto* app = root.add_subcommand(
      "batch",
      "Submit a JSONL file (one JobSpec per line, protobuf JSON: lowerCamel or snake_case), "
      "follow it, and summarise per model. Exit 0 only when every job SUCCEEDED.");
  auto o = std::make_shared<BatchOptions>();
  app->add_option("FILE", o->file, "JSONL file, or - for stdin")->required();
  app->add_option("--tenant", o->tenant, "Tenant for lines that do not set one");
  app->add_option("--batch-id", o->batch_id,
                  "Batch id for lines that do not set one (default: a new cli-<time>-<random>); "
                  "the same file sent again with the same id makes no line twice");
  app->add_flag("--no-wait", o->no_wait, "Print the batch id and exit after submitting");
  app->add_flag("--dry-run", o->dry_run, "Only check the lines; send nothing");
  auto* budget = app->add_option(
      "--budget", o->budget,
      "The batch's budget in USD, more than 0: items that could take it past are refused "
      "(without it: no budget)");
  app->add_option("--output-json", o->output_json, "Write every job's final status to this file");
  app->add_option("--max-wait", o->max_wait, "Stop following after this long (default never)");
  app->add_option("--poll-interval", o->poll_interval,
                  "GetBatch polling interval when the server cannot stream (default 1s)");
  app->add_option("--webhook", o->webhook,
                  "http(s) URL that gets batch.completed once every job ended, signed (README: "
                  "Webhooks)");
  app->add_option("--webhook-events", o->webhook_events,
                  "end (default) or all: also each job's end to --webhook")
      ->check(CLI::IsMember({"end", "all"}));
  commands.push_back({app, [&context, o, budget] {
                        o->budget_given = budget->count() > 0;
                        return RunBatch(context, *o);
                      }});
}

}  // namespace reelq::cli
