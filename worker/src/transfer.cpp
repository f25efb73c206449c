#include "transfer.h"

#include <exception>

namespace reelq::worker {

awaitable<void> RunTransfer(providers::ProviderPtr provider, std::string upstream,
                            providers::TaskStatus status, std::shared_ptr<Transfer> transfer,
                            std::shared_ptr<JobControl> control) {
  try {
    transfer->result = co_await provider->Download(upstream, status, *transfer);
  } catch (const std::exception& e) {
    transfer->result =
        MakeError(ErrorCategory::kInternal, std::string("download threw: ") + e.what());
  }
  transfer->done = true;
  if (transfer->abandoned()) {
    co_await transfer->AbortOnce();
  } else {
    control->wake.cancel();  // the job waits on it (see the transfer step)
  }
}

}  // namespace reelq::worker
