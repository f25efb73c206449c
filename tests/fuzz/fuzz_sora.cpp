// libFuzzer target: every Sora response parser and the error table, on arbitrary bytes; and the
// check of a download's first bytes that all four adapters share (wire::NotAVideo).
#include "fuzz_common.h"
#include "sora/sora_wire.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace reelq::providers;
  auto in = reelq::fuzz::Split(data, size);
  (void)sora::ParseCreateResponse(in.status, in.body, in.header, reelq::fuzz::kNowMs);
  (void)sora::ParsePollResponse(in.status, in.body, in.header, in.header, reelq::fuzz::kNowMs);
  (void)sora::ClassifyError(wire::Op::kPoll, in.status, in.body, in.header, reelq::fuzz::kNowMs);
  (void)wire::NotAVideo(in.body.substr(0, wire::kClipSniffBytes));
  return 0;
}
