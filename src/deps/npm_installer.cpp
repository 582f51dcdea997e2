#include "deps/npm_installer.hpp"

#include "common/async.hpp"
#include "common/files.hpp"
#include "common/log.hpp"
#include "common/text.hpp"
#include "process/child.hpp"
#include "workspace/workspace_lock.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <fcntl.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>
#include <regex>
#include <sstream>

namespace customcode::deps {
namespace asio = boost::asio;
namespace fs = std::filesystem;
namespace json = boost::json;
using asio::as_tuple;
using asio::use_awaitable;
using namespace std::chrono_literals;

namespace {

constexpr std::string_view kStagingPrefix = ".staging-";
constexpr const char* kInUseName = ".in-use";
// A staging directory without its .in-use file is that young only while it is being created.
constexpr auto kStagingCreationGrace = std::chrono::minutes(1);
// Exchanged in this order: package.json last, since it is what decides that the next save with the
// same packages can skip npm; a crash part-way makes that save reinstall.
constexpr std::array<const char*, 3> kEntries = {"node_modules", "package-lock.json", "package.json"};
constexpr std::size_t kMaxOutputBytes = 64 * 1024;  // npm's output kept for the error (the tail)
constexpr std::size_t kMaxQuotedBytes = 600;        // npm's message quoted in the error

std::string uniqueSuffix() {
  static std::atomic<std::uint64_t> counter{0};
  static const std::uint64_t seed = std::random_device{}();
  return std::to_string(::getpid()) + "-" + std::to_string(seed % 1000000) + "-" + std::to_string(counter.fetch_add(1));
}

Error storageError(const std::string& what, const fs::path& path, int err) {
  log::store()->error("{} {}: {}", what, path.string(), std::strerror(err));
  return Error{Errc::StorageFailed, "Storage failed: " + what + " (" + std::strerror(err) + ")"};
}

void fsyncDirectory(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  if (::fsync(fd) != 0) log::store()->warn("cannot fsync {}: {}", dir.string(), std::strerror(errno));
  ::close(fd);
}

bool entryExists(const fs::path& path) {
  std::error_code ec;
  return fs::exists(fs::symlink_status(path, ec));
}

using files::readFile;

std::string joinNames(const PackageSet& packages) {
  std::string out;
  for (const auto& [name, range] : packages) out += (out.empty() ? "" : ", ") + name;
  return out;
}

// "@scope%2fname" in a registry URL -> "@scope/name".
std::string decodePackagePath(std::string_view text) {
  auto decoded = text::percentDecode(text);
  return decoded ? *decoded : std::string(text);
}

}  // namespace

struct NpmInstaller::Plan {
  fs::path staging;  // empty: nothing to change
  std::shared_ptr<files::Fd> inUse;
  bool runNpm = false;
};

NpmInstaller::NpmInstaller(asio::any_io_executor loop, asio::thread_pool& fsPool, workspace::WorkspaceStore& store,
                           config::NpmConfig config, Metrics& metrics)
    : loop_(std::move(loop)), fsPool_(fsPool), store_(store), config_(std::move(config)), metrics_(metrics) {}

fs::path NpmInstaller::cacheDirectory() const {
  std::error_code ec;
  auto dir = config_.cacheDir.empty() ? store_.root() / ".npm-cache" : config_.cacheDir;
  auto absolute = fs::absolute(dir, ec);
  return ec ? dir : absolute;
}

void NpmInstaller::removeLeftovers() {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(store_.root(), ec)) {
    if (!entry.path().filename().string().starts_with(kStagingPrefix)) continue;
    // A replica sharing the directory may be installing into it right now: it holds the lock.
    std::optional<files::Fd> held;
    if (entryExists(entry.path() / kInUseName)) {
      held = workspace::lockFile(entry.path() / kInUseName, false);
      if (!held) continue;
    } else {
      std::error_code timeError;
      auto modified = fs::last_write_time(entry.path(), timeError);
      if (timeError || fs::file_time_type::clock::now() - modified < kStagingCreationGrace) continue;
    }
    std::error_code removeError;
    fs::remove_all(entry.path(), removeError);
    if (removeError) log::store()->warn("cannot remove {}: {}", entry.path().string(), removeError.message());
  }
}

// ---- Preparing ----

