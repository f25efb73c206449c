// libFuzzer target: every Veo response parser and the error table, on arbitrary bytes.
#include "fuzz_common.h"
#include "veo/veo_wire.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace reelq::providers;
  auto in = reelq::fuzz::Split(data, size);
  (void)veo::ParseCreateResponse(in.status, in.body, in.header, reelq::fuzz::kNowMs);
  (void)veo::ParsePollResponse(in.status, in.body, in.header, reelq::fuzz::kNowMs);
  (void)veo::ClassifyError(wire::Op::kCreate, in.status, in.body, in.header, reelq::fuzz::kNowMs);
  (void)veo::OperationPath(in.body);
  return 0;
}
