#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// IPv4 and IPv6 address ranges as operators write them in WORKER_NETWORK_DENY and
// WORKER_NETWORK_ALLOW: "10.0.0.0/8", "fd00::/8", or a single address ("10.1.2.3", "::1").
namespace customcode::network {

struct Cidr {
  bool ipv6 = false;
  std::array<std::uint8_t, 16> bytes{};  // the first 4 for IPv4; bits past the prefix are zero
  int prefix = 0;

  // Canonical text, e.g. "10.0.0.0/8" or "fe80::/10".
  std::string text() const;
  bool contains(const Cidr& other) const;
  friend bool operator==(const Cidr&, const Cidr&) = default;
};

// Parses one range; bits past the prefix are cleared ("10.1.2.3/8" is 10.0.0.0/8). Nullopt when
// it is not an IPv4 or IPv6 address with an optional prefix length in range.
std::optional<Cidr> parseCidr(std::string_view text);

// A comma-separated list (blanks around items ignored, empty items skipped). On a bad item,
// `error` names it and the result is empty.
std::vector<Cidr> parseCidrList(std::string_view text, std::string& error);

}  // namespace customcode::network
