#pragma once

#include <string>
#include <string_view>

#include "reelq/common/error.h"

namespace reelq::queue {

// A ListJobs position: the score and id of the last index entry a page looked at. Sent to
// clients as an opaque page token (base64url of "<score> <id>").
struct ListCursor {
  std::string score;  // as Redis wrote it (a number)
  std::string id;
};

std::string EncodeListCursor(const ListCursor& cursor);
// kInvalidRequest naming page_token when `token` is not one EncodeListCursor made.
Result<ListCursor> DecodeListCursor(std::string_view token);

}  // namespace reelq::queue
