#pragma once

// What the deep-queue parts share (parts.cpp) and the depth ratio itself (depth.cpp).
#include <string>
#include <vector>

#include "parts.h"
#include "stack.h"

namespace reelq::bench::scale {

// The noop account's concurrency in QueueOptions: a few hundred upstream tasks at once, as a
// real account, so most of a deep queue stays PENDING; the scheduler dispatches up to this many
// jobs ahead of the worker.
inline constexpr int kNoopConcurrency = 512;
// The queue alone (noop provider, null store), product lease and heartbeat, one scheduler.
testing::E2eStackOptions QueueOptions(int workers);
// SubmitBatch of `specs`; throws unless all were accepted.
void Submit(testing::E2eStack& stack, const std::vector<reelq::v1::JobSpec>& specs,
            int items_per_message = 1);
// BGREWRITEAOF, waited for; the seconds it took.
double SettleAof(testing::RedisServer& redis);

// depth_ratio and the CPU per 1,000 jobs of each process at depth and shallow: `deep` holds
// --queued jobs of `deep_batch` and no worker.
void MeasureDepth(const Args& args, testing::E2eStack& deep, const std::string& deep_batch,
                  KeyValues& out);

}  // namespace reelq::bench::scale
