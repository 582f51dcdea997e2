#include "network/cidr.hpp"

#include "common/text.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

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

}  // namespace customcode::network
