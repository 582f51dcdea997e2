#include "process/launcher.hpp"

#include <fcntl.h>
#include <grp.h>
#include <linux/close_range.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <utility>
#include <unordered_set>

namespace customcode::process {
namespace {

// cgroup v1 has a directory per hierarchy (memory, cpu, pids); v2 one.
constexpr std::size_t kMaxCgroupFds = 4;

std::mutex gSpawnedMutex;
std::unordered_set<pid_t> gSpawned;  // see spawnedHere()

struct Pipe {
  int read = -1;
  int write = -1;
};

bool makePipe(Pipe& p) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return false;
  p = {fds[0], fds[1]};
  return true;
}

void closeFd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

// In the child, between fork and exec: async-signal-safe calls only. Reports a failure as
// (step, errno) on `status` and exits.
[[noreturn]] void childFail(int status, int step) {
  int payload[2] = {step, errno};
  [[maybe_unused]] auto n = ::write(status, payload, sizeof payload);
  ::_exit(127);
}

void setLimit(int resource, const std::optional<std::uint64_t>& value, int status, int step) {
  if (!value) return;
  // A cap: where the service's own hard limit is lower already (e.g. RLIMIT_NOFILE 256), the child
  // keeps that one; raising it would need CAP_SYS_RESOURCE and would loosen the limit.
  struct rlimit current {};
  rlim_t wanted = static_cast<rlim_t>(*value);
  if (::getrlimit(resource, &current) == 0 && current.rlim_max < wanted) wanted = current.rlim_max;
  struct rlimit limit {wanted, wanted};
  if (::setrlimit(resource, &limit) != 0) childFail(status, step);
}

const char* stepName(int step) {
  switch (step) {
    case 1: return "dup";
    case 2: return "setpgid";
    case 3: return "setrlimit";
    case 4: return "chdir";
    case 5: return "setgid";
    case 6: return "setuid";
    case 7: return "prctl";
    case 8: return "exec";
    case 9: return "setns";
    case 10: return "private bind mount";
    case 11: return "sandbox set-up";
    case 12: return "joining the worker's cgroup";
    default: return "start";
  }
}

// Writes the child's pid to each cgroup.procs (async-signal-safe: no allocation, no stdio).
bool joinCgroups(const int* procs, std::size_t count) {
  char digits[24];
  std::size_t at = sizeof digits;
  for (auto value = static_cast<unsigned long>(::getpid()); at == sizeof digits || value > 0; value /= 10)
    digits[--at] = static_cast<char>('0' + value % 10);
  for (std::size_t i = 0; i < count; ++i)
    if (::write(procs[i], digits + at, sizeof digits - at) < 0) return false;
  return true;
}

// After the hand-off (see spawnProcess) the parent no longer reads the status pipe: a failure goes
// to the child's output, which the worker logs and reports as why it failed to start.
[[noreturn]] void childFailLate(const char* program, int step) {
  const char* name = ::strerrorname_np(errno);
  const char* parts[] = {"customcode: cannot start ", program, ": ", stepName(step), " failed: ", name ? name : "?", "\n"};
  for (const char* part : parts) [[maybe_unused]] auto n = ::write(2, part, std::strlen(part));
  ::_exit(127);
}

}  // namespace

