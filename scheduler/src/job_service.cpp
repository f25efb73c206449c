#include <memory>
#include <mutex>
#include <optional>
#include <utility>

#include "reelq/common/ids.h"
#include "reelq/common/utf8.h"

#include "batch_chunks.h"
#include "reelq/scheduler/grpc_auth.h"
#include "reelq/scheduler/grpc_services.h"
#include "unary.h"

namespace reelq::scheduler {
namespace {

// A batch's webhook (SubmitBatchRequest.batch_webhook_url), set before its first chunk.
struct BatchHookRequest {
  std::string batch_id, url, events;
};

// Sets the batch's webhook first when `hook` is given; when that is refused, so is every spec
// (and *hook_error says why, for the items that follow). The reactor outlives this call.
awaitable<std::vector<Result<v1::SubmitJobResponse>>> SubmitChunk(
    JobApi& api, Principal who, std::optional<BatchHookRequest> hook,
    std::vector<v1::JobSpec> specs, int64_t budget_micros, std::optional<std::string>* hook_error) {
  if (hook) {
    auto set = co_await api.SetBatchWebhook(who, hook->batch_id, hook->url, hook->events);
    if (!set) {
      *hook_error = ToGrpcStatus(set.error()).error_message();
      co_return std::vector<Result<v1::SubmitJobResponse>>(specs.size(),
                                                           std::unexpected(set.error()));
    }
  }
  co_return co_await api.SubmitMany(std::move(who), std::move(specs), budget_micros,
                                    /*with_status=*/false);
}

// Reads a batch item by item (a message carries one item or many: SubmitBatchRequest.specs);
// each is admitted on its own, so one bad item gets its own error and the others go in.
// Admitted items are stored in chunks of kChunk with one Redis call each
// (JobApi::SubmitMany): a 10,000-item batch costs 50 script calls, not 10,000. A chunk is sealed
// sooner once its items reach Settings::batch_chunk_bytes (items with inline images are MBs
// each), and reading waits while the items held (read, not yet answered) reach twice that
// (BatchChunks): a stream holds tens of MB, not 4 x 200 images. Reading goes on
// while up to kChunksInFlight chunks are being stored, so the stream's reading and admission
// overlap Redis's work (one script call at a time per chunk; each is atomic, so chunks that
// race keep every rule: idempotency, budgets, limits). The first chunk, which carries the
// batch's webhook, is stored alone (chunks completed meanwhile, from a message of many items,
// wait for it): an item after a refused webhook is refused too.
// The caller is authenticated once, before the first read.
//
// gRPC calls OnReadDone on its threads and the chunks end on the io_ executor: everything
// below mutex_ is shared between them, and StartRead/Finish are called outside it.
class BatchReactor final : public grpc::ServerReadReactor<v1::SubmitBatchRequest> {
 public:
  BatchReactor(asio::any_io_executor io, JobApi& api, Authenticator& auth, const Settings& settings,
               std::string authorization, v1::SubmitBatchResponse* response)
      : io_(std::move(io)),
        api_(api),
        settings_(settings),
        response_(response),
        chunks_(kChunk, settings.batch_chunk_bytes) {
    asio::co_spawn(io_, auth.AuthenticateHeader(std::move(authorization)),
                   [this](std::exception_ptr error, Result<Principal> who) {
                     if (error) {
                       Finish(grpc::Status(grpc::StatusCode::INTERNAL, "internal error"));
                     } else if (!who) {
                       Finish(AuthStatus(who.error()));
                     } else {
                       who_ = std::move(*who);
                       {
                         std::lock_guard lock(mutex_);
                         reading_ = true;
                       }
                       StartRead(&request_);
                     }
                   });
  }

  static constexpr size_t kChunk = 200;
  static constexpr int kChunksInFlight = 4;
  // Items past scheduler.max_batch_items are refused one by one, as many as this; a stream that
  // goes on past them is ended (RESOURCE_EXHAUSTED): its answer, one result an item, would grow
  // without bound, and so would what the scheduler holds for it.
  static constexpr size_t kRefusedPastTheLimit = 1000;

  void OnReadDone(bool ok) override {
    Next next;
    {
      std::lock_guard lock(mutex_);
      reading_ = false;
      if (!ok) {
        read_all_ = true;
        if (!chunk_.empty()) SealLocked();
      } else {
        TakeMessageLocked();
        if (too_long_) {
          read_all_ = true;  // no more reads: what was taken is stored, then the call ends
          if (!chunk_.empty()) SealLocked();
        }
      }
      next = NextLocked();
    }
    Do(next);
  }

  void OnDone() override { delete this; }

 private:
  enum class Next { kNothing, kRead, kFinish, kFinishTooLong };

