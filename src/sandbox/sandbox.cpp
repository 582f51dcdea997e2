#include "sandbox/sandbox.hpp"

#include "common/log.hpp"
#include "network/worker_network.hpp"
#include "sandbox/confinement.hpp"
#include "process/child.hpp"

#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cerrno>
#include <random>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace customcode::sandbox {
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

fs::path interpreterPrefix(const fs::path& interpreter) {
  auto prefix = interpreter.parent_path().parent_path();
  if (prefix == prefix.root_path()) prefix = interpreter.parent_path();
  return prefix;
}

std::string firstLines(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  if (text.size() > 500) text = text.substr(0, 500) + "...";
  return text.empty() ? "no output" : text;
}

}  // namespace

const char* isolationName(Isolation isolation) {
  switch (isolation) {
    case Isolation::Bwrap: return "bwrap";
    case Isolation::Restricted: return "restricted";
    case Isolation::None: return "none";
  }
  return "none";
}

Sandbox::Sandbox(config::SandboxConfig config)
    : config_(std::move(config)), nextUid_(static_cast<uid_t>(std::random_device{}() % kRestrictedUidCount)) {}

Sandbox::~Sandbox() {
  if (stageDir_.empty()) return;
  for (std::size_t i = 0; i < kStageSlots; ++i) ::rmdir((stageDir_ / std::to_string(i)).c_str());
  ::rmdir(stageDir_.c_str());
}

std::string Sandbox::describe() const {
  switch (isolation_) {
    case Isolation::Bwrap:
      return std::string("bubblewrap (") + (switchUser_ ? "uid 65534" : "the service's uid") +
             ", private namespaces, read-only workspace" +
             (switchUser_ ? (stageDir_.empty() ? ", directories bound by path" : ", directories bound from a private mount namespace") : "") +
             ")";
    case Isolation::Restricted:
      return std::string("restricted (no namespaces: ") +
             (switchUser_ ? "a uid of its own per worker" : "the service's uid") +
             ", no_new_privs, Landlock file rules, seccomp filter, resource limits)";
    case Isolation::None: break;
  }
  return "none (workers are NOT isolated from the host)";
}

std::vector<std::string> Sandbox::prepare(const std::vector<fs::path>& mustSee) {
  using Mode = config::SandboxConfig::Mode;
  std::vector<std::string> problems;
  prepared_ = true;
  switchUser_ = ::geteuid() == 0;
  isolation_ = Isolation::None;
  if (config_.mode == Mode::None) {
    warnings_.push_back("SANDBOX=none: workers run without OS isolation; a function can read what the "
                        "service can read and reach its processes (see docs/security.md)");
    return problems;
  }
  std::string bwrapFailure = "not tried (SANDBOX=restricted)";
  if (config_.mode != Mode::Restricted) {
    // A root service binds through a private mount namespace, so that no parent directory's mode
    // matters; a container without CAP_SYS_ADMIN cannot make one, and binds by path.
    bwrapFailure = switchUser_ && makeStageDir() ? tryBwrap(mustSee, true) : "";
    if (!stageDir_.empty() && !bwrapFailure.empty()) {
      log::app()->info("sandbox: bubblewrap through a private mount namespace failed ({}); trying binds by path",
                       bwrapFailure);
      stageDir_.clear();
    }
    if (stageDir_.empty()) bwrapFailure = tryBwrap(mustSee, false);
    if (bwrapFailure.empty()) {
      isolation_ = Isolation::Bwrap;
      log::app()->info("sandbox: {}", describe());
      return problems;
    }
    if (config_.mode == Mode::Bwrap) {
      problems.push_back("SANDBOX=bwrap: bubblewrap cannot start a worker sandbox here: " + bwrapFailure);
      return problems;
    }
    log::app()->warn("sandbox: bubblewrap cannot start a worker sandbox here ({}); trying the restricted mode",
                     bwrapFailure);
  }
  auto restrictedFailure = tryRestricted(mustSee);
  if (restrictedFailure.empty()) {
    isolation_ = Isolation::Restricted;
    log::app()->info("sandbox: {}", describe());
    warnings_.push_back("SANDBOX=" + std::string(config_.mode == Mode::Restricted ? "restricted" : "auto") +
                        ": workers run in the restricted mode, without namespaces (bubblewrap: " + bwrapFailure +
                        "); see docs/security.md for what it does not stop");
    return problems;
  }
  if (config_.mode == Mode::Restricted) {
    problems.push_back("SANDBOX=restricted: the restricted mode cannot start a worker here: " + restrictedFailure);
    return problems;
  }
  warnings_.push_back("SANDBOX=auto: bubblewrap cannot start a worker sandbox here (" + bwrapFailure +
                      ") nor can the restricted mode (" + restrictedFailure +
                      "); workers run WITHOUT OS isolation. Fix the cause, or set SANDBOX=none to accept it "
                      "(see docs/security.md)");
  return problems;
}

