// Issue 5, cancellation, in the windows around the running worker (the plain RUNNING case is in
// drain_cancel_test.cpp):
//   - DISPATCHED (slot reserved, not leased): the account slot comes back at once and the job is
//     never leased or created upstream;
//   - inside the create call (the simulator holds the create's answer: hold_create): the
//     task that call made is cancelled upstream where the API allows it (Seedance DELETE on a
//     queued task), never polled or downloaded, and no clip is written;
//   - TRANSFERRING (the download stalls halfway): the worker drops the transfer, nothing of the
//     clip or its sidecar stays in the store, and its slot is free for the next job.
// Each prints its cancel-to-stopped latency; the assertions are on observable state within
// bounded waits, not on speed.
#include <gtest/gtest.h>

#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "e2e_util.h"
#include "stack.h"

namespace reelq::testing {
namespace {

namespace v1 = reelq::v1;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

std::optional<v1::JobStatus> Get(v1::JobService::Stub& stub, const std::string& id) {
  return reelq::testing::GetJob(stub, id, 5s);
}

v1::JobStatus Cancel(v1::JobService::Stub& stub, const std::string& id) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 5s);
  v1::CancelJobRequest req;
  req.set_job_id(id);
  v1::JobStatus out;
  const auto status = stub.CancelJob(&ctx, req, &out);
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(out.state(), v1::JOB_STATE_CANCELLED) << out.DebugString();
  return out;
}