  // The message just read (request_): its items (`spec`, or `spec` when set and then each of
  // `specs`), in order.
  void TakeMessageLocked() {
    if (request_.specs_size() == 0) {
      TakeItemLocked(std::move(*request_.mutable_spec()));
      return;
    }
    if (request_.has_spec()) TakeItemLocked(std::move(*request_.mutable_spec()));
    for (auto& spec : *request_.mutable_specs()) {
      if (too_long_) break;
      TakeItemLocked(std::move(spec));
    }
    request_.clear_specs();
  }

  // One item: refused at once, or added to the chunk (stored when full). A message of many
  // items may fill several chunks: they are stored at once, beyond kChunksInFlight (a message
  // is bounded by gRPC's message size), except while the first chunk is out (SealLocked).
  void TakeItemLocked(v1::JobSpec spec) {
    if (next_index_ >= settings_.max_batch_items + kRefusedPastTheLimit) {
      too_long_ = true;
      return;
    }
    const uint32_t index = next_index_++;
    const int64_t budget = request_.budget_micros();
    auto* item = response_->add_items();
    item->set_index(index);
    if (budget < 0 || budget > queue::kMaxWalletMicros) {
      Reject(item, grpc::StatusCode::INVALID_ARGUMENT,
             "budget_micros: expected 0 (none) to " + std::to_string(queue::kMaxWalletMicros) +
                 ", got " + std::to_string(budget));
      return;
    }
    if (budget_micros_ == 0 && budget != 0) budget_micros_ = budget;
    if (index >= settings_.max_batch_items) {
      Reject(item, grpc::StatusCode::RESOURCE_EXHAUSTED,
             "batch: more than " + std::to_string(settings_.max_batch_items) +
                 " items (scheduler.max_batch_items)");
      return;
    }
    if (batch_id_.empty() && !IsValidUtf8(spec.batch_id())) {
      // Not the stream's batch: the answer names it, and a proto string must be UTF-8.
      Reject(item, grpc::StatusCode::INVALID_ARGUMENT,
             "batch_id: invalid UTF-8 at byte " + std::to_string(FindInvalidUtf8(spec.batch_id())));
      return;
    }
    if (batch_id_.empty())
      batch_id_ = spec.batch_id().empty() ? api_.NewBatchId() : spec.batch_id();
    if (spec.batch_id().empty()) spec.set_batch_id(batch_id_);
    if (!request_.batch_webhook_url().empty() && !hook_seen_ && index > 0) {
      // The items before it are queued without it, and a batch whose last job to end is one of
      // them would never send batch.completed.
      Reject(item, grpc::StatusCode::INVALID_ARGUMENT,
             "batch_webhook_url: named after the stream's first item (items 0 to " +
                 std::to_string(index - 1) +
                 " were queued without it); name it on the stream's first message");
      return;
    }
    if (!request_.batch_webhook_url().empty() && hook_seen_ &&
        (request_.batch_webhook_url() != hook_url_ ||
         request_.batch_webhook_events() != hook_events_)) {
      // A batch has one webhook: a later message naming another would be silently ignored.
      Reject(item, grpc::StatusCode::INVALID_ARGUMENT,
             "batch_webhook_url: " + QuoteForMessage(request_.batch_webhook_url()) + " (events " +
                 QuoteForMessage(request_.batch_webhook_events()) +
                 ") differs from the webhook this stream named first (" +
                 QuoteForMessage(hook_url_) + ", events " + QuoteForMessage(hook_events_) +
                 "); a batch has one webhook");
      return;
    }
    if (!request_.batch_webhook_url().empty() && !hook_seen_) {
      hook_seen_ = true;
      hook_url_ = request_.batch_webhook_url();
      hook_events_ = request_.batch_webhook_events();
      hook_ = BatchHookRequest{batch_id_, request_.batch_webhook_url(),
                               request_.batch_webhook_events()};
    }
    if (hook_error_) {
      Reject(item, grpc::StatusCode::INVALID_ARGUMENT, *hook_error_);
      return;
    }
    if (spec.batch_id() != batch_id_) {
      Reject(item, grpc::StatusCode::INVALID_ARGUMENT,
             "batch_id: " + IdForMessage(spec.batch_id()) + " differs from this stream's batch " +
                 IdForMessage(batch_id_));
      return;
    }
    const size_t bytes = spec.ByteSizeLong();
    chunk_.push_back(std::move(spec));
    chunk_items_.push_back(item);
    if (chunks_.Add(bytes)) SealLocked();
  }

  // The chunk is complete: stored now, or, while the first chunk (which carries the batch's
  // webhook) is out, held until it comes back, so that a refused webhook refuses it too.
  void SealLocked() {
    if (first_stored_ || in_flight_ == 0) {
      auto specs = std::move(chunk_);
      auto items = std::move(chunk_items_);
      chunk_.clear();
      chunk_items_.clear();
      FlushLocked(std::move(specs), std::move(items), chunks_.Seal());
      return;
    }
    held_.push_back({std::move(chunk_), std::move(chunk_items_), chunks_.Seal()});
    chunk_.clear();
    chunk_items_.clear();
  }

