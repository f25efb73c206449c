#include <atomic>
#include <deque>
#include <map>
#include <mutex>

#include <fmt/format.h>
#include <google/protobuf/util/time_util.h>

#include "reelq/queue/job_record.h"
#include "reelq/scheduler/activity.h"
#include "reelq/scheduler/grpc_auth.h"
#include "reelq/scheduler/grpc_services.h"

namespace reelq::scheduler {
namespace {

using google::protobuf::util::TimeUtil;

class WatchReactor;

// Shared between the gRPC reactor (gRPC threads) and the watch loop (io executor).
struct WatchState {
  WatchState(asio::any_io_executor io, size_t max_queued, std::atomic<size_t>& most_queued)
      : wake(io), max_queued(max_queued), most_queued(most_queued) {}
  // io executor only:
  asio::steady_timer wake;
  std::vector<queue::Event> inbox;
  std::vector<queue::Event> child_inbox;  // a group's children's events
  bool cancelled = false;
  // The most messages `outbox` may hold (Settings::watch_max_queued_messages), and the service's
  // record of the most any watch held.
  const size_t max_queued;
  std::atomic<size_t>& most_queued;
  // guarded by mu:
  std::mutex mu;
  WatchReactor* reactor = nullptr;  // null once the RPC is done
  std::deque<v1::JobEvent> outbox;
  bool writing = false;
  bool ending = false;  // a Finish was asked for: later messages and statuses are dropped
  bool finish_requested = false;
  grpc::Status final_status;

  // Queues `event` for the client; false once the stream is ending (the loop then stops). A
  // client too slow to take what is queued ends the stream with RESOURCE_EXHAUSTED.
  bool Send(v1::JobEvent event);
  void Finish(grpc::Status status);
  bool Ending() {
    std::lock_guard lock(mu);
    return ending || reactor == nullptr;
  }
};

class WatchReactor final : public grpc::ServerWriteReactor<v1::JobEvent> {
 public:
  WatchReactor(asio::any_io_executor io, std::shared_ptr<WatchState> state)
      : io_(std::move(io)), state_(std::move(state)) {}

  void OnWriteDone(bool ok) override {
    std::lock_guard lock(state_->mu);
    state_->outbox.pop_front();
    state_->writing = false;
    // A failed write (the client went away) drops what is queued; a Finish the loop asked for
    // while that write was out must still be made, or the call never ends (and a server's
    // Shutdown waits for it for good).
    if (!ok) state_->outbox.clear();
    Pump();
  }

  // Caller holds state_->mu.
  void Pump() {
    if (state_->writing) return;
    if (!state_->outbox.empty()) {
      state_->writing = true;
      StartWrite(&state_->outbox.front());
    } else if (state_->finish_requested) {
      state_->finish_requested = false;
      Finish(state_->final_status);
    }
  }

  void OnCancel() override { StopLoop(); }

  void OnDone() override {
    {
      std::lock_guard lock(state_->mu);
      state_->reactor = nullptr;
    }
    StopLoop();
    delete this;
  }

 private:
  void StopLoop() {
    asio::post(io_, [state = state_] {
      state->cancelled = true;
      state->wake.cancel();
    });
  }

