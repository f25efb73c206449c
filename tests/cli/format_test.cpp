#include "format.h"

#include <gtest/gtest.h>

#include <sstream>

#include "summary.h"
#include "watch.h"

namespace reelq::cli {
namespace {

v1::BatchProgress Progress(uint32_t total, uint32_t pending, uint32_t running, uint32_t succeeded,
                           uint32_t failed, uint32_t cancelled) {
  v1::BatchProgress p;
  p.set_batch_id("b-1");
  p.set_total(total);
  p.set_pending(pending);
  p.set_running(running);
  p.set_succeeded(succeeded);
  p.set_failed(failed);
  p.set_cancelled(cancelled);
  return p;
}

TEST(FormatProgressBar, FillsInProportionToDoneJobs) {
  EXPECT_EQ(FormatProgressBar(Progress(50, 3, 10, 35, 2, 0), 10),
            "[#######...] 37/50 succeeded 35 failed 2 running 10 pending 3");
  EXPECT_EQ(FormatProgressBar(Progress(4, 0, 0, 3, 0, 1), 4),
            "[####] 4/4 succeeded 3 failed 0 cancelled 1 running 0");
  EXPECT_EQ(FormatProgressBar(Progress(0, 0, 0, 0, 0, 0), 5),
            "[.....] 0/0 succeeded 0 failed 0 running 0");
  // More done than total (a racing counter) never overflows the bar.
  EXPECT_EQ(FormatProgressBar(Progress(2, 0, 0, 3, 0, 0), 4).substr(0, 6), "[####]");
}

TEST(FormatProgressLine, ForLogs) {
  EXPECT_EQ(FormatProgressLine(Progress(50, 3, 10, 35, 2, 0), 70),
            "batch b-1: 37/50 done, succeeded 35 failed 2 running 10 pending 3 (1m10s)");
}

TEST(ProgressReporter, NonTtyPrintsLinesAtMostEveryInterval) {
  std::ostringstream out;
  ProgressReporter reporter(out, false, std::chrono::hours(1));
  reporter.Update(Progress(10, 10, 0, 0, 0, 0));
  reporter.Update(Progress(10, 5, 5, 0, 0, 0));  // within the interval: not printed
  reporter.Update(Progress(10, 0, 0, 10, 0, 0));
  reporter.Finish();
  const std::string text = out.str();
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 2) << text;
  EXPECT_NE(text.find("10/10 done"), std::string::npos) << text;
  EXPECT_EQ(text.find('\r'), std::string::npos);
}

TEST(ProgressReporter, TtyRedrawsInPlace) {
  std::ostringstream out;
  ProgressReporter reporter(out, true);
  reporter.Update(Progress(2, 2, 0, 0, 0, 0));
  reporter.Update(Progress(2, 0, 1, 1, 0, 0));
  reporter.Finish();
  const std::string text = out.str();
  EXPECT_EQ(std::count(text.begin(), text.end(), '\r'), 3) << text;
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1) << text;
  EXPECT_NE(text.find("1/2 succeeded 1"), std::string::npos) << text;
}

TEST(FormatSeconds, Readable) {
  EXPECT_EQ(FormatSeconds(0.84), "0.8s");
  EXPECT_EQ(FormatSeconds(42.4), "42s");
  EXPECT_EQ(FormatSeconds(185), "3m05s");
  EXPECT_EQ(FormatSeconds(3720), "1h02m");
  EXPECT_EQ(FormatSeconds(std::nullopt), "-");
  EXPECT_EQ(FormatSeconds(-1), "-");
}

TEST(FormatTable, PadsColumnsWithoutTrailingSpaces) {
  EXPECT_EQ(FormatTable({"A", "LONGER"}, {{"xyz", "1"}, {"q", ""}}),
            "A    LONGER\n"
            "xyz  1\n"
            "q\n");
}

google::protobuf::Timestamp At(double seconds) {
  google::protobuf::Timestamp ts;
  ts.set_seconds(static_cast<int64_t>(seconds));
  ts.set_nanos(static_cast<int32_t>((seconds - static_cast<int64_t>(seconds)) * 1e9));
  return ts;
}

void AddTransition(v1::JobStatus& job, v1::JobState state, v1::JobPhase phase, double at) {
  auto* t = job.add_transitions();
  t->set_state(state);
  t->set_phase(phase);
  *t->mutable_at() = At(at);
}

v1::JobStatus Job(const std::string& model, v1::JobState final_state, double created, double submit,
                  double transfer, double done) {
  v1::JobStatus job;
  job.set_model(model);
  job.set_state(final_state);
  *job.mutable_created_at() = At(created);
  AddTransition(job, v1::JOB_STATE_PENDING, v1::JOB_PHASE_UNSPECIFIED, created);
  AddTransition(job, v1::JOB_STATE_RUNNING, v1::JOB_PHASE_SUBMITTING, submit);
  AddTransition(job, v1::JOB_STATE_RUNNING, v1::JOB_PHASE_GENERATING, submit + 1);
  if (transfer > 0) AddTransition(job, v1::JOB_STATE_RUNNING, v1::JOB_PHASE_TRANSFERRING, transfer);
  AddTransition(job, final_state, v1::JOB_PHASE_UNSPECIFIED, done);
  return job;
}

