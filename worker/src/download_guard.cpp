#include "reelq/worker/download_guard.h"

#include <cctype>
#include <utility>

namespace reelq::worker {

DownloadGuard::DownloadGuard(net::AddressAllowList allowed,
                             std::vector<std::string> configured_hosts)
    : allowed_(std::move(allowed)) {
  for (auto& host : configured_hosts) {
    if (!host.empty() && !allowed_.AllowsHost(host)) {
      for (auto& c : host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      allowed_.hosts.push_back(std::move(host));
    }
  }
}

std::optional<std::string> DownloadGuard::Refusal(std::string_view host,
                                                  const asio::ip::address& address) const {
  if (allowed_.AllowsHost(host) || allowed_.AllowsAddress(address)) return std::nullopt;
  auto reason = net::NonPublicAddress(address);
  if (!reason) return std::nullopt;
  return *reason +
         " (a host no provider account or store is configured at; list it in "
         "worker.download_allow_hosts if the provider really serves clips from there)";
}

}  // namespace reelq::worker
