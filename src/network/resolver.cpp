#include "network/resolver.hpp"

#include "network/cidr.hpp"

#include <sstream>
#include <vector>

namespace customcode::network {
namespace {

constexpr std::size_t kMaxNameservers = 3;  // glibc's MAXNS: later lines are ignored

bool onLoopback(const Cidr& address) {
  static const Cidr loopback4 = *parseCidr("127.0.0.0/8");
  static const Cidr loopback6 = *parseCidr("::1");
  return loopback4.contains(address) || loopback6.contains(address);
}

}  // namespace

WorkerResolver workerResolver(std::string_view hostResolvConf) {
  WorkerResolver resolver;
  std::string& out = resolver.resolvConf;
  out = "# Made by customcode: DNS reaches the service's resolver through pasta's forwarding.\n";
  std::vector<std::string> nameservers;
  std::string rest;
  bool seen4 = false;
  bool seen6 = false;
  std::istringstream lines{std::string(hostResolvConf)};
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    std::string keyword, value;
    fields >> keyword >> value;
    if (keyword == "nameserver") {
      // pasta skips what inet_pton cannot read, a scope suffix (fe80::1%eth0) included, and so
      // do we: such a resolver is neither forwarded nor reachable from the namespace.
      if (value.find('/') != std::string::npos) continue;
      auto address = parseCidr(value);
      if (!address) continue;
      std::string server;
      if (!address->ipv6 && !seen4) {
        seen4 = true;
        server = kDnsForward4;
      } else if (address->ipv6 && !seen6) {
        seen6 = true;
        server = kDnsForward6;
      } else if (!onLoopback(*address)) {
        server = value;
      }
      if (!server.empty() && nameservers.size() < kMaxNameservers) nameservers.push_back(server);
    } else if (keyword == "search" || keyword == "domain" || keyword == "options") {
      rest += line + "\n";
    }
  }
  for (const auto& server : nameservers) out += "nameserver " + server + "\n";
  out += rest;
  resolver.forward4 = seen4;
  resolver.forward6 = seen6;
  return resolver;
}

}  // namespace customcode::network
