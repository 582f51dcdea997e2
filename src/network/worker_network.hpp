#pragma once

#include "config/config.hpp"
#include "network/address_watch.hpp"
#include "network/cidr.hpp"
#include "process/launcher.hpp"

#include <sys/types.h>

#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

// The network every worker lives in (docs/security.md, "Network").
//
// isolated: one network namespace shared by all workers, made at start-up by a small holder
// process (`unshare --user --map-root-user --net`). `pasta` (from passt) gives it user-mode
// connectivity: a worker's connection leaves through an ordinary socket of the host, opened by
// pasta, with no port forwarded in either direction and no mapping of the gateway to the host's
// loopback. An nftables table in that namespace rejects the host's own addresses, loopback
// (the namespace's own, so workers cannot talk to each other), link-local ranges and
// WORKER_NETWORK_DENY, except WORKER_NETWORK_ALLOW. A worker joins the namespace before bubblewrap
// starts, and bubblewrap puts it in a user namespace of its own without capabilities, so it cannot
// change the rules. Ports of the host's loopback named in WORKER_NETWORK_ALLOW are forwarded by
// pasta (-T, -U); DNS reaches the service's resolver, wherever it listens, through pasta's DNS
// forwarding (network/resolver.hpp). The host's addresses are watched: one added later is denied
// as soon as the kernel reports it.
//
// none: the same holder, without pasta: the namespace has only a loopback that is down.
//
// host: workers share the service's network (what a service without this layer does).
namespace customcode::network {

// Loopback and link-local ranges, denied by default.
std::vector<Cidr> defaultDenied();

// Every address of the host's interfaces (as /32 or /128).
std::vector<Cidr> hostAddresses();

// The nftables rule set loaded into the workers' namespace: the allowed ports of the host's
// loopback (which pasta forwards) first, then anything else over the namespace's loopback
// rejected, then DNS to the `dnsForward` addresses, the other allowed destinations, and `deny`
// rejected. Ranges inside another of the same list are dropped.
std::string isolationRuleset(const std::vector<Cidr>& deny, const std::vector<AllowedDestination>& allow,
                             const std::vector<Cidr>& dnsForward);

class WorkerNetwork {
 public:
  using Mode = config::WorkerNetworkConfig::Mode;

  explicit WorkerNetwork(config::WorkerNetworkConfig config);
  ~WorkerNetwork();
  WorkerNetwork(const WorkerNetwork&) = delete;
  WorkerNetwork& operator=(const WorkerNetwork&) = delete;

  // Sets the mode up. `sandboxedProbe` is a command (e.g. /bin/true) wrapped in the worker
  // sandbox, or nullopt when workers cannot be trusted in the namespace (`whyNoProbe` says why):
  // a worker with capabilities over the namespace could leave or rewrite it, so isolated and none
  // need the sandbox. Files (the rule set, pasta's log) go to `runtimeDir`. Returns the problems
  // that stop start-up (an explicit WORKER_NETWORK=isolated or none that cannot be had);
  // warnings() says what is weaker than asked.
  std::vector<std::string> prepare(std::optional<process::LaunchSpec> sandboxedProbe,
                                   const std::filesystem::path& runtimeDir,
                                   std::string whyNoProbe = "workers are not sandboxed (see SANDBOX), so they "
                                                            "could leave any namespace");

  // Makes `spec` start in the workers' namespace (nothing in host mode).
  void join(process::LaunchSpec& spec) const;
  // The resolv.conf workers must see as /etc/resolv.conf (a 0644 file in a 0755 directory of its
  // own), or an empty path: they read the host's.
  const std::filesystem::path& resolvConf() const { return resolvConf_; }

  Mode mode() const { return mode_; }
  static const char* modeName(Mode mode);
  std::string describe() const;
  const std::vector<std::string>& warnings() const { return warnings_; }

 private:
  // Empty on success, else why it failed.
  std::string startHolder(std::optional<uid_t> workerUid, std::optional<gid_t> workerGid);
  std::string writeResolvConf();
  std::string startPasta(const std::filesystem::path& runtimeDir);
  // Loads (or atomically replaces) the rule set, denying `hostAddresses` with the rest.
  std::string loadRules(const std::vector<Cidr>& hostAddresses);
  // On the watch's thread: the host's addresses changed.
  void refreshHostAddresses();
  std::string probe(process::LaunchSpec spec) const;
  void stop();

  config::WorkerNetworkConfig config_;
  Mode mode_ = Mode::Host;
  std::filesystem::path runtimeDir_;
  std::filesystem::path resolvDir_;  // holds resolvConf_, removed by stop()
  std::filesystem::path resolvConf_;
  std::vector<Cidr> dnsForward_;  // the forward addresses in use (IPv4, IPv6)
  mutable std::mutex rulesMutex_;  // guards denied_ and hostAddresses_
  std::mutex reloadMutex_;         // one reload at a time (start-up and the watch's thread)
  std::vector<Cidr> denied_;      // what the loaded rules deny, host addresses included
  std::vector<Cidr> hostAddresses_;
  AddressWatch watch_;
  pid_t holder_ = -1;
  pid_t pasta_ = -1;
  std::thread pastaOutput_;  // logs what pasta writes to stdout/stderr after start-up
  int userNs_ = -1;
  int netNs_ = -1;
  bool joinUserNs_ = false;  // workers join the holder's user namespace before its network namespace
  std::vector<std::string> warnings_;
};

}  // namespace customcode::network
