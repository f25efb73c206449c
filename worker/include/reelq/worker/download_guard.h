#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "reelq/common/address_policy.h"

namespace reelq::worker {

// Where a worker's HTTP requests may connect. The provider APIs and the object store are where the
// operator's config puts them. A clip's result URL, and every redirect, comes from a provider's
// answer instead, so it may reach only public addresses, the configured hosts, or what
// `worker.download_allow_hosts` lists: a broken or hostile answer cannot make the worker fetch from
// the machine's own services (a cloud metadata endpoint, an admin port on the private network) and
// store what it got as a tenant's clip. Checked at each connection, on the addresses the host
// resolves to (DNS rebinding).
class DownloadGuard {
 public:
  // `configured_hosts`: the hosts of the accounts' base URLs and the store's endpoint.
  DownloadGuard(net::AddressAllowList allowed, std::vector<std::string> configured_hosts);

  // Why a connection to `host` at `address` is refused, naming the setting that allows it.
  std::optional<std::string> Refusal(std::string_view host, const asio::ip::address& address) const;

 private:
  net::AddressAllowList allowed_;
};

}  // namespace reelq::worker
