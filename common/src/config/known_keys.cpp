#include "reelq/common/known_keys.h"

#include <algorithm>

namespace reelq {

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::optional<std::string> FindUnknownKey(const std::vector<std::string>& keys,
                                          std::string_view where,
                                          const std::set<std::string>& known,
                                          std::string_view noun) {
  for (const auto& key : keys) {
    if (known.contains(key)) continue;
    std::string nearest;
    size_t best = std::string::npos;
    for (const auto& k : known) {
      const size_t d = EditDistance(key, k);
      if (d < best) best = d, nearest = k;
    }
    std::string message =
        (where.empty() ? "" : std::string(where) + ".") + key + ": unknown " + std::string(noun);
    // Only a near miss is worth suggesting; otherwise list what is allowed.
    if (!nearest.empty() && best <= std::max<size_t>(2, key.size() / 3)) {
      message += "; did you mean " + nearest + "?";
    } else {
      message += " (known:";
      for (const auto& k : known) message += " " + k;
      message += ")";
    }
    return message;
  }
  return std::nullopt;
}

}  // namespace reelq
