#pragma once

#include "common/errors.hpp"
#include "config/config.hpp"
#include "sandbox/sandbox.hpp"
#include "process/launcher.hpp"
#include "workspace/workspace.hpp"

#include <array>
#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// How a worker of each runtime is started: the interpreter, its flags, the bootstrap script and
// the arguments it needs, wrapped by the sandbox.
namespace customcode::runtimes {

using workspace::Language;

// Every language a workspace may use, in the order workers are warmed and checked.
inline constexpr std::array kLanguages = {Language::Node, Language::Python};

// What differs between runtimes, one row each (runtime.cpp): adding a language is a row there, a
// bootstrap under runtimes/<name>/ and its code generator (workspace/codegen).
struct RuntimeTraits {
  Language language;
  std::string_view bootstrap;  // relative to the bootstrap directory
  // The interpreter and its flags, up to the bootstrap script.
  std::vector<std::string> (*interpreter)(const config::RuntimeConfig&);
  // The bootstrap's arguments that set what user code may import.
  std::vector<std::string> (*importArguments)(const config::RuntimeConfig&);
  std::vector<std::string_view> environment;  // NAME=value beyond the base environment
  std::chrono::milliseconds config::PoolConfig::*runTimeout;  // FUNCTIONS_RUN_TIMEOUT or its kin
  sandbox::SandboxView::Memory memory;  // the memory limit that fits the interpreter
  bool nodePermissionModel;          // takes Node's --permission flags (NODE_PERMISSION_MODEL)
  // How many spare workers to keep, which take a new workspace over (FUNCTIONS_SPARE_WORKERS or
  // its kin; see pool/spare_pool.hpp).
  std::size_t config::PoolConfig::*spareWorkers;
  // A workspace directory holding this (its own packages) cannot be handed to a spare, whose
  // sandbox sees no workspace directory. Empty: none.
  std::string_view packagesDirectory;
};

const RuntimeTraits& traits(Language language);

class Runtimes {
 public:
  // Every command is built through `sandbox` (limits, and bubblewrap when isolated), which must
  // be prepared before the first command is built; it is owned by the caller and outlives this.
  Runtimes(config::RuntimeConfig config, const sandbox::Sandbox& sandbox);

  // The command of a worker that serves `workspaceDir`, whose generated script is `script`.
  process::LaunchSpec workerCommand(Language language, const std::filesystem::path& workspaceDir,
                                    const std::filesystem::path& script) const;

  // The command of a worker that only checks syntax (no workspace).
  process::LaunchSpec checkerCommand(Language language) const;

  // The command of a spare worker: started without a workspace, it takes one over when the
  // service sends it a module (see pool/spare_pool.hpp).
  process::LaunchSpec spareCommand(Language language) const;

  // Whether this build can run `language`: its bootstrap existed when the bootstrap directory was
  // set (asked on every run, so not a stat each time).
  bool available(Language language) const { return available_[static_cast<std::size_t>(language)]; }

  // Problems that stop start-up: a missing interpreter or bootstrap.
  std::vector<std::string> startupProblems() const;

  // Asks the Node.js interpreter its version and picks the permission-model flags it knows:
  // `--experimental-permission` from 20, `--permission` from 22.13 and 23.5. Returns a warning
  // when the model was asked for but this Node.js has none (before 20): workers then run without
  // that second layer.
  std::optional<std::string> detectNodeVersion();
  const std::string& nodeVersion() const { return nodeVersion_; }

  const config::RuntimeConfig& config() const { return config_; }

  // Copies the bootstrap scripts under `root` (the data root) into a directory named by their
  // content, and uses that copy from then on. The sandbox user must reach every directory a worker
  // binds; the data root has to be reachable anyway, the build or install directory may not be
  // (a checkout under /root). Returns the copy's path, or why it could not be made.
  Result<std::filesystem::path> stageBootstrap(const std::filesystem::path& root);

 private:
  // A worker command that loads no module, run in `mode` (--spare, --check-only).
  process::LaunchSpec withoutWorkspace(Language language, const char* mode) const;
  std::filesystem::path bootstrap(Language language) const;

  process::LaunchSpec sandboxed(process::LaunchSpec spec, const RuntimeTraits& traits,
                                const std::filesystem::path& workspaceDir) const;

  void findBootstraps();

  config::RuntimeConfig config_;
  const sandbox::Sandbox& sandbox_;
  std::array<bool, kLanguages.size()> available_{};
  std::string nodeVersion_;                                    // e.g. "v20.20.2"; empty: not asked
  std::string permissionFlag_ = "--experimental-permission";  // empty: this Node.js has none
  bool disableWarningFlag_ = true;                             // --disable-warning exists
};

}  // namespace customcode::runtimes
