#pragma once

#include "config/config.hpp"
#include "network/cidr.hpp"
#include "pool/launcher.hpp"

#include <sys/types.h>

#include <filesystem>
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
// change the rules.
//
// none: the same holder, without pasta: the namespace has only a loopback that is down.
//
// host: workers share the service's network (what a service without this layer does).
namespace customcode::network {

// Loopback and link-local ranges, denied by default.
std::vector<Cidr> defaultDenied();

// Every address of the host's interfaces (as /32 or /128).
std::vector<Cidr> hostAddresses();

// The nftables rule set loaded into the workers' namespace: `allow` first, then the loopback
// interface and `deny` rejected. Ranges inside another of the same list are dropped.
std::string isolationRuleset(const std::vector<Cidr>& deny, const std::vector<Cidr>& allow);

class WorkerNetwork {
 public:
  using Mode = config::WorkerNetworkConfig::Mode;

  explicit WorkerNetwork(config::WorkerNetworkConfig config);
  ~WorkerNetwork();
  WorkerNetwork(const WorkerNetwork&) = delete;
  WorkerNetwork& operator=(const WorkerNetwork&) = delete;

  // Sets the mode up. `sandboxedProbe` is a command (e.g. /bin/true) wrapped in the worker
  // sandbox, or nullopt when workers are not sandboxed: a worker without its own user namespace
  // and capabilities could leave or rewrite the namespace, so isolated and none need the sandbox.
  // Files (the rule set, pasta's log) go to `runtimeDir`. Returns the problems that stop start-up
  // (an explicit WORKER_NETWORK=isolated or none that cannot be had); warnings() says what is
  // weaker than asked.
  std::vector<std::string> prepare(std::optional<pool::LaunchSpec> sandboxedProbe,
                                   const std::filesystem::path& runtimeDir);

  // Makes `spec` start in the workers' namespace (nothing in host mode).
  void join(pool::LaunchSpec& spec) const;

  Mode mode() const { return mode_; }
  static const char* modeName(Mode mode);
  std::string describe() const;
  const std::vector<std::string>& warnings() const { return warnings_; }

 private:
  // Empty on success, else why it failed.
  std::string startHolder(std::optional<uid_t> workerUid, std::optional<gid_t> workerGid);
  std::string startPasta(const std::filesystem::path& runtimeDir);
  std::string loadRules(const std::filesystem::path& runtimeDir);
  std::string probe(pool::LaunchSpec spec) const;
  void stop();

  config::WorkerNetworkConfig config_;
  Mode mode_ = Mode::Host;
  std::vector<Cidr> denied_;
  pid_t holder_ = -1;
  pid_t pasta_ = -1;
  std::thread pastaOutput_;  // logs what pasta writes to stdout/stderr after start-up
  int userNs_ = -1;
  int netNs_ = -1;
  bool joinUserNs_ = false;  // workers join the holder's user namespace before its network namespace
  std::vector<std::string> warnings_;
};

}  // namespace customcode::network