Result<NpmInstaller::Plan> NpmInstaller::plan(const std::string& name, const PackageSet& packages) const {
  const auto dir = store_.directory(name);
  std::error_code ec;
  const bool hasModules = fs::is_directory(dir / "node_modules", ec);
  const bool hasLock = entryExists(dir / "package-lock.json");
  const bool hasManifest = entryExists(dir / "package.json");
  if (packages.empty() && !hasModules && !hasLock && !hasManifest) return Plan{};
  if (!packages.empty() && hasModules && hasLock && hasManifest) {
    auto manifest = readFile(dir / "package.json");
    auto installed = manifest ? manifestDependencies(*manifest) : std::nullopt;
    bool unchanged = installed && *installed == packages;
    for (const auto& [package, range] : packages)
      unchanged = unchanged && entryExists(dir / "node_modules" / package / "package.json");
    if (unchanged) return Plan{};
  }

  Plan plan;
  plan.staging = store_.root() / (std::string(kStagingPrefix) + name + "-" + uniqueSuffix());
  if (!fs::create_directory(plan.staging, ec)) return storageError("cannot create", plan.staging, ec ? ec.value() : EEXIST);
  auto inUse = workspace::lockFile(plan.staging / kInUseName, false);
  if (!inUse) {
    int err = errno;
    fs::remove_all(plan.staging, ec);
    return storageError("cannot lock", plan.staging / kInUseName, err);
  }
  plan.inUse = std::make_shared<files::Fd>(std::move(*inUse));
  if (packages.empty()) return plan;  // commit() moves the old packages out
  plan.runNpm = true;
  {
    std::ofstream out(plan.staging / "package.json", std::ios::binary);
    out << manifestJson(packages);
    out.close();
    if (!out) {
      fs::remove_all(plan.staging, ec);
      return storageError("cannot write", plan.staging / "package.json", EIO);
    }
  }
  // With the previous lockfile, packages that stay keep their locked versions.
  if (hasLock) {
    fs::copy_file(dir / "package-lock.json", plan.staging / "package-lock.json", ec);
    if (ec) log::store()->warn("[ws:{}] cannot copy package-lock.json to the staging directory: {}", name, ec.message());
  }
  return plan;
}

asio::awaitable<Result<StagedPackages>> NpmInstaller::prepare(workspace::Workspace workspace) {
  PackageSet packages;
  if (!workspace.disableNpmRegistry) {
    auto required = requiredPackages(workspace);
    if (!required) co_return required.error();
    packages = std::move(*required);
  }
  // Named lambdas (GCC 12, common/async.hpp).
  auto makePlan = [this, name = workspace.name, &packages] { return plan(name, packages); };
  auto planned = co_await onPool(fsPool_, loop_, std::move(makePlan));
  if (!planned) co_return planned.error();

  StagedPackages staged{.staging = planned->staging, .inUse = planned->inUse, .packages = packages, .ranNpm = false};
  if (!planned->runNpm) {
    if (!packages.empty())
      log::runtime()->info("[ws:{}] npm packages unchanged ({}): npm not run", workspace.name, joinNames(packages));
    co_return staged;
  }
  const auto started = std::chrono::steady_clock::now();
  auto ran = co_await runNpm(workspace.name, staged.staging, packages);
  if (!ran) {
    auto drop = [this, staged] {
      discard(staged);
      return true;
    };
    co_await onPool(fsPool_, loop_, std::move(drop));
    co_return ran.error();
  }
  staged.ranNpm = true;
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
  log::runtime()->info("[ws:{}] npm installed {} in {} ms", workspace.name, joinNames(packages), ms);
  co_return staged;
}

// ---- npm ----

