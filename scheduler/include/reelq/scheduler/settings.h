#pragma once

#include <map>
#include <string>

#include "reelq/common/config.h"
#include "reelq/common/error.h"

namespace reelq::scheduler {

struct Settings {
  std::string listen = "127.0.0.1:50051";
  std::string metrics_listen = "127.0.0.1:9464";
  // The web dashboard (host:port); empty: off. Without API tokens only a loopback address.
  std::string dashboard_listen;
  size_t max_prompt_bytes = 100'000;
  size_t max_batch_items = 100'000;
  // gRPC receive limit: large enough for a request carrying input images.
  int max_message_bytes = 32 * 1024 * 1024;
  size_t max_image_bytes = 10 << 20;  // each input image sent as bytes
  int64_t idempotency_retention_s = 24 * 3600;
  int max_attempts = 5;
  int dispatch_batch = 256;
  // How many jobs of a tenant's queue a dispatch round looks at for one that can go now. A free
  // slot on a slower model is taken only once enough jobs wait for the faster, busy ones that
  // its earliest finish wins (about the latency difference times the busy models' drain rate):
  // at 16, bench/schedule left Sora's slots idle half the time (makespan 1.23 x the bound).
  int dispatch_scan_depth = 64;
  double default_weight = 1;
  // Jobs (at weight 1) a tenant whose queue was empty starts ahead of the others' virtual clock
  // (tenants.activation_credit): a small batch behind a big one goes first for that many
  // dispatches. 0: plain fair share from the first job.
  int activation_credit = 64;
  // "fair" (weighted fair share between tenants) or "fifo" (one global order, for comparison).
  std::string dispatch_policy = "fair";
  // A job whose request states a first choice (the first of an explicit model list, or the use
  // case's first choice under `auto`) goes to it unless another allowed model's expected finish
  // is earlier by more than this many seconds. 0: plain earliest finish (ties to the first).
  double preference_margin_seconds = 0;
  std::map<std::string, double> tenant_weights;
  // queue.retention_hours: finished jobs leave Redis this long after they end (their clips stay
  // in the store); the scheduler's retention sweep removes them in bounded chunks.
  int64_t retention_ms = int64_t{168} * 3600 * 1000;
  // The dispatch round runs when a script signals a freed slot or new work (queue/lua
  // common.lua wake_dispatch), and at least this often besides.
  int dispatch_interval_ms = 100;
  // TLS on the gRPC listener (both files, PEM; relative paths from the config's directory). A
  // client CA file turns on mutual TLS: a client without a certificate it signed is refused.
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_client_ca_file;
  // The most messages one WatchJob stream holds queued for a client that reads slower than
  // they come (HTTP/2 flow control holds writes back meanwhile); past it the stream ends with
  // RESOURCE_EXHAUSTED, so a stalled reader of a big batch cannot grow the scheduler's memory
  // without bound (each message carries the batch's progress: 10,000 are a few MB). Not a
  // config key: tests lower it.
  static constexpr size_t kWatchMaxQueuedMessages = 10'000;
  // Open WatchJob streams: per tenant (an admin token, or authentication off, counts as one
  // principal) and on this scheduler in all. Past either a new watch is refused with
  // RESOURCE_EXHAUSTED naming the key (an idle watch costs the io thread a re-read every 1-5 s).
  size_t max_watches_per_tenant = 1'000;
  size_t max_watches = 10'000;
  size_t watch_max_queued_messages = kWatchMaxQueuedMessages;
  // A SubmitBatch chunk (stored in one call) is sealed once its items reach this many bytes, as
  // well as at 200 items, and a stream reads no further while the items it holds (read, not yet
  // answered) reach twice this: items with inline images are MBs each (job_service.cpp,
  // batch_chunks.h). Not a config key: tests lower it.
  static constexpr size_t kBatchChunkBytes = 32 << 20;
  size_t batch_chunk_bytes = kBatchChunkBytes;
};

// Reads the `scheduler:` and `tenants:` sections. Errors name the key.
Result<Settings> ParseSettings(const config::Document& doc);

}  // namespace reelq::scheduler
