#pragma once

#include "config/config.hpp"
#include "process/launcher.hpp"

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

// The OS boundary around every worker (docs/security.md). With bubblewrap, a worker runs as an
// unprivileged user in its own user, mount, pid, ipc, uts and cgroup namespaces, with an empty
// environment but the runtime's, no capabilities, no_new_privs, and a file system made of the
// system directories, its bootstrap and its own workspace (all read-only) and a small private /tmp.
// Where namespaces are refused, the restricted mode confines it without them (a uid of its own,
// Landlock, seccomp: sandbox/confinement.hpp). Resource limits apply in every mode.
namespace customcode::network {
class WorkerNetwork;
}

namespace customcode::sandbox {

class SeccompFilter;
using process::LaunchSpec;

// What one sandboxed process may see besides the system directories.
struct SandboxView {
  std::vector<std::filesystem::path> readOnly;  // bound read-only at the same path
  // Node's V8 and WebAssembly reserve far more address space than they use (a wasm memory
  // reserves over 8 GB), so Node is capped on private writable memory (RLIMIT_DATA), Python on
  // address space (RLIMIT_AS), which also counts shared anonymous mappings.
  enum class Memory { Data, AddressSpace } memory = Memory::Data;
};

// The isolation in effect, strongest first.
enum class Isolation { Bwrap, Restricted, None };
const char* isolationName(Isolation isolation);  // "bwrap", "restricted", "none"

class Sandbox {
 public:
  // The unprivileged user a worker runs as when the service runs as root ("nobody").
  static constexpr uid_t kSandboxUid = 65534;
  static constexpr gid_t kSandboxGid = 65534;
  // Processes and threads of one worker (Node starts about a dozen threads).
  static constexpr std::uint64_t kMaxProcesses = 64;
  static constexpr std::uint64_t kMaxOpenFiles = 1024;
  // CPU seconds over a worker's whole life: a backstop, runs are bounded by their timeout.
  static constexpr std::uint64_t kMaxCpuSeconds = 3600;
  // The restricted mode gives each worker a uid (and gid) of its own from this range when the
  // service runs as root, far above the ranges of users and of /etc/subuid.
  static constexpr uid_t kRestrictedUidBase = 1'900'000'000;
  static constexpr uid_t kRestrictedUidCount = 1'000'000;
  // Directories a worker binds at most (bootstrap, workspace).
  static constexpr std::size_t kStageSlots = 4;

  explicit Sandbox(config::SandboxConfig config);
  ~Sandbox();
  Sandbox(const Sandbox&) = delete;
  Sandbox& operator=(const Sandbox&) = delete;

  // Decides the mode, strongest first: bubblewrap (SANDBOX=auto or bwrap), then the restricted
  // mode (auto or restricted), each tried with a probe that sees `mustSee` (the data root and the
  // bootstrap directory) the way workers will; the log says why a mode was passed over. Returns
  // the problems that stop start-up (the mode asked for does not work); warnings() says what is
  // weaker than asked.
  std::vector<std::string> prepare(const std::vector<std::filesystem::path>& mustSee);

  // `spec` (an interpreter command, its env and cwd) with the limits of a worker, wrapped in
  // bubblewrap or confined, as the mode says.
  LaunchSpec wrap(LaunchSpec spec, const SandboxView& view) const;

  // Whether prepare() has decided the mode: commands are built only after it (runtimes::Runtimes).
  bool prepared() const { return prepared_; }
  Isolation isolation() const { return isolation_; }
  bool isolated() const { return isolation_ == Isolation::Bwrap; }
  bool nodePermissionModel() const { return config_.nodePermissionModel; }
  const std::vector<std::string>& warnings() const { return warnings_; }
  // Adds what else is weaker than asked (e.g. a Node.js without a permission model).
  void addWarning(std::string warning) { warnings_.push_back(std::move(warning)); }
  std::string describe() const;
  // Sandboxed processes start in this network (network/worker_network.hpp); null: the host's.
  void useNetwork(const network::WorkerNetwork* network) { network_ = network; }

 private:
  // Bubblewrap's arguments; `sources[i]` is where view.readOnly[i] is bound from.
  std::vector<std::string> bwrapArguments(const LaunchSpec& spec, const SandboxView& view,
                                          const std::vector<std::filesystem::path>& sources) const;
  void setLimits(LaunchSpec& spec, const SandboxView& view) const;
  LaunchSpec wrapInBwrap(LaunchSpec spec, const SandboxView& view) const;
  LaunchSpec confine(LaunchSpec spec, const SandboxView& view) const;
  // Why bubblewrap cannot run here, or an empty string; `staged`: binds go through stageDir_.
  std::string tryBwrap(const std::vector<std::filesystem::path>& mustSee, bool staged);
  std::string tryRestricted(const std::vector<std::filesystem::path>& mustSee);
  // Mount points the binds of a root service go through (see launcher.hpp: privateBinds).
  bool makeStageDir();
  // Runs `spec` to completion; returns its output if it failed, an empty string if it succeeded.
  static std::string probe(const LaunchSpec& spec);

  config::SandboxConfig config_;
  bool prepared_ = false;
  Isolation isolation_ = Isolation::None;
  bool switchUser_ = false;
  std::filesystem::path stageDir_;  // empty: bwrap binds by path
  std::shared_ptr<const SeccompFilter> seccomp_;
  // Restricted mode: offset of the next worker's uid. It starts at a random place, so that another
  // instance on the host (or this one restarted while its old workers still exit) does not hand out
  // the same uids, whose processes would share RLIMIT_NPROC and could signal each other.
  mutable uid_t nextUid_ = 0;
  const network::WorkerNetwork* network_ = nullptr;
  std::vector<std::string> warnings_;
};

}  // namespace customcode::sandbox
