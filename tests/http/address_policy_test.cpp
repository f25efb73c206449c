// Which addresses count as public (reelq/common/address_policy.h), the rule both the webhook
// guard and the worker's download guard apply: every special-purpose range refused with a reason
// that names it, an IPv6 address that carries an IPv4 one judged by that IPv4 address, and the
// public neighbours of each range still public.
#include "reelq/common/address_policy.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace reelq::net {
namespace {

std::optional<std::string> Refusal(const char* text) {
  return NonPublicAddress(asio::ip::make_address(text));
}

TEST(AddressPolicy, RefusesEverySpecialPurposeRangeNamingIt) {
  const std::vector<std::pair<const char*, const char*>> cases = {
      // IPv4, the ranges refused from the start.
      {"127.0.0.1", "a loopback address"},
      {"10.1.2.3", "a private address"},
      {"172.31.0.1", "a private address"},
      {"192.168.0.1", "a private address"},
      {"169.254.1.1", "a link-local address"},
      {"169.254.169.254", "a cloud metadata address"},
      {"0.0.0.0", "an unspecified address"},
      {"0.1.2.3", "an unspecified address"},
      // IPv4, the special-purpose ranges that used to pass as public.
      {"100.64.0.1", "a carrier-grade NAT address (100.64/10)"},
      {"100.127.255.255", "a carrier-grade NAT address (100.64/10)"},
      {"100.100.100.200", "a cloud metadata address"},  // Alibaba Cloud
      {"192.0.0.192", "a cloud metadata address"},      // Oracle Cloud
      {"192.0.0.8", "an IETF protocol address (192.0.0/24)"},
      {"198.18.0.1", "a benchmarking address (198.18/15)"},
      {"198.19.255.255", "a benchmarking address (198.18/15)"},
      {"224.0.0.1", "a multicast address"},
      {"239.255.255.250", "a multicast address"},
      {"240.0.0.1", "a reserved address (240/4)"},
      {"255.255.255.254", "a reserved address (240/4)"},
      {"255.255.255.255", "the broadcast address"},
      // IPv6.
      {"::1", "a loopback address"},
      {"::", "an unspecified address"},
      {"fd12::1", "a private address"},
      {"fe80::1", "a link-local address"},
      {"fd00:ec2::254", "a cloud metadata address"},
      {"ff02::1", "a multicast address"},
      {"ff0e::1", "a multicast address"},
      {"2001:0:4136:e378:8000:63bf:3fff:fdd2", "a Teredo address (2001::/32)"},
      {"64:ff9b:1::a00:1", "a local-use NAT64 address (64:ff9b:1::/48)"},
      // IPv6 carrying an IPv4 address: judged by it.
      {"::ffff:100.100.100.200", "a cloud metadata address"},
      {"::ffff:10.0.0.1", "a private address"},
      {"::10.0.0.1", "a private address (10.0.0.1 inside an IPv4-compatible address)"},
      {"::127.0.0.2", "a loopback address (127.0.0.2 inside an IPv4-compatible address)"},
      {"64:ff9b::169.254.169.254",
       "a cloud metadata address (169.254.169.254 inside a NAT64 address)"},
      {"64:ff9b::100.64.0.1",
       "a carrier-grade NAT address (100.64/10) (100.64.0.1 inside a NAT64 address)"},
      {"2002:a9fe:a9fe::1", "a cloud metadata address (169.254.169.254 inside a 6to4 address)"},
      {"2002:c0a8:101:5::9", "a private address (192.168.1.1 inside a 6to4 address)"},
      {"2002:7f00:1::", "a loopback address (127.0.0.1 inside a 6to4 address)"},
  };
  for (const auto& [address, reason] : cases) {
    auto refusal = Refusal(address);
    EXPECT_EQ(refusal.value_or("(passed as public)"), reason) << address;
  }
}

TEST(AddressPolicy, PublicAddressesAndTheRangesNeighboursStayPublic) {
  for (const char* address :
       {"8.8.8.8", "93.184.216.34", "1.1.1.1", "100.63.255.255", "100.128.0.0", "172.32.0.1",
        "192.0.1.1", "198.17.255.255", "198.20.0.0", "223.255.255.255", "2606:4700::1111",
        "2001:4860:4860::8888", "2a00:1450::1", "::ffff:8.8.8.8",
        // IPv6 carrying a public IPv4 address: as public as it is.
        "::8.8.8.8", "64:ff9b::8.8.8.8", "2002:808:808::1"}) {
    auto refusal = Refusal(address);
    EXPECT_FALSE(refusal) << address << ": " << refusal.value_or("");
  }
}

}  // namespace
}  // namespace reelq::net