  asio::any_io_executor io_;
  std::shared_ptr<WatchState> state_;
};

bool WatchState::Send(v1::JobEvent event) {
  std::lock_guard lock(mu);
  if (reactor == nullptr || ending) return false;
  if (outbox.size() >= max_queued) {
    // The client reads slower than events come: rather than hold ever more for it, drop what
    // waits (all but the message being written, which gRPC still holds) and end the stream. A
    // watch opened again starts from the current state.
    outbox.erase(outbox.begin() + (writing ? 1 : 0), outbox.end());
    ending = true;
    finish_requested = true;
    final_status = grpc::Status(
        grpc::StatusCode::RESOURCE_EXHAUSTED,
        fmt::format("watch ended: the client reads too slowly ({} events were waiting to be sent); "
                    "open the watch again to resume from the current state",
                    max_queued));
    reactor->Pump();
    return false;
  }
  outbox.push_back(std::move(event));
  size_t most = most_queued.load();
  while (outbox.size() > most && !most_queued.compare_exchange_weak(most, outbox.size())) {
  }
  reactor->Pump();
  return true;
}

void WatchState::Finish(grpc::Status status) {
  std::lock_guard lock(mu);
  if (reactor == nullptr || ending) return;
  ending = true;
  finish_requested = true;
  final_status = std::move(status);
  reactor->Pump();
}

// What one transition is to the job's attempts, as its detail says (queue/lua writes them).
enum class Step {
  kOther,
  kSubmitted,         // the first transition: attempt 1, no model yet
  kDispatched,        // "<model> via <account>": the attempt's model
  kRetriedByRequest,  // "retried ...": RetryJob starts again from attempt 1
  kAttemptFailed,     // fail.lua's retry: "<category>: <message>"; the next attempt follows it
  kFailed,            // FAILED: the attempt's (or dispatch's) error
};

struct Classified {
  Step step = Step::kOther;
  std::string model;                     // kDispatched
  std::optional<FailureDetail> failure;  // kAttemptFailed, kFailed (when the detail names it)
};

Classified Classify(int seq, v1::JobState state, std::string_view detail) {
  Classified c;
  if (seq == 1) {
    c.step = Step::kSubmitted;
  } else if (detail.starts_with("retried ")) {
    c.step = Step::kRetriedByRequest;
  } else if (state == v1::JOB_STATE_FAILED) {
    c.step = Step::kFailed;
    c.failure = ParseFailureDetail(detail);
  } else if (state == v1::JOB_STATE_DISPATCHED) {
    if (auto [model, account] = ParseDispatchDetail(detail); !model.empty()) {
      c.step = Step::kDispatched;
      c.model = std::move(model);
    } else if (detail.ends_with(" (the finished task is kept)") ||
               detail.ends_with(" (the step runs again)")) {
      // fail.lua's retry that keeps the finished upstream task (and its model).
      c.failure = ParseFailureDetail(detail);
      if (c.failure) c.step = Step::kAttemptFailed;
    }
  } else if (state == v1::JOB_STATE_PENDING) {
    c.failure = ParseFailureDetail(detail);
    if (c.failure) c.step = Step::kAttemptFailed;
  }
  return c;
}

v1::JobError ErrorOf(const FailureDetail& failure, const google::protobuf::Timestamp& at) {
  v1::JobError error;
  error.set_category(ToProto(queue::ErrorCategoryFromString(failure.category)));
  error.set_message(failure.message);
  *error.mutable_at() = at;
  return error;
}

// An event as the stream carries it, with what its own detail tells: the model it was
// dispatched to, the error it failed with (category and message). A batch watch sends these;
// a job watch adds what the job's trail tells (JobTrail).
v1::JobEvent FromStreamEvent(const queue::Event& e) {
  v1::JobEvent out;
  out.set_job_id(e.job_id);
  out.set_state(ToProto(e.state));
  out.set_phase(ToProto(e.phase));
  *out.mutable_at() = TimeUtil::MillisecondsToTimestamp(e.at_ms);
  out.set_detail(e.detail);
  auto c = Classify(e.seq, out.state(), e.detail);
  if (c.step == Step::kDispatched) out.set_model(c.model);
  if (c.failure) *out.mutable_error() = ErrorOf(*c.failure, out.at());
  return out;
}

// One job's transitions as events carrying what held at each: the model its attempt ran on, the
// attempt, and on a failure the error. A replayed transition gets what held then, never the
// job's current model and attempt; what the record cannot tell of a past transition is left
// unset. A failure event names the attempt that failed (and its model); the attempt after it is
// read from the record (fail.lua counts a rate-limited failure as no attempt).
class JobTrail {
 public:
  // Every transition of `status` (the job's record); the trail then follows on from its end.
  std::vector<v1::JobEvent> Replay(const v1::JobStatus& status) {
    attempt_ = status.attempt();
    return Annotate(status, &model_);
  }

  // Whether `e` ends an attempt: the record read after it tells the error's code and the
  // attempt that follows (pass it to Follow).
  static bool EndsAnAttempt(const queue::Event& e) {
    const auto step = Classify(e.seq, ToProto(e.state), e.detail).step;
    return step == Step::kAttemptFailed || step == Step::kFailed;
  }