bool Sandbox::makeStageDir() {
  std::string pattern = "/tmp/customcode-binds-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) return false;
  stageDir_ = pattern;
  bool ok = ::chmod(stageDir_.c_str(), 0755) == 0;
  for (std::size_t i = 0; ok && i < kStageSlots; ++i) ok = ::mkdir((stageDir_ / std::to_string(i)).c_str(), 0755) == 0;
  return ok;
}

std::string Sandbox::tryBwrap(const std::vector<fs::path>& mustSee, bool staged) {
  if (config_.testNoNamespaces) return "namespaces refused by SANDBOX_TEST_NO_NAMESPACES (a test switch)";
  if (::access(config_.bwrapPath.c_str(), X_OK) != 0)
    return config_.bwrapPath.string() + " is not an executable (install bubblewrap)";
  if (::access(kPrlimit.c_str(), X_OK) != 0) return kPrlimit.string() + " is missing (install util-linux)";
  if (!staged) stageDir_.clear();
  LaunchSpec check;
  check.argv = {"/bin/true"};
  check.env = {"PATH=/usr/bin:/bin"};
  check.cwd = "/";
  SandboxView view;
  view.readOnly = mustSee;
  return probe(wrapInBwrap(std::move(check), view));
}

std::string Sandbox::tryRestricted(const std::vector<fs::path>& mustSee) {
  if (landlockAbi() < 1) return "the kernel has no Landlock (Linux 5.13 or later, with landlock in its LSM list)";
  std::string error;
  seccomp_ = SeccompFilter::compile(error);
  if (!seccomp_) return "cannot build the seccomp filter: " + error;
  // Workers that share the service's uid could otherwise read its /proc/<pid>/environ.
  if (!switchUser_ && ::prctl(PR_SET_DUMPABLE, 0) != 0) return std::string("prctl(PR_SET_DUMPABLE): ") + std::strerror(errno);
  LaunchSpec check;
  check.argv = {"/bin/ls", "-d", "--"};
  for (const auto& dir : mustSee) check.argv.push_back(dir.string());
  check.env = {"PATH=/usr/bin:/bin"};
  check.cwd = "/";
  SandboxView view;
  view.readOnly = mustSee;
  return probe(confine(std::move(check), view));
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
  switch (isolation_) {
    case Isolation::Bwrap: return wrapInBwrap(std::move(spec), view);
    case Isolation::Restricted: return confine(std::move(spec), view);
    case Isolation::None: break;
  }
  setLimits(spec, view);
  return spec;  // RLIMIT_NPROC counts the whole uid outside a user namespace
}

void Sandbox::setLimits(LaunchSpec& spec, const SandboxView& view) const {
  auto& limits = spec.limits;
  limits.openFiles = kMaxOpenFiles;
  limits.fileSize = config_.tmpMaxBytes;
  limits.cpuSeconds = kMaxCpuSeconds;
  if (view.memory == SandboxView::Memory::Data) limits.dataSize = config_.memoryMaxBytes;
  else limits.addressSpace = config_.memoryMaxBytes;
}

LaunchSpec Sandbox::wrapInBwrap(LaunchSpec spec, const SandboxView& view) const {
  setLimits(spec, view);
  std::vector<fs::path> sources = view.readOnly;
  if (!stageDir_.empty()) {
    if (view.readOnly.size() > kStageSlots) throw std::logic_error("Sandbox: more directories than stage slots");
    for (std::size_t i = 0; i < view.readOnly.size(); ++i) {
      sources[i] = stageDir_ / std::to_string(i);
      spec.privateBinds.emplace_back(view.readOnly[i], sources[i]);
    }
  }
  auto args = bwrapArguments(spec, view, sources);
  args.push_back(kPrlimit.string());
  args.push_back("--nproc=" + std::to_string(kMaxProcesses));
  args.push_back("--");
  args.insert(args.end(), spec.argv.begin(), spec.argv.end());
  spec.argv = std::move(args);
  spec.dieWithParent = false;  // --die-with-parent
  if (switchUser_) {
    spec.uid = kSandboxUid;
    spec.gid = kSandboxGid;
  }
  if (network_ != nullptr) network_->join(spec);
  return spec;
}

