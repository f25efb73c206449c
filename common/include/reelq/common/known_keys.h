#pragma once

#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace reelq {

// The one rule of every strict configuration reader (the service config, the model catalogue,
// the provider simulator's config): a key that is not known is refused, naming it and the known
// key it most likely meant, so that a misspelt setting never silently falls back to its
// default. Returns nullopt when every key of `keys` is in `known`; otherwise the message for the
// first one that is not:
//   "<where>.<key>: unknown key; did you mean <nearest>?"   (a near miss)
//   "<where>.<key>: unknown key (known: a b c)"             (nothing close)
// `where` is the path of the mapping ("worker", "models[0] (kling-3.0)"); when empty the key
// stands alone. `noun` replaces "key" (the top level of a config file has sections).
std::optional<std::string> FindUnknownKey(const std::vector<std::string>& keys,
                                          std::string_view where,
                                          const std::set<std::string>& known,
                                          std::string_view noun = "key");

// Levenshtein distance between two strings (for the "did you mean" above).
size_t EditDistance(std::string_view a, std::string_view b);

}  // namespace reelq
