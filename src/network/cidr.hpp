#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// IPv4 and IPv6 address ranges as operators write them in WORKER_NETWORK_DENY and
// WORKER_NETWORK_ALLOW: "10.0.0.0/8", "fd00::/8", or a single address ("10.1.2.3", "::1");
// WORKER_NETWORK_ALLOW also takes ports: "127.0.0.1:5432", "10.0.0.0/8:443-445", "[::1]:8125".
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

// What one item of WORKER_NETWORK_ALLOW opens: a range, on every port or on a port range (TCP
// and UDP alike).
struct AllowedDestination {
  Cidr cidr;
  std::uint16_t firstPort = 0;  // 0: every port
  std::uint16_t lastPort = 0;

  bool everyPort() const { return firstPort == 0; }
  // On the host's loopback (127.0.0.1 or ::1): reached through a port pasta forwards.
  bool loopback() const;
  // As written back: "10.0.0.0/8", "127.0.0.1/32:5432", "[::1/128]:8125-8126".
  std::string text() const;
  friend bool operator==(const AllowedDestination&, const AllowedDestination&) = default;
};

// One item: CIDR (IPv6 in brackets when a port follows), then optionally ":PORT" or
// ":FIRST-LAST". The host's loopback can be opened only port by port, and only on 127.0.0.1 and
// ::1 (where pasta forwards to): "127.0.0.1:5432" yes, "127.0.0.1" or "127.0.0.0/8:80" no.
// Nullopt with `why` set when the item is not valid.
std::optional<AllowedDestination> parseAllowed(std::string_view text, std::string& why);

// A comma-separated list of such items; on a bad item `error` names it and the result is empty.
std::vector<AllowedDestination> parseAllowList(std::string_view text, std::string& error);

}  // namespace customcode::network