  // The first chunk came back: the chunks held meanwhile go, or they and the items of the chunk
  // being filled are refused with the webhook.
  void ReleaseHeldLocked() {
    for (auto& held : held_) {
      if (hook_error_) {
        for (auto* item : held.items)
          Reject(item, grpc::StatusCode::INVALID_ARGUMENT, *hook_error_);
        chunks_.Answered(held.bytes);
      } else {
        FlushLocked(std::move(held.specs), std::move(held.items), held.bytes);
      }
    }
    held_.clear();
    if (hook_error_) {
      for (auto* item : chunk_items_)
        Reject(item, grpc::StatusCode::INVALID_ARGUMENT, *hook_error_);
      chunks_.Answered(chunks_.Seal());
      chunk_.clear();
      chunk_items_.clear();
    }
  }

  // What to do now: read on while few enough chunks are being stored (none before the first
  // came back) and the items held are few enough bytes (BatchChunks), finish once everything
  // read has been stored.
  Next NextLocked() {
    if (finished_ || reading_) return Next::kNothing;
    if (read_all_) {
      if (in_flight_ > 0 || !held_.empty()) return Next::kNothing;
      finished_ = true;
      response_->set_batch_id(batch_id_);
      return too_long_ ? Next::kFinishTooLong : Next::kFinish;
    }
    const int allowed = first_stored_ ? kChunksInFlight : 1;
    if (!chunks_.MayRead(in_flight_, allowed)) return Next::kNothing;
    reading_ = true;
    return Next::kRead;
  }

  void Do(Next next) {
    if (next == Next::kRead) StartRead(&request_);
    if (next == Next::kFinish) Finish(grpc::Status::OK);
    if (next == Next::kFinishTooLong) {
      Finish(grpc::Status(
          grpc::StatusCode::RESOURCE_EXHAUSTED,
          "batch: more than " + std::to_string(settings_.max_batch_items) +
              " items in one stream (scheduler.max_batch_items); the first " +
              std::to_string(settings_.max_batch_items) +
              " were stored and run (send them again with the same idempotency keys to learn "
              "their job ids); send the rest in another stream"));
    }
  }

  // Stores a sealed chunk (its items' bytes: `bytes`); its items are answered when it comes
  // back.
  void FlushLocked(std::vector<v1::JobSpec> specs, std::vector<v1::BatchItemResult*> items,
                   size_t bytes) {
    ++in_flight_;
    auto hook = std::exchange(hook_, std::nullopt);
    // The webhook's refusal is written by the chunk's coroutine and read here only once it has
    // ended (gRPC's thread may be taking items meanwhile: hook_error_ is under mutex_).
    auto refused = std::make_shared<std::optional<std::string>>();
    asio::co_spawn(
        io_,
        SubmitChunk(api_, who_, std::move(hook), std::move(specs), budget_micros_, refused.get()),
        [this, refused, bytes, items = std::move(items)](
            std::exception_ptr error, std::vector<Result<v1::SubmitJobResponse>> results) {
          Next next;
          {
            std::lock_guard lock(mutex_);
            if (*refused) hook_error_ = std::move(*refused);
            for (size_t i = 0; i < items.size(); ++i) {
              auto* item = items[i];
              if (error || i >= results.size()) {
                Reject(item, grpc::StatusCode::INTERNAL, "internal error");
              } else if (!results[i]) {
                auto status = ToGrpcStatus(results[i].error());
                Reject(item, status.error_code(), status.error_message());
              } else {
                item->set_job_id(results[i]->job_id());
                item->set_duplicate(results[i]->duplicate());
                response_->set_accepted(response_->accepted() + 1);
              }
            }
            --in_flight_;
            chunks_.Answered(bytes);
            first_stored_ = true;
            ReleaseHeldLocked();
            next = NextLocked();
          }
          Do(next);
        });
  }

  void Reject(v1::BatchItemResult* item, grpc::StatusCode code, const std::string& message) {
    item->set_code(code);
    item->set_message(message);
    response_->set_rejected(response_->rejected() + 1);
  }

