#pragma once

// Which network addresses an outbound request made on someone else's say-so may reach. A webhook
// URL comes from a tenant, a clip's result URL from a provider's answer: neither may steer a
// request at the machine's own services or the private network it runs in (SSRF), unless the
// operator allows that host or range.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "reelq/common/asio.h"
#include "reelq/common/error.h"

namespace reelq::net {

struct AddressRange {
  asio::ip::address network;
  int prefix = 0;
  bool Contains(const asio::ip::address& address) const;
};

// "10.20.0.0/16", "fd00::/8" or a single address; kInvalidRequest naming the text otherwise.
Result<AddressRange> ParseAddressRange(std::string_view text);

// Why `address` is not a public one: loopback, private (10/8, 172.16/12, 192.168/16, fc00::/7),
// link-local (169.254/16, fe80::/10), a cloud metadata address (169.254.169.254,
// 100.100.100.200, 192.0.0.192, fd00:ec2::254), unspecified (0/8, ::), carrier-grade NAT
// (100.64/10), the IETF block (192.0.0/24), benchmarking (198.18/15), multicast (224/4,
// ff00::/8), reserved (240/4, 255.255.255.255), Teredo (2001::/32) or local-use NAT64
// (64:ff9b:1::/48). An IPv6 address that embeds an IPv4 one (IPv4-mapped ::ffff:0:0/96,
// IPv4-compatible ::/96, NAT64 64:ff9b::/96, 6to4 2002::/16) is judged by that IPv4 address.
// nullopt when public.
std::optional<std::string> NonPublicAddress(const asio::ip::address& address);

// What the operator allows besides public addresses: host names (matched without case) and
// address ranges. Entries are parsed as ranges first.
struct AddressAllowList {
  std::vector<std::string> hosts;  // lower-case
  std::vector<AddressRange> ranges;

  // `entries` as written in a config list named `field`; kInvalidRequest naming the field and
  // the entry for an empty one or one with a scheme, path or port.
  static Result<AddressAllowList> Parse(const std::vector<std::string>& entries,
                                        std::string_view field);
  bool AllowsHost(std::string_view host) const;
  bool AllowsAddress(const asio::ip::address& address) const;
};

}  // namespace reelq::net
