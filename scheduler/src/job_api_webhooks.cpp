// JobApi's webhook parts (job_api.h): the job record's webhook field, batch webhooks, and the
// delivery state GetJob / GetBatch show.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "reelq/common/utf8.h"
#include "reelq/scheduler/job_api.h"

namespace reelq::scheduler {
namespace {

constexpr size_t kMaxWebhookUrlBytes = 2048;

void SetTime(google::protobuf::Timestamp* out, int64_t ms) {
  out->set_seconds(ms / 1000);
  out->set_nanos(static_cast<int32_t>(ms % 1000) * 1'000'000);
}

// "" / "end" -> false, "all" -> true; kInvalidRequest naming `field` otherwise.
Result<bool> AllEvents(const std::string& events, const std::string& field) {
  if (events.empty() || events == "end") return false;
  if (events == "all") return true;
  return MakeError(ErrorCategory::kInvalidRequest,
                   field + ": expected 'end' or 'all', got " + QuoteForMessage(events));
}

}  // namespace

awaitable<Result<std::string>> JobApi::WebhookField(std::string url, std::string events,
                                                    std::map<std::string, bool>* checked) {
  auto all = AllEvents(events, "webhook_events");
  if (!all) co_return std::unexpected(all.error());
  std::string flags;
  if (!url.empty()) {
    if (!webhook_guard_) {
      co_return MakeError(ErrorCategory::kInvalidRequest,
                          "webhook_url: webhooks are not enabled on this scheduler");
    }
    if (url.size() > kMaxWebhookUrlBytes) {
      co_return MakeError(
          ErrorCategory::kInvalidRequest,
          "webhook_url: longer than " + std::to_string(kMaxWebhookUrlBytes) + " bytes");
    }
    if (!checked->contains(url)) {
      auto ok = co_await webhook_guard_->Check(url, "webhook_url");
      if (!ok) co_return std::unexpected(ok.error());
      (*checked)[url] = true;
    }
    flags = *all ? "a" : "e";
  } else if (*all) {
    co_return MakeError(ErrorCategory::kInvalidRequest, "webhook_events: set without webhook_url");
  }
  // The batch's webhook (flag 'b', and its URL for a job without one when it asks for every
  // job's end) is added by submit.lua from the batch record, whichever scheduler set it.
  if (flags.empty()) co_return std::string();
  co_return flags + "|" + url;
}

awaitable<Result<void>> JobApi::SetBatchWebhook(Principal who, std::string batch_id,
                                                std::string url, std::string events) {
  auto all = AllEvents(events, "batch_webhook_events");
  if (!all) co_return std::unexpected(all.error());
  // Checked before the id is claimed or a hook stored under it: a refused id must leave no key.
  if (batch_id.empty()) {
    co_return MakeError(ErrorCategory::kInvalidRequest,
                        "batch_id: required with batch_webhook_url (set it on the first item)");
  }
  if (auto checked = admission_.CheckBatchId(batch_id); !checked) {
    co_return std::unexpected(checked.error());
  }
  if (url.empty()) {
    co_return MakeError(ErrorCategory::kInvalidRequest, "batch_webhook_url: required");
  }
  if (const size_t bad = FindInvalidUtf8(url); bad != std::string::npos) {
    co_return MakeError(ErrorCategory::kInvalidRequest,
                        "batch_webhook_url: invalid UTF-8 at byte " + std::to_string(bad));
  }
  if (!webhook_guard_ || !webhook_store_) {
    co_return MakeError(ErrorCategory::kInvalidRequest,
                        "batch_webhook_url: webhooks are not enabled on this scheduler");
  }
  if (url.size() > kMaxWebhookUrlBytes) {
    co_return MakeError(
        ErrorCategory::kInvalidRequest,
        "batch_webhook_url: longer than " + std::to_string(kMaxWebhookUrlBytes) + " bytes");
  }
  auto ok = co_await webhook_guard_->Check(url, "batch_webhook_url");
  if (!ok) co_return std::unexpected(ok.error());
  if (!who.open && !who.is_admin) {
    auto claimed = co_await ClaimBatch(batch_id, who.tenant);
    if (!claimed) co_return std::unexpected(claimed.error());
  }
  // As long as an unused claim on the id (JobApi::ClaimBatch): the batch's first job is stored
  // right after this, in the same stream.
  const int64_t unused_ms = std::max<int64_t>(settings_.retention_ms, 3'600'000);
  // Named, not a temporary: g++ 12 destroys a temporary argument of a coroutine call inside
  // co_await twice.
  std::string hook_tenant = who.is_admin || who.open ? std::string() : who.tenant;
  auto stored = co_await webhook_store_->SetBatchWebhook(batch_id, url, std::move(hook_tenant),
                                                         *all, unused_ms);
  if (!stored) co_return std::unexpected(stored.error());
  co_return Result<void>{};
}

awaitable<void> JobApi::AddDelivery(std::string kind, std::string id, v1::WebhookDelivery* out) {
  if (!webhook_store_) co_return;
  auto latest = co_await webhook_store_->Latest(kind, id);
  if (!latest) {
    // The status is still worth answering without it.
    spdlog::warn("webhooks: cannot read the delivery state of {} {}: {}", kind, id,
                 latest.error().message);
    co_return;
  }
  if (!*latest) co_return;
  const auto& d = **latest;
  out->set_delivery_id(d.id);
  out->set_url(d.url);
  out->set_event_type(d.type);
  out->set_state(d.state);
  out->set_attempts(static_cast<uint32_t>(d.attempts));
  out->set_last_status(d.last_status);
  out->set_last_error(d.last_error);
  if (d.state == "pending" && d.next_at_ms > 0)
    SetTime(out->mutable_next_attempt_at(), d.next_at_ms);
  if (d.last_at_ms > 0) SetTime(out->mutable_last_attempt_at(), d.last_at_ms);
}

}  // namespace reelq::scheduler