LaunchSpec Sandbox::confine(LaunchSpec spec, const SandboxView& view) const {
  setLimits(spec, view);
  auto confinement = std::make_shared<Confinement>();
  confinement->seccomp = seccomp_;
  confinement->readable = {"/usr", "/proc"};
  for (const char* dir : kSystemDirs) confinement->readable.emplace_back(dir);
  for (const char* path : kEtcFiles) confinement->readableFiles.emplace_back(path);
  for (const char* device : {"/dev/urandom", "/dev/random", "/dev/zero"}) confinement->readableFiles.emplace_back(device);
  for (const auto& dir : view.readOnly) confinement->readable.push_back(dir.string());
  std::error_code ec;
  auto interpreter = fs::canonical(spec.argv.at(0), ec);
  if (!ec && !underSystemDir(interpreter)) confinement->readable.push_back(interpreterPrefix(interpreter).string());
  spec.beforeExec = &Confinement::apply;
  spec.beforeExecContext = std::move(confinement);
  if (network_ != nullptr) {
    network_->join(spec);
    // The isolated network's resolver configuration over the host's, in a mount namespace of the
    // worker's own (made before the uid switch and the confinement, which reads it afterwards).
    if (!network_->resolvConf().empty()) spec.privateBinds.emplace_back(network_->resolvConf(), "/etc/resolv.conf");
  }
  if (switchUser_) {
    // A uid of its own: the kernel then refuses its signals, ptrace and /proc reads towards the
    // service and every other worker, and RLIMIT_NPROC counts this worker alone.
    auto uid = kRestrictedUidBase + (nextUid_++ % kRestrictedUidCount);
    spec.uid = uid;
    spec.gid = uid;
    spec.limits.processes = kMaxProcesses;
  }
  return spec;
}

std::vector<std::string> Sandbox::bwrapArguments(const LaunchSpec& spec, const SandboxView& view,
                                                 const std::vector<fs::path>& sources) const {
  std::vector<std::string> a{config_.bwrapPath.string()};
  auto add = [&a](std::initializer_list<std::string> items) { a.insert(a.end(), items); };
  // Started as an unprivileged uid, bwrap makes a user namespace whose only uid is that one, so
  // nothing in the sandbox maps to root on the host. bwrap sets no_new_privs itself. A UTS namespace
  // of its own but no --hostname: container runtimes' default seccomp profiles (podman's, docker's)
  // refuse sethostname without CAP_SYS_ADMIN, and the sandbox would not start in a container.
  add({"--unshare-user", "--unshare-ipc", "--unshare-pid", "--unshare-uts", "--unshare-cgroup-try",
       "--disable-userns", "--die-with-parent", "--new-session", "--cap-drop", "ALL"});
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
  for (const char* path : kEtcFiles) {
    // The isolated network's resolver configuration replaces the host's (network/resolver.hpp).
    if (network_ != nullptr && !network_->resolvConf().empty() && std::string_view(path) == "/etc/resolv.conf")
      add({"--ro-bind", network_->resolvConf().string(), path});
    else
      add({"--ro-bind-try", path, path});
  }
  // bwrap's /dev is a tmpfs the sandbox user owns: read-only, or /dev/shm would be an unbounded
  // in-memory disk.
  add({"--proc", "/proc", "--dev", "/dev", "--remount-ro", "/dev"});
  add({"--perms", "1777", "--size", std::to_string(config_.tmpMaxBytes), "--tmpfs", "/tmp"});
  // After /tmp, so that a workspace or an interpreter that lives under /tmp on the host is bound
  // over the tmpfs.
  for (std::size_t i = 0; i < view.readOnly.size(); ++i) add({"--ro-bind", sources[i].string(), view.readOnly[i].string()});
  // An interpreter installed outside the system directories (e.g. /opt/node/bin/node): its prefix.
  auto interpreter = fs::canonical(spec.argv.at(0), ec);
  if (!ec && !underSystemDir(interpreter)) {
    auto prefix = interpreterPrefix(interpreter).string();
    add({"--ro-bind", prefix, prefix});
  }
  // The root is a tmpfs bwrap made (owned by the sandbox user, no size limit): read-only once built.
  add({"--remount-ro", "/"});
  add({"--chdir", spec.cwd.empty() ? "/" : spec.cwd.string(), "--"});
  return a;
}

}  // namespace customcode::sandbox