Result<ChildProcess> spawnProcess(const LaunchSpec& spec) {
  if (spec.argv.empty()) throw std::logic_error("spawnProcess: empty argv");
  std::vector<char*> argv;
  for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& e : spec.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  Pipe requests, frames, output, status;
  if (!makePipe(requests) || !makePipe(frames) || !makePipe(output) || !makePipe(status)) {
    int err = errno;
    for (auto* p : {&requests, &frames, &output, &status}) closeFd(p->read), closeFd(p->write);
    return Error{Errc::SpawnFailed, std::string("cannot create pipes: ") + std::strerror(err)};
  }
  int devNull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  const pid_t parent = ::getpid();

  if (spec.joinCgroups.size() > kMaxCgroupFds) throw std::logic_error("spawnProcess: too many cgroups to join");
  int cgroupFds[kMaxCgroupFds] = {-1, -1, -1, -1};

  // Registered under the lock it was forked under, so the subreaper never sees it unregistered.
  std::unique_lock spawnedLock(gSpawnedMutex);
  pid_t pid = ::fork();
  if (pid == 0) {
    for (int ns : spec.joinNamespaces)
      if (::setns(ns, 0) != 0) childFail(status.write, 9);
    // Move every fd we keep above 10 first, so the dup2s below cannot clobber one another.
    int in = ::fcntl(requests.read, F_DUPFD_CLOEXEC, 10);
    int outFrames = ::fcntl(frames.write, F_DUPFD_CLOEXEC, 10);
    int out = ::fcntl(output.write, F_DUPFD_CLOEXEC, 10);
    int st = ::fcntl(status.write, F_DUPFD_CLOEXEC, 10);
    if (in < 0 || outFrames < 0 || out < 0 || st < 0) childFail(status.write, 1);
    // The cgroup.procs files, written just before exec (joinCgroups), are kept too.
    int keep[1 + kMaxCgroupFds] = {st};
    std::size_t kept = 1;
    for (std::size_t i = 0; i < spec.joinCgroups.size(); ++i) {
      cgroupFds[i] = ::fcntl(spec.joinCgroups[i], F_DUPFD_CLOEXEC, 10);
      if (cgroupFds[i] < 0) childFail(st, 1);
      keep[kept++] = cgroupFds[i];
    }
    if (::dup2(devNull, 0) < 0 || ::dup2(out, 1) < 0 || ::dup2(out, 2) < 0 || ::dup2(in, 3) < 0 ||
        ::dup2(outFrames, 4) < 0)
      childFail(st, 1);
    // The status pipe stays open (close-on-exec) so that a successful exec closes it; every other
    // descriptor above 4 but those kept is closed.
    for (std::size_t i = 1; i < kept; ++i)
      for (std::size_t j = i; j > 0 && keep[j - 1] > keep[j]; --j) std::swap(keep[j - 1], keep[j]);
    unsigned from = 5;
    for (std::size_t i = 0; i < kept; ++i) {
      auto fd = static_cast<unsigned>(keep[i]);
      if (fd > from) ::syscall(SYS_close_range, from, fd - 1, 0u);
      from = fd + 1;
    }
    ::syscall(SYS_close_range, from, ~0u, 0u);
    if (::setpgid(0, 0) != 0) childFail(st, 2);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int sig : {SIGPIPE, SIGTERM, SIGINT, SIGCHLD}) ::signal(sig, SIG_DFL);
    const auto& l = spec.limits;
    setLimit(RLIMIT_NPROC, l.processes, st, 3);
    setLimit(RLIMIT_NOFILE, l.openFiles, st, 3);
    setLimit(RLIMIT_FSIZE, l.fileSize, st, 3);
    setLimit(RLIMIT_CPU, l.cpuSeconds, st, 3);
    setLimit(RLIMIT_AS, l.addressSpace, st, 3);
    setLimit(RLIMIT_DATA, l.dataSize, st, 3);
    setLimit(RLIMIT_CORE, l.coreSize, st, 3);
    if (!spec.cwd.empty() && ::chdir(spec.cwd.c_str()) != 0) childFail(st, 4);
    if (!spec.privateBinds.empty()) {
      if (::unshare(CLONE_NEWNS) != 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) != 0)
        childFail(st, 10);
      for (const auto& [source, target] : spec.privateBinds)
        if (::mount(source.c_str(), target.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) childFail(st, 10);
    }
    if (spec.gid && (::setgroups(0, nullptr) != 0 || ::setresgid(*spec.gid, *spec.gid, *spec.gid) != 0))
      childFail(st, 5);
    if (spec.uid && ::setresuid(*spec.uid, *spec.uid, *spec.uid) != 0) childFail(st, 6);
    // After the uid switch: changing credentials clears the parent-death signal.
    if (spec.dieWithParent && ::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) childFail(st, 7);
    if (::getppid() != parent) ::_exit(127);  // the service died before prctl took effect
    if (spec.beforeExec && !spec.beforeExec(spec.beforeExecContext.get())) childFail(st, 11);
    if (!spec.joinCgroups.empty()) {
      // Last, just before exec: nothing of the worker runs outside its cgroups, and the set-up
      // above runs at the service's CPU weight, not at a spare's idle one. The descriptors were
      // opened by the service (root), whose credentials the kernel checks, so the uid switch above
      // does not stop the move. The parent stops waiting first (a zero step on the status pipe):
      // a move between cgroups can wait for an RCU grace period, 20-110 ms measured here on a busy
      // machine, and the parent is the service's event loop.
      int handOff[2] = {0, 0};
      if (::write(st, handOff, sizeof handOff) != static_cast<ssize_t>(sizeof handOff)) childFail(st, 1);
      if (!joinCgroups(cgroupFds, spec.joinCgroups.size())) childFailLate(argv[0], 12);
      ::execve(argv[0], argv.data(), envp.data());
      childFailLate(argv[0], 8);
    }
    ::execve(argv[0], argv.data(), envp.data());
    childFail(st, 8);
  }
  int forkErr = errno;
  if (pid > 0) gSpawned.insert(pid);
  spawnedLock.unlock();
  closeFd(requests.read);
  closeFd(frames.write);
  closeFd(output.write);
  closeFd(status.write);
  if (devNull >= 0) ::close(devNull);
  if (pid < 0) {
    closeFd(requests.write), closeFd(frames.read), closeFd(output.read), closeFd(status.read);
    return Error{Errc::SpawnFailed, std::string("cannot fork: ") + std::strerror(forkErr)};
  }
  // exec closes the status pipe; otherwise the child wrote why it failed, or a zero step: its
  // hand-off before joining its cgroups (then it reports a later failure on its output).
  int payload[2] = {0, 0};
  ssize_t n;
  do n = ::read(status.read, payload, sizeof payload);
  while (n < 0 && errno == EINTR);
  closeFd(status.read);
  if (n == static_cast<ssize_t>(sizeof payload) && payload[0] != 0) {
    int wstatus = 0;
    ::waitpid(pid, &wstatus, 0);
    closeFd(requests.write), closeFd(frames.read), closeFd(output.read);
    return Error{Errc::SpawnFailed, std::string("cannot start ") + spec.argv[0] + ": " +
                                        stepName(payload[0]) + " failed: " + std::strerror(payload[1])};
  }
  return ChildProcess{.pid = pid, .requests = requests.write, .frames = frames.read, .output = output.read};
}

bool spawnedHere(pid_t pid) {
  std::lock_guard lock(gSpawnedMutex);
  return gSpawned.contains(pid);
}

void forgetReapedSpawns() {
  std::lock_guard lock(gSpawnedMutex);
  // waitid without reaping: ECHILD when the pid is no child of ours any more.
  for (auto it = gSpawned.begin(); it != gSpawned.end();) {
    siginfo_t info{};
    if (::waitid(P_PID, static_cast<id_t>(*it), &info, WEXITED | WNOHANG | WNOWAIT) != 0 && errno == ECHILD)
      it = gSpawned.erase(it);
    else
      ++it;
  }
}

}  // namespace customcode::process
