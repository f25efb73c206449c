// Issue 5: drain on SIGTERM (stop leasing, finish in-flight jobs up to the deadline, hand the
// rest back for another worker to resume, exit 0) and cancel of a RUNNING job (the worker stops,
// nothing is published after CANCELLED).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "e2e_util.h"
#include "stack.h"

namespace reelq::testing {
namespace {

namespace v1 = reelq::v1;
using Clock = std::chrono::steady_clock;

std::optional<v1::JobStatus> Get(v1::JobService::Stub& stub, const std::string& id) {
  return reelq::testing::GetJob(stub, id, std::chrono::seconds(5));
}

bool Generating(const std::optional<v1::JobStatus>& s) {
  return s && s->state() == v1::JOB_STATE_RUNNING && s->phase() == v1::JOB_PHASE_GENERATING;
}

int64_t Millis(const google::protobuf::Timestamp& t) {
  return t.seconds() * 1000 + t.nanos() / 1000000;
}

int64_t NowMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

TEST(Drain, SigtermFinishesInFlightHandsBackTheRestAndExitsZero) {
  if (auto missing = E2eStack::MissingBinaries(); !missing.empty()) GTEST_SKIP() << missing;
  E2eStack stack({.schedulers = 1,
                  .workers = 1,
                  .latency_scale = 0.01,
                  .lease_seconds = 2,
                  .drain_timeout_seconds = 4});
  auto stub = stack.JobStub();
  // Quick jobs (Veo: well under the 4 s drain deadline) finish during the drain; slow ones
  // ([sim:slow], Seedance: ~9 s) are still generating at the deadline and are handed back.
  std::vector<std::string> quick, slow;
  grpc::Status status;
  for (int i = 0; i < 6; ++i) {
    auto r = SubmitJob(*stub, MakeSpec("drain quick " + std::to_string(i), "veo-3.1", 4), &status);
    ASSERT_TRUE(status.ok()) << status.error_message();
    quick.push_back(r.job_id());
    r = SubmitJob(*stub, MakeSpec("[sim:slow] drain slow " + std::to_string(i), "seedance-2.0", 5),
                  &status);
    ASSERT_TRUE(status.ok()) << status.error_message();
    slow.push_back(r.job_id());
  }
  std::vector<std::string> all = quick;
  all.insert(all.end(), slow.begin(), slow.end());
  // Wait until every job is generating on worker 0 (none finished yet: Veo's minimum is over
  // 0.1 s at this scale, so this usually catches all of them; a finished one is fine too).
  for (int i = 0; i < 300; ++i) {
    int ready = 0;
    for (const auto& id : all) {
      auto s = Get(*stub, id);
      ready += Generating(s) || (s && IsTerminal(s->state())) ? 1 : 0;
    }
    if (ready == static_cast<int>(all.size())) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  // Jobs submitted now are dispatched but must not be leased by the draining worker.
  std::vector<std::string> later;
  const int64_t term_ms = NowMillis();
  std::optional<int> exit_status;
  std::thread term([&] { exit_status = stack.TermWorker(0, std::chrono::seconds(30)); });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  for (int i = 0; i < 3; ++i) {
    auto r = SubmitJob(*stub, MakeSpec("after term " + std::to_string(i), "veo-3.1", 4), &status);
    ASSERT_TRUE(status.ok()) << status.error_message();
    later.push_back(r.job_id());
  }
  term.join();
  const double drain_secs = (NowMillis() - term_ms) / 1000.0;
  ASSERT_TRUE(exit_status.has_value()) << "the worker did not exit within 30 s\n" << stack.Logs();
  EXPECT_TRUE(WIFEXITED(*exit_status)) << *exit_status;
  EXPECT_EQ(WEXITSTATUS(*exit_status), 0) << stack.Logs();

  // What the drain did, job by job.
  int finished_in_drain = 0, handed_back = 0;
  for (const auto& id : all) {
    auto s = Get(*stub, id);
    ASSERT_TRUE(s) << id;
    if (s->state() == v1::JOB_STATE_SUCCEEDED && Millis(s->updated_at()) >= term_ms) {
      ++finished_in_drain;
    }
    if (s->state() == v1::JOB_STATE_DISPATCHED && !s->upstream_task_id().empty()) ++handed_back;
  }
  for (const auto& id : later) {
    auto s = Get(*stub, id);
    ASSERT_TRUE(s) << id;
    EXPECT_NE(s->state(), v1::JOB_STATE_RUNNING) << "leased while draining: " << s->DebugString();
    for (const auto& t : s->transitions()) {
      EXPECT_NE(t.state(), v1::JOB_STATE_RUNNING) << "leased while draining: " << id;
    }
  }
  std::cout << "drain took " << drain_secs << " s; finished during the drain " << finished_in_drain
            << ", handed back " << handed_back << " (of " << all.size() << ")\n";
  EXPECT_GT(finished_in_drain, 0) << "no in-flight job finished during the drain";
  EXPECT_GT(handed_back, 0) << "no job was handed back at the deadline";

  // Another worker resumes the handed-back jobs: the same upstream tasks, nothing paid twice.
  stack.AddWorker();
  all.insert(all.end(), later.begin(), later.end());
  auto final = stack.WaitTerminal(all, std::chrono::seconds(120));
  int resumed_by_other = 0;
  for (const auto& id : all) {
    ASSERT_EQ(final[id].state(), v1::JOB_STATE_SUCCEEDED) << final[id].DebugString();
    if (final[id].worker() == stack.worker_id(1)) ++resumed_by_other;
  }
  EXPECT_GE(resumed_by_other, handed_back);
  auto stats = stack.SimStats();
  int creates = 0;
  for (const char* p : {"kling", "sora", "veo", "seedance"}) {
    creates += stats["providers"][p]["creates"].get<int>();
  }
  EXPECT_EQ(creates, static_cast<int>(all.size())) << "a handed-back job was created again";
}

TEST(Cancel, RunningJobOnAnotherWorkerStopsAndPublishesNothing) {
  if (auto missing = E2eStack::MissingBinaries(); !missing.empty()) GTEST_SKIP() << missing;
  E2eStack stack({.schedulers = 2, .workers = 2, .latency_scale = 0.01});
  // Submitted through scheduler 0, cancelled through scheduler 1: the cancel has to travel
  // through Redis to whichever worker holds the job.
  auto stub0 = stack.JobStub(0);
  auto stub1 = stack.JobStub(1);
  grpc::Status status;
  // Kling [sim:slow]: ~24 s of generation at this scale, polled the whole time.
  auto job =
      SubmitJob(*stub0, MakeSpec("[sim:slow] cancel me while running", "kling-3.0", 5), &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  std::optional<v1::JobStatus> s;
  for (int i = 0; i < 500 && !Generating(s); ++i) {
    s = Get(*stub0, job.job_id());
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(Generating(s)) << (s ? s->DebugString() : "no answer") << stack.Logs();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // a few polls in
  auto polls = [&] { return stack.SimStats()["providers"]["kling"]["polls"].get<int>(); };
  ASSERT_GT(polls(), 0);

  grpc::ClientContext ctx;
  v1::CancelJobRequest req;
  req.set_job_id(job.job_id());
  v1::JobStatus cancelled;
  const auto cancel_at = Clock::now();
  status = stub1->CancelJob(&ctx, req, &cancelled);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(cancelled.state(), v1::JOB_STATE_CANCELLED);

  // The worker has stopped once the simulator sees no more polls: sample for 5 s and take the
  // last time the count moved.
  int last = polls();
  auto last_change = cancel_at;
  while (Clock::now() - cancel_at < std::chrono::seconds(5)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    const int now = polls();
    if (now != last) {
      last = now;
      last_change = Clock::now();
    }
  }
  std::cout << "worker stopped polling "
            << std::chrono::duration<double>(last_change - cancel_at).count()
            << " s after CancelJob returned\n";
  // Stopped for good: no poll in the last 2 s of the window (the figure above is the latency).
  EXPECT_LT(last_change - cancel_at, std::chrono::seconds(3)) << stack.Logs();

  // Let the upstream task run out (Kling has no cancel API), then look: no clip, no download,
  // still CANCELLED with nothing after it.
  for (int i = 0; i < 400; ++i) {
    int in_flight = 0;
    for (const auto& [key, k] : stack.SimStats()["providers"]["kling"]["keys"].items()) {
      in_flight += k["in_flight"].get<int>();
    }
    if (in_flight == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::this_thread::sleep_for(std::chrono::seconds(2));
  EXPECT_EQ(stack.SimStats()["providers"]["kling"]["downloads"].get<int>(), 0);
  for (const auto& f : stack.StoreFiles()) {
    EXPECT_EQ(f.find(job.job_id()), std::string::npos) << "published after CANCELLED: " << f;
  }
  auto after = Get(*stub0, job.job_id());
  ASSERT_TRUE(after);
  EXPECT_EQ(after->state(), v1::JOB_STATE_CANCELLED);
  ASSERT_GT(after->transitions_size(), 0);
  EXPECT_EQ(after->transitions().rbegin()->state(), v1::JOB_STATE_CANCELLED)
      << after->DebugString();
  EXPECT_TRUE(after->output_key().empty());
}

}  // namespace
}  // namespace reelq::testing
