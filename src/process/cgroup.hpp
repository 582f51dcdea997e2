#pragma once

#include "common/errors.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// Resource isolation of workers with cgroups (docs/security.md, "Resources"). Each worker, its
// whole process tree included (bubblewrap, the interpreter, whatever the function starts), runs in
// a cgroup of its own, `customcode-<service pid>-w<n>`, made beside the service in the service's
// own cgroup (no parent between: a parent's weight would be what a lowered worker competes with),
// with a memory ceiling that counts everything the tree uses (heap, buffers, tmpfs and shared
// memory, kernel memory), a process limit and a CPU class that the pool changes with what the
// worker does. cgroup v1 (one directory per hierarchy: memory, cpu, pids) and v2 (one directory,
// in a delegated subtree) are both supported.
namespace customcode::process {

enum class CgroupVersion { V1, V2 };

struct CgroupLimits {
  std::uint64_t memoryMax = 1024ull * 1024 * 1024;  // bytes, the whole tree; no swap beyond it
  std::uint64_t pidsMax = 128;                      // processes and threads of the whole tree
};

// Where this process's cgroups are, read from /proc/self/mountinfo and /proc/self/cgroup.
struct CgroupPlaces {
  std::optional<std::filesystem::path> unified;  // v2: the directory of our cgroup
  std::optional<std::filesystem::path> memory;   // v1: our cgroup in each hierarchy
  std::optional<std::filesystem::path> cpu;
  std::optional<std::filesystem::path> pids;
};
// `prefix` is prepended to every mount point (tests point it at a fake tree).
CgroupPlaces findCgroups(std::string_view mountinfo, std::string_view procSelfCgroup,
                         const std::filesystem::path& prefix = {});

// How much CPU a worker's tree may take against the others (docs/decisions.md, "Resource
// isolation with cgroups").
enum class CpuClass {
  Normal,  // the default weight: short runs of every workspace share the CPU evenly
  Low,     // the lowest weight: a long call, a run past its timeout, the worker after a stuck one
};

// One worker's cgroup: a directory per hierarchy (v1) or one (v2). Not thread-safe; its file
// calls are tiny writes to cgroupfs, made from the event loop. Destroying it kills what is left
// in it and removes it (blocking, bounded).
class WorkerCgroup {
 public:
  WorkerCgroup(CgroupVersion version, std::vector<std::filesystem::path> dirs);
  ~WorkerCgroup();
  WorkerCgroup(const WorkerCgroup&) = delete;
  WorkerCgroup& operator=(const WorkerCgroup&) = delete;

  // The cgroup.procs file of each directory, open for writing (close-on-exec): the child of
  // spawnProcess writes its pid to each before anything else (LaunchSpec::joinCgroups). The
  // caller closes them once the child is started.
  Result<std::vector<int>> openProcs() const;

  // Sets the CPU class of the whole tree. Returns false when a file could not be written.
  bool setCpuClass(CpuClass cpu);
  CpuClass cpuClass() const { return cpu_; }

  // A descriptor that turns readable when the kernel's OOM killer may have acted in the cgroup
  // (v1: an eventfd registered through cgroup.event_control on memory.oom_control; v2: an inotify
  // watch of memory.events); then read oomKills(). Owned by the caller; -1 when it cannot be had.
  int openOomNotifier() const;

  // How many processes of the tree the kernel killed for reaching the memory ceiling.
  std::uint64_t oomKills() const;

  // SIGKILLs every process in the cgroup (v2: cgroup.kill), also those that left the worker's
  // process group or session.
  void killAll() const;

  // Kills what is left and removes the directories, waiting for the members' exits (their
  // pidfds) rather than retrying on a timer; true once removed, false when `deadline` passed
  // first (the directories then stay to the destructor or the next start's clean-up).
  boost::asio::awaitable<bool> remove(boost::asio::any_io_executor executor,
                                      std::chrono::steady_clock::time_point deadline);
  bool removed() const { return dirs_.empty(); }

  std::uint64_t memoryMax() const { return memoryMax_; }
  const std::vector<std::filesystem::path>& dirsForTest() const { return dirs_; }

 private:
  friend class Cgroups;
  bool tryRemove();  // rmdir of each directory; false (errno set) while processes remain

  CgroupVersion version_;
  std::vector<std::filesystem::path> dirs_;  // v1: memory, cpu, [pids]; v2: one
  std::uint64_t memoryMax_ = 0;
  CpuClass cpu_ = CpuClass::Normal;
};

// Where Cgroups reads which cgroups this process is in.
struct CgroupSources {
  std::filesystem::path mountinfo = "/proc/self/mountinfo";
  std::filesystem::path procSelfCgroup = "/proc/self/cgroup";
  std::filesystem::path prefix;  // prepended to mount points (tests: a fake tree)
};

// The service's cgroups. Owned by Server; used from the event loop.
class Cgroups {
 public:
  using Sources = CgroupSources;
  static constexpr std::string_view kPrefix = "customcode-";
  // v2: where the service's own processes move when its cgroup must hand controllers to children
  // (a cgroup with processes cannot, unless it is the root).
  static constexpr std::string_view kServiceLeaf = "customcode-service";

  explicit Cgroups(Sources sources = {});
  ~Cgroups();  // removes what workers left (once every worker is gone)
  Cgroups(const Cgroups&) = delete;
  Cgroups& operator=(const Cgroups&) = delete;

  // Finds the hierarchies, removes the cgroups that instances no longer running left behind
  // (a service killed with SIGKILL), and checks that this instance may make cgroups there.
  // Returns why cgroups cannot be used here, or an empty string.
  std::string prepare(CgroupLimits limits, pid_t self);

  bool enabled() const { return version_.has_value(); }
  std::optional<CgroupVersion> version() const { return version_; }
  // "cgroup-v1", "cgroup-v2", or "rlimits" (not enabled).
  const char* modeName() const;

  // A new cgroup for one worker, with the limits set, in CPU class `cpu`. Fails with SpawnFailed.
  Result<std::unique_ptr<WorkerCgroup>> create(CpuClass cpu = CpuClass::Normal);

  // The service's own cgroups, where the workers' are made (v1: memory, cpu, [pids]).
  const std::vector<std::filesystem::path>& placesForTest() const { return owns_; }

 private:
  std::string prepareV1(const CgroupPlaces& places);
  std::string prepareV2(const std::filesystem::path& own);
  std::string probe(const std::vector<std::filesystem::path>& owns) const;
  void removeStale(const std::filesystem::path& own) const;

  Sources sources_;
  CgroupLimits limits_;
  std::optional<CgroupVersion> version_;
  std::vector<std::filesystem::path> owns_;  // v1: memory, cpu, [pids]; v2: one
  std::string ownPrefix_;                    // customcode-<self>-w
  bool v1HasPids_ = false;
  bool v2HasPids_ = false;
  std::uint64_t next_ = 0;
};

}  // namespace customcode::process
