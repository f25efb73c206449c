#include <atomic>
#include <deque>
#include <map>
#include <mutex>

#include <fmt/format.h>
#include <google/protobuf/util/time_util.h>

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

v1::JobEvent FromStreamEvent(const queue::Event& e) {
  v1::JobEvent out;
  out.set_job_id(e.job_id);
  out.set_state(ToProto(e.state));
  out.set_phase(ToProto(e.phase));
  *out.mutable_at() = TimeUtil::MillisecondsToTimestamp(e.at_ms);
  out.set_detail(e.detail);
  return out;
}

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
  // A group (storyboard, compare) shows its children's transitions too, each marked with the
  // group and the child's position; `child_seq` keeps each exactly once.
  std::map<std::string, uint32_t> child_index;
  std::map<std::string, int> child_seq;
  std::vector<uint64_t> child_handles;
  for (const auto& c : status->children()) {
    child_index[c.job_id()] = c.index();
    child_handles.push_back(hub.Subscribe(c.job_id(), [st](const queue::Event& e) {
      st->child_inbox.push_back(e);
      st->wake.cancel();
    }));
  }
  auto send_child = [&](v1::JobEvent ev, int seq) {
    auto& last = child_seq[ev.job_id()];
    if (seq <= last) return;
    last = seq;
    ev.set_parent_job_id(job_id);
    ev.set_child_index(child_index[ev.job_id()]);
    st->Send(std::move(ev));
  };
  for (const auto& c : status->children()) {
    auto child = co_await api.Get(who, c.job_id());
    if (!child) continue;
    int seq = 0;
    for (const auto& t : child->transitions()) {
      v1::JobEvent ev;
      ev.set_job_id(c.job_id());
      ev.set_state(t.state());
      ev.set_phase(t.phase());
      *ev.mutable_at() = t.at();
      ev.set_detail(t.detail());
      ev.set_model(child->model());
      ev.set_attempt(child->attempt());
      send_child(std::move(ev), ++seq);
    }
  }
  auto drain_children = [&] {
    auto events = std::move(st->child_inbox);
    st->child_inbox.clear();
    std::sort(events.begin(), events.end(),
              [](const auto& a, const auto& b) { return a.seq < b.seq; });
    for (const auto& e : events) send_child(FromStreamEvent(e), e.seq);
  };
  // Replay what already happened, then follow; `seq` keeps each transition exactly once.
  int last_seq = 0;
  bool terminal = false;
  for (const auto& t : status->transitions()) {
    v1::JobEvent ev;
    ev.set_job_id(job_id);
    ev.set_state(t.state());
    ev.set_phase(t.phase());
    *ev.mutable_at() = t.at();
    ev.set_detail(t.detail());
    ev.set_model(status->model());
    ev.set_attempt(status->attempt());
    st->Send(std::move(ev));
    ++last_seq;
    terminal = t.state() == v1::JOB_STATE_SUCCEEDED || t.state() == v1::JOB_STATE_FAILED ||
               t.state() == v1::JOB_STATE_CANCELLED;
  }
  while (!terminal && !st->cancelled && !st->Ending()) {
    drain_children();
    auto inbox = std::move(st->inbox);
    st->inbox.clear();
    std::sort(inbox.begin(), inbox.end(),
              [](const auto& a, const auto& b) { return a.seq < b.seq; });
    for (const auto& e : inbox) {
      if (e.seq <= last_seq) continue;
      last_seq = e.seq;
      st->Send(FromStreamEvent(e));
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
  drain_children();
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

// Authenticates, then follows one job or one batch.
awaitable<void> Watch(std::shared_ptr<WatchState> st, JobApi& api, EventHub& hub,
                      Authenticator& auth, std::string authorization, bool is_batch,
                      std::string target) {
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
                 Watch(state, api_, events_, auth_, AuthorizationOf(*context), is_batch, target),
                 on_exit);
  return reactor;
}

}  // namespace reelq::scheduler
