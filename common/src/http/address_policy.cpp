#include "reelq/common/address_policy.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <string_view>

namespace reelq::net {
namespace {

bool InV4(const asio::ip::address_v4& a, uint32_t network, int prefix) {
  const uint32_t mask = prefix == 0 ? 0 : ~uint32_t{0} << (32 - prefix);
  return (a.to_uint() & mask) == (network & mask);
}

bool InV6(const asio::ip::address_v6& a, const asio::ip::address_v6& network, int prefix) {
  const auto x = a.to_bytes();
  const auto y = network.to_bytes();
  for (int bit = 0; bit < prefix; ++bit) {
    const int byte = bit / 8, shift = 7 - bit % 8;
    if (((x[byte] >> shift) & 1) != ((y[byte] >> shift) & 1)) return false;
  }
  return true;
}

std::optional<std::string> NonPublicV4(const asio::ip::address_v4& a) {
  // Metadata services first: the most specific reason, inside ranges refused below anyway
  // (AWS, GCP and Azure at 169.254.169.254, Alibaba Cloud in CGNAT space, Oracle Cloud in the
  // IETF block).
  if (a == asio::ip::make_address_v4("169.254.169.254") ||
      a == asio::ip::make_address_v4("100.100.100.200") ||
      a == asio::ip::make_address_v4("192.0.0.192")) {
    return "a cloud metadata address";
  }
  if (InV4(a, 0x7F000000, 8)) return "a loopback address";
  if (InV4(a, 0x00000000, 8)) return "an unspecified address";
  if (InV4(a, 0x0A000000, 8) || InV4(a, 0xAC100000, 12) || InV4(a, 0xC0A80000, 16)) {
    return "a private address";
  }
  if (InV4(a, 0xA9FE0000, 16)) return "a link-local address";
  if (InV4(a, 0x64400000, 10)) return "a carrier-grade NAT address (100.64/10)";
  if (InV4(a, 0xC0000000, 24)) return "an IETF protocol address (192.0.0/24)";
  if (InV4(a, 0xC6120000, 15)) return "a benchmarking address (198.18/15)";
  if (InV4(a, 0xE0000000, 4)) return "a multicast address";
  if (a == asio::ip::address_v4::broadcast()) return "the broadcast address";
  if (InV4(a, 0xF0000000, 4)) return "a reserved address (240/4)";
  return std::nullopt;
}

asio::ip::address_v4 V4At(const asio::ip::address_v6& a, int first_byte) {
  const auto b = a.to_bytes();
  return asio::ip::address_v4(asio::ip::address_v4::bytes_type{
      b[first_byte], b[first_byte + 1], b[first_byte + 2], b[first_byte + 3]});
}

// An IPv6 address that carries an IPv4 one reaches that IPv4 host (through the kernel, a NAT64
// gateway or a 6to4 relay): it is refused for what the IPv4 address is.
std::optional<std::string> NonPublicEmbedded(const asio::ip::address_v4& v4,
                                             std::string_view kind) {
  auto reason = NonPublicV4(v4);
  if (!reason) return std::nullopt;
  return *reason + " (" + v4.to_string() + " inside " + std::string(kind) + ")";
}

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

}  // namespace

bool AddressRange::Contains(const asio::ip::address& address) const {
  if (network.is_v4() && address.is_v4()) {
    return InV4(address.to_v4(), network.to_v4().to_uint(), prefix);
  }
  if (network.is_v6() && address.is_v6()) return InV6(address.to_v6(), network.to_v6(), prefix);
  return false;
}

Result<AddressRange> ParseAddressRange(std::string_view text) {
  const auto slash = text.find('/');
  boost::system::error_code ec;
  AddressRange range;
  range.network = asio::ip::make_address(std::string(text.substr(0, slash)), ec);
  if (ec) {
    return std::unexpected(Error{ErrorCategory::kInvalidRequest,
                                 "not an address or CIDR range: '" + std::string(text) + "'"});
  }
  const int bits = range.network.is_v4() ? 32 : 128;
  range.prefix = bits;
  if (slash != std::string_view::npos) {
    const auto p = text.substr(slash + 1);
    int prefix = -1;
    auto [end, err] = std::from_chars(p.data(), p.data() + p.size(), prefix);
    if (err != std::errc() || end != p.data() + p.size() || prefix < 0 || prefix > bits) {
      return std::unexpected(Error{ErrorCategory::kInvalidRequest,
                                   "bad prefix length in '" + std::string(text) + "'"});
    }
    range.prefix = prefix;
  }
  return range;
}

std::optional<std::string> NonPublicAddress(const asio::ip::address& address) {
  if (address.is_v4()) return NonPublicV4(address.to_v4());
  const auto v6 = address.to_v6();
  // The kernel connects to an IPv4-mapped address over IPv4: it is that address, plainly.
  if (v6.is_v4_mapped()) return NonPublicV4(asio::ip::make_address_v4(asio::ip::v4_mapped, v6));
  if (v6 == asio::ip::make_address_v6("fd00:ec2::254")) return "a cloud metadata address";
  if (v6.is_loopback()) return "a loopback address";
  if (v6.is_unspecified()) return "an unspecified address";
  if (InV6(v6, asio::ip::make_address_v6("fc00::"), 7)) return "a private address";
  if (InV6(v6, asio::ip::make_address_v6("fe80::"), 10)) return "a link-local address";
  if (InV6(v6, asio::ip::make_address_v6("ff00::"), 8)) return "a multicast address";
  // Teredo tunnels through a relay to an obfuscated IPv4 client: nothing to check it against.
  if (InV6(v6, asio::ip::make_address_v6("2001::"), 32)) return "a Teredo address (2001::/32)";
  // A local-use NAT64 prefix may embed its IPv4 address at any of RFC 6052's positions.
  if (InV6(v6, asio::ip::make_address_v6("64:ff9b:1::"), 48)) {
    return "a local-use NAT64 address (64:ff9b:1::/48)";
  }
  if (InV6(v6, asio::ip::make_address_v6("64:ff9b::"), 96)) {
    return NonPublicEmbedded(V4At(v6, 12), "a NAT64 address");
  }
  if (InV6(v6, asio::ip::make_address_v6("2002::"), 16)) {
    return NonPublicEmbedded(V4At(v6, 2), "a 6to4 address");
  }
  if (InV6(v6, asio::ip::make_address_v6("::"), 96)) {
    return NonPublicEmbedded(V4At(v6, 12), "an IPv4-compatible address");
  }
  return std::nullopt;
}

Result<AddressAllowList> AddressAllowList::Parse(const std::vector<std::string>& entries,
                                                 std::string_view field) {
  AddressAllowList out;
  for (const auto& entry : entries) {
    const bool looks_like_range =
        !entry.empty() && (std::isdigit(static_cast<unsigned char>(entry[0])) ||
                           entry.find(':') != std::string::npos);
    if (looks_like_range) {
      if (auto range = ParseAddressRange(entry)) {
        out.ranges.push_back(*range);
        continue;
      }
    }
    const bool bad =
        entry.empty() || entry.find_first_of("/:@ ?#") != std::string::npos ||
        std::any_of(entry.begin(), entry.end(), [](unsigned char c) { return c < 0x21; });
    if (bad) {
      return std::unexpected(
          Error{ErrorCategory::kInvalidRequest,
                std::string(field) + ": '" + entry +
                    "' is neither a host name nor an address range (write hooks.internal or "
                    "10.20.0.0/16: no scheme, port or path)"});
    }
    out.hosts.push_back(Lower(entry));
  }
  return out;
}

bool AddressAllowList::AllowsHost(std::string_view host) const {
  return std::find(hosts.begin(), hosts.end(), Lower(host)) != hosts.end();
}

bool AddressAllowList::AllowsAddress(const asio::ip::address& address) const {
  for (const auto& range : ranges) {
    if (range.Contains(address)) return true;
  }
  if (address.is_v6() && address.to_v6().is_v4_mapped()) {
    const asio::ip::address v4 = asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6());
    for (const auto& range : ranges) {
      if (range.Contains(v4)) return true;
    }
  }
  return false;
}

}  // namespace reelq::net
