// JobApi's part for groups (issue 13): storing a group's children, showing them on the group,
// and a compare's picked take.
#include <google/protobuf/util/time_util.h>

#include "reelq/common/ids.h"
#include "reelq/queue/group_sidecar.h"
#include "reelq/scheduler/job_api.h"

namespace reelq::scheduler {
namespace {

// The most of a group's sidecar PickTake reads (one line per take: far below this).
constexpr size_t kMaxSidecarBytes = 4 << 20;

int64_t Ms(const google::protobuf::Timestamp& t) {
  using google::protobuf::util::TimeUtil;
  return t.seconds() == 0 && t.nanos() == 0 ? 0 : TimeUtil::TimestampToMilliseconds(t);
}

// What the wallet will charge a child not yet settled, priced as dispatch and complete.lua
// price it (common_groups.lua's job_price): its model's price at the child's resolution (720p
// when its spec names none, as GroupChildren stores it) for its billed seconds (its spec's
// duration). 0 when no model is known yet.
double UnsettledCostUsd(const queue::JobRecord& c, const providers::Catalogue& catalogue) {
  // Before dispatch a child has no model; a storyboard shot naming one, or a compare's take,
  // has it as its only candidate.
  const std::string& id =
      !c.model.empty() || c.candidate_models.size() != 1 ? c.model : c.candidate_models.front();
  const auto* model = catalogue.FindModel(id);
  if (model == nullptr) return 0;
  v1::JobSpec spec;
  if (!spec.ParseFromString(c.spec_bytes)) return 0;
  const std::string resolution = spec.resolution().empty() ? "720p" : spec.resolution();
  auto at = model->price_micros_by_resolution.find(resolution);
  const int64_t per_second =
      at == model->price_micros_by_resolution.end() ? model->price_micros_per_second : at->second;
  return static_cast<double>(per_second * static_cast<int64_t>(spec.duration_seconds())) / 1e6;
}

}  // namespace

Result<std::vector<queue::NewJob>> JobApi::GroupChildren(SubmissionPlan& plan,
                                                         const v1::JobSpec& parent_spec,
                                                         queue::NewJob& parent) const {
  std::vector<queue::NewJob> out;
  if (plan.kind.empty()) return out;
  parent.kind = plan.kind;
  parent.chain = parent_spec.chain();
  parent.billed_seconds = 0;
  const bool storyboard = plan.kind == queue::kKindStoryboard;
  const size_t last = plan.children.size() - 1;
  for (size_t k = 0; k < plan.children.size(); ++k) {
    auto& planned = plan.children[k];
    // The children were admitted with the request's images (bytes); they carry the stored keys.
    planned.spec.clear_first_frame();
    planned.spec.clear_last_frame();
    planned.spec.clear_reference_images();
    if (parent_spec.has_first_frame() && (!storyboard || k == 0)) {
      *planned.spec.mutable_first_frame() = parent_spec.first_frame();
    }
    if (parent_spec.has_last_frame() && (!storyboard || k == last)) {
      *planned.spec.mutable_last_frame() = parent_spec.last_frame();
    }
    *planned.spec.mutable_reference_images() = parent_spec.reference_images();
    queue::NewJob child;
    child.bill = parent.bill;
    child.billed_seconds = planned.spec.duration_seconds();
    child.resolution = planned.spec.resolution().empty() ? "720p" : planned.spec.resolution();
    child.id = NewId(*clock_);
    child.tenant = planned.spec.tenant();
    child.candidate_models = planned.admitted.candidates;
    child.prefer_first = planned.admitted.first_choice_preferred;
    child.priority = planned.spec.priority();
    child.max_attempts = settings_.max_attempts;
    // A group's start deadline says when the group starts. A chain's later shot is queued only
    // once the shot before it succeeded, after the group started, often past that deadline:
    // only the first shot carries it (dispatch.lua fails a job whose start deadline passed).
    if (parent.chain && k > 0) planned.spec.clear_start_deadline();
    child.start_deadline_ms =
        planned.spec.has_start_deadline() ? Ms(planned.spec.start_deadline()) : 0;
    child.finish_deadline_ms =
        planned.spec.has_finish_deadline() ? Ms(planned.spec.finish_deadline()) : 0;
    if (!planned.spec.SerializeToString(&child.spec_bytes)) {
      return MakeError(ErrorCategory::kInternal, "a child's job spec could not be serialized");
    }
    child.parent = parent.id;
    child.child_index = static_cast<int>(k);
    parent.children.push_back(child.id);
    out.push_back(std::move(child));
  }
  return out;
}

awaitable<void> JobApi::AddChildren(const queue::JobRecord& group, v1::JobStatus& status) {
  auto children = co_await store_.GetMany(group.children);
  if (!children) co_return;  // the group itself still answers
  for (const auto& c : *children) {
    auto* out = status.add_children();
    out->set_index(static_cast<uint32_t>(c.child_index));
    out->set_job_id(c.id);
    out->set_state(ToProto(c.state));
    out->set_phase(ToProto(c.phase));
    out->set_model(c.model);
    out->set_upstream_task_id(c.upstream);
    out->set_output_key(c.output_key);
    out->set_clip_seconds(c.clip_seconds);
    out->set_attempt(static_cast<uint32_t>(c.attempt));
    out->set_last_frame_key(c.last_frame_key);
    int64_t started = 0, finished = 0;
    for (const auto& t : c.history) {
      if (t.state == queue::JobState::kRunning) started = t.at_ms;
      if (t.state == queue::JobState::kSucceeded) finished = t.at_ms;
    }
    if (started > 0 && finished >= started) out->set_seconds((finished - started) / 1000.0);
    // What the wallet settled for it; before that, what it will be charged. A child that ended
    // with nothing settled (refunded: cancelled, refused) cost nothing.
    if (c.cost_micros > 0) {
      out->set_cost_usd_estimate(static_cast<double>(c.cost_micros) / 1e6);
    } else if (!queue::IsTerminal(c.state)) {
      out->set_cost_usd_estimate(UnsettledCostUsd(c, admission_.catalogue()));
    }
    status.set_cost_micros(status.cost_micros() + c.cost_micros);
    status.set_reserved_micros(status.reserved_micros() + c.reserved_micros);
    if (!c.error_category_name.empty()) {
      out->mutable_error()->set_category(ToProto(c.error_category));
      out->mutable_error()->set_message(c.error_message);
      out->mutable_error()->set_provider_code(c.error_code);
    }
  }
}

awaitable<Result<v1::JobStatus>> JobApi::PickTake(Principal who, v1::PickTakeRequest request) {
  if (request.job_id().empty()) {
    co_return MakeError(ErrorCategory::kInvalidRequest, "job_id: required");
  }
  if (request.take_job_id().empty()) {
    co_return MakeError(ErrorCategory::kInvalidRequest, "take_job_id: required");
  }
  auto group = co_await Get(who, request.job_id());
  if (!group) co_return std::unexpected(group.error());
  if (group->kind() != queue::kKindCompare) {
    co_return MakeError(ErrorCategory::kInvalidRequest,
                        "job_id: job " + request.job_id() + " is not a compare");
  }
  if (group->state() == v1::JOB_STATE_FAILED || group->state() == v1::JOB_STATE_CANCELLED) {
    // A compare fails only when every take failed (or its sheet could not be made): there is
    // no sheet to pick from until RetryJob makes one.
    const std::string why = group->has_error() ? ": " + group->error().message() : "";
    co_return MakeError(ErrorCategory::kFailedPrecondition,
                        "job_id: compare " + request.job_id() + " ended " +
                            StateName(group->state()) + why +
                            "; no take can be picked (retry it to run its failed takes again)");
  }
  if (group->state() != v1::JOB_STATE_SUCCEEDED) {
    co_return MakeError(ErrorCategory::kFailedPrecondition,
                        "job_id: compare " + request.job_id() +
                            " has not succeeded yet; pick a take once its contact sheet is made");
  }
  const v1::ChildStatus* picked = nullptr;
  for (const auto& take : group->children()) {
    if (take.job_id() == request.take_job_id()) picked = &take;
  }
  if (picked == nullptr) {
    co_return MakeError(
        ErrorCategory::kInvalidRequest,
        "take_job_id: " + request.take_job_id() + " is not a take of compare " + request.job_id());
  }
  // A compare succeeds with takes that failed (its sheet shows them as failed): only a take
  // that made a clip can be picked.
  if (picked->state() != v1::JOB_STATE_SUCCEEDED) {
    const std::string why = picked->has_error() ? ": " + picked->error().message() : "";
    const std::string model = picked->model().empty() ? "" : " (" + picked->model() + ")";
    co_return MakeError(ErrorCategory::kFailedPrecondition,
                        "take_job_id: take " + request.take_job_id() + model + " " +
                            StateName(picked->state()) + why +
                            "; only a take that succeeded can be picked");
  }
  if (objects_ != nullptr && !picked->output_key().empty()) {
    // A pick made earlier with delete_others removed the other takes' clips: this one would
    // name a clip that is gone.
    auto clip = co_await objects_->Head(picked->output_key());
    if (!clip && clip.error().category == ErrorCategory::kNotFound) {
      co_return MakeError(ErrorCategory::kFailedPrecondition,
                          "take_job_id: the clip of take " + request.take_job_id() + " (" +
                              picked->output_key() +
                              ") is no longer in the store (deleted when another take was "
                              "picked with delete_others); the kept take stays the pick");
    }
    if (!clip) co_return std::unexpected(clip.error());
  }
  // The group's sidecar, the lasting record, names the pick. The worker's (contact_sheet.cpp)
  // is read first and only the pick changed in it: it also holds what only the worker knew (the
  // grid's size and checksum, the sheet's checksum, the worker). Read before the pick is
  // recorded, so that a store that cannot be read fails the pick, not the sidecar after it.
  const bool write_sidecar = objects_ != nullptr && !group->sidecar_key().empty();
  nlohmann::json sidecar;
  if (write_sidecar) {
    auto existing = co_await objects_->ReadSmall(group->sidecar_key(), kMaxSidecarBytes);
    if (existing) {
      sidecar = nlohmann::json::parse(*existing, nullptr, /*allow_exceptions=*/false);
    } else if (existing.error().category != ErrorCategory::kNotFound) {
      co_return std::unexpected(existing.error());
    }
  }
  if (auto set = co_await store_.SetPicked(request.job_id(), request.take_job_id()); !set) {
    co_return std::unexpected(set.error());
  }
  if (write_sidecar) {
    if (!sidecar.is_object()) {
      // None to read (or not JSON): written again from the records (queue/group_sidecar.h
      // builds it the same way the worker did).
      auto record = co_await store_.Get(request.job_id());
      if (!record) co_return std::unexpected(record.error());
      auto takes = co_await store_.GetMany(record->children);
      if (!takes) co_return std::unexpected(takes.error());
      const auto& catalogue = admission_.catalogue();
      auto price = [&catalogue](const std::string& id, const std::string& resolution) {
        const auto* model = catalogue.FindModel(id);
        return model == nullptr ? 0.0 : model->PricePerSecondAt(resolution);
      };
      sidecar = queue::CompareSidecar(*record, *takes, price, record->output_key, record->sheet_key,
                                      request.take_job_id());
    }
    sidecar["picked"] = request.take_job_id();
    sidecar["picked_at_ms"] = clock_->NowMs();
    const std::string text = sidecar.dump(2) + "\n";
    storage::PutOptions options;
    options.content_type = "application/json";
    options.if_absent = false;
    auto writer = co_await objects_->OpenWriter(group->sidecar_key(), options);
    if (!writer) co_return std::unexpected(writer.error());
    auto written = co_await (*writer)->Write(std::as_bytes(std::span(text.data(), text.size())));
    if (!written) co_return std::unexpected(written.error());
    auto committed = co_await (*writer)->Commit();
    if (!committed) co_return std::unexpected(committed.error());
  }
  if (request.delete_others() && objects_ != nullptr) {
    for (const auto& take : group->children()) {
      if (take.job_id() == request.take_job_id() || take.output_key().empty()) continue;
      const std::string& clip = take.output_key();
      (void)co_await objects_->Delete(clip);
      (void)co_await objects_->Delete(clip.substr(0, clip.size() - 4) + ".json");
    }
  }
  auto after = co_await Get(who, request.job_id());
  co_return after;
}

}  // namespace reelq::scheduler