// Polls `done` every 20 ms until it holds or `timeout` passes; true when it held.
bool WaitFor(std::chrono::milliseconds timeout, const std::function<bool()>& done) {
  const auto until = Clock::now() + timeout;
  while (Clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return done();
}

double Secs(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

int Count(const nlohmann::json& stats, const char* provider, const char* field) {
  return stats["providers"][provider][field].get<int>();
}

int TotalCreates(const nlohmann::json& stats) {
  int n = 0;
  for (const char* p : {"kling", "sora", "veo", "seedance"}) n += Count(stats, p, "creates");
  return n;
}

std::vector<std::string> FilesOf(const E2eStack& stack, const std::string& job_id) {
  std::vector<std::string> out;
  for (const auto& f : stack.StoreFiles()) {
    if (f.find(job_id) != std::string::npos) out.push_back(f);
  }
  return out;
}

// CANCELLED, with nothing after it in the history, and nothing published.
void ExpectCancelledForGood(v1::JobService::Stub& stub, const E2eStack& stack,
                            const std::string& id) {
  auto s = Get(stub, id);
  ASSERT_TRUE(s) << id;
  EXPECT_EQ(s->state(), v1::JOB_STATE_CANCELLED) << s->DebugString();
  ASSERT_GT(s->transitions_size(), 0);
  EXPECT_EQ(s->transitions().rbegin()->state(), v1::JOB_STATE_CANCELLED) << s->DebugString();
  EXPECT_TRUE(s->output_key().empty()) << s->DebugString();
  for (const auto& f : FilesOf(stack, id)) ADD_FAILURE() << "published after CANCELLED: " << f;
}

std::string AccountKey(const std::string& account) {
  return std::string(E2eStack::kRedisPrefix) + ":{q}:acct:" + account;
}

int InFlight(E2eStack& stack, const std::string& account) {
  auto r = stack.redis().Run({"HGET", AccountKey(account), "in_flight"});
  return r.str.empty() ? 0 : std::stoi(r.str);
}

TEST(CancelWindows, DispatchedReleasesTheSlotAndIsNeverLeasedOrCreated) {
  if (auto missing = E2eStack::MissingBinaries(); !missing.empty()) GTEST_SKIP() << missing;
  // No worker yet: dispatched jobs wait with their slots reserved. One slot per account, and two
  // Seedance accounts: two jobs are DISPATCHED, the third waits PENDING for a slot.
  E2eStack stack({.schedulers = 1, .workers = 0, .account_max_concurrent = 1});
  auto stub = stack.JobStub();
  grpc::Status status;
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    auto r = SubmitJob(*stub, MakeSpec("slot " + std::to_string(i), "seedance-2.0", 5), &status);
    ASSERT_TRUE(status.ok()) << status.error_message();
    ids.push_back(r.job_id());
  }
  std::map<std::string, v1::JobStatus> seen;
  auto count_in = [&](v1::JobState state) {
    int n = 0;
    for (const auto& id : ids) {
      auto s = Get(*stub, id);
      if (!s) continue;
      seen[id] = *s;
      n += s->state() == state ? 1 : 0;
    }
    return n;
  };
  ASSERT_TRUE(WaitFor(10s, [&] { return count_in(v1::JOB_STATE_DISPATCHED) == 2; }))
      << stack.Logs();
  std::this_thread::sleep_for(300ms);  // a few more dispatch rounds: the third stays PENDING
  ASSERT_EQ(count_in(v1::JOB_STATE_DISPATCHED), 2);
  std::string victim, waiting;
  for (const auto& id : ids) {
    if (seen[id].state() == v1::JOB_STATE_DISPATCHED && victim.empty()) victim = id;
    if (seen[id].state() == v1::JOB_STATE_PENDING) waiting = id;
  }
  ASSERT_FALSE(victim.empty());
  ASSERT_FALSE(waiting.empty());
  const std::string account = seen[victim].account();
  ASSERT_FALSE(account.empty()) << seen[victim].DebugString();
  EXPECT_EQ(InFlight(stack, account), 1);

  const auto cancel_at = Clock::now();
  Cancel(*stub, victim);
  // The slot is back: the waiting job is dispatched to that account.
  const bool moved = WaitFor(10s, [&] {
    auto s = Get(*stub, waiting);
    return s && s->state() == v1::JOB_STATE_DISPATCHED;
  });
  const auto freed_after = Clock::now() - cancel_at;
  ASSERT_TRUE(moved) << "the cancelled job's slot was not released\n" << stack.Logs();
  std::cout << "slot of the DISPATCHED job reused " << Secs(freed_after)
            << " s after CancelJob returned\n";
  const auto moved_job = Get(*stub, waiting);
  ASSERT_TRUE(moved_job);
  EXPECT_EQ(moved_job->account(), account);
  EXPECT_EQ(InFlight(stack, account), 1) << "the slot was released twice or not at all";

  // A worker comes: it pops the cancelled job from the ready list and must not run it.
  stack.AddWorker();
  std::vector<std::string> others;
  for (const auto& id : ids) {
    if (id != victim) others.push_back(id);
  }
  auto done = stack.WaitTerminal(others, 60s);
  ASSERT_EQ(done.size(), 2u);
  for (const auto& [id, s] : done) {
    EXPECT_EQ(s.state(), v1::JOB_STATE_SUCCEEDED) << s.DebugString();
  }
  EXPECT_TRUE(WaitFor(5s, [&] {
    return stack.redis()
               .Run({"LLEN", std::string(E2eStack::kRedisPrefix) + ":{q}:ready"})
               .integer == 0;
  }));
  auto stats = stack.SimStats();
  EXPECT_EQ(TotalCreates(stats), 2) << "the cancelled DISPATCHED job was created upstream";
  ExpectCancelledForGood(*stub, stack, victim);
  const auto final_victim = Get(*stub, victim);
  ASSERT_TRUE(final_victim);
  for (const auto& t : final_victim->transitions()) {
    EXPECT_NE(t.state(), v1::JOB_STATE_RUNNING) << "a cancelled DISPATCHED job was leased";
  }
  EXPECT_EQ(InFlight(stack, account), 0);
}

TEST(CancelWindows, InsideTheCreateCallTheNewTaskIsCancelledUpstreamAndNothingIsWritten) {
  if (auto missing = E2eStack::MissingBinaries(); !missing.empty()) GTEST_SKIP() << missing;
  E2eStack stack({.schedulers = 1, .workers = 1, .latency_scale = 0.01});
  constexpr int kCreateDelayMs = 1000;
  // Seedance keys get no running slots, so its tasks stay queued, the state in which Ark's
  // DELETE cancels them.
  const auto config =
      stack.SimConfigure({{"providers",
                           {{"seedance",
                             {{"keys",
                               {{{"key", "sim-seedance-key-a"}, {"max_concurrent", 0}},
                                {{"key", "sim-seedance-key-b"}, {"max_concurrent", 0}}}}}}}}});
  ASSERT_TRUE(config["providers"]["seedance"].contains("hold_create")) << config.dump();
  // The next create of `provider` is answered 1 s late (the task exists at once).
  auto hold_next_create = [&](const std::string& provider) {
    stack.SimConfigure(
        {{"providers",
          {{provider, {{"hold_create", {{"count", 1}, {"delay_ms", kCreateDelayMs}}}}}}}});
  };
  auto stub = stack.JobStub();
  struct Case {
    const char* model;
    const char* provider;
    bool upstream_cancel;  // providers.md: only Seedance can cancel a (queued) task
  };
  for (const Case c : {Case{"seedance-2.0", "seedance", true}, Case{"kling-3.0", "kling", false}}) {
    SCOPED_TRACE(c.model);
    hold_next_create(c.provider);
    const auto before = stack.SimStats();
    grpc::Status status;
    auto job = SubmitJob(
        *stub, MakeSpec(std::string("cancel inside create ") + c.model, c.model, 5), &status);
    ASSERT_TRUE(status.ok()) << status.error_message();
    // The create has reached the simulator (the task exists upstream); its answer is held.
    nlohmann::json stats;
    ASSERT_TRUE(WaitFor(10s, [&] {
      stats = stack.SimStats();
      return Count(stats, c.provider, "creates") == Count(before, c.provider, "creates") + 1;
    })) << stack.Logs();
    const auto create_seen = Clock::now();
    auto s = Get(*stub, job.job_id());
    ASSERT_TRUE(s);
    EXPECT_EQ(s->state(), v1::JOB_STATE_RUNNING) << s->DebugString();
    EXPECT_EQ(s->phase(), v1::JOB_PHASE_SUBMITTING) << s->DebugString();
    const int polls_at_create = Count(stats, c.provider, "polls");

    const auto cancel_at = Clock::now();
    Cancel(*stub, job.job_id());
    if (c.upstream_cancel) {
      const bool cancelled = WaitFor(10s, [&] {
        return Count(stack.SimStats(), c.provider, "cancels") ==
               Count(before, c.provider, "cancels") + 1;
      });
      const auto latency = Clock::now() - cancel_at;
      ASSERT_TRUE(cancelled) << "the task made by the interrupted create was not cancelled\n"
                             << stack.Logs();
      const double held = kCreateDelayMs / 1000.0 - Secs(cancel_at - create_seen);
      std::cout << c.model << ": upstream task cancelled " << Secs(latency)
                << " s after CancelJob returned (the create's answer was still held for about "
                << held << " s of that)\n";
      int queued = 0;
      for (const auto& [key, k] : stack.SimStats()["providers"][c.provider]["keys"].items()) {
        queued += k["queued"].get<int>();
      }
      EXPECT_EQ(queued, 0) << "the cancelled task is still queued upstream";
    } else {
      // No cancel API: the worker lets the task run out upstream and never looks at it again.
      std::this_thread::sleep_for(std::chrono::milliseconds(kCreateDelayMs) + 2s);
      std::cout << c.model << ": no cancel API upstream; polls after the create "
                << Count(stack.SimStats(), c.provider, "polls") - polls_at_create << "\n";
    }
    const auto after = stack.SimStats();
    EXPECT_EQ(Count(after, c.provider, "polls"), polls_at_create) << "polled after CANCELLED";
    EXPECT_EQ(Count(after, c.provider, "downloads"), Count(before, c.provider, "downloads"));
    EXPECT_EQ(Count(after, c.provider, "creates"), Count(before, c.provider, "creates") + 1);
    ExpectCancelledForGood(*stub, stack, job.job_id());
  }
  // The worker is free again: a job after the cancels runs to the end.
  grpc::Status status;
  auto next = SubmitJob(*stub, MakeSpec("after the cancels", "veo-3.1", 4), &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  auto done = stack.WaitTerminal({next.job_id()}, 60s);
  EXPECT_EQ(done[next.job_id()].state(), v1::JOB_STATE_SUCCEEDED) << stack.Logs();
}

TEST(CancelWindows, TransferringLeavesNoClipOrSidecarAndFreesTheWorker) {
  if (auto missing = E2eStack::MissingBinaries(); !missing.empty()) GTEST_SKIP() << missing;
  // One job at a time: the next job can only run once the cancelled transfer let go.
  E2eStack stack({.schedulers = 1, .workers = 1, .max_in_flight = 1});
  auto stub = stack.JobStub();
  grpc::Status status;
  // The download sends half the clip, then stalls with the connection open.
  auto job = SubmitJob(
      *stub, MakeSpec("[sim:hang-download] cancel me while transferring", "veo-3.1", 4), &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_TRUE(WaitFor(30s,
                      [&] {
                        auto s = Get(*stub, job.job_id());
                        return s && s->state() == v1::JOB_STATE_RUNNING &&
                               s->phase() == v1::JOB_PHASE_TRANSFERRING &&
                               !FilesOf(stack, job.job_id()).empty();
                      }))
      << "the job never started its transfer\n"
      << stack.Logs();
  std::this_thread::sleep_for(300ms);  // well into the stall
  const auto stalled = Get(*stub, job.job_id());
  ASSERT_TRUE(stalled);
  ASSERT_EQ(stalled->phase(), v1::JOB_PHASE_TRANSFERRING) << stalled->DebugString();

  const auto cancel_at = Clock::now();
  Cancel(*stub, job.job_id());
  const bool cleaned = WaitFor(10s, [&] { return FilesOf(stack, job.job_id()).empty(); });
  const auto cleaned_after = Clock::now() - cancel_at;
  EXPECT_TRUE(cleaned) << "the partial clip stayed in the store after CANCELLED";
  if (cleaned) {
    std::cout << "partial clip removed " << Secs(cleaned_after) << " s after CancelJob returned\n";
  }
  // The worker's only slot is free: the next job runs.
  auto next = SubmitJob(*stub, MakeSpec("after the cancelled transfer", "veo-3.1", 4), &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  const bool leased = WaitFor(20s, [&] {
    auto s = Get(*stub, next.job_id());
    return s && s->state() != v1::JOB_STATE_PENDING && s->state() != v1::JOB_STATE_DISPATCHED;
  });
  EXPECT_TRUE(leased) << "the worker still holds the cancelled transfer\n" << stack.Logs();
  if (leased) {
    std::cout << "next job leased " << Secs(Clock::now() - cancel_at)
              << " s after CancelJob returned\n";
  }
  auto done = stack.WaitTerminal({next.job_id()}, 30s);
  EXPECT_EQ(done[next.job_id()].state(), v1::JOB_STATE_SUCCEEDED);
  ExpectCancelledForGood(*stub, stack, job.job_id());
}

}  // namespace
}  // namespace reelq::testing
