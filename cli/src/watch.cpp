#include "watch.h"

#include <thread>

#include "format.h"

namespace reelq::cli {
namespace {

constexpr int kMaxReconnects = 5;

}  // namespace

std::string EventIdentity(const v1::JobEvent& event) {
  std::string id = event.job_id();
  for (const std::string& part :
       {std::to_string(event.state()), std::to_string(event.phase()),
        std::to_string(event.at().seconds()), std::to_string(event.at().nanos()), event.detail(),
        event.parent_job_id()}) {
    id.push_back('\x1f');
    id += part;
  }
  if (event.job_id().empty() && event.has_batch()) id += event.batch().SerializeAsString();
  return id;
}

WatchResult FollowWatch(Context& context, const v1::WatchJobRequest& request,
                        std::chrono::milliseconds max_wait,
                        const std::function<bool(const v1::JobEvent&)>& on_event) {
  const auto give_up_at = std::chrono::system_clock::now() + max_wait;
  int reconnects = 0;
  bool delivered = false;
  for (;;) {
    grpc::ClientContext rpc;
    if (max_wait.count() > 0) rpc.set_deadline(give_up_at);
    context.Authorize(rpc);
    auto reader = context.Jobs().WatchJob(&rpc, request);
    v1::JobEvent event;
    bool stopped = false;
    while (reader->Read(&event)) {
      delivered = true;
      reconnects = 0;
      if (!on_event(event)) {
        stopped = true;
        rpc.TryCancel();
        break;
      }
    }
    const grpc::Status status = reader->Finish();
    if (stopped) return {WatchEnd::kStopped, 0};
    if (status.ok()) return {WatchEnd::kFinished, 0};
    switch (status.error_code()) {
      case grpc::StatusCode::DEADLINE_EXCEEDED:
        if (max_wait.count() > 0 && std::chrono::system_clock::now() >= give_up_at) {
          context.io().err << "error: watch: gave up after --max-wait\n";
          return {WatchEnd::kTimedOut, kExitWaitTimeout};
        }
        break;
      case grpc::StatusCode::UNIMPLEMENTED:
        return {WatchEnd::kUnsupported, 0};
      default:
        break;
    }
    // A stream that worked and then broke (scheduler restart, load balancer idle timeout, or the
    // scheduler ending it with RESOURCE_EXHAUSTED because this client read too slowly) is worth
    // reopening: it resumes from the current state. One that never delivered anything is a
    // real error.
    const bool transient = status.error_code() == grpc::StatusCode::UNAVAILABLE ||
                           status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ||
                           status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED;
    if (!delivered || !transient || reconnects >= kMaxReconnects) {
      return {WatchEnd::kFailed, context.RpcError(status, "watch")};
    }
    ++reconnects;
    context.io().err << "watch: stream broke (" << status.error_message() << "); reconnecting\n";
    std::this_thread::sleep_for(std::chrono::seconds(1) * (1 << (reconnects - 1)));
  }
}

ProgressReporter::ProgressReporter(std::ostream& out, bool tty,
                                   std::chrono::milliseconds line_interval)
    : out_(out),
      tty_(tty),
      line_interval_(line_interval),
      started_(std::chrono::steady_clock::now()) {}

void ProgressReporter::Update(const v1::BatchProgress& progress) {
  const auto now = std::chrono::steady_clock::now();
  const bool changed = !last_ || last_->SerializeAsString() != progress.SerializeAsString();
  last_ = progress;
  if (tty_) {
    if (!changed && drawn_) return;
    // \r and "erase to end of line" redraw the bar in place.
    out_ << "\r" << FormatProgressBar(progress) << "\x1b[K" << std::flush;
    drawn_ = true;
    return;
  }
  if (last_line_ && now - *last_line_ < line_interval_) return;
  last_line_ = now;
  const double elapsed = std::chrono::duration<double>(now - started_).count();
  out_ << FormatProgressLine(progress, elapsed) << "\n" << std::flush;
}

void ProgressReporter::Finish() {
  if (!last_) return;
  if (tty_) {
    out_ << "\r" << FormatProgressBar(*last_) << "\x1b[K\n" << std::flush;
    return;
  }
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  out_ << FormatProgressLine(*last_, elapsed) << "\n" << std::flush;
}

}  // namespace reelq::cli