  // The next transition `e`; `fresh` the record read after it when EndsAnAttempt(e) (null: not
  // read, or the read failed).
  v1::JobEvent Follow(const queue::Event& e, const v1::JobStatus* fresh) {
    v1::JobEvent out = FromStreamEvent(e);
    const auto c = Classify(e.seq, out.state(), e.detail);
    switch (c.step) {
      case Step::kSubmitted:
        model_.clear();
        attempt_ = 1;
        break;
      case Step::kRetriedByRequest:
        attempt_ = 1;
        if (out.state() == v1::JOB_STATE_PENDING) model_.clear();
        break;
      case Step::kDispatched:
        model_ = c.model;
        break;
      default:
        break;
    }
    out.set_model(model_);
    if (attempt_ > 0) out.set_attempt(attempt_);
    if (c.step != Step::kAttemptFailed && c.step != Step::kFailed) return out;
    if (out.has_error() && attempt_ > 0) out.mutable_error()->set_attempt(attempt_);
    uint32_t next = 0;  // the attempt after a retry: unknown without the record
    if (fresh != nullptr && fresh->transitions_size() >= e.seq &&
        fresh->transitions(e.seq - 1).state() == out.state() &&
        fresh->transitions(e.seq - 1).at() == out.at()) {
      std::string unused;
      const auto facts = Annotate(*fresh, &unused);
      const auto& f = facts[e.seq - 1];
      if (f.has_error()) *out.mutable_error() = f.error();
      if (out.attempt() == 0 && f.attempt() > 0) out.set_attempt(f.attempt());
      next = fresh->transitions_size() == e.seq ? fresh->attempt() : facts[e.seq].attempt();
    }
    if (c.step == Step::kAttemptFailed) {
      attempt_ = next;
      if (out.state() == v1::JOB_STATE_PENDING) model_.clear();
    }
    return out;
  }

 private:
  // The events of `s`'s transitions; `model_after` is the model once the last one happened.
  static std::vector<v1::JobEvent> Annotate(const v1::JobStatus& s, std::string* model_after) {
    const int n = s.transitions_size();
    std::vector<v1::JobEvent> out(n);
    std::vector<Step> steps(n);
    // Models and errors, in order. fail.lua keeps every attempt's error (oldest first), written
    // with its transition: the same instant.
    std::string model;
    int next_error = 0;
    for (int i = 0; i < n; ++i) {
      const auto& t = s.transitions(i);
      auto& ev = out[i];
      ev.set_job_id(s.job_id());
      ev.set_state(t.state());
      ev.set_phase(t.phase());
      *ev.mutable_at() = t.at();
      ev.set_detail(t.detail());
      const auto c = Classify(i + 1, t.state(), t.detail());
      steps[i] = c.step;
      if (c.step == Step::kSubmitted) model.clear();
      if (c.step == Step::kRetriedByRequest && t.state() == v1::JOB_STATE_PENDING) model.clear();
      if (c.step == Step::kDispatched) model = c.model;
      ev.set_model(model);
      if (c.step != Step::kAttemptFailed && c.step != Step::kFailed) continue;
      while (next_error < s.attempt_errors_size() && s.attempt_errors(next_error).at() < t.at()) {
        ++next_error;
      }
      if (next_error < s.attempt_errors_size() && s.attempt_errors(next_error).at() == t.at()) {
        *ev.mutable_error() = s.attempt_errors(next_error++);
      } else if (i == n - 1 && c.step == Step::kFailed && s.has_error()) {
        *ev.mutable_error() = s.error();  // dispatch's or a group's: no attempt error kept
        *ev.mutable_error()->mutable_at() = t.at();
      } else if (c.failure) {
        *ev.mutable_error() = ErrorOf(*c.failure, t.at());
      }
      if (c.step == Step::kAttemptFailed && t.state() == v1::JOB_STATE_PENDING) model.clear();
    }
    // Attempts, per run of transitions of one attempt: it starts at submit, after a failed
    // attempt, or at a retry by request (attempt 1), and its number is what a failure in it
    // records, or, for the last run, the record's own.
    for (int a = 0; a < n;) {
      int b = a;
      while (b < n) {
        if (b > a && steps[b] == Step::kRetriedByRequest) break;
        if (steps[b++] == Step::kAttemptFailed) break;
      }
      uint32_t attempt = 0;
      if (steps[a] == Step::kSubmitted || steps[a] == Step::kRetriedByRequest) attempt = 1;
      for (int i = a; i < b && attempt == 0; ++i) {
        if (out[i].has_error()) attempt = out[i].error().attempt();
      }
      if (attempt == 0 && b == n && steps[n - 1] != Step::kAttemptFailed) attempt = s.attempt();
      for (int i = a; i < b; ++i) {
        out[i].set_attempt(attempt);
        if (out[i].has_error() && out[i].error().attempt() == 0) {
          out[i].mutable_error()->set_attempt(attempt);
        }
      }
      a = b;
    }
    *model_after = std::move(model);
    return out;
  }

