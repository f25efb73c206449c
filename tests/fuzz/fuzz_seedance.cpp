// libFuzzer target: every Seedance response parser and the error table, on arbitrary bytes.
#include "fuzz_common.h"
#include "seedance/seedance_wire.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace reelq::providers;
  auto in = reelq::fuzz::Split(data, size);
  (void)seedance::ParseCreateResponse(in.status, in.body, in.header, reelq::fuzz::kNowMs);
  (void)seedance::ParsePollResponse(in.status, in.body, in.header, reelq::fuzz::kNowMs);
  (void)seedance::ParseCancelResponse(in.status, in.body, in.header, reelq::fuzz::kNowMs);
  return 0;
}
