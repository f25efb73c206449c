#pragma once

#include <string>
#include <string_view>

#include "reelq/common/error.h"

namespace reelq::queue {

// A ListJobs position: the score and id of the last index entry a page looked at.
struct ListCursor {
  std::string score;  // as Redis wrote it (a number)
  std::string id;
};

// The position as the page token clients get: sealed (AES-256-GCM) under the deployment's list
// key, base64url. A page filtered by tenant over a shared index (a state, a model) stops at the
// last entry it looked at, which may be another tenant's job: sealed, its id and time stay
// unreadable. `listing` (the filter) is bound in as associated data, so a token is good only for
// the listing that gave it out.
std::string SealListCursor(const ListCursor& cursor, std::string_view key,
                           std::string_view listing);
// kInvalidRequest naming page_token when `token` is not one SealListCursor made under `key` for
// `listing`.
Result<ListCursor> OpenListCursor(std::string_view token, std::string_view key,
                                  std::string_view listing);

// The key's length in bytes (AES-256).
inline constexpr size_t kListKeyBytes = 32;

}  // namespace reelq::queue