asio::awaitable<Result<void>> NpmInstaller::runNpm(std::string workspace, fs::path dir, PackageSet packages) {
  const auto cache = cacheDirectory();
  process::LaunchSpec spec;
  spec.argv = {config_.npmPath.string(), "install", "--ignore-scripts", "--no-audit", "--no-fund", "--omit=dev",
               "--package-lock=true"};
  // A clean environment: nothing of the service's own reaches npm but what is set here. The user
  // config (~/.npmrc) is ignored; the machine's global npmrc still applies.
  spec.env = {"PATH=" + config_.npmPath.parent_path().string() + ":/usr/local/bin:/usr/bin:/bin",
              "HOME=" + cache.string(),
              "LANG=C.UTF-8",
              "npm_config_cache=" + cache.string(),
              "npm_config_userconfig=/dev/null",
              "npm_config_update_notifier=false",
              "npm_config_color=false"};
  if (!config_.registry.empty()) spec.env.push_back("npm_config_registry=" + config_.registry);
  spec.cwd = dir;

  ++metrics_.npmInstalls;
  auto started = process::start(loop_, spec);
  if (!started) {
    ++metrics_.npmInstallFailures;
    log::runtime()->error("[ws:{}] cannot start npm: {}", workspace, started.error().message);
    co_return Error{Errc::PackageInstallFailed, "npm is not available on this server: " + started.error().message,
                    json::object{{"packages", json::value_from(packages)}}};
  }
  ::close(started->requests);
  ::close(started->frames);
  auto& child = started->child;
  log::runtime()->info("[ws:{}][pid {}] npm install {}", workspace, child.pid(), joinNames(packages));

  // The deadline kills npm's whole process group; the output then ends and the child is reaped.
  child.killAt(std::chrono::steady_clock::now() + config_.installTimeout);
  asio::posix::stream_descriptor output(loop_, started->output);
  std::string text;
  std::array<char, 8192> buffer;
  for (;;) {
    auto [ec, n] = co_await output.async_read_some(asio::buffer(buffer), as_tuple(use_awaitable));
    text.append(buffer.data(), n);
    if (text.size() > kMaxOutputBytes) text.erase(0, text.size() - kMaxOutputBytes);
    if (ec) break;
  }
  // npm closed its output: it is exiting. The deadline still bounds the wait.
  const int status = co_await child.wait();

  if (child.killedAtDeadline()) {
    ++metrics_.npmInstallFailures;
    log::runtime()->warn("[ws:{}] npm install of {} timed out after {} ms", workspace, joinNames(packages),
                         config_.installTimeout.count());
    co_return Error{Errc::PackageInstallFailed,
                    "npm install of " + joinNames(packages) + " timed out after " +
                        std::to_string(config_.installTimeout.count()) + " ms (NPM_INSTALL_TIMEOUT)",
                    json::object{{"packages", json::value_from(packages)}}};
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    ++metrics_.npmInstallFailures;
    log::runtime()->warn("[ws:{}] npm install of {} failed ({}): {}", workspace, joinNames(packages),
                         process::describeStatus(status),
                         log::truncateForLog(text, 2048));
    co_return npmFailure(text, packages);
  }
  log::runtime()->debug("[ws:{}] npm: {}", workspace, log::truncateForLog(text::trim(text)));
  co_return Result<void>{};
}

Error npmFailure(std::string_view output, const PackageSet& packages) {
  std::string code;
  std::string quoted;
  std::istringstream lines{std::string(output)};
  for (std::string line; std::getline(lines, line);) {
    std::string_view rest = line;
    if (rest.starts_with("npm error")) rest.remove_prefix(9);
    else if (rest.starts_with("npm ERR!")) rest.remove_prefix(8);
    else continue;
    rest = text::trim(rest);
    if (rest.starts_with("code ")) {
      code = std::string(text::trim(rest.substr(5)));
      continue;
    }
    // Noise: bare status codes, the log file's path, npm's advice on other ways to install.
    if (rest.empty() || rest.find_first_not_of("0123456789") == std::string_view::npos) continue;
    if (rest.starts_with("A complete log") || rest.find("you can also install from a") != std::string_view::npos ||
        rest.find("tarball, folder, http url") != std::string_view::npos)
      continue;
    if (!quoted.empty()) quoted += "; ";
    quoted += std::string(rest);
  }
  if (quoted.empty()) quoted = std::string(text::trim(output.substr(output.size() > 300 ? output.size() - 300 : 0)));
  if (quoted.empty()) quoted = "npm failed without a message";
  if (quoted.size() > kMaxQuotedBytes) quoted = quoted.substr(0, kMaxQuotedBytes) + "...";

  std::string package;
  std::smatch match;
  std::string all(output);
  if (code == "E404") {
    static const std::regex quotedSpec(R"('((?:@[^/'\s]+/)?[^@'\s]+)@[^']*' (?:could not be found|is not in this registry))");
    static const std::regex url(R"(404 Not Found - GET \S+/((?:@[^/\s]+(?:/|%2[fF]))?[^/\s]+)\s)");
    if (std::regex_search(all, match, quotedSpec)) package = match[1];
    else if (std::regex_search(all, match, url)) package = decodePackagePath(match[1].str());
  } else if (code == "ETARGET") {
    static const std::regex noMatch(R"(No matching version found for ((?:@[^/\s]+/)?[^@\s]+)@)");
    if (std::regex_search(all, match, noMatch)) package = match[1];
  }
  json::object details{{"packages", json::value_from(packages)}, {"npm", quoted}};
  if (!code.empty()) details["npmCode"] = code;
  if ((code == "E404" || code == "ETARGET") && !package.empty()) {
    details["package"] = package;
    std::string what = code == "E404" ? "Package \"" + package + "\" was not found in the npm registry"
                                      : "No version of package \"" + package + "\" matches the requested range";
    return Error{Errc::PackageNotFound, what + ": " + quoted, std::move(details)};
  }
  if (code == "E404" || code == "ETARGET")
    return Error{Errc::PackageNotFound, "npm could not find one of " + joinNames(packages) + ": " + quoted,
                 std::move(details)};
  return Error{Errc::PackageInstallFailed, "npm install of " + joinNames(packages) + " failed: " + quoted,
               std::move(details)};
}

