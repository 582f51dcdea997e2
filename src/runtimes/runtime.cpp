#include "runtimes/runtime.hpp"

#include <unistd.h>

#include <numeric>
#include <stdexcept>

namespace customcode::runtimes {
namespace fs = std::filesystem;
namespace {

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ",") + item;
  return out;
}

}  // namespace

Runtimes::Runtimes(config::RuntimeConfig config) : config_(std::move(config)) {}

fs::path Runtimes::bootstrap(std::string_view runtime) const {
  if (runtime == kNode) return config_.bootstrapDir / "node" / "worker.js";
  if (runtime == kPython) return config_.bootstrapDir / "python" / "worker.py";
  throw std::logic_error("unknown runtime " + std::string(runtime));
}

bool Runtimes::available(std::string_view runtime) const {
  std::error_code ec;
  return (runtime == kNode || runtime == kPython) && fs::exists(bootstrap(runtime), ec);
}

std::vector<std::string> Runtimes::baseEnvironment() const {
  // Nothing of the service's own environment reaches user code.
  return {"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", "HOME=/tmp"};
}

pool::LaunchSpec Runtimes::workerCommand(std::string_view runtime, const fs::path& workspaceDir,
                                         const fs::path& script) const {
  pool::LaunchSpec spec;
  spec.env = baseEnvironment();
  spec.cwd = workspaceDir;
  if (runtime == kNode) {
    spec.argv = {config_.nodePath.string(),
                 "--max-old-space-size=" + std::to_string(config_.nodeMaxOldGenerationMb),
                 bootstrap(kNode).string(),
                 "--module", script.string(),
                 "--builtins", joined(config_.nodeBuiltinModules),
                 "--logs-max", std::to_string(config_.logsMaxBytes),
                 "--result-max", std::to_string(config_.resultMaxBytes)};
  } else if (runtime == kPython) {
    // One BLAS thread per worker: numpy's OpenBLAS would otherwise start one per core in every
    // workspace's worker, and fail to under the process limits.
    for (const char* var : {"OPENBLAS_NUM_THREADS=1", "OMP_NUM_THREADS=1", "MKL_NUM_THREADS=1"})
      spec.env.emplace_back(var);
    spec.argv = {config_.pythonPath.string(), "-I", "-X", "utf8", bootstrap(kPython).string(),
                 "--module", script.string(),
                 "--builtins", joined(config_.pythonBuiltinModules),
                 "--packages", joined(config_.pythonPackagesWhitelist),
                 "--logs-max", std::to_string(config_.logsMaxBytes),
                 "--result-max", std::to_string(config_.resultMaxBytes)};
  } else {
    throw std::logic_error("unknown runtime " + std::string(runtime));
  }
  return sandboxed(std::move(spec), runtime, workspaceDir);
}

pool::LaunchSpec Runtimes::sandboxed(pool::LaunchSpec spec, std::string_view runtime, const fs::path& workspaceDir) const {
  if (sandbox_ == nullptr) return spec;
  pool::SandboxView view{.readOnly = {config_.bootstrapDir}};
  if (workspaceDir != config_.bootstrapDir) view.readOnly.push_back(workspaceDir);
  if (runtime == kNode) {
    view.memory = pool::SandboxView::Memory::Data;
    // Defence in depth: Node's permission model limits reads to the bootstrap and the workspace,
    // and refuses child processes, worker threads, native addons and process.binding.
    if (sandbox_->nodePermissionModel()) {
      std::vector<std::string> flags{"--experimental-permission", "--disable-warning=ExperimentalWarning"};
      // Node 20 takes one flag per directory, its contents granted with a trailing "/*".
      for (const auto& dir : view.readOnly) flags.push_back("--allow-fs-read=" + (dir / "*").string());
      spec.argv.insert(spec.argv.begin() + 1, flags.begin(), flags.end());
    }
  } else {
    view.memory = pool::SandboxView::Memory::AddressSpace;
  }
  return sandbox_->wrap(std::move(spec), view);
}

pool::LaunchSpec Runtimes::checkerCommand(std::string_view runtime) const {
  auto spec = workerCommand(runtime, config_.bootstrapDir, {});
  // A checker loads no module.
  auto it = std::find(spec.argv.begin(), spec.argv.end(), "--module");
  spec.argv.erase(it, it + 2);
  spec.argv.push_back("--check-only");
  return spec;
}

std::vector<std::string> Runtimes::startupProblems() const {
  std::vector<std::string> problems;
  if (::access(config_.nodePath.c_str(), X_OK) != 0)
    problems.push_back("NODE_PATH_BINARY: " + config_.nodePath.string() + " is not an executable (install nodejs)");
  if (!available(kNode))
    problems.push_back("the Node.js bootstrap is missing: " + bootstrap(kNode).string());
  return problems;
}

}  // namespace customcode::runtimes
