// A job's whole life through the API: a batch goes in over gRPC and clips come out. Real
// redis-server, reelq-provider-sim, one scheduler and two workers (tests/e2e/stack.h).
#include <gtest/gtest.h>

#include <iostream>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "e2e_util.h"
#include "stack.h"

namespace reelq::testing {
namespace {

namespace v1 = reelq::v1;

// A model and a duration it can make, round robin over the four.
v1::JobSpec MixedSpec(int i) {
  static const std::vector<std::pair<std::string, uint32_t>> kinds = {
      {"kling-3.0", 5}, {"sora-2", 4}, {"veo-3.1", 4}, {"seedance-2.0", 5}};
  const auto& [model, duration] = kinds[i % kinds.size()];
  return MakeSpec("e2e batch clip " + std::to_string(i) + ": a lighthouse at dusk", model,
                  duration);
}

bool HasJobFile(const std::vector<std::string>& files, const std::string& id) {
  for (const auto& f : files) {
    if (f.find(id) != std::string::npos) return true;
  }
  return false;
}

TEST(JobLifecycle, Batch200AllSucceedWithOneValidClipAndSidecarEach) {
  REELQ_SKIP_WITHOUT_STACK_OR_FFPROBE();
  E2eStack stack({.schedulers = 1, .workers = 2});
  auto stub = stack.JobStub();
  std::vector<v1::JobSpec> specs;
  for (int i = 0; i < 200; ++i) specs.push_back(MixedSpec(i));
  grpc::Status status;
  const auto t0 = std::chrono::steady_clock::now();
  auto batch = SubmitBatch(*stub, specs, &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(batch.accepted(), 200u);
  ASSERT_EQ(batch.rejected(), 0u);
  ASSERT_EQ(batch.items_size(), 200);
  ASSERT_FALSE(batch.batch_id().empty());

  // The batch watch ends by itself once every job is terminal.
  v1::WatchJobRequest watch;
  watch.set_batch_id(batch.batch_id());
  auto events = Watch(*stub, watch, &status, std::chrono::seconds(240));
  // Reported, not asserted: how long the batch took from submit to its watch's end.
  std::cout << "batch done in "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()
            << " s after submit\n";
  ASSERT_TRUE(status.ok()) << status.error_message() << "\n" << stack.Logs();
  ASSERT_FALSE(events.empty());

  std::vector<std::string> ids;
  for (const auto& item : batch.items()) ids.push_back(item.job_id());
  auto final = stack.WaitTerminal(ids, std::chrono::seconds(60));
  const auto files = stack.StoreFiles();
  std::multiset<std::string> file_set(files.begin(), files.end());
  int mp4s = 0;
  int sidecars = 0;
  for (const auto& f : files) {
    if (f.ends_with(".mp4")) ++mp4s;
    if (f.ends_with(".json")) ++sidecars;
  }
  EXPECT_EQ(mp4s, 200) << "clips in the store";
  EXPECT_EQ(sidecars, 200) << "sidecars in the store";

  std::vector<std::filesystem::path> clips;
  for (const auto& id : ids) clips.push_back(stack.store_root() / final[id].output_key());
  const auto probes = ProbeAll(clips);
  for (size_t i = 0; i < ids.size(); ++i) {
    const auto& id = ids[i];
    ASSERT_TRUE(final.contains(id)) << id;
    const auto& job = final.at(id);
    ASSERT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.DebugString() << stack.Logs();
    EXPECT_EQ(job.spec().batch_id(), batch.batch_id());
    // Exactly one clip per job: its key appears once, and no other file names the job but its
    // clip and its sidecar.
    ASSERT_EQ(file_set.count(job.output_key()), 1u) << job.output_key();
    ASSERT_EQ(file_set.count(job.sidecar_key()), 1u) << job.sidecar_key();
    int named = 0;
    for (const auto& f : files) named += f.find(id) != std::string::npos ? 1 : 0;
    EXPECT_EQ(named, 2) << id;

    const auto& clip = clips[i];
    const auto& info = probes[i];
    EXPECT_TRUE(info.error.empty()) << clip << ": " << info.error;
    EXPECT_TRUE(info.has_video) << clip;
    EXPECT_GT(info.duration_seconds, 0) << clip;
    const std::string sha = Sha256File(clip);
    EXPECT_EQ(job.sha256(), sha) << id;

    auto sidecar =
        nlohmann::json::parse(ReadFile(stack.store_root() / job.sidecar_key()), nullptr, false);
    ASSERT_TRUE(sidecar.is_object()) << job.sidecar_key();
    EXPECT_EQ(sidecar.value("job_id", ""), id);
    EXPECT_EQ(sidecar.value("prompt", ""), specs[i].prompt());
    EXPECT_EQ(sidecar.value("model", ""), job.model());
    EXPECT_EQ(sidecar.value("model", ""), specs[i].models(0));
    EXPECT_EQ(sidecar.value("upstream_id", ""), job.upstream_task_id());
    EXPECT_FALSE(job.upstream_task_id().empty()) << id;
    EXPECT_EQ(sidecar.value("sha256", ""), sha) << id;
    EXPECT_EQ(sidecar.value("batch_id", ""), batch.batch_id());
  }
  // One paid generation per job: the simulator saw 200 accepted creates in all.
  auto stats = stack.SimStats();
  int creates = 0;
  for (const char* p : {"kling", "sora", "veo", "seedance"}) {
    creates += stats["providers"][p]["creates"].get<int>();
  }
  EXPECT_EQ(creates, 200);
}

// Waits until GetJob shows the job in `state` (and phase, when given), or the timeout passes.
v1::JobStatus WaitForState(v1::JobService::Stub& stub, const std::string& id, v1::JobState state,
                           std::chrono::seconds timeout,
                           v1::JobPhase phase = v1::JOB_PHASE_UNSPECIFIED) {
  v1::JobStatus last;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::GetJobRequest req;
    req.set_job_id(id);
    if (stub.GetJob(&ctx, req, &last).ok() && last.state() == state &&
        (phase == v1::JOB_PHASE_UNSPECIFIED || last.phase() == phase)) {
      return last;
    }
    if (IsTerminal(last.state())) return last;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return last;
}

v1::JobStatus Cancel(v1::JobService::Stub& stub, const std::string& id, grpc::Status* status) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  v1::CancelJobRequest req;
  req.set_job_id(id);
  v1::JobStatus out;
  *status = stub.CancelJob(&ctx, req, &out);
  return out;
}

TEST(JobLifecycle, CancelPendingAndRunningJobsWritesNoClip) {
  REELQ_SKIP_WITHOUT_STACK_OR_FFPROBE();
  // One upstream slot per account (two Sora accounts) and no worker at first: two Sora jobs take
  // both slots (DISPATCHED), so a third stays PENDING for as long as the test wants.
  E2eStack stack({.schedulers = 1, .workers = 0, .account_max_concurrent = 1});
  auto stub = stack.JobStub();
  grpc::Status status;
  // [sim:slow]: 20x the simulated latency, several seconds here, so it is cancelled while the
  // provider generates it.
  auto running =
      SubmitJob(*stub, MakeSpec("[sim:slow] a running job to cancel", "sora-2", 4), &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  auto blocker =
      SubmitJob(*stub, MakeSpec("a job that holds the other slot", "sora-2", 4), &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  for (const auto& id : {running.job_id(), blocker.job_id()}) {
    auto s = WaitForState(*stub, id, v1::JOB_STATE_DISPATCHED, std::chrono::seconds(30));
    ASSERT_EQ(s.state(), v1::JOB_STATE_DISPATCHED) << s.DebugString() << stack.Logs();
  }
  auto pending = SubmitJob(*stub, MakeSpec("a pending job to cancel", "sora-2", 4), &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  auto before =
      WaitForState(*stub, pending.job_id(), v1::JOB_STATE_PENDING, std::chrono::seconds(5));
  ASSERT_EQ(before.state(), v1::JOB_STATE_PENDING) << before.DebugString();
  Cancel(*stub, pending.job_id(), &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  auto after =
      WaitForState(*stub, pending.job_id(), v1::JOB_STATE_CANCELLED, std::chrono::seconds(30));
  EXPECT_EQ(after.state(), v1::JOB_STATE_CANCELLED) << after.DebugString();

  stack.AddWorker();
  auto generating = WaitForState(*stub, running.job_id(), v1::JOB_STATE_RUNNING,
                                 std::chrono::seconds(60), v1::JOB_PHASE_GENERATING);
  ASSERT_EQ(generating.state(), v1::JOB_STATE_RUNNING) << generating.DebugString() << stack.Logs();
  ASSERT_FALSE(generating.upstream_task_id().empty());
  Cancel(*stub, running.job_id(), &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  auto stopped =
      WaitForState(*stub, running.job_id(), v1::JOB_STATE_CANCELLED, std::chrono::seconds(30));
  EXPECT_EQ(stopped.state(), v1::JOB_STATE_CANCELLED) << stopped.DebugString();

  // The blocker finishes, and a later job gets the freed slot and finishes too.
  auto later = SubmitJob(*stub, MakeSpec("a job after the cancels", "sora-2", 4), &status);
  ASSERT_TRUE(status.ok());
  auto done = stack.WaitTerminal({blocker.job_id(), later.job_id()}, std::chrono::seconds(120));
  EXPECT_EQ(done[blocker.job_id()].state(), v1::JOB_STATE_SUCCEEDED) << stack.Logs();
  EXPECT_EQ(done[later.job_id()].state(), v1::JOB_STATE_SUCCEEDED) << stack.Logs();

  // Sora has no cancel API (the adapter leaves the upstream task alone), so the cancelled task
  // runs to its end in the simulator. Wait for that (no Sora task holds a slot any more), then
  // give a worker that had not stopped time to poll and download it: nothing may arrive.
  auto sora_in_flight = [&] {
    int n = 0;
    for (const auto& [key, k] : stack.SimStats()["providers"]["sora"]["keys"].items()) {
      n += k["in_flight"].get<int>();
    }
    return n;
  };
  for (int i = 0; i < 600 && sora_in_flight() > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(sora_in_flight(), 0);
  std::this_thread::sleep_for(std::chrono::seconds(2));
  const auto files = stack.StoreFiles();
  EXPECT_FALSE(HasJobFile(files, pending.job_id()));
  EXPECT_FALSE(HasJobFile(files, running.job_id()));
  EXPECT_TRUE(HasJobFile(files, blocker.job_id()));
  EXPECT_TRUE(HasJobFile(files, later.job_id()));
  auto final = stack.WaitTerminal({pending.job_id(), running.job_id()}, std::chrono::seconds(10));
  EXPECT_EQ(final[pending.job_id()].state(), v1::JOB_STATE_CANCELLED);
  EXPECT_EQ(final[running.job_id()].state(), v1::JOB_STATE_CANCELLED);
  EXPECT_EQ(stack.SimStats()["providers"]["sora"]["downloads"].get<int>(), 2)
      << "only the two finished jobs' clips were downloaded";
}

struct BadCase {
  std::string name;
  v1::JobSpec spec;
  std::string field;  // the message must name it
};

std::vector<BadCase> BadCases() {
  std::vector<BadCase> out;
  auto good = [] { return MakeSpec("a good prompt", "kling-3.0", 5); };
  {
    auto s = good();
    s.set_prompt("");
    out.push_back({"empty prompt", s, "prompt"});
  }
  {
    auto s = good();
    s.clear_models();
    s.add_models("no-such-model-9");
    out.push_back({"unknown model", s, "models"});
  }
  {
    auto s = good();
    s.set_duration_seconds(0);
    out.push_back({"zero duration", s, "duration_seconds"});
  }
  {
    auto s = good();
    s.set_duration_seconds(static_cast<uint32_t>(-5));  // what a client's -5 arrives as
    out.push_back({"negative duration", s, "duration_seconds"});
  }
  {
    auto s = good();
    s.clear_models();
    s.add_models("auto");
    s.set_duration_seconds(600);
    out.push_back({"duration no model makes", s, "duration_seconds"});
  }
  {
    auto s = good();
    s.set_prompt(std::string(100001, 'a'));
    out.push_back({"prompt over the limit", s, "prompt"});
  }
  {
    auto s = good();
    s.set_prompt(std::string("caf\xc3\x28 at night", 14));
    out.push_back({"invalid UTF-8 prompt", s, "prompt"});
  }
  {
    auto s = good();
    s.set_negative_prompt("\xff\xfe");
    out.push_back({"invalid UTF-8 negative prompt", s, "negative_prompt"});
  }
  {
    auto s = MakeSpec("", "kling-3.0", 0);
    auto* shot = s.add_shots();
    shot->set_prompt("ok shot");
    shot->set_duration_seconds(3);
    shot = s.add_shots();
    shot->set_prompt("bad \xe2\x82 shot");
    shot->set_duration_seconds(3);
    out.push_back({"invalid UTF-8 shot prompt", s, "shots[1].prompt"});
  }
  {
    auto s = good();
    s.set_use_case(static_cast<v1::UseCase>(99));
    out.push_back({"unknown enum value", s, "use_case"});
  }
  return out;
}

TEST(JobLifecycle, InvalidRequestsNameTheFieldAndOtherJobsAreUnaffected) {
  REELQ_SKIP_WITHOUT_STACK_OR_FFPROBE();
  E2eStack stack({.schedulers = 1, .workers = 2});
  auto stub = stack.JobStub();
  grpc::Status status;
  auto bystander = SubmitJob(*stub, MakeSpec("a bystander job", "seedance-2.0", 5), &status);
  ASSERT_TRUE(status.ok()) << status.error_message();

  for (const auto& c : BadCases()) {
    SCOPED_TRACE(c.name);
    SubmitJob(*stub, c.spec, &status);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
    EXPECT_NE(status.error_message().find(c.field), std::string::npos)
        << "message does not name " << c.field << ": " << status.error_message();
  }

  // The same bad specs as items of one batch, between good ones: each bad item is refused
  // naming its field, the good ones are accepted.
  std::vector<v1::JobSpec> items;
  std::vector<std::string> fields;
  for (const auto& c : BadCases()) {
    items.push_back(MakeSpec("good batch item " + std::to_string(items.size()), "veo-3.1", 4));
    fields.push_back("");
    items.push_back(c.spec);
    fields.push_back(c.field);
  }
  auto batch = SubmitBatch(*stub, items, &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(batch.items_size(), static_cast<int>(items.size()));
  std::vector<std::string> good_ids;
  for (const auto& item : batch.items()) {
    const auto& field = fields.at(item.index());
    if (field.empty()) {
      EXPECT_EQ(item.code(), 0) << item.message();
      EXPECT_FALSE(item.job_id().empty());
      good_ids.push_back(item.job_id());
    } else {
      EXPECT_EQ(item.code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT))
          << item.index() << ": " << item.message();
      EXPECT_NE(item.message().find(field), std::string::npos)
          << "item " << item.index() << " does not name " << field << ": " << item.message();
      EXPECT_TRUE(item.job_id().empty());
    }
  }
  EXPECT_EQ(batch.accepted(), good_ids.size());
  EXPECT_EQ(batch.rejected(), items.size() - good_ids.size());

  // Unknown enum values in other requests are refused by name too.
  {
    grpc::ClientContext ctx;
    v1::ListJobsRequest req;
    req.set_state(static_cast<v1::JobState>(42));
    v1::ListJobsResponse resp;
    status = stub->ListJobs(&ctx, req, &resp);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(status.error_message().find("state"), std::string::npos) << status.error_message();
  }

  // Over gRPC's message size limit (4 MiB by default).
  SubmitJob(*stub, MakeSpec(std::string(5 << 20, 'x'), "kling-3.0", 5), &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();

  // The server is still up, and every accepted job finishes.
  auto after = SubmitJob(*stub, MakeSpec("a job after the bad ones", "kling-3.0", 5), &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  good_ids.push_back(after.job_id());
  good_ids.push_back(bystander.job_id());
  EXPECT_TRUE(stack.scheduler(0).running());
  auto done = stack.WaitTerminal(good_ids, std::chrono::seconds(120));
  for (const auto& id : good_ids) {
    EXPECT_EQ(done[id].state(), v1::JOB_STATE_SUCCEEDED) << done[id].DebugString();
  }
}

// The (state, phase) pairs of the lifecycle in the order DESIGN.md allows them.
int Rank(v1::JobState s, v1::JobPhase p) {
  switch (s) {
    case v1::JOB_STATE_PENDING:
      return 0;
    case v1::JOB_STATE_DISPATCHED:
      return 1;
    case v1::JOB_STATE_RUNNING:
      return 2 + static_cast<int>(p);
    default:
      return 10;
  }
}

TEST(JobLifecycle, WatchJobDeliversEveryTransitionInOrderAndBatchWatchEnds) {
  REELQ_SKIP_WITHOUT_STACK_OR_FFPROBE();
  E2eStack stack({.schedulers = 1, .workers = 2});
  auto stub = stack.JobStub();
  grpc::Status status;
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE(round);
    auto job =
        SubmitJob(*stub, MakeSpec("watch me " + std::to_string(round), "veo-3.1", 4), &status);
    ASSERT_TRUE(status.ok()) << status.error_message();
    v1::WatchJobRequest req;
    req.set_job_id(job.job_id());
    auto events = Watch(*stub, req, &status, std::chrono::seconds(120));
    ASSERT_TRUE(status.ok()) << status.error_message();
    ASSERT_FALSE(events.empty());
    EXPECT_EQ(events.front().state(), v1::JOB_STATE_PENDING);
    EXPECT_EQ(events.back().state(), v1::JOB_STATE_SUCCEEDED);
    // Every event is for this job and the order follows the lifecycle.
    for (size_t i = 0; i < events.size(); ++i) {
      EXPECT_EQ(events[i].job_id(), job.job_id());
      if (i > 0) {
        EXPECT_LE(Rank(events[i - 1].state(), events[i - 1].phase()),
                  Rank(events[i].state(), events[i].phase()))
            << "event " << i << " goes backwards";
      }
    }
    // And it is exactly the job's recorded transitions.
    auto final = stack.WaitTerminal({job.job_id()}, std::chrono::seconds(10))[job.job_id()];
    ASSERT_EQ(static_cast<int>(events.size()), final.transitions_size()) << final.DebugString();
    for (int i = 0; i < final.transitions_size(); ++i) {
      EXPECT_EQ(events[i].state(), final.transitions(i).state()) << i;
      EXPECT_EQ(events[i].phase(), final.transitions(i).phase()) << i;
    }
    std::set<int> seen;
    for (const auto& e : events) seen.insert(Rank(e.state(), e.phase()));
    for (int r : {0, 1, 3, 4, 5, 10}) EXPECT_TRUE(seen.contains(r)) << "missing rank " << r;
  }

  // A batch watch ends by itself when the batch is done, with the final counts.
  std::vector<v1::JobSpec> specs;
  for (int i = 0; i < 12; ++i) specs.push_back(MixedSpec(i));
  auto batch = SubmitBatch(*stub, specs, &status);
  ASSERT_TRUE(status.ok());
  v1::WatchJobRequest req;
  req.set_batch_id(batch.batch_id());
  auto events = Watch(*stub, req, &status, std::chrono::seconds(120));
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_FALSE(events.empty());
  const auto& progress = events.back().batch();
  EXPECT_EQ(progress.batch_id(), batch.batch_id());
  EXPECT_EQ(progress.total(), 12u);
  EXPECT_EQ(progress.succeeded(), 12u) << progress.DebugString();
  for (const auto& j : ListBatch(*stub, batch.batch_id())) {
    EXPECT_EQ(j.state(), v1::JOB_STATE_SUCCEEDED) << j.job_id();
  }
  // Each job's events arrive in lifecycle order within the batch stream.
  std::map<std::string, int> last_rank;
  for (const auto& e : events) {
    if (e.job_id().empty()) continue;  // a progress-only event of the batch
    int r = Rank(e.state(), e.phase());
    if (last_rank.contains(e.job_id())) {
      EXPECT_LE(last_rank[e.job_id()], r) << e.job_id();
    }
    last_rank[e.job_id()] = r;
  }
  EXPECT_EQ(last_rank.size(), 12u);
}

}  // namespace
}  // namespace reelq::testing
