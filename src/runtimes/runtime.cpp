#include "runtimes/runtime.hpp"

#include "common/files.hpp"
#include "common/log.hpp"
#include "common/text.hpp"
#include "process/child.hpp"

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

// Nothing of the service's own environment reaches user code.
const std::vector<std::string> kBaseEnvironment = {"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", "HOME=/tmp"};

const std::array<RuntimeTraits, kLanguages.size()> kTraits = {{
    {.language = Language::Node,
     .bootstrap = "node/worker.js",
     .interpreter = [](const config::RuntimeConfig& c) -> std::vector<std::string> {
       return {c.nodePath.string(), "--max-old-space-size=" + std::to_string(c.nodeMaxOldGenerationMb)};
     },
     .importArguments = [](const config::RuntimeConfig& c) -> std::vector<std::string> {
       return {"--builtins", joined(c.nodeBuiltinModules)};
     },
     .environment = {},
     .runTimeout = &config::PoolConfig::runTimeout,
     // V8 and WebAssembly reserve far more address space than they use.
     .memory = sandbox::SandboxView::Memory::Data,
     .nodePermissionModel = true,
     .spareWorkers = &config::PoolConfig::spareWorkers,
     .packagesDirectory = "node_modules"},
    {.language = Language::Python,
     .bootstrap = "python/worker.py",
     .interpreter = [](const config::RuntimeConfig& c) -> std::vector<std::string> {
       return {c.pythonPath.string(), "-I", "-X", "utf8"};
     },
     .importArguments = [](const config::RuntimeConfig& c) -> std::vector<std::string> {
       return {"--builtins", joined(c.pythonBuiltinModules), "--packages", joined(c.pythonPackagesWhitelist)};
     },
     // One BLAS thread per worker: numpy's OpenBLAS would otherwise start one per core in every
     // workspace's worker, and fail to under the process limits.
     .environment = {"OPENBLAS_NUM_THREADS=1", "OMP_NUM_THREADS=1", "MKL_NUM_THREADS=1"},
     .runTimeout = &config::PoolConfig::pythonRunTimeout,
     .memory = sandbox::SandboxView::Memory::AddressSpace,
     .nodePermissionModel = false,
     .spareWorkers = &config::PoolConfig::pythonSpareWorkers,
     .packagesDirectory = ""},
}};

}  // namespace

const RuntimeTraits& traits(Language language) {
  const auto& row = kTraits.at(static_cast<std::size_t>(language));
  if (row.language != language) throw std::logic_error("runtimes: the table is out of order");
  return row;
}

Runtimes::Runtimes(config::RuntimeConfig config, const sandbox::Sandbox& sandbox)
    : config_(std::move(config)), sandbox_(sandbox) {
  findBootstraps();
}

void Runtimes::findBootstraps() {
  std::error_code ec;
  for (auto language : kLanguages) available_[static_cast<std::size_t>(language)] = fs::exists(bootstrap(language), ec);
}

fs::path Runtimes::bootstrap(Language language) const { return config_.bootstrapDir / traits(language).bootstrap; }

process::LaunchSpec Runtimes::workerCommand(Language language, const fs::path& workspaceDir, const fs::path& script) const {
  const auto& row = traits(language);
  process::LaunchSpec spec;
  spec.env = kBaseEnvironment;
  spec.env.insert(spec.env.end(), row.environment.begin(), row.environment.end());
  spec.cwd = workspaceDir;
  spec.argv = row.interpreter(config_);
  spec.argv.push_back(bootstrap(language).string());
  spec.argv.insert(spec.argv.end(), {"--module", script.string()});
  auto imports = row.importArguments(config_);
  spec.argv.insert(spec.argv.end(), imports.begin(), imports.end());
  spec.argv.insert(spec.argv.end(), {"--logs-max", std::to_string(config_.logsMaxBytes), "--result-max",
                                     std::to_string(config_.resultMaxBytes)});
  return sandboxed(std::move(spec), row, workspaceDir);
}

process::LaunchSpec Runtimes::sandboxed(process::LaunchSpec spec, const RuntimeTraits& row,
                                        const fs::path& workspaceDir) const {
  if (!sandbox_.prepared()) throw std::logic_error("a worker command was built before the sandbox was prepared");
  sandbox::SandboxView view{.readOnly = {config_.bootstrapDir}, .memory = row.memory};
  if (workspaceDir != config_.bootstrapDir) view.readOnly.push_back(workspaceDir);
  // Defence in depth: Node's permission model limits reads to the bootstrap and the workspace,
  // and refuses child processes, worker threads, native addons and process.binding.
  if (row.nodePermissionModel && sandbox_.nodePermissionModel() && !permissionFlag_.empty()) {
    std::vector<std::string> flags{permissionFlag_};
    if (disableWarningFlag_) flags.push_back("--disable-warning=ExperimentalWarning");
    // Node 20 takes one flag per directory, its contents granted with a trailing "/*".
    for (const auto& dir : view.readOnly) flags.push_back("--allow-fs-read=" + (dir / "*").string());
    spec.argv.insert(spec.argv.begin() + 1, flags.begin(), flags.end());
  }
  return sandbox_.wrap(std::move(spec), view);
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

process::LaunchSpec Runtimes::withoutWorkspace(Language language, const char* mode) const {
  auto spec = workerCommand(language, config_.bootstrapDir, {});
  auto it = std::find(spec.argv.begin(), spec.argv.end(), "--module");
  spec.argv.erase(it, it + 2);
  spec.argv.push_back(mode);
  return spec;
}

process::LaunchSpec Runtimes::spareCommand(Language language) const {
  return withoutWorkspace(language, "--spare");
}

process::LaunchSpec Runtimes::checkerCommand(Language language) const {
  return withoutWorkspace(language, "--check-only");
}

std::optional<std::string> Runtimes::detectNodeVersion() {
  process::LaunchSpec spec;
  spec.argv = {config_.nodePath.string(), "--version"};
  spec.env = kBaseEnvironment;
  spec.cwd = "/";
  auto finished = process::runToEnd(spec, std::chrono::seconds(10));
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
  if (permissionFlag_.empty() && sandbox_.nodePermissionModel())
    return "NODE_PERMISSION_MODEL: Node.js " + nodeVersion_ +
           " has no permission model (it came in Node.js 20); Node.js workers run without it, confined by the sandbox "
           "only. Install Node.js 20 or later, or set NODE_PERMISSION_MODEL=no to silence this";
  return std::nullopt;
}

std::vector<std::string> Runtimes::startupProblems() const {
  std::vector<std::string> problems;
  if (::access(config_.nodePath.c_str(), X_OK) != 0)
    problems.push_back("NODE_PATH_BINARY: " + config_.nodePath.string() + " is not an executable (install nodejs)");
  if (!available(Language::Node))
    problems.push_back("the Node.js bootstrap is missing: " + bootstrap(Language::Node).string());
  return problems;
}

}  // namespace customcode::runtimes
