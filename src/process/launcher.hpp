#pragma once

#include "common/errors.hpp"

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>
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
  std::optional<uid_t> uid;  // switch to this uid/gid before exec
  std::optional<gid_t> gid;
  // Namespaces (open /proc/PID/ns/* fds, in order) the child joins first (network/worker_network.hpp).
  std::vector<int> joinNamespaces;
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

}  // namespace customcode::process
