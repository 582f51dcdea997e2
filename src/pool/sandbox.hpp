#pragma once

#include "config/config.hpp"
#include "process/launcher.hpp"

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

// The OS boundary around every worker (docs/security.md). With bubblewrap, a worker runs as an
// unprivileged user in its own user, mount, pid, ipc, uts and cgroup namespaces, with an empty
// environment but the runtime's, no capabilities, no_new_privs, and a file system made of the
// system directories, its bootstrap and its own workspace (all read-only) and a small private /tmp.
// Resource limits apply in every mode.
namespace customcode::network {
class WorkerNetwork;
}

namespace customcode::pool {

using process::LaunchSpec;

// What one sandboxed process may see besides the system directories.
struct SandboxView {
  std::vector<std::filesystem::path> readOnly;  // bound read-only at the same path
  // Node's V8 and WebAssembly reserve far more address space than they use (a wasm memory
  // reserves over 8 GB), so Node is capped on private writable memory (RLIMIT_DATA), Python on
  // address space (RLIMIT_AS), which also counts shared anonymous mappings.
  enum class Memory { Data, AddressSpace } memory = Memory::Data;
};

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

  explicit Sandbox(config::SandboxConfig config);

  // Decides the mode: with SANDBOX=auto or bwrap, starts a probe sandbox that binds `mustSee`
  // (the data root and the bootstrap directory) the way workers will. Returns the problems that
  // stop start-up (SANDBOX=bwrap and the probe failed); warnings() says what is weaker than asked.
  std::vector<std::string> prepare(const std::vector<std::filesystem::path>& mustSee);

  // `spec` (an interpreter command, its env and cwd) with the limits of a worker and, when
  // isolated(), wrapped in bubblewrap.
  LaunchSpec wrap(LaunchSpec spec, const SandboxView& view) const;

  // Whether prepare() has decided the mode: commands are built only after it (runtimes::Runtimes).
  bool prepared() const { return prepared_; }
  bool isolated() const { return isolated_; }
  bool nodePermissionModel() const { return config_.nodePermissionModel; }
  const std::vector<std::string>& warnings() const { return warnings_; }
  // Adds what else is weaker than asked (e.g. a Node.js without a permission model).
  void addWarning(std::string warning) { warnings_.push_back(std::move(warning)); }
  std::string describe() const;
  // Sandboxed processes start in this network (network/worker_network.hpp); null: the host's.
  void useNetwork(const network::WorkerNetwork* network) { network_ = network; }

 private:
  std::vector<std::string> bwrapArguments(const LaunchSpec& spec, const SandboxView& view) const;
  // Runs `spec` to completion; returns its output if it failed, an empty string if it succeeded.
  static std::string probe(const LaunchSpec& spec);

  config::SandboxConfig config_;
  bool prepared_ = false;
  bool isolated_ = false;
  bool switchUser_ = false;
  const network::WorkerNetwork* network_ = nullptr;
  std::vector<std::string> warnings_;
};

}  // namespace customcode::pool