// ---- Committing ----

namespace {

// Swaps `staged` and `live`, either of which may be missing. Returns 0 or an errno value.
int exchangeEntry(const fs::path& staged, const fs::path& live, const fs::path& staging) {
  const bool hasStaged = entryExists(staged);
  const bool hasLive = entryExists(live);
  if (hasStaged && hasLive) {
    if (::renameat2(AT_FDCWD, staged.c_str(), AT_FDCWD, live.c_str(), RENAME_EXCHANGE) == 0) return 0;
    if (errno != EINVAL && errno != ENOSYS) return errno;
    // A file system without RENAME_EXCHANGE: three renames, with a short gap.
    const auto aside = staging / (live.filename().string() + ".previous");
    if (::rename(live.c_str(), aside.c_str()) != 0) return errno;
    if (::rename(staged.c_str(), live.c_str()) != 0) {
      int err = errno;
      ::rename(aside.c_str(), live.c_str());
      return err;
    }
    return ::rename(aside.c_str(), staged.c_str()) == 0 ? 0 : errno;
  }
  if (hasStaged) return ::rename(staged.c_str(), live.c_str()) == 0 ? 0 : errno;
  if (hasLive) return ::rename(live.c_str(), staged.c_str()) == 0 ? 0 : errno;
  return 0;
}

}  // namespace

Result<void> NpmInstaller::exchange(const std::string& name, const fs::path& staging) const {
  const auto dir = store_.directory(name);
  std::error_code ec;
  if (!fs::exists(dir, ec)) {
    // A new workspace: its directory appears now, with its packages; workspace.yaml follows.
    if (!fs::create_directory(dir, ec) && ec) return storageError("cannot create", dir, ec.value());
    fsyncDirectory(store_.root());
  }
  for (std::size_t i = 0; i < kEntries.size(); ++i) {
    if (int err = exchangeEntry(staging / kEntries[i], dir / kEntries[i], staging); err != 0) {
      // All or nothing: swap back what was swapped (an exchange is its own inverse).
      for (std::size_t j = i; j-- > 0;) {
        if (exchangeEntry(staging / kEntries[j], dir / kEntries[j], staging) != 0)
          log::store()->error("[ws:{}] cannot restore the previous {}", name, kEntries[j]);
      }
      return storageError("cannot exchange", dir / kEntries[i], err);
    }
  }
  fsyncDirectory(dir);
  fsyncDirectory(staging);
  return {};
}

Result<workspace::StoredWorkspace> NpmInstaller::commit(const workspace::Workspace& workspace,
                                                          const StagedPackages& staged) {
  auto saved = [&]() -> Result<workspace::StoredWorkspace> {
    auto held = store_.lock(workspace.name);
    if (!held) return held.error();
    if (!staged.staging.empty()) {
      if (auto exchanged = exchange(workspace.name, staged.staging); !exchanged) return exchanged.error();
    }
    auto stored = store_.save(workspace);
    if (!stored && !staged.staging.empty()) {
      if (auto undone = exchange(workspace.name, staged.staging); !undone)
        log::store()->error("[ws:{}] cannot restore the previous npm packages", workspace.name);
    }
    return stored;
  }();
  // Outside the lock: removing the previous node_modules can take a while.
  discard(staged);
  return saved;
}

void NpmInstaller::discard(const StagedPackages& staged) const {
  if (staged.staging.empty()) return;
  std::error_code ec;
  fs::remove_all(staged.staging, ec);
  if (ec) log::store()->warn("cannot remove {}: {}", staged.staging.string(), ec.message());
}

}  // namespace customcode::deps
