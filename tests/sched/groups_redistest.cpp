// Groups through JobApi in process (scheduler/src/groups.cpp plans them, groups_api.cpp stores
// their children): what each child is admitted with and carries from the group's request, seen
// in the plans, the records and what dispatch then does with them.
#include <gtest/gtest.h>

#include <google/protobuf/util/time_util.h>

#include <string>
#include <utility>
#include <vector>

#include "in_process_scheduler.h"
#include "reelq/scheduler/groups.h"

namespace reelq::testing {
namespace {

using namespace std::chrono_literals;

class GroupsTest : public InProcessScheduler {
 protected:
  v1::JobStatus GetJob(const std::string& id) {
    auto job = Call(jobs_->Get(OpenPrincipal(), id));
    if (!job) throw std::runtime_error(job.error().Describe());
    return *job;
  }

  queue::JobRecord Record(const std::string& id) {
    auto r = Call(store().Get(id));
    if (!r) throw std::runtime_error(r.error().Describe());
    return *r;
  }
};

// Seedance charging $0.30 a second at 1080p (price_per_second_by_resolution), $0.10 else.
class GroupPricesTest : public GroupsTest {
 protected:
  void EditCatalogue(providers::Catalogue& catalogue) override {
    for (auto& m : catalogue.models) {
      if (m.id != "seedance-2.0") continue;
      m.price_micros_per_second = 100'000;  // as the catalogue loader sets it from price_per_second
      m.price_micros_by_resolution["1080p"] = 300'000;
    }
  }
};

// A group's child shows what it will be charged before it is settled, priced as the wallet
// prices it (common_groups.lua's job_price): its model's price at its resolution for its
// duration. It used to show the base price times the clip's length, which is 0 until the clip
// is stored: an unsettled 1080p shot cost nothing on GetJob.
TEST_F(GroupPricesTest, AnUnsettledChildShowsItsPriceAtItsResolutionAndDuration) {
  v1::JobSpec spec;
  spec.set_storyboard(true);
  spec.set_resolution("1080p");
  spec.add_models("seedance-2.0");
  for (const uint32_t seconds : {6u, 4u}) {
    auto* shot = spec.add_shots();
    shot->set_prompt("a lighthouse at dusk");
    shot->set_duration_seconds(seconds);
  }
  const std::string id = Submit(spec);
  auto group = GetJob(id);
  ASSERT_EQ(group.children_size(), 2);
  // Queued, no model chosen yet: priced at its only candidate.
  EXPECT_DOUBLE_EQ(group.children(0).cost_usd_estimate(), 1.8);  // 6 s x $0.30
  EXPECT_DOUBLE_EQ(group.children(1).cost_usd_estimate(), 1.2);  // 4 s x $0.30
  // What the queue holds for them is the same price.
  EXPECT_EQ(group.reserved_micros(), 3'000'000);

  ASSERT_EQ(Dispatch(), 2);
  auto leased = Lease();
  ASSERT_EQ(leased.size(), 2u);
  group = GetJob(id);
  EXPECT_DOUBLE_EQ(group.children(0).cost_usd_estimate(), 1.8);
  EXPECT_DOUBLE_EQ(group.children(1).cost_usd_estimate(), 1.2);

  // Settled: what the wallet charged.
  const auto& first = leased[0].id == group.children(0).job_id() ? leased[0] : leased[1];
  ASSERT_TRUE(Call(store().Complete(
      {.job_id = first.id, .token = first.token, .output_key = "clip-0", .clip_seconds = 6.04})));
  group = GetJob(id);
  EXPECT_EQ(group.children(0).state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_DOUBLE_EQ(group.children(0).cost_usd_estimate(), 1.8);
  EXPECT_EQ(group.cost_micros(), 1'800'000);
}

// PickTake on a compare that cannot be picked from: still running (no sheet yet), or FAILED
// because every take failed (no sheet at all). Each refusal says which, and what to do.
TEST_F(GroupsTest, PickTakeOnACompareWithoutASheetSaysWhy) {
  const std::string id = Submit(CompareSpec());
  ASSERT_EQ(Dispatch(), 2);
  auto takes = Lease(10);
  ASSERT_EQ(takes.size(), 2u);
  auto pick = [&] {
    v1::PickTakeRequest request;
    request.set_job_id(id);
    request.set_take_job_id(takes[0].id);
    return Call(jobs_->PickTake(OpenPrincipal(), request));
  };
  auto early = pick();
  ASSERT_FALSE(early);
  EXPECT_EQ(early.error().category, ErrorCategory::kFailedPrecondition);
  EXPECT_NE(early.error().message.find("has not succeeded yet"), std::string::npos)
      << early.error().message;
  for (const auto& take : takes) {
    queue::FailRequest fail{.job_id = take.id,
                            .token = take.token,
                            .category = ErrorCategory::kPolicyRejected,
                            .message = "refused"};
    ASSERT_TRUE(Call(store().Fail(fail)));
  }
  ASSERT_EQ(GetJob(id).state(), v1::JOB_STATE_FAILED);
  auto late = pick();
  ASSERT_FALSE(late);
  EXPECT_EQ(late.error().category, ErrorCategory::kFailedPrecondition);
  EXPECT_NE(late.error().message.find("ended FAILED"), std::string::npos) << late.error().message;
  EXPECT_NE(late.error().message.find("no take can be picked"), std::string::npos)
      << late.error().message;
}

// A chain's start deadline says when the chain starts. Its second shot is queued only once the
// first succeeded, mostly after that deadline: it used to carry the deadline too, and dispatch
// failed it ("start deadline passed") after the first shot was paid for, every time.
TEST_F(GroupsTest, AChainsLaterShotsRunAfterItsStartDeadlinePassed) {
  v1::JobSpec spec = ChainSpec({"a fox wakes", "the fox runs"});
  *spec.mutable_start_deadline() =
      google::protobuf::util::TimeUtil::MillisecondsToTimestamp(clock_->NowMs() + 1000);
  const std::string id = Submit(spec);
  const auto group = GetJob(id);
  ASSERT_EQ(group.children_size(), 2);
  const std::string first = group.children(0).job_id(), second = group.children(1).job_id();
  EXPECT_EQ(Record(first).start_deadline_ms, clock_->NowMs() + 1000);
  EXPECT_EQ(Record(second).start_deadline_ms, 0);

  ASSERT_EQ(Dispatch(), 1);
  auto leased = Lease();
  ASSERT_EQ(leased.size(), 1u);
  ASSERT_EQ(leased[0].id, first);
  clock_->Advance(5s);  // the shot takes longer than the deadline left
  ASSERT_TRUE(Call(store().Complete({.job_id = first,
                                     .token = leased[0].token,
                                     .output_key = "clip-0",
                                     .last_frame_key = "inputs/default/f0.png"})));
  Dispatch();
  const auto shot = Record(second);
  EXPECT_EQ(shot.state, queue::JobState::kDispatched) << shot.error_message;
  EXPECT_NE(GetJob(id).state(), v1::JOB_STATE_FAILED);
}

// A storyboard's first frame starts its first shot only, its last frame ends its last shot
// only: each shot is admitted with what it will carry. A Sora shot (no last-frame input)
// before a Kling one used to be refused for a last frame it would never get; a Sora shot that
// does end the storyboard is refused, naming that shot.
TEST_F(GroupsTest, AStoryboardsFramesAreAdmittedOnlyForTheShotsThatCarryThem) {
  auto board = [](const std::string& first_model, const std::string& last_model) {
    v1::JobSpec spec;
    spec.set_storyboard(true);
    for (const auto& model : {first_model, last_model}) {
      auto* shot = spec.add_shots();
      shot->set_prompt("a lighthouse at dusk");
      shot->set_duration_seconds(4);
      shot->set_model(model);
    }
    spec.mutable_last_frame()->set_key("inputs/default/last.png");
    return spec;
  };
  auto spec = board("sora-2", "kling-3.0");
  auto plan = scheduler::PlanSubmission(*admission_, spec);
  ASSERT_TRUE(plan) << plan.error().message;
  ASSERT_EQ(plan->children.size(), 2u);
  EXPECT_EQ(plan->children[0].admitted.candidates, std::vector<std::string>{"sora-2"});

  spec = board("kling-3.0", "sora-2");
  plan = scheduler::PlanSubmission(*admission_, spec);
  ASSERT_FALSE(plan);
  EXPECT_EQ(plan.error().category, ErrorCategory::kInvalidRequest);
  EXPECT_EQ(plan.error().message.rfind("shots[1]: last_frame: ", 0), 0u) << plan.error().message;
  EXPECT_NE(plan.error().message.find("sora-2 takes no last-frame image"), std::string::npos)
      << plan.error().message;
}

// Kling's multi-shot takes at most 512 characters a shot, its single clips 2500: a storyboard
// with a longer shot is made one job per shot on Kling instead of being refused, and one whose
// shot no clip could take is refused naming that shot.
TEST_F(GroupsTest, AShotPromptOverTheMultiShotLimitSplitsTheStoryboard) {
  auto board = [](std::string second_prompt) {
    v1::JobSpec spec;
    spec.set_storyboard(true);
    spec.add_models("kling-3.0");
    auto* a = spec.add_shots();
    a->set_prompt("the fox wakes");
    a->set_duration_seconds(5);
    auto* b = spec.add_shots();
    b->set_prompt(std::move(second_prompt));
    b->set_duration_seconds(5);
    return spec;
  };
  auto spec = board("the fox runs");
  auto plan = scheduler::PlanSubmission(*admission_, spec);
  ASSERT_TRUE(plan) << plan.error().message;
  EXPECT_TRUE(plan->children.empty());  // one native multi-shot generation

  spec = board(std::string(600, 'r'));
  plan = scheduler::PlanSubmission(*admission_, spec);
  ASSERT_TRUE(plan) << plan.error().message;
  ASSERT_EQ(plan->children.size(), 2u);
  for (const auto& child : plan->children) {
    EXPECT_EQ(child.admitted.candidates, std::vector<std::string>{"kling-3.0"});
  }

  spec = board(std::string(3000, 'r'));
  plan = scheduler::PlanSubmission(*admission_, spec);
  ASSERT_FALSE(plan);
  EXPECT_EQ(plan.error().message.rfind("shots[1].prompt: 3000 characters", 0), 0u)
      << plan.error().message;
}

// A group's children are admitted without its batch id and idempotency key (they name the
// parent only): the parent's are checked as a plain job's are. A compare, chain or per-shot
// storyboard used to take any: a batch id ".x" was stored and its takes run and billed, and
// then the store refused the contact sheet's key; "a b" was stored where GetBatch refuses it,
// "x:ids" ran into batch x's list of ids. Each is refused now, naming the field, and nothing is
// stored.
TEST_F(GroupsTest, AGroupsBatchIdAndIdempotencyKeyAreCheckedAsAPlainJobs) {
  auto per_shot_board = [] {
    v1::JobSpec spec;
    spec.set_storyboard(true);
    for (const std::string model : {"seedance-2.0", "kling-3.0"}) {
      auto* shot = spec.add_shots();
      shot->set_prompt("a lighthouse at dusk");
      shot->set_duration_seconds(5);
      shot->set_model(model);
    }
    return spec;
  };
  const std::vector<std::pair<std::string, v1::JobSpec>> groups = {
      {"compare", CompareSpec()},
      {"chain", ChainSpec({"a fox wakes", "the fox runs"})},
      {"per-shot storyboard", per_shot_board()}};
  const auto keys_before = redis_->Run({"DBSIZE"}).integer;
  for (const auto& [what, group] : groups) {
    for (const std::string batch : {".x", "a b", "x:ids"}) {
      v1::JobSpec spec = group;
      spec.set_batch_id(batch);
      auto r = Call(jobs_->Submit(OpenPrincipal(), spec));
      ASSERT_FALSE(r) << what << " with batch_id " << batch << " was accepted";
      EXPECT_EQ(r.error().category, ErrorCategory::kInvalidRequest) << what;
      EXPECT_EQ(r.error().message.rfind("batch_id: ", 0), 0u) << what << ": " << r.error().message;
    }
    v1::JobSpec spec = group;
    spec.set_idempotency_key(std::string(1000, 'k'));
    auto r = Call(jobs_->Submit(OpenPrincipal(), spec));
    ASSERT_FALSE(r) << what << " with a 1000-byte idempotency key was accepted";
    EXPECT_EQ(r.error().category, ErrorCategory::kInvalidRequest) << what;
    EXPECT_EQ(r.error().message.rfind("idempotency_key: 1000 bytes", 0), 0u)
        << what << ": " << r.error().message;
  }
  EXPECT_EQ(redis_->Run({"DBSIZE"}).integer, keys_before);  // nothing stored
  // The same groups with good ones are taken: what was refused was the field.
  for (const auto& [what, group] : groups) {
    v1::JobSpec spec = group;
    spec.set_batch_id("b-1");
    spec.set_idempotency_key("key-" + what.substr(0, 5));
    auto r = Call(jobs_->Submit(OpenPrincipal(), spec));
    EXPECT_TRUE(r) << what << ": " << r.error().Describe();
  }
}

}  // namespace
}  // namespace reelq::testing
