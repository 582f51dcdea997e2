#include "network/worker_network.hpp"

#include "common/files.hpp"
#include "common/log.hpp"
#include "network/resolver.hpp"
#include "process/child.hpp"

#include <fcntl.h>
#include <ifaddrs.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

namespace customcode::network {
namespace fs = std::filesystem;
using namespace std::chrono_literals;
namespace {

// The holder only has to exist: its namespaces live as long as it does.
constexpr const char* kSleep = "/usr/bin/sleep";
constexpr auto kHolderStartTimeout = 2s;
constexpr auto kPastaStartTimeout = 5s;
constexpr auto kCommandTimeout = 10s;
constexpr const char* kRulesFile = "worker-network.nft";
constexpr const char* kPastaLog = "pasta.log";
constexpr const char* kHostResolvConf = "/etc/resolv.conf";

std::string readSome(int fd) {
  std::string out;
  if (fd < 0) return out;
  char buffer[4096];
  for (;;) {
    pollfd p{.fd = fd, .events = POLLIN, .revents = 0};
    if (::poll(&p, 1, 0) <= 0) break;
    auto n = ::read(fd, buffer, sizeof buffer);
    if (n <= 0) break;
    out.append(buffer, static_cast<std::size_t>(n));
    if (out.size() > 4096) break;
  }
  return out;
}

std::string shortened(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  for (auto& c : text)
    if (c == '\n') c = ' ';
  if (text.size() > 400) text = text.substr(text.size() - 400);
  return text.empty() ? "no output" : text;
}

std::string exitText(int status) {
  if (WIFEXITED(status)) return "exit status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  return "ended";
}

// Whether a child ended; reaps it and says how.
std::optional<int> ended(pid_t pid) {
  int status = 0;
  if (::waitpid(pid, &status, WNOHANG) == pid) return status;
  return std::nullopt;
}

std::string readFileText(const fs::path& path) { return files::readFile(path).value_or(std::string()); }

// A default route in the namespace of `pid` (IPv4 or IPv6): pasta has configured it.
bool hasDefaultRoute(pid_t pid) {
  auto base = fs::path("/proc") / std::to_string(pid) / "net";
  std::istringstream v4(readFileText(base / "route"));
  std::string line;
  std::getline(v4, line);  // header
  while (std::getline(v4, line)) {
    std::istringstream fields(line);
    std::string iface, destination;
    fields >> iface >> destination;
    if (iface != "lo" && destination == "00000000") return true;
  }
  std::istringstream v6(readFileText(base / "ipv6_route"));
  while (std::getline(v6, line)) {
    std::istringstream fields(line);
    std::string destination, prefix, rest, iface;
    fields >> destination >> prefix;
    for (int i = 0; i < 7 && fields >> rest; ++i) {
    }
    fields >> iface;
    if (iface != "lo" && !iface.empty() && destination == std::string(32, '0') && prefix == "00") return true;
  }
  return false;
}

void dropContained(std::vector<Cidr>& list) {
  std::vector<Cidr> kept;
  for (std::size_t i = 0; i < list.size(); ++i) {
    bool inside = false;
    for (std::size_t j = 0; j < list.size() && !inside; ++j) {
      if (i == j) continue;
      // Of two equal ranges, keep the first.
      inside = list[j].contains(list[i]) && (list[j] != list[i] || j < i);
    }
    if (!inside) kept.push_back(list[i]);
  }
  list = std::move(kept);
}

std::string setDefinition(const char* name, bool ipv6, const std::vector<Cidr>& all) {
  std::string out = std::string("  set ") + name + " {\n    type " + (ipv6 ? "ipv6_addr" : "ipv4_addr") +
                    "\n    flags interval\n";
  std::string elements;
  for (const auto& cidr : all) {
    if (cidr.ipv6 != ipv6) continue;
    if (!elements.empty()) elements += ", ";
    elements += cidr.text();
  }
  if (!elements.empty()) out += "    elements = { " + elements + " }\n";
  return out + "  }\n";
}

// Whether this process holds CAP_SYS_ADMIN: root on a host does, root in a container does not.
bool hasSysAdmin() {
  __user_cap_header_struct header{.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (::syscall(SYS_capget, &header, data) != 0) return false;
  return (data[CAP_TO_INDEX(CAP_SYS_ADMIN)].effective & CAP_TO_MASK(CAP_SYS_ADMIN)) != 0;
}

// Starts a helper that lives as long as the service (parent-death signal); only its output pipe
// is kept.
Result<process::ChildProcess> startHelper(std::vector<std::string> argv) {
  process::LaunchSpec spec;
  spec.argv = std::move(argv);
  spec.env = {"PATH=/usr/bin:/bin"};
  spec.cwd = "/";
  auto child = process::spawnProcess(spec);
  if (child) {
    ::close(child->requests);
    ::close(child->frames);
  }
  return child;
}

}  // namespace

std::vector<Cidr> defaultDenied() {
  std::vector<Cidr> out;
  for (const char* text : {"127.0.0.0/8", "::1/128", "169.254.0.0/16", "fe80::/10", "0.0.0.0/8", "::/128"})
    out.push_back(*parseCidr(text));
  return out;
}

std::vector<Cidr> hostAddresses() {
  std::vector<Cidr> out;
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return out;
  for (auto* entry = list; entry != nullptr; entry = entry->ifa_next) {
    if (entry->ifa_addr == nullptr) continue;
    Cidr cidr;
    if (entry->ifa_addr->sa_family == AF_INET) {
      const auto* in = reinterpret_cast<const sockaddr_in*>(entry->ifa_addr);
      std::memcpy(cidr.bytes.data(), &in->sin_addr, 4);
      cidr.prefix = 32;
    } else if (entry->ifa_addr->sa_family == AF_INET6) {
      const auto* in6 = reinterpret_cast<const sockaddr_in6*>(entry->ifa_addr);
      std::memcpy(cidr.bytes.data(), &in6->sin6_addr, 16);
      cidr.ipv6 = true;
      cidr.prefix = 128;
    } else {
      continue;
    }
    if (std::find(out.begin(), out.end(), cidr) == out.end()) out.push_back(cidr);
  }
  ::freeifaddrs(list);
  return out;
}

std::string isolationRuleset(const std::vector<Cidr>& deny, const std::vector<AllowedDestination>& allow,
                             const std::vector<Cidr>& dnsForward) {
  auto denied = deny;
  std::vector<Cidr> allowed;
  std::string loopbackPorts;  // rules for the host's loopback ports pasta forwards
  std::string otherPorts;     // rules for ports of other ranges
  for (const auto& destination : allow) {
    if (destination.everyPort()) {
      allowed.push_back(destination.cidr);
      continue;
    }
    const std::string family = destination.cidr.ipv6 ? "ip6" : "ip";
    const std::string address = destination.cidr.text();
    std::string ports = std::to_string(destination.firstPort);
    if (destination.lastPort != destination.firstPort) ports += "-" + std::to_string(destination.lastPort);
    if (destination.loopback()) {
      loopbackPorts += "    " + family + " daddr " + address + " meta l4proto { tcp, udp } th dport " + ports + " accept\n";
      // pasta's end of the forwarded connection answers from that port, over loopback too.
      loopbackPorts += "    " + family + " saddr " + address + " " + family + " daddr " + address +
                       " meta l4proto { tcp, udp } th sport " + ports + " accept\n";
    } else {
      otherPorts += "    " + family + " daddr " + address + " meta l4proto { tcp, udp } th dport " + ports + " accept\n";
    }
  }
  dropContained(denied);
  dropContained(allowed);
  std::string out = "table inet customcode_workers {\n";
  out += setDefinition("allow4", false, allowed);
  out += setDefinition("allow6", true, allowed);
  out += setDefinition("deny4", false, denied);
  out += setDefinition("deny6", true, denied);
  out +=
      "  chain output {\n"
      "    type filter hook output priority filter; policy accept;\n"
      // pasta answers neighbour discovery for the IPv6 gateway, a link-local address.
      "    icmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert } accept\n"
      // The answers `reject` sends to the worker's own socket pass through this chain too (over
      // the loopback interface): they must get through for a connect() to fail at once.
      "    icmp type destination-unreachable accept\n"
      "    icmpv6 type destination-unreachable accept\n"
      "    tcp flags & rst == rst accept\n";
  out += loopbackPorts;
  // The namespace's own addresses: one worker's server is not another's to reach. Before the
  // allowed ranges, so that no range (0.0.0.0/0) opens them.
  out += "    oifname \"lo\" jump refuse\n";
  for (const auto& forward : dnsForward)
    out += std::string("    ") + (forward.ipv6 ? "ip6" : "ip") + " daddr " + forward.text() + " udp dport 53 accept\n";
  out +=
      "    ip daddr @allow4 accept\n"
      "    ip6 daddr @allow6 accept\n";
  out += otherPorts;
  out +=
      "    ip daddr @deny4 jump refuse\n"
      "    ip6 daddr @deny6 jump refuse\n"
      "  }\n"
      // A TCP reset rather than an ICMP error: the kernel rate-limits ICMPv6 errors (a connect()
      // to ::1 would wait a second).
      "  chain refuse {\n"
      "    meta l4proto tcp reject with tcp reset\n"
      "    reject\n"
      "  }\n"
      "}\n";
  return out;
}

WorkerNetwork::WorkerNetwork(config::WorkerNetworkConfig config) : config_(std::move(config)) {}

WorkerNetwork::~WorkerNetwork() { stop(); }

const char* WorkerNetwork::modeName(Mode mode) {
  switch (mode) {
    case Mode::Isolated: return "isolated";
    case Mode::None: return "none";
    case Mode::Host: return "host";
  }
  return "host";
}

std::string WorkerNetwork::describe() const {
  switch (mode_) {
    case Mode::Isolated: {
      std::lock_guard lock(rulesMutex_);
      std::string text = "isolated (a shared namespace reached through pasta; denied:";
      for (const auto& cidr : denied_) text += " " + cidr.text();
      if (!config_.allow.empty()) {
        text += "; allowed:";
        for (const auto& destination : config_.allow) text += " " + destination.text();
      }
      text += "; DNS forwarded to the service's resolver through";
      for (const auto& forward : dnsForward_) text += " " + forward.text().substr(0, forward.text().find('/'));
      if (dnsForward_.empty()) text += " nothing (no nameserver in " + std::string(kHostResolvConf) + ")";
      return text + ")";
    }
    case Mode::None: return "none (workers have no network)";
    case Mode::Host: return "host (workers share the service's network)";
  }
  return "host";
}

std::vector<std::string> WorkerNetwork::prepare(std::optional<process::LaunchSpec> sandboxedProbe,
                                                const fs::path& runtimeDir, std::string whyNoProbe) {
  std::vector<std::string> problems;
  const Mode asked = config_.mode;
  if (asked == Mode::Host) {
    mode_ = Mode::Host;
    warnings_.push_back("WORKER_NETWORK=host: functions reach the host's loopback, its other addresses and "
                        "link-local ranges such as the cloud metadata endpoint (see docs/security.md)");
    return problems;
  }
  std::string failure;
  runtimeDir_ = runtimeDir;
  if (!sandboxedProbe) failure = std::move(whyNoProbe);
  // The uid and gid the sandbox switches its workers to (a root service's): mapped in the holder's
  // user namespace, for the workers that join it.
  if (failure.empty()) failure = startHolder(sandboxedProbe->uid, sandboxedProbe->gid);
  if (failure.empty() && asked == Mode::Isolated) failure = writeResolvConf();
  if (failure.empty() && asked == Mode::Isolated) failure = startPasta(runtimeDir);
  if (failure.empty() && asked == Mode::Isolated) failure = loadRules(hostAddresses());
  if (failure.empty()) {
    mode_ = asked;
    failure = probe(std::move(*sandboxedProbe));
  }
  if (failure.empty() && asked == Mode::Isolated) {
    // Subscribed before the addresses are read again, so that no change falls in between.
    if (auto why = watch_.start([this] { refreshHostAddresses(); }); !why.empty())
      failure = "cannot watch the host's addresses: " + why;
    else
      refreshHostAddresses();
  }
  if (failure.empty()) {
    log::app()->info("worker network: {}", describe());
    return problems;
  }
  stop();
  mode_ = Mode::Host;
  if (asked == Mode::None || config_.required) {
    problems.push_back(std::string("WORKER_NETWORK=") + modeName(asked) + ": cannot be had here: " + failure);
    return problems;
  }
  warnings_.push_back("WORKER_NETWORK (isolated by default): cannot isolate the workers' network here (" + failure +
                      "); workers share the host's network and reach its loopback and link-local addresses. "
                      "Fix the cause, or set WORKER_NETWORK=host to accept it, or WORKER_NETWORK=isolated to "
                      "refuse to start without it (see docs/security.md)");
  return problems;
}

std::string WorkerNetwork::startHolder(std::optional<uid_t> workerUid, std::optional<gid_t> workerGid) {
  if (::access(config_.unsharePath.c_str(), X_OK) != 0)
    return config_.unsharePath.string() + " is not an executable (install util-linux)";
  // A root service writes the id maps itself: root (nft, run in the namespace, keeps its
  // capabilities across exec only as a mapped root; mapping root takes CAP_SETFCAP), and the
  // workers' uid and gid, which a worker that joins the user namespace (below) switches to. Any
  // other service maps its own uid to root.
  const bool root = ::geteuid() == 0;
  joinUserNs_ = !root || !hasSysAdmin();
  std::vector<std::string> argv{config_.unsharePath.string(), "--user", "--net", "--", kSleep, "infinity"};
  if (!root) argv.insert(argv.begin() + 2, "--map-root-user");
  auto child = startHelper(std::move(argv));
  if (!child) return child.error().message;
  holder_ = child->pid;
  const auto comm = fs::path("/proc") / std::to_string(holder_) / "comm";
  const auto deadline = std::chrono::steady_clock::now() + kHolderStartTimeout;
  std::string failure;
  for (;;) {
    if (auto status = ended(holder_)) {
      holder_ = -1;
      failure = "unshare failed: " + shortened(readSome(child->output)) + " (" + exitText(*status) + ")";
      break;
    }
    // unshare has made the namespaces and written the uid map once it runs sleep.
    if (readFileText(comm) == "sleep\n") break;
    if (std::chrono::steady_clock::now() > deadline) {
      failure = "unshare did not start its namespaces within 2 s";
      break;
    }
    std::this_thread::sleep_for(1ms);
  }
  ::close(child->output);
  if (!failure.empty()) return failure;
  if (root) {
    const auto proc = fs::path("/proc") / std::to_string(holder_);
    for (auto [file, id] : {std::pair<const char*, std::optional<unsigned>>{"uid_map", workerUid},
                            std::pair<const char*, std::optional<unsigned>>{"gid_map", workerGid}}) {
      auto map = std::string("0 0 1\n");
      if (id && *id != 0) map += std::to_string(*id) + " " + std::to_string(*id) + " 1\n";
      int fd = ::open((proc / file).c_str(), O_WRONLY | O_CLOEXEC);
      if (fd < 0 || ::write(fd, map.data(), map.size()) != static_cast<ssize_t>(map.size())) {
        failure = std::string("cannot write the holder's ") + file + ": " + std::strerror(errno);
        if (fd >= 0) ::close(fd);
        return failure;
      }
      ::close(fd);
    }
  }
  const auto ns = fs::path("/proc") / std::to_string(holder_) / "ns";
  userNs_ = ::open((ns / "user").c_str(), O_RDONLY | O_CLOEXEC);
  netNs_ = ::open((ns / "net").c_str(), O_RDONLY | O_CLOEXEC);
  if (userNs_ < 0 || netNs_ < 0) return std::string("cannot open the namespaces of the holder: ") + std::strerror(errno);
  return {};
}

std::string WorkerNetwork::startPasta(const fs::path& runtimeDir) {
  if (::access(config_.pastaPath.c_str(), X_OK) != 0)
    return config_.pastaPath.string() + " is not an executable (install passt)";
  const auto logFile = runtimeDir / kPastaLog;
  std::error_code ec;
  fs::remove(logFile, ec);
  // No port forwarded from the host into the namespace (-t, -u) nor from the namespace's loopback
  // to the host's (-T, -U); the gateway address is not mapped to the host's loopback.
  // Ports of the host's loopback that WORKER_NETWORK_ALLOW opens are the exception: pasta listens
  // on them on the namespace's loopback and connects to the host's (the rules admit only them).
  std::string loopbackPorts;
  for (const auto& destination : config_.allow) {
    if (!destination.loopback()) continue;
    if (!loopbackPorts.empty()) loopbackPorts += ",";
    loopbackPorts += std::to_string(destination.firstPort);
    if (destination.lastPort != destination.firstPort) loopbackPorts += "-" + std::to_string(destination.lastPort);
  }
  if (loopbackPorts.empty()) loopbackPorts = "none";
  std::vector<std::string> argv{config_.pastaPath.string(), "--foreground", "--config-net", "-t", "none", "-u", "none",
                                "-T", loopbackPorts, "-U", loopbackPorts, "--no-map-gw", "--log-file", logFile.string()};
  // UDP to port 53 of these addresses goes to the service's first resolver of the same IP
  // version, read from its /etc/resolv.conf, loopback or not (network/resolver.hpp).
  for (const auto& forward : dnsForward_) {
    auto address = forward.text();
    argv.insert(argv.end(), {"--dns-forward", address.substr(0, address.find('/'))});
  }
  // As root, pasta would switch to nobody, who may neither join a namespace root made nor open
  // /dev/net/tun where it is 0600. It still confines itself (own namespaces, no capabilities,
  // seccomp) once set up.
  if (::geteuid() == 0) argv.insert(argv.end(), {"--runas", "0"});
  argv.push_back(std::to_string(holder_));
  auto child = startHelper(std::move(argv));
  if (!child) return child.error().message;
  pasta_ = child->pid;
  // pasta prints its configuration to stdout, then logs to its file.
  const auto deadline = std::chrono::steady_clock::now() + kPastaStartTimeout;
  std::string failure;
  std::string output;
  for (;;) {
    output += readSome(child->output);
    if (auto status = ended(pasta_)) {
      pasta_ = -1;
      failure = "pasta failed: " + shortened(output + readFileText(logFile)) + " (" + exitText(*status) + ")";
      break;
    }
    if (hasDefaultRoute(holder_)) break;
    if (std::chrono::steady_clock::now() > deadline) {
      failure = "pasta did not configure the namespace within 5 s: " + shortened(output + readFileText(logFile));
      break;
    }
    std::this_thread::sleep_for(1ms);
  }
  if (!failure.empty()) {
    ::close(child->output);
    return failure;
  }
  // Drained until pasta ends, so that it never blocks on a full pipe.
  pastaOutput_ = std::thread([fd = child->output] {
    char buffer[4096];
    for (;;) {
      auto n = ::read(fd, buffer, sizeof buffer);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      log::app()->warn("pasta: {}", shortened(std::string(buffer, static_cast<std::size_t>(n))));
    }
    ::close(fd);
  });
  return failure;
}

std::string WorkerNetwork::writeResolvConf() {
  auto resolver = workerResolver(readFileText(kHostResolvConf));
  dnsForward_.clear();
  if (resolver.forward4) dnsForward_.push_back(*parseCidr(kDnsForward4));
  if (resolver.forward6) dnsForward_.push_back(*parseCidr(kDnsForward6));
  // Not under the data root: bubblewrap opens what it binds as the workers' uid, and the file
  // holds nothing secret (it is what every worker reads).
  std::string pattern = (fs::temp_directory_path() / "customcode-resolver-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) return std::string("cannot make a directory in /tmp: ") + std::strerror(errno);
  resolvDir_ = pattern;
  resolvConf_ = resolvDir_ / "resolv.conf";
  std::error_code ec;
  fs::permissions(resolvDir_, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                  fs::perms::others_read | fs::perms::others_exec, ec);
  {
    std::ofstream out(resolvConf_, std::ios::trunc);
    out << resolver.resolvConf;
    if (!out.flush()) return "cannot write " + resolvConf_.string();
  }
  fs::permissions(resolvConf_, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read | fs::perms::others_read, ec);
  if (ec) return "cannot make " + resolvConf_.string() + " readable: " + ec.message();
  return {};
}

std::string WorkerNetwork::loadRules(const std::vector<Cidr>& hostAddresses) {
  if (::access(config_.nftPath.c_str(), X_OK) != 0)
    return config_.nftPath.string() + " is not an executable (install nftables)";
  auto denied = defaultDenied();
  for (const auto& cidr : hostAddresses)
    if (std::find(denied.begin(), denied.end(), cidr) == denied.end()) denied.push_back(cidr);
  denied.insert(denied.end(), config_.deny.begin(), config_.deny.end());
  const auto rulesFile = runtimeDir_ / kRulesFile;
  {
    // One nft transaction: the table is made if missing, removed and made anew, so a reload
    // never leaves the namespace without rules.
    std::ofstream out(rulesFile, std::ios::trunc);
    out << "table inet customcode_workers\ndelete table inet customcode_workers\n"
        << isolationRuleset(denied, config_.allow, dnsForward_);
    if (!out.flush()) return "cannot write " + rulesFile.string();
  }
  process::LaunchSpec spec;
  spec.argv = {config_.nftPath.string(), "-f", rulesFile.string()};
  spec.env = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin"};
  spec.cwd = "/";
  spec.joinNamespaces = {userNs_, netNs_};
  auto finished = process::runToEnd(spec, kCommandTimeout);
  if (!finished) return finished.error().message;
  if (finished->timedOut) return "nft did not finish within 10 s";
  if (!WIFEXITED(finished->status) || WEXITSTATUS(finished->status) != 0)
    return "nft could not load the rules: " + shortened(finished->output) + " (" + exitText(finished->status) + ")";
  std::lock_guard lock(rulesMutex_);
  denied_ = std::move(denied);
  hostAddresses_ = hostAddresses;
  return {};
}

void WorkerNetwork::refreshHostAddresses() {
  std::lock_guard reload(reloadMutex_);
  auto now = hostAddresses();
  std::vector<Cidr> before;
  {
    std::lock_guard lock(rulesMutex_);
    before = hostAddresses_;
  }
  std::string added, removed;
  for (const auto& cidr : now)
    if (std::find(before.begin(), before.end(), cidr) == before.end()) added += " " + cidr.text();
  for (const auto& cidr : before)
    if (std::find(now.begin(), now.end(), cidr) == now.end()) removed += " " + cidr.text();
  if (added.empty() && removed.empty()) return;
  if (auto failure = loadRules(now); !failure.empty()) {
    log::app()->error("worker network: the host's addresses changed (added:{}; removed:{}) but the rules could not "
                      "be updated: {}",
                      added.empty() ? " none" : added, removed.empty() ? " none" : removed, failure);
    return;
  }
  log::app()->info("worker network: the host's addresses changed, the rules are updated (denied now:{}; no longer:{})",
                   added.empty() ? " none" : added, removed.empty() ? " none" : removed);
}

std::string WorkerNetwork::probe(process::LaunchSpec spec) const {
  join(spec);
  auto finished = process::runToEnd(spec, kCommandTimeout);
  if (!finished) return "a sandbox cannot start in the namespace: " + finished.error().message;
  if (finished->timedOut) return "a sandbox in the namespace did not finish within 10 s";
  if (!WIFEXITED(finished->status) || WEXITSTATUS(finished->status) != 0)
    return "a sandbox cannot start in the namespace: " + shortened(finished->output) + " (" +
           exitText(finished->status) + ")";
  return {};
}

void WorkerNetwork::join(process::LaunchSpec& spec) const {
  if (mode_ == Mode::Host || netNs_ < 0) return;
  // Joining a network namespace takes CAP_SYS_ADMIN over its owner and in the joiner's own user
  // namespace: root on a host has both from outside; root in a container (no CAP_SYS_ADMIN) and
  // any other user get them by joining the holder's user namespace first (a root service then
  // switches to the sandbox's uid, mapped there; bubblewrap makes the worker's own, nested user
  // namespace, without capabilities).
  if (joinUserNs_) spec.joinNamespaces = {userNs_, netNs_};
  else spec.joinNamespaces = {netNs_};
}

void WorkerNetwork::stop() {
  watch_.stop();
  for (pid_t* pid : {&pasta_, &holder_}) {
    if (*pid <= 0) continue;
    ::kill(*pid, SIGKILL);
    int status = 0;
    while (::waitpid(*pid, &status, 0) < 0 && errno == EINTR) {
    }
    *pid = -1;
  }
  if (pastaOutput_.joinable()) pastaOutput_.join();
  for (int* fd : {&userNs_, &netNs_}) {
    if (*fd >= 0) ::close(*fd);
    *fd = -1;
  }
  if (!resolvDir_.empty()) {
    std::error_code ec;
    fs::remove_all(resolvDir_, ec);
    resolvDir_.clear();
    resolvConf_.clear();
  }
}

}  // namespace customcode::network