  std::string model_;
  uint32_t attempt_ = 0;
};

// A stream outlives the check made when it opened: its token is checked again as it goes (at
// most once a second; the authenticator's short cache shares the lookup between streams), so
// the watch of a token revoked meanwhile ends. Only a refusal ends it, not Redis being out of
// reach for a moment.
class StillAuthorized {
 public:
  StillAuthorized(Authenticator& auth, std::string authorization)
      : auth_(auth), authorization_(std::move(authorization)) {}

  // The refusal when the token no longer authenticates; nothing otherwise.
  awaitable<std::optional<Error>> Refusal() {
    const auto now = std::chrono::steady_clock::now();
    if (now - checked_ < std::chrono::seconds(1)) co_return std::nullopt;
    checked_ = now;
    auto who = co_await auth_.AuthenticateHeader(authorization_);
    if (!who && who.error().category == ErrorCategory::kAuthFailed) co_return who.error();
    co_return std::nullopt;
  }

 private:
  Authenticator& auth_;
  const std::string authorization_;
  std::chrono::steady_clock::time_point checked_ = std::chrono::steady_clock::now();
};

// A group's (storyboard, compare) children's transitions, each marked with the group and the
// child's position; `seq` keeps each exactly once.
class ChildEvents {
 public:
  ChildEvents(std::shared_ptr<WatchState> st, std::string group_id)
      : st_(std::move(st)), group_id_(std::move(group_id)) {}

  void Add(const std::string& child_id, uint32_t index) { index_[child_id] = index; }

  // What child `status` went through so far.
  void Replay(const v1::JobStatus& status) {
    int seq = 0;
    for (auto& ev : trails_[status.job_id()].Replay(status)) Send(std::move(ev), ++seq);
  }

  // The children's events heard since the last call, in order.
  awaitable<void> Drain(JobApi& api, Principal who) {
    auto events = std::move(st_->child_inbox);
    st_->child_inbox.clear();
    std::sort(events.begin(), events.end(),
              [](const auto& a, const auto& b) { return a.seq < b.seq; });
    for (const auto& e : events) {
      if (e.seq <= seq_[e.job_id]) continue;
      Result<v1::JobStatus> fresh = std::unexpected(Error{});
      if (JobTrail::EndsAnAttempt(e)) fresh = co_await api.Get(who, e.job_id);
      Send(trails_[e.job_id].Follow(e, fresh ? &*fresh : nullptr), e.seq);
    }
  }

 private:
  void Send(v1::JobEvent ev, int seq) {
    auto& last = seq_[ev.job_id()];
    if (seq <= last) return;
    last = seq;
    ev.set_parent_job_id(group_id_);
    ev.set_child_index(index_[ev.job_id()]);
    st_->Send(std::move(ev));
  }

