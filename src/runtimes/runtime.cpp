#include "runtimes/runtime.hpp"

#include "common/files.hpp"
#include "common/log.hpp"
#include "common/text.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

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

Runtimes::Runtimes(config::RuntimeConfig config) : config_(std::move(config)) { findBootstraps(); }

void Runtimes::findBootstraps() {
  std::error_code ec;
  hasNode_ = fs::exists(bootstrap(kNode), ec);
  hasPython_ = fs::exists(bootstrap(kPython), ec);
}

fs::path Runtimes::bootstrap(std::string_view runtime) const {
  if (runtime == kNode) return config_.bootstrapDir / "node" / "worker.js";
  if (runtime == kPython) return config_.bootstrapDir / "python" / "worker.py";
  throw std::logic_error("unknown runtime " + std::string(runtime));
}

bool Runtimes::available(std::string_view runtime) const {
  return (runtime == kNode && hasNode_) || (runtime == kPython && hasPython_);
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
    if (sandbox_->nodePermissionModel() && !permissionFlag_.empty()) {
      std::vector<std::string> flags{permissionFlag_};
      if (disableWarningFlag_) flags.push_back("--disable-warning=ExperimentalWarning");
      // Node 20 takes one flag per directory, its contents granted with a trailing "/*".
      for (const auto& dir : view.readOnly) flags.push_back("--allow-fs-read=" + (dir / "*").string());
      spec.argv.insert(spec.argv.begin() + 1, flags.begin(), flags.end());
    }
  } else {
    view.memory = pool::SandboxView::Memory::AddressSpace;
  }
  return sandbox_->wrap(std::move(spec), view);
}

Result<fs::path> Runtimes::stageBootstrap(const fs::path& root) {
  std::error_code ec;
  std::vector<fs::path> files;
  for (auto it = fs::recursive_directory_iterator(config_.bootstrapDir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec))
    if (it->is_regular_file(ec)) files.push_back(fs::relative(it->path(), config_.bootstrapDir, ec));
  if (ec || files.empty())
    return Error{Errc::StorageFailed, "cannot read the bootstrap scripts in " + config_.bootstrapDir.string()};
  std::sort(files.begin(), files.end());
  std::string contents;
  for (const auto& file : files) {
    contents += file.string() + '\0' + files::readFile(config_.bootstrapDir / file).value_or("") + '\0';
  }
  char name[32];
  std::snprintf(name, sizeof name, "%016llx", static_cast<unsigned long long>(text::fingerprint(contents)));
  auto runtimeDir = root / ".runtime";
  auto target = runtimeDir / name;
  if (!fs::exists(target / "node" / "worker.js", ec)) {
    // Copy into a temporary directory, then rename: another instance on the same volume may be
    // staging the same scripts at the same time.
    auto temp = runtimeDir / (std::string(".tmp-") + name + "-" + std::to_string(::getpid()));
    fs::remove_all(temp, ec);
    fs::create_directories(temp, ec);
    if (!ec) fs::copy(config_.bootstrapDir, temp, fs::copy_options::recursive | fs::copy_options::overwrite_existing, ec);
    if (ec) return Error{Errc::StorageFailed, "cannot copy the bootstrap scripts to " + temp.string() + ": " + ec.message()};
    for (auto it = fs::recursive_directory_iterator(temp, ec); !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
      ::chmod(it->path().c_str(), it->is_directory() ? 0755 : 0644);
    ::chmod(temp.c_str(), 0755);
    ::chmod(runtimeDir.c_str(), 0755);
    if (::rename(temp.c_str(), target.c_str()) != 0) fs::remove_all(temp, ec);  // the other instance won
  }
  if (!fs::exists(target / "node" / "worker.js", ec))
    return Error{Errc::StorageFailed, "cannot stage the bootstrap scripts in " + target.string()};
  config_.bootstrapDir = target;
  findBootstraps();
  return target;
}

pool::LaunchSpec Runtimes::withoutWorkspace(std::string_view runtime, const char* mode) const {
  auto spec = workerCommand(runtime, config_.bootstrapDir, {});
  auto it = std::find(spec.argv.begin(), spec.argv.end(), "--module");
  spec.argv.erase(it, it + 2);
  spec.argv.push_back(mode);
  return spec;
}

pool::LaunchSpec Runtimes::spareCommand(std::string_view runtime) const { return withoutWorkspace(runtime, "--spare"); }

pool::LaunchSpec Runtimes::checkerCommand(std::string_view runtime) const {
  return withoutWorkspace(runtime, "--check-only");
}

std::optional<std::string> Runtimes::detectNodeVersion() {
  pool::LaunchSpec spec;
  spec.argv = {config_.nodePath.string(), "--version"};
  spec.env = baseEnvironment();
  spec.cwd = "/";
  auto finished = pool::runToEnd(spec, std::chrono::seconds(10));
  int major = 0, minor = 0;
  if (finished && !finished->timedOut && std::sscanf(finished->output.c_str(), "v%d.%d", &major, &minor) == 2) {
    nodeVersion_ = std::string(text::trim(finished->output));
  } else {
    return "cannot tell the version of " + config_.nodePath.string() + "; assuming Node.js 20";
  }
  auto atLeast = [&](int wantMajor, int wantMinor) { return major > wantMajor || (major == wantMajor && minor >= wantMinor); };
  if (!atLeast(20, 0)) permissionFlag_.clear();
  else if ((major == 22 && minor >= 13) || atLeast(23, 5)) permissionFlag_ = "--permission";
  else permissionFlag_ = "--experimental-permission";
  disableWarningFlag_ = (major == 20 && minor >= 11) || atLeast(21, 3);
  log::app()->info("Node.js {}{}", nodeVersion_, permissionFlag_.empty() ? "" : ", permission model flag " + permissionFlag_);
  if (permissionFlag_.empty() && sandbox_ != nullptr && sandbox_->nodePermissionModel())
    return "NODE_PERMISSION_MODEL: Node.js " + nodeVersion_ +
           " has no permission model (it came in Node.js 20); Node.js workers run without it, confined by the sandbox "
           "only. Install Node.js 20 or later, or set NODE_PERMISSION_MODEL=no to silence this";
  return std::nullopt;
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
