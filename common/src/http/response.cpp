#include "reelq/common/http_client.h"

namespace reelq::http {

std::optional<std::string> Response::Header(std::string_view lower_name) const {
  for (const auto& [name, value] : headers) {
    if (name.size() != lower_name.size()) continue;
    bool same = true;
    for (size_t i = 0; i < name.size() && same; ++i) {
      same = std::tolower(static_cast<unsigned char>(name[i])) == lower_name[i];
    }
    if (same) return value;
  }
  return std::nullopt;
}

}  // namespace reelq::http
