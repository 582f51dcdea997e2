#pragma once

#include "common/errors.hpp"

#include <sys/types.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

// Starting a worker process. The child gets fd 3 (requests in), fd 4 (frames out), stdout and
// stderr on one pipe, stdin from /dev/null, no other fd, a process group of its own, and a
// parent-death signal so no worker outlives the service.
namespace customcode::process {

struct ResourceLimits {
  std::optional<std::uint64_t> processes;     // RLIMIT_NPROC
  std::optional<std::uint64_t> openFiles;     // RLIMIT_NOFILE
  std::optional<std::uint64_t> fileSize;      // RLIMIT_FSIZE, bytes
  std::optional<std::uint64_t> cpuSeconds;    // RLIMIT_CPU
  std::optional<std::uint64_t> addressSpace;  // RLIMIT_AS, bytes
  std::optional<std::uint64_t> dataSize;      // RLIMIT_DATA, bytes (private writable memory)
  std::optional<std::uint64_t> coreSize = 0;  // RLIMIT_CORE: no core dumps of user code
};

struct LaunchSpec {
  std::vector<std::string> argv;  // argv[0] is an absolute path
  std::vector<std::string> env;   // the whole environment, NAME=value
  std::filesystem::path cwd;
  ResourceLimits limits;
  // A parent-death signal (SIGKILL) for the child. Off for bubblewrap, which sets its own once
  // its sandbox is released: killed before that, it would leave the sandbox's first process
  // blocked forever, waiting for it.
  bool dieWithParent = true;
  std::optional<uid_t> uid;  // switch to this uid/gid before exec
  std::optional<gid_t> gid;
  // Before the uid switch, in a mount namespace of the child's own: each `source` directory is
  // bound onto its `target` mount point, so the new uid can reach directories whose parents it
  // could not search (see sandbox/sandbox.hpp). Needs CAP_SYS_ADMIN.
  std::vector<std::pair<std::filesystem::path, std::filesystem::path>> privateBinds;
  // After the uid switch, just before exec (async-signal-safe code only): what the sandbox adds
  // without namespaces (no_new_privs, a seccomp filter). Returns false, errno set, on failure.
  bool (*beforeExec)(const void* context) = nullptr;
  std::shared_ptr<const void> beforeExecContext;
  // Namespaces (open /proc/PID/ns/* fds, in order) the child joins first (network/worker_network.hpp).
  std::vector<int> joinNamespaces;
  // cgroup.procs files (open for writing) the child writes its pid to just before exec, so that
  // its whole tree is in its cgroups from the start (process/cgroup.hpp). Owned by the caller.
  std::vector<int> joinCgroups;
};

// The parent's ends of a started child. The caller owns the fds.
struct ChildProcess {
  pid_t pid = -1;
  int requests = -1;  // write end of the child's fd 3
  int frames = -1;    // read end of the child's fd 4
  int output = -1;    // read end of the child's stdout and stderr
};

// Forks and execs. Fails with SpawnFailed, saying why exec failed (e.g. a missing interpreter).
Result<ChildProcess> spawnProcess(const LaunchSpec& spec);

// Whether `pid` is a child spawnProcess started and its owner has not reaped yet: the subreaper
// (app/process_setup.hpp) tells the service's own children from the orphans it adopted, whose
// exit nobody else waits for. Thread-safe.
bool spawnedHere(pid_t pid);
// Forgets the pids spawnProcess started that are no child of ours any more (reaped by their owner).
void forgetReapedSpawns();

}  // namespace customcode::process
