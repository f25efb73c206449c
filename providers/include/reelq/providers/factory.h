#pragma once

#include <chrono>

#include "reelq/common/clock.h"
#include "reelq/common/error.h"
#include "reelq/common/http_client.h"
#include "reelq/providers/catalogue.h"
#include "reelq/providers/provider.h"

namespace reelq::providers {

// Timeouts of the adapters' calls (tests shorten them).
struct AdapterOptions {
  std::chrono::milliseconds api_timeout{30'000};        // create, poll, find, cancel
  std::chrono::milliseconds download_timeout{900'000};  // the whole clip transfer
  int list_page_size = 100;  // tasks per list page when looking for a lost create
};

// Builds the adapter for `account.provider`, resolving its keys from the environment or files.
// kAuthFailed naming the variable or file when a key is missing (never the key itself);
// kInvalidRequest for an unknown provider.
Result<ProviderPtr> MakeProvider(const AccountSpec& account, http::ClientPtr client, ClockPtr clock,
                                 AdapterOptions options = {});

}  // namespace reelq::providers
