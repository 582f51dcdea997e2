#pragma once

#include "common/errors.hpp"
#include "config/config.hpp"
#include "pool/launcher.hpp"
#include "pool/sandbox.hpp"

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

// How a worker of each runtime is started: the interpreter, its flags, the bootstrap script and
// the arguments it needs. The sandbox (pool/launcher) wraps what this returns.
namespace customcode::runtimes {

inline constexpr std::string_view kNode = "nodejs";
inline constexpr std::string_view kPython = "python";

class Runtimes {
 public:
  explicit Runtimes(config::RuntimeConfig config);

  // The command of a worker that serves `workspaceDir`, whose generated script is `script`.
  pool::LaunchSpec workerCommand(std::string_view runtime, const std::filesystem::path& workspaceDir,
                                 const std::filesystem::path& script) const;

  // The command of a worker that only checks syntax (no workspace).
  pool::LaunchSpec checkerCommand(std::string_view runtime) const;

  // The command of a spare worker: started without a workspace, it takes one over when the
  // service sends it a module (see pool/spare_pool.hpp).
  pool::LaunchSpec spareCommand(std::string_view runtime) const;

  // Whether this build can run `runtime`: its bootstrap existed when the bootstrap directory was
  // set (asked on every run, so not a stat each time).
  bool available(std::string_view runtime) const;

  // Problems that stop start-up: a missing interpreter or bootstrap.
  std::vector<std::string> startupProblems() const;

  // Asks the Node.js interpreter its version and picks the permission-model flags it knows:
  // `--experimental-permission` from 20, `--permission` from 22.13 and 23.5. Returns a warning
  // when the model was asked for but this Node.js has none (before 20): workers then run without
  // that second layer.
  std::optional<std::string> detectNodeVersion();
  const std::string& nodeVersion() const { return nodeVersion_; }

  const config::RuntimeConfig& config() const { return config_; }

  // Every command built from now on goes through `sandbox` (limits, and bubblewrap when isolated).
  void useSandbox(const pool::Sandbox* sandbox) { sandbox_ = sandbox; }

  // Copies the bootstrap scripts under `root` (the data root) into a directory named by their
  // content, and uses that copy from then on. The sandbox user must reach every directory a worker
  // binds; the data root has to be reachable anyway, the build or install directory may not be
  // (a checkout under /root). Returns the copy's path, or why it could not be made.
  Result<std::filesystem::path> stageBootstrap(const std::filesystem::path& root);

 private:
  // A worker command that loads no module, run in `mode` (--spare, --check-only).
  pool::LaunchSpec withoutWorkspace(std::string_view runtime, const char* mode) const;
  std::filesystem::path bootstrap(std::string_view runtime) const;
  std::vector<std::string> baseEnvironment() const;

  pool::LaunchSpec sandboxed(pool::LaunchSpec spec, std::string_view runtime, const std::filesystem::path& workspaceDir) const;

  void findBootstraps();

  config::RuntimeConfig config_;
  const pool::Sandbox* sandbox_ = nullptr;
  bool hasNode_ = false;
  bool hasPython_ = false;
  std::string nodeVersion_;                                    // e.g. "v20.20.2"; empty: not asked
  std::string permissionFlag_ = "--experimental-permission";  // empty: this Node.js has none
  bool disableWarningFlag_ = true;                             // --disable-warning exists
};

}  // namespace customcode::runtimes
