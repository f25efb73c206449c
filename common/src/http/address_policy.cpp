#include "reelq/common/address_policy.h"

#include <algorithm>
#include <cctype>
#include <charconv>

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
  if (a == asio::ip::make_address_v4("169.254.169.254")) return "a cloud metadata address";
  if (InV4(a, 0x7F000000, 8)) return "a loopback address";
  if (InV4(a, 0x00000000, 8)) return "an unspecified address";
  if (InV4(a, 0x0A000000, 8) || InV4(a, 0xAC100000, 12) || InV4(a, 0xC0A80000, 16)) {
    return "a private address";
  }
  if (InV4(a, 0xA9FE0000, 16)) return "a link-local address";
  return std::nullopt;
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
  if (v6.is_v4_mapped()) return NonPublicV4(asio::ip::make_address_v4(asio::ip::v4_mapped, v6));
  if (v6 == asio::ip::make_address_v6("fd00:ec2::254")) return "a cloud metadata address";
  if (v6.is_loopback()) return "a loopback address";
  if (v6.is_unspecified()) return "an unspecified address";
  if (InV6(v6, asio::ip::make_address_v6("fc00::"), 7)) return "a private address";
  if (InV6(v6, asio::ip::make_address_v6("fe80::"), 10)) return "a link-local address";
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
