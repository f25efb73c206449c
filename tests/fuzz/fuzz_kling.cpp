// libFuzzer target: every Kling response parser and the error table, on arbitrary bytes.
#include "fuzz_common.h"
#include "kling/kling_wire.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace reelq::providers;
  auto in = reelq::fuzz::Split(data, size);
  (void)kling::ParseCreateResponse(in.status, in.body, in.header, reelq::fuzz::kNowMs);
  (void)kling::ParsePollResponse(in.status, in.body, in.header, reelq::fuzz::kNowMs);
  (void)kling::ParseFindResponse(in.status, in.body, in.header, reelq::fuzz::kNowMs);
  (void)kling::ClassifyError(wire::Op::kCreate, in.status, in.body, in.header, reelq::fuzz::kNowMs);
  (void)kling::ClassifyTaskFailure(in.body);
  return 0;
}