  std::shared_ptr<WatchState> st_;
  const std::string group_id_;
  std::map<std::string, uint32_t> index_;
  std::map<std::string, int> seq_;
  std::map<std::string, JobTrail> trails_;
};

awaitable<void> WatchJobLoop(std::shared_ptr<WatchState> st, JobApi& api, EventHub& hub,
                             StillAuthorized& still, Principal who, std::string job_id) {
  const auto handle = hub.Subscribe(job_id, [st](const queue::Event& e) {
    st->inbox.push_back(e);
    st->wake.cancel();
  });
  auto status = co_await api.Get(who, job_id);
  if (!status) {
    hub.Unsubscribe(handle);
    st->Finish(ToGrpcStatus(status.error()));
    co_return;
  }
  ChildEvents children(st, job_id);
  std::vector<uint64_t> child_handles;
  for (const auto& c : status->children()) {
    children.Add(c.job_id(), c.index());
    child_handles.push_back(hub.Subscribe(c.job_id(), [st](const queue::Event& e) {
      st->child_inbox.push_back(e);
      st->wake.cancel();
    }));
  }
  for (const auto& c : status->children()) {
    auto child = co_await api.Get(who, c.job_id());
    if (child) children.Replay(*child);
  }
  // Replay what already happened, then follow; `seq` keeps each transition exactly once.
  JobTrail trail;
  int last_seq = 0;
  bool terminal = false;
  for (auto& ev : trail.Replay(*status)) {
    terminal = ev.state() == v1::JOB_STATE_SUCCEEDED || ev.state() == v1::JOB_STATE_FAILED ||
               ev.state() == v1::JOB_STATE_CANCELLED;
    st->Send(std::move(ev));
    ++last_seq;
  }
  while (!terminal && !st->cancelled && !st->Ending()) {
    co_await children.Drain(api, who);
    auto inbox = std::move(st->inbox);
    st->inbox.clear();
    std::sort(inbox.begin(), inbox.end(),
              [](const auto& a, const auto& b) { return a.seq < b.seq; });
    for (const auto& e : inbox) {
      if (e.seq <= last_seq) continue;
      last_seq = e.seq;
      // A failure's code and the attempt after it are in the record, not the event.
      Result<v1::JobStatus> fresh = std::unexpected(Error{});
      if (JobTrail::EndsAnAttempt(e)) fresh = co_await api.Get(who, job_id);
      st->Send(trail.Follow(e, fresh ? &*fresh : nullptr));
      if (queue::IsTerminal(e.state)) terminal = true;
    }
    if (terminal) break;
    st->wake.expires_after(std::chrono::seconds(5));
    co_await st->wake.async_wait(use_nothrow_awaitable);
    if (auto refused = co_await still.Refusal()) {
      for (const auto& h : child_handles) hub.Unsubscribe(h);
      hub.Unsubscribe(handle);
      st->Finish(AuthStatus(*refused));
      co_return;
    }
    if (st->inbox.empty() && !st->cancelled) {
      // Nothing heard for a while: re-read the record in case events were missed (a Redis
      // restart can drop the stream's tail).
      auto again = co_await api.Get(who, job_id);
      if (again && again->transitions_size() > last_seq) {
        for (int i = last_seq; i < again->transitions_size(); ++i) {
          const auto& t = again->transitions(i);
          queue::Event e;
          e.job_id = job_id;
          e.seq = i + 1;
          e.state = FromProto(t.state()).value_or(queue::JobState::kPending);
          e.phase = FromProto(t.phase());
          e.at_ms = TimeUtil::TimestampToMilliseconds(t.at());
          e.detail = t.detail();
          st->inbox.push_back(e);
        }
      }
    }
  }
  co_await children.Drain(api, who);
  for (const auto& h : child_handles) hub.Unsubscribe(h);
  hub.Unsubscribe(handle);
  st->Finish(grpc::Status::OK);
}

awaitable<void> WatchBatchLoop(std::shared_ptr<WatchState> st, JobApi& api, EventHub& hub,
                               StillAuthorized& still, Principal who, std::string batch_id) {
  const auto handle = hub.Subscribe("batch:" + batch_id, [st](const queue::Event& e) {
    st->inbox.push_back(e);
    st->wake.cancel();
  });
  auto progress = co_await api.GetBatch(who, batch_id);
  if (!progress) {
    hub.Unsubscribe(handle);
    st->Finish(ToGrpcStatus(progress.error()));
    co_return;
  }
  auto done = [](const v1::BatchProgress& p) {
    return p.total() > 0 && p.succeeded() + p.failed() + p.cancelled() >= p.total();
  };
  {
    v1::JobEvent first;
    *first.mutable_batch() = *progress;
    st->Send(std::move(first));
  }
  auto last_refresh = std::chrono::steady_clock::now();
  while (!done(*progress) && !st->cancelled && !st->Ending()) {
    auto inbox = std::move(st->inbox);
    st->inbox.clear();
    const bool saw_terminal = std::any_of(inbox.begin(), inbox.end(),
                                          [](const auto& e) { return queue::IsTerminal(e.state); });
    const auto now = std::chrono::steady_clock::now();
    if ((saw_terminal && now - last_refresh > std::chrono::milliseconds(200)) ||
        now - last_refresh > std::chrono::seconds(1)) {
      if (auto fresh = co_await api.GetBatch(who, batch_id)) *progress = *fresh;
      last_refresh = std::chrono::steady_clock::now();
    }
    for (const auto& e : inbox) {
      // A batch may hold other tenants' jobs (stored before its id was claimed): those are not
      // this caller's to see.
      if (!who.CanSee(e.tenant)) continue;
      auto ev = FromStreamEvent(e);
      *ev.mutable_batch() = *progress;
      st->Send(std::move(ev));
    }
    if (done(*progress)) break;
    st->wake.expires_after(std::chrono::milliseconds(inbox.empty() ? 1000 : 200));
    co_await st->wake.async_wait(use_nothrow_awaitable);
    if (auto refused = co_await still.Refusal()) {
      hub.Unsubscribe(handle);
      st->Finish(AuthStatus(*refused));
      co_return;
    }
  }
  if (done(*progress)) {
    v1::JobEvent last;
    *last.mutable_batch() = *progress;
    st->Send(std::move(last));
  }
  hub.Unsubscribe(handle);
  st->Finish(grpc::Status::OK);
}

// Authenticates, then follows one job or one batch; counted in `limits` while it runs.
awaitable<void> Watch(std::shared_ptr<WatchState> st, JobApi& api, EventHub& hub,
                      Authenticator& auth, WatchLimits& limits, const Settings& settings,
                      std::string authorization, bool is_batch, std::string target) {
  StillAuthorized still(auth, authorization);
  auto who = co_await auth.AuthenticateHeader(std::move(authorization));
  if (!who) {
    st->Finish(AuthStatus(who.error()));
    co_return;
  }
  if (target.empty()) {
    st->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "target: set job_id or batch_id"));
    co_return;
  }
  // The slot is this frame's: released however the watch ends (its end, an error, the client
  // going away, an exception).
  auto opened = limits.Open(who->tenant, settings.max_watches_per_tenant, settings.max_watches);
  if (const auto* refused = std::get_if<std::string>(&opened)) {
    st->Finish(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, *refused));
    co_return;
  }
  if (is_batch) {
    co_await WatchBatchLoop(st, api, hub, still, *who, std::move(target));
  } else {
    co_await WatchJobLoop(st, api, hub, still, *who, std::move(target));
  }
}

}  // namespace

grpc::ServerWriteReactor<v1::JobEvent>* JobServiceImpl::WatchJob(
    grpc::CallbackServerContext* context, const v1::WatchJobRequest* request) {
  auto state =
      std::make_shared<WatchState>(io_, settings_.watch_max_queued_messages, watch_most_queued_);
  auto* reactor = new WatchReactor(io_, state);
  state->reactor = reactor;
  auto on_exit = [state](std::exception_ptr error) {
    if (error) state->Finish(grpc::Status(grpc::StatusCode::INTERNAL, "watch failed"));
  };
  const bool is_batch = request->target_case() == v1::WatchJobRequest::kBatchId;
  const std::string target = is_batch ? request->batch_id() : request->job_id();
  asio::co_spawn(io_,
                 Watch(state, api_, events_, auth_, watch_limits_, settings_,
                       AuthorizationOf(*context), is_batch, target),
                 on_exit);
  return reactor;
}

}  // namespace reelq::scheduler
