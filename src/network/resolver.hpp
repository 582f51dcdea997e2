#pragma once

#include <string>
#include <string_view>

// Name resolution for workers in the isolated mode (docs/security.md, "Network"). The namespace
// cannot reach the host's loopback, where many hosts keep their resolver (systemd-resolved's
// 127.0.0.53, a local dnsmasq, a pod's node-local cache), so pasta forwards DNS: UDP to port 53 of
// a forward address in the namespace goes to the host's first resolver of that IP version, and
// nothing else of the host's loopback is reachable. Workers read a resolv.conf naming the forward
// addresses instead of the host's.
namespace customcode::network {

// Addresses inside the namespace that pasta maps to the host's first IPv4 and IPv6 resolvers
// (`--dns-forward`). The IPv4 one is link-local, so it never leaves the host; both are denied but
// for UDP port 53.
inline constexpr const char* kDnsForward4 = "169.254.53.53";
inline constexpr const char* kDnsForward6 = "fd00:ccdd::53";

struct WorkerResolver {
  std::string resolvConf;  // what workers read as /etc/resolv.conf
  bool forward4 = false;   // the service has an IPv4 resolver: forward kDnsForward4 to it
  bool forward6 = false;
};

// Made from the service's resolv.conf, `hostResolvConf`: its first IPv4 and first IPv6
// nameserver (those pasta forwards to) become the forward addresses, in their place; the other
// nameservers stay, except loopback ones (unreachable), up to the three glibc reads; `search`,
// `domain` and `options` lines are kept. Without a nameserver there is nothing to forward to.
WorkerResolver workerResolver(std::string_view hostResolvConf);

}  // namespace customcode::network