  asio::any_io_executor io_;
  JobApi& api_;
  const Settings& settings_;
  v1::SubmitBatchResponse* response_;
  v1::SubmitBatchRequest request_;
  Principal who_;
  std::mutex mutex_;
  bool reading_ = false;       // a StartRead is outstanding
  bool read_all_ = false;      // the client has sent everything
  bool too_long_ = false;      // past max_batch_items + kRefusedPastTheLimit: read no more
  bool finished_ = false;      // Finish was called
  int in_flight_ = 0;          // chunks being stored
  bool first_stored_ = false;  // the first chunk (with the batch's webhook) came back
  std::string batch_id_;
  uint32_t next_index_ = 0;
  int64_t budget_micros_ = 0;       // the batch's budget, from the first message that states one
  std::vector<v1::JobSpec> chunk_;  // admitted later, stored together
  std::vector<v1::BatchItemResult*> chunk_items_;  // their places in the response
  BatchChunks chunks_;                             // when to seal a chunk, whether to read on
  // Complete chunks read while the first was out (SealLocked).
  struct HeldChunk {
    std::vector<v1::JobSpec> specs;
    std::vector<v1::BatchItemResult*> items;
    size_t bytes = 0;
  };
  std::vector<HeldChunk> held_;
  bool hook_seen_ = false;
  std::string hook_url_, hook_events_;     // the batch webhook the stream named first
  std::optional<BatchHookRequest> hook_;   // not yet sent: goes with the next chunk
  std::optional<std::string> hook_error_;  // it was refused: so is every later item
};

}  // namespace

JobServiceImpl::JobServiceImpl(asio::any_io_executor io, JobApi& api, EventHub& events,
                               const Settings& settings, Authenticator& auth)
    : io_(std::move(io)), api_(api), events_(events), settings_(settings), auth_(auth) {}

grpc::ServerUnaryReactor* JobServiceImpl::SubmitJob(grpc::CallbackServerContext* context,
                                                    const v1::SubmitJobRequest* request,
                                                    v1::SubmitJobResponse* response) {
  return AuthedUnary(context, io_, auth_, response, [this, spec = request->spec()](Principal who) {
    return api_.Submit(who, spec);
  });
}

grpc::ServerReadReactor<v1::SubmitBatchRequest>* JobServiceImpl::SubmitBatch(
    grpc::CallbackServerContext* context, v1::SubmitBatchResponse* response) {
  return new BatchReactor(io_, api_, auth_, settings_, AuthorizationOf(*context), response);
}

grpc::ServerUnaryReactor* JobServiceImpl::GetJob(grpc::CallbackServerContext* context,
                                                 const v1::GetJobRequest* request,
                                                 v1::JobStatus* response) {
  return AuthedUnary(context, io_, auth_, response,
                     [this, id = request->job_id()](Principal who) { return api_.Get(who, id); });
}

grpc::ServerUnaryReactor* JobServiceImpl::ListJobs(grpc::CallbackServerContext* context,
                                                   const v1::ListJobsRequest* request,
                                                   v1::ListJobsResponse* response) {
  return AuthedUnary(context, io_, auth_, response,
                     [this, request = *request](Principal who) { return api_.List(who, request); });
}

grpc::ServerUnaryReactor* JobServiceImpl::CancelJob(grpc::CallbackServerContext* context,
                                                    const v1::CancelJobRequest* request,
                                                    v1::JobStatus* response) {
  return AuthedUnary(context, io_, auth_, response, [this, id = request->job_id()](Principal who) {
    return api_.Cancel(who, id);
  });
}

grpc::ServerUnaryReactor* JobServiceImpl::RetryJob(grpc::CallbackServerContext* context,
                                                   const v1::RetryJobRequest* request,
                                                   v1::JobStatus* response) {
  return AuthedUnary(context, io_, auth_, response,
                     [this, id = request->job_id()](Principal who) { return api_.Retry(who, id); });
}

grpc::ServerUnaryReactor* JobServiceImpl::GetBatch(grpc::CallbackServerContext* context,
                                                   const v1::GetBatchRequest* request,
                                                   v1::BatchProgress* response) {
  return AuthedUnary(
      context, io_, auth_, response,
      [this, id = request->batch_id()](Principal who) { return api_.GetBatch(who, id); });
}

grpc::ServerUnaryReactor* JobServiceImpl::CancelBatch(grpc::CallbackServerContext* context,
                                                      const v1::CancelBatchRequest* request,
                                                      v1::BatchActionResponse* response) {
  return AuthedUnary(
      context, io_, auth_, response,
      [this, id = request->batch_id()](Principal who) { return api_.CancelBatch(who, id); });
}

grpc::ServerUnaryReactor* JobServiceImpl::RetryBatch(grpc::CallbackServerContext* context,
                                                     const v1::RetryBatchRequest* request,
                                                     v1::BatchActionResponse* response) {
  return AuthedUnary(
      context, io_, auth_, response,
      [this, id = request->batch_id()](Principal who) { return api_.RetryBatch(who, id); });
}

grpc::ServerUnaryReactor* JobServiceImpl::PickTake(grpc::CallbackServerContext* context,
                                                   const v1::PickTakeRequest* request,
                                                   v1::JobStatus* response) {
  return AuthedUnary(context, io_, auth_, response, [this, request = *request](Principal who) {
    return api_.PickTake(who, request);
  });
}

}  // namespace reelq::scheduler
