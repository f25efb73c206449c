// JobStore's reading of the event stream (`events`), which WatchJob and the dashboard follow:
// each script call that changes jobs appends one entry holding all its transitions.
#include "job_codec.h"
#include "reelq/common/utf8.h"
#include "reelq/queue/job_store.h"

namespace reelq::queue {
namespace {

// One event stream entry holds every transition of one script call: fields "e", each
// "job\x1fseq\x1fstate\x1fphase\x1fat\x1fbatch\x1ftenant\x1fdetail" (detail last: it may hold
// anything).
std::optional<Event> ParseEvent(const std::string& stream_id, const std::string& text) {
  auto split = SplitLeading<7>(text, '\x1f');
  if (!split) return std::nullopt;
  const auto& parts = split->fields;
  auto state = JobStateFromString(parts[2]);
  auto phase = JobPhaseFromString(parts[3]);
  if (!state || !phase) return std::nullopt;
  Event ev;
  ev.stream_id = stream_id;
  ev.job_id = std::string(parts[0]);
  ev.seq = static_cast<int>(ToInt(parts[1]));
  ev.state = *state;
  ev.phase = *phase;
  ev.at_ms = ToInt(parts[4]);
  ev.batch = std::string(parts[5]);
  ev.tenant = std::string(parts[6]);
  ev.detail = ValidUtf8(text.substr(split->rest));
  return ev;
}

// The jobs of one "s" field (submit.lua): "<id,id,...>\x1f<at>\x1f<batch>\x1f<tenant>", each
// submitted (seq 1, PENDING) at `at`.
void AppendSubmitted(const std::string& stream_id, const std::string& text,
                     std::vector<Event>& out) {
  auto split = SplitLeading<3>(text, '\x1f');
  if (!split) return;
  const auto& parts = split->fields;
  Event ev;
  ev.stream_id = stream_id;
  ev.seq = 1;
  ev.state = JobState::kPending;
  ev.phase = JobPhase::kNone;
  ev.at_ms = ToInt(parts[1]);
  ev.batch = std::string(parts[2]);
  ev.tenant = text.substr(split->rest);
  ev.detail = "submitted";
  for (size_t from = 0; from < parts[0].size();) {
    size_t comma = parts[0].find(',', from);
    if (comma == std::string_view::npos) comma = parts[0].size();
    if (comma > from) {
      ev.job_id = std::string(parts[0].substr(from, comma - from));
      out.push_back(ev);
    }
    from = comma + 1;
  }
}

// Every transition of one stream entry [id, ["e", record, ..., "s", jobs, ...]], in order. A
// record this build cannot read is skipped: it harms no other event.
void AppendEvents(const redis::Reply& entry, std::vector<Event>& out) {
  if (entry.elements.size() < 2) return;
  const auto& fields = entry.elements[1].elements;
  for (size_t i = 0; i + 1 < fields.size(); i += 2) {
    if (fields[i].str == "s") {
      AppendSubmitted(entry.elements[0].str, fields[i + 1].str, out);
    } else if (auto ev = ParseEvent(entry.elements[0].str, fields[i + 1].str)) {
      out.push_back(std::move(*ev));
    }
  }
}

}  // namespace

awaitable<Result<std::vector<Event>>> JobStore::ReadEvents(redis::Connection& blocking,
                                                           std::string after_id,
                                                           std::chrono::milliseconds block,
                                                           int count) {
  std::vector<std::string> command{"XREAD",
                                   "COUNT",
                                   std::to_string(count),
                                   "BLOCK",
                                   std::to_string(block.count()),
                                   "STREAMS",
                                   p_ + ":events",
                                   after_id};
  auto r = co_await blocking.Command(std::move(command), block + std::chrono::milliseconds(2000));
  if (!r) co_return std::unexpected(r.error());
  std::vector<Event> out;
  if (r->IsNil() || r->elements.empty()) co_return out;
  // [[stream, [[id, [k, v, ...]], ...]]]
  const auto& stream = r->elements[0];
  if (stream.elements.size() < 2) co_return out;
  for (const auto& entry : stream.elements[1].elements) {
    AppendEvents(entry, out);
  }
  co_return out;
}

awaitable<Result<std::vector<Event>>> JobStore::ReadEventRange(std::string start, int count) {
  std::vector<std::string> command{"XRANGE", p_ + ":events", std::move(start),
                                   "+",      "COUNT",        std::to_string(count)};
  auto r = co_await connection_->Command(std::move(command));
  if (!r) co_return std::unexpected(r.error());
  std::vector<Event> out;
  for (const auto& entry : r->elements) {
    AppendEvents(entry, out);
  }
  co_return out;
}

awaitable<Result<std::string>> JobStore::LastEventId() {
  std::vector<std::string> command{"XREVRANGE", p_ + ":events", "+", "-", "COUNT", "1"};
  auto r = co_await connection_->Command(std::move(command));
  if (!r) co_return std::unexpected(r.error());
  if (r->elements.empty() || r->elements[0].elements.empty()) co_return std::string("0-0");
  co_return r->elements[0].elements[0].str;
}

}  // namespace reelq::queue
