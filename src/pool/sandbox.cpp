#include "pool/sandbox.hpp"

#include "common/log.hpp"
#include "network/worker_network.hpp"
#include "process/child.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

namespace customcode::pool {
namespace fs = std::filesystem;
namespace {

// The process limit is per user and, inside a user namespace, per namespace: it is set inside the
// sandbox so that each worker gets its own budget instead of sharing one with every other worker
// of the same uid (and set before bwrap it would also cap that uid across all sandboxes).
const fs::path kPrlimit = "/usr/bin/prlimit";

// Top-level system directories: bound read-only, or recreated as the symlinks they are on a
// merged-/usr system.
constexpr const char* kSystemDirs[] = {"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"};

// What the runtimes need from /etc: name resolution, TLS roots, the loader cache, time zones,
// MIME types. Nothing else of /etc (no passwd, shadow, or service configuration).
constexpr const char* kEtcFiles[] = {
    "/etc/resolv.conf", "/etc/hosts",      "/etc/nsswitch.conf", "/etc/host.conf",     "/etc/gai.conf",
    "/etc/services",    "/etc/protocols",  "/etc/ld.so.cache",   "/etc/ld.so.conf",    "/etc/ld.so.conf.d",
    "/etc/localtime",   "/etc/timezone",   "/etc/ssl",           "/etc/ca-certificates", "/etc/pki",
    "/etc/mime.types",  "/etc/alternatives"};

bool underSystemDir(const fs::path& path) {
  auto text = path.string();
  for (const char* prefix : {"/usr/", "/bin/", "/sbin/", "/lib/", "/lib64/", "/etc/alternatives/"})
    if (text.starts_with(prefix)) return true;
  return false;
}

std::string firstLines(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  if (text.size() > 500) text = text.substr(0, 500) + "...";
  return text.empty() ? "no output" : text;
}

}  // namespace

Sandbox::Sandbox(config::SandboxConfig config) : config_(std::move(config)) {}

std::string Sandbox::describe() const {
  if (isolated_)
    return std::string("bubblewrap (") + (switchUser_ ? "uid 65534" : "the service's uid") +
           ", private namespaces, read-only workspace)";
  return "none (workers are NOT isolated from the host)";
}

std::vector<std::string> Sandbox::prepare(const std::vector<fs::path>& mustSee) {
  using Mode = config::SandboxConfig::Mode;
  std::vector<std::string> problems;
  prepared_ = true;
  switchUser_ = ::geteuid() == 0;
  if (config_.mode == Mode::None) {
    warnings_.push_back("SANDBOX=none: workers run without OS isolation; a function can read what the "
                        "service can read and reach its processes (see docs/security.md)");
    return problems;
  }
  std::string failure;
  if (::access(config_.bwrapPath.c_str(), X_OK) != 0) {
    failure = config_.bwrapPath.string() + " is not an executable (install bubblewrap)";
  } else if (::access(kPrlimit.c_str(), X_OK) != 0) {
    failure = kPrlimit.string() + " is missing (install util-linux)";
  } else {
    isolated_ = true;
    LaunchSpec check;
    check.argv = {"/bin/true"};
    check.env = {"PATH=/usr/bin:/bin"};
    check.cwd = "/";
    SandboxView view;
    view.readOnly = mustSee;
    failure = probe(wrap(std::move(check), view));
    isolated_ = failure.empty();
  }
  if (isolated_) {
    log::app()->info("sandbox: {}", describe());
    return problems;
  }
  if (config_.mode == Mode::Bwrap) {
    problems.push_back("SANDBOX=bwrap: bubblewrap cannot start a worker sandbox here: " + failure);
    return problems;
  }
  warnings_.push_back("SANDBOX=auto: bubblewrap cannot start a worker sandbox here (" + failure +
                      "); workers run WITHOUT OS isolation. Fix the cause, or set SANDBOX=none to accept it "
                      "(see docs/security.md)");
  return problems;
}

std::string Sandbox::probe(const LaunchSpec& spec) {
  auto finished = process::runToEnd(spec, std::chrono::seconds(10));
  if (!finished) return finished.error().message;
  if (finished->timedOut) return "the probe did not finish within 10 s";
  int status = finished->status;
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return {};
  return firstLines(finished->output) + (WIFEXITED(status) ? " (exit status " + std::to_string(WEXITSTATUS(status)) + ")"
                                                           : " (killed by signal " + std::to_string(WTERMSIG(status)) + ")");
}

LaunchSpec Sandbox::wrap(LaunchSpec spec, const SandboxView& view) const {
  auto& limits = spec.limits;
  limits.openFiles = kMaxOpenFiles;
  limits.fileSize = config_.tmpMaxBytes;
  limits.cpuSeconds = kMaxCpuSeconds;
  if (view.memory == SandboxView::Memory::Data) limits.dataSize = config_.memoryMaxBytes;
  else limits.addressSpace = config_.memoryMaxBytes;
  if (!isolated_) return spec;  // RLIMIT_NPROC counts the whole uid outside a user namespace

  auto args = bwrapArguments(spec, view);
  args.push_back(kPrlimit.string());
  args.push_back("--nproc=" + std::to_string(kMaxProcesses));
  args.push_back("--");
  args.insert(args.end(), spec.argv.begin(), spec.argv.end());
  spec.argv = std::move(args);
  if (switchUser_) {
    spec.uid = kSandboxUid;
    spec.gid = kSandboxGid;
  }
  if (network_ != nullptr) network_->join(spec);
  return spec;
}

std::vector<std::string> Sandbox::bwrapArguments(const LaunchSpec& spec, const SandboxView& view) const {
  std::vector<std::string> a{config_.bwrapPath.string()};
  auto add = [&a](std::initializer_list<std::string> items) { a.insert(a.end(), items); };
  // Started as an unprivileged uid, bwrap makes a user namespace whose only uid is that one, so
  // nothing in the sandbox maps to root on the host. bwrap sets no_new_privs itself.
  add({"--unshare-user", "--unshare-ipc", "--unshare-pid", "--unshare-uts", "--unshare-cgroup-try",
       "--disable-userns", "--die-with-parent", "--new-session", "--cap-drop", "ALL", "--hostname", "sandbox"});
  add({"--clearenv"});
  for (const auto& entry : spec.env) {
    auto eq = entry.find('=');
    if (eq == std::string::npos) continue;
    add({"--setenv", entry.substr(0, eq), entry.substr(eq + 1)});
  }
  add({"--ro-bind", "/usr", "/usr"});
  std::error_code ec;
  for (const char* dir : kSystemDirs) {
    if (fs::is_symlink(dir, ec)) add({"--symlink", fs::read_symlink(dir, ec).string(), dir});
    else if (fs::is_directory(dir, ec)) add({"--ro-bind", dir, dir});
  }
  for (const char* path : kEtcFiles) add({"--ro-bind-try", path, path});
  // bwrap's /dev is a tmpfs the sandbox user owns: read-only, or /dev/shm would be an unbounded
  // in-memory disk.
  add({"--proc", "/proc", "--dev", "/dev", "--remount-ro", "/dev"});
  add({"--perms", "1777", "--size", std::to_string(config_.tmpMaxBytes), "--tmpfs", "/tmp"});
  // After /tmp, so that a workspace or an interpreter that lives under /tmp on the host is bound
  // over the tmpfs.
  for (const auto& dir : view.readOnly) add({"--ro-bind", dir.string(), dir.string()});
  // An interpreter installed outside the system directories (e.g. /opt/node/bin/node): its prefix.
  auto interpreter = fs::canonical(spec.argv.at(0), ec);
  if (!ec && !underSystemDir(interpreter)) {
    auto prefix = interpreter.parent_path().parent_path();
    if (prefix == prefix.root_path()) prefix = interpreter.parent_path();
    add({"--ro-bind", prefix.string(), prefix.string()});
  }
  // The root is a tmpfs bwrap made (owned by the sandbox user, no size limit): read-only once built.
  add({"--remount-ro", "/"});
  add({"--chdir", spec.cwd.empty() ? "/" : spec.cwd.string(), "--"});
  return a;
}

}  // namespace customcode::pool
