#pragma once

// FOR BENCHMARKS AND TESTS ONLY. The `noop` provider makes no upstream call: Create answers a
// task id at once, Poll answers "succeeded" at once, Download writes a few bytes. It lets
// bench/throughput --mode queue measure the queue machinery (Redis, scheduler, worker, leases)
// without an HTTP round trip per step. A model or account with `provider: noop` needs no
// base_url or key; nothing in deploy/ names it.
#include "reelq/providers/catalogue.h"
#include "reelq/providers/provider.h"

namespace reelq::providers {

// What Download writes: a tiny body that is not a real MP4 (the null store discards it anyway).
inline constexpr std::string_view kNoopClipBody = "reelq noop clip\n";

ProviderPtr MakeNoopProvider(const AccountSpec& account);

}  // namespace reelq::providers
