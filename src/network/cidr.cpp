#include "network/cidr.hpp"

#include "common/text.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>
#include <tuple>
#include <utility>

namespace customcode::network {

std::string Cidr::text() const {
  char buffer[INET6_ADDRSTRLEN] = {};
  ::inet_ntop(ipv6 ? AF_INET6 : AF_INET, bytes.data(), buffer, sizeof buffer);
  return std::string(buffer) + "/" + std::to_string(prefix);
}

bool Cidr::contains(const Cidr& other) const {
  if (ipv6 != other.ipv6 || other.prefix < prefix) return false;
  for (int bit = 0; bit < prefix; ++bit) {
    auto mask = static_cast<std::uint8_t>(0x80u >> (bit % 8));
    if ((bytes[bit / 8] & mask) != (other.bytes[bit / 8] & mask)) return false;
  }
  return true;
}

std::optional<Cidr> parseCidr(std::string_view text) {
  text = text::trim(text);
  auto slash = text.find('/');
  std::string address(text.substr(0, slash));
  Cidr cidr;
  if (::inet_pton(AF_INET, address.c_str(), cidr.bytes.data()) == 1) cidr.ipv6 = false;
  else if (::inet_pton(AF_INET6, address.c_str(), cidr.bytes.data()) == 1) cidr.ipv6 = true;
  else return std::nullopt;
  const int maxPrefix = cidr.ipv6 ? 128 : 32;
  cidr.prefix = maxPrefix;
  if (slash != std::string_view::npos) {
    auto digits = text.substr(slash + 1);
    auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), cidr.prefix);
    if (digits.empty() || ec != std::errc{} || ptr != digits.data() + digits.size() || cidr.prefix < 0 ||
        cidr.prefix > maxPrefix)
      return std::nullopt;
  }
  for (int bit = cidr.prefix; bit < maxPrefix; ++bit)
    cidr.bytes[bit / 8] &= static_cast<std::uint8_t>(~(0x80u >> (bit % 8)));
  return cidr;
}

std::vector<Cidr> parseCidrList(std::string_view text, std::string& error) {
  std::vector<Cidr> out;
  for (const auto& item : text::splitList(text)) {
    auto cidr = parseCidr(item);
    if (!cidr) {
      error = "\"" + item + "\" is not an IPv4 or IPv6 address or CIDR range (e.g. 10.0.0.0/8, fd00::/8)";
      return {};
    }
    out.push_back(*cidr);
  }
  return out;
}

namespace {

const Cidr kLoopback4 = *parseCidr("127.0.0.0/8");
const Cidr kLoopback6 = *parseCidr("::1/128");

// "5432" or "8125-8126"; nullopt unless 1 <= first <= last <= 65535.
std::optional<std::pair<std::uint16_t, std::uint16_t>> parsePorts(std::string_view text) {
  auto number = [](std::string_view digits) -> std::optional<std::uint16_t> {
    unsigned value = 0;
    auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (digits.empty() || ec != std::errc{} || ptr != digits.data() + digits.size() || value < 1 || value > 65535)
      return std::nullopt;
    return static_cast<std::uint16_t>(value);
  };
  auto dash = text.find('-');
  auto first = number(text.substr(0, dash));
  auto last = dash == std::string_view::npos ? first : number(text.substr(dash + 1));
  if (!first || !last || *last < *first) return std::nullopt;
  return std::make_pair(*first, *last);
}

}  // namespace

bool AllowedDestination::loopback() const { return kLoopback4.contains(cidr) || kLoopback6.contains(cidr); }

std::string AllowedDestination::text() const {
  if (everyPort()) return cidr.text();
  std::string ports = std::to_string(firstPort);
  if (lastPort != firstPort) ports += "-" + std::to_string(lastPort);
  return (cidr.ipv6 ? "[" + cidr.text() + "]" : cidr.text()) + ":" + ports;
}

std::optional<AllowedDestination> parseAllowed(std::string_view text, std::string& why) {
  text = text::trim(text);
  std::string_view range = text;
  std::string_view ports;
  bool portsGiven = false;
  if (text.starts_with('[')) {
    auto close = text.find(']');
    if (close == std::string_view::npos) {
      why = "has no closing bracket";
      return std::nullopt;
    }
    range = text.substr(1, close - 1);
    auto rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (!rest.starts_with(':')) {
        why = "must be [IPv6 range]:PORT";
        return std::nullopt;
      }
      ports = rest.substr(1);
      portsGiven = true;
    }
  } else if (auto colon = text.find(':'); colon != std::string_view::npos && text.find(':', colon + 1) == std::string_view::npos) {
    // One colon: IPv4 with a port (an IPv6 address has at least two).
    range = text.substr(0, colon);
    ports = text.substr(colon + 1);
    portsGiven = true;
  }
  auto cidr = parseCidr(range);
  if (!cidr) {
    why = "is not an IPv4 or IPv6 address or CIDR range with an optional port (e.g. 10.0.0.0/8, 127.0.0.1:5432, "
          "[::1]:8125)";
    return std::nullopt;
  }
  AllowedDestination out{.cidr = *cidr};
  if (portsGiven) {
    auto parsed = parsePorts(ports);
    if (!parsed) {
      why = "has a bad port: use PORT or FIRST-LAST, from 1 to 65535";
      return std::nullopt;
    }
    std::tie(out.firstPort, out.lastPort) = *parsed;
  }
  // Inside loopback: only what pasta can forward, port by port. A larger range (0.0.0.0/0) keeps
  // loopback closed.
  if (kLoopback4.contains(out.cidr) || kLoopback6.contains(out.cidr)) {
    const bool exact = out.cidr.prefix == (out.cidr.ipv6 ? 128 : 32) &&
                       (out.cidr.ipv6 || (out.cidr.bytes[0] == 127 && out.cidr.bytes[1] == 0 &&
                                          out.cidr.bytes[2] == 0 && out.cidr.bytes[3] == 1));
    if (!exact || out.everyPort()) {
      why = "opens the host's loopback: only ports of 127.0.0.1 and ::1 can be opened there "
            "(127.0.0.1:PORT, [::1]:PORT, or a FIRST-LAST range)";
      return std::nullopt;
    }
  }
  return out;
}

std::vector<AllowedDestination> parseAllowList(std::string_view text, std::string& error) {
  std::vector<AllowedDestination> out;
  for (const auto& item : text::splitList(text)) {
    std::string why;
    auto allowed = parseAllowed(item, why);
    if (!allowed) {
      error = "\"" + item + "\" " + why;
      return {};
    }
    out.push_back(*allowed);
  }
  return out;
}

}  // namespace customcode::network