TEST(Summary, TimesComeFromTransitions) {
  const auto job = Job("kling-3.0", v1::JOB_STATE_SUCCEEDED, 1000, 1010, 1070, 1072);
  EXPECT_DOUBLE_EQ(TimeToTerminal(job).value(), 72);
  EXPECT_DOUBLE_EQ(GenerationTime(job).value(), 60);
  // Without a TRANSFERRING transition the generation ends at the terminal one.
  EXPECT_DOUBLE_EQ(GenerationTime(Job("x", v1::JOB_STATE_SUCCEEDED, 0.5, 1, 0, 31)).value(), 30);
  // A retried job: the last attempt's SUBMITTING counts.
  auto retried = Job("x", v1::JOB_STATE_SUCCEEDED, 100, 110, 0, 200);
  retried.mutable_transitions()->RemoveLast();
  AddTransition(retried, v1::JOB_STATE_PENDING, v1::JOB_PHASE_UNSPECIFIED, 150);
  AddTransition(retried, v1::JOB_STATE_RUNNING, v1::JOB_PHASE_SUBMITTING, 160);
  AddTransition(retried, v1::JOB_STATE_SUCCEEDED, v1::JOB_PHASE_UNSPECIFIED, 190);
  EXPECT_DOUBLE_EQ(GenerationTime(retried).value(), 30);
  EXPECT_DOUBLE_EQ(TimeToTerminal(retried).value(), 90);
  // Unfinished or failed jobs have no generation time.
  EXPECT_FALSE(GenerationTime(Job("x", v1::JOB_STATE_FAILED, 0.5, 1, 0, 5)).has_value());
  v1::JobStatus running;
  running.set_state(v1::JOB_STATE_RUNNING);
  EXPECT_FALSE(TimeToTerminal(running).has_value());
}

TEST(Summary, PerModelRowsAndTotal) {
  std::vector<v1::JobStatus> jobs = {
      Job("seedance-2.0", v1::JOB_STATE_SUCCEEDED, 0.5, 2, 12, 13),  // 12.5 total, 10 gen
      Job("seedance-2.0", v1::JOB_STATE_SUCCEEDED, 0.5, 2, 32, 33),  // 32.5 total, 30 gen
      Job("kling-3.0", v1::JOB_STATE_FAILED, 0.5, 2, 0, 20.5),       // 20 total
      Job("kling-3.0", v1::JOB_STATE_CANCELLED, 0.5, 2, 0, 4.5),     // 4 total
  };
  v1::JobStatus unrouted;
  unrouted.set_state(v1::JOB_STATE_CANCELLED);
  jobs.push_back(unrouted);
  const auto rows = SummarizeByModel(jobs);
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0].model, "(not routed)");
  EXPECT_EQ(rows[1].model, "kling-3.0");
  EXPECT_EQ(rows[1].failed, 1u);
  EXPECT_EQ(rows[1].cancelled, 1u);
  EXPECT_DOUBLE_EQ(rows[1].MeanSeconds().value(), 12);
  EXPECT_FALSE(rows[1].MeanGenerationSeconds().has_value());
  EXPECT_EQ(rows[2].model, "seedance-2.0");
  EXPECT_DOUBLE_EQ(rows[2].MeanSeconds().value(), 22.5);
  EXPECT_DOUBLE_EQ(rows[2].MeanGenerationSeconds().value(), 20);
  EXPECT_EQ(rows[3].model, "total");
  EXPECT_EQ(rows[3].jobs, 5u);
  EXPECT_EQ(rows[3].succeeded, 2u);

  EXPECT_EQ(FormatBatchSummary(rows),
            "MODEL         JOBS  SUCCEEDED  FAILED  CANCELLED  MEAN TIME  MEAN GENERATION\n"
            "(not routed)  1     0          0       1          -          -\n"
            "kling-3.0     2     0          1       1          12s        -\n"
            "seedance-2.0  2     2          0       0          22s        20s\n"
            "total         5     2          1       2          17s        20s\n");
}

TEST(FormatJobStatus, AnUnknownCreateOutcomeSaysWhatItMeansAndWhatRetryDoes) {
  v1::JobStatus job;
  job.set_job_id("j-veo");
  job.set_state(v1::JOB_STATE_FAILED);
  job.mutable_error()->set_category(v1::ERROR_CATEGORY_CREATE_OUTCOME_UNKNOWN);
  job.mutable_error()->set_message("veo may have started a generation");
  job.mutable_error()->set_provider_code("create_outcome_unknown");
  const std::string text = FormatJobStatus(job);
  EXPECT_NE(text.find("error      create_outcome_unknown: veo may have started a generation "
                      "[create_outcome_unknown]\n"
                      "meaning    a create may have started (and billed) a generation that the "
                      "provider cannot look up, so reelq did not create again; `reelq retry` "
                      "(RetryJob) starts, and pays for, a new generation\n"),
            std::string::npos)
      << text;
  // The other categories say what they mean by their name: no extra line.
  job.mutable_error()->set_category(v1::ERROR_CATEGORY_POLICY_REJECTED);
  EXPECT_EQ(FormatJobStatus(job).find("meaning"), std::string::npos);
  EXPECT_EQ(ErrorCategoryMeaning(v1::ERROR_CATEGORY_RETRYABLE), "");
}

TEST(FormatEvent, OneLine) {
  v1::JobEvent event;
  event.set_job_id("j-1");
  event.set_state(v1::JOB_STATE_RUNNING);
  event.set_phase(v1::JOB_PHASE_GENERATING);
  *event.mutable_at() = At(1'764'036'000);
  event.set_model("veo-3.1");
  event.set_attempt(2);
  EXPECT_EQ(FormatEvent(event),
            "2025-11-25T02:00:00Z  j-1  running/generating  model=veo-3.1  attempt=2");
}

TEST(FormatModels, TableAndAccounts) {
  v1::ListModelsResponse response;
  auto* m = response.add_models();
  m->set_id("sora-2");
  m->set_provider("sora");
  for (uint32_t d : {4, 8, 12}) m->add_durations(d);
  m->set_max_clip_seconds(12);
  m->set_queue_depth(7);
  m->set_dispatched(2);
  m->set_in_flight(3);
  m->set_latency_estimate_seconds(180);
  auto* a = m->add_accounts();
  a->set_account("sora-a");
  a->set_provider("sora");
  a->set_requests_per_minute(25);
  a->set_max_concurrent(10);
  a->set_learned_max_concurrent(4);  // the provider refused creates for concurrency
  a->set_in_flight(3);
  a->set_daily_cap(500);
  a->set_used_today(42);
  a->set_cooling_down(true);
  a->set_cooldown_remaining_seconds(12);
  a->set_polls_per_minute(90);
  const std::string text = FormatModels(response);
  EXPECT_NE(text.find("sora-2  sora      4,8,12s    12s"), std::string::npos) << text;
  // Queue depth: queued, dispatched (no worker yet), running.
  EXPECT_NE(text.find("QUEUED  DISPATCHED  RUNNING"), std::string::npos) << text;
  EXPECT_NE(text.find("12s       7       2           3"), std::string::npos) << text;
  EXPECT_NE(text.find("25/min  90/min"), std::string::npos) << text;
  EXPECT_NE(text.find("3m00s"), std::string::npos) << text;
  EXPECT_NE(text.find("42/500"), std::string::npos) << text;
  EXPECT_NE(text.find("cooling 12s"), std::string::npos) << text;
  EXPECT_NE(text.find("3/10 (learned 4)"), std::string::npos) << text;
}

TEST(FormatStats, PerModelQueueDepth) {
  v1::GetStatsResponse stats;
  stats.set_pending(9);
  auto* m = stats.add_models();
  m->set_model("kling-3.0");
  m->set_queue_depth(9);
  m->set_dispatched(1);
  m->set_in_flight(4);
  const std::string text = FormatStats(stats);
  EXPECT_NE(text.find("MODEL      QUEUED  DISPATCHED  RUNNING"), std::string::npos) << text;
  EXPECT_NE(text.find("kling-3.0  9       1           4"), std::string::npos) << text;
}

}  // namespace
}  // namespace reelq::cli

namespace reelq::cli {
namespace {

// A reopened watch replays events already printed, with the job's model and attempt set where
// the live ones had none: they are the same events, and only those are.
TEST(EventIdentity, ReplayedEventsMatchTheirLiveSelvesAndNothingElse) {
  v1::JobEvent live;
  live.set_job_id("j1");
  live.set_state(v1::JOB_STATE_RUNNING);
  live.set_phase(v1::JOB_PHASE_GENERATING);
  live.mutable_at()->set_seconds(100);
  live.set_detail("upstream task-1");
  v1::JobEvent replayed = live;
  replayed.set_model("kling-3.0");
  replayed.set_attempt(2);
  EXPECT_EQ(EventIdentity(live), EventIdentity(replayed));
  v1::JobEvent later = live;
  later.set_state(v1::JOB_STATE_SUCCEEDED);
  EXPECT_NE(EventIdentity(live), EventIdentity(later));
  v1::JobEvent first, last;
  first.mutable_batch()->set_total(3);
  last.mutable_batch()->set_total(3);
  last.mutable_batch()->set_succeeded(3);
  EXPECT_NE(EventIdentity(first), EventIdentity(last));
}

}  // namespace
}  // namespace reelq::cli
