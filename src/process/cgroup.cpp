#include "process/cgroup.hpp"

#include "common/files.hpp"
#include "common/log.hpp"
#include "common/text.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <map>
#include <sstream>

namespace customcode::process {
namespace fs = std::filesystem;
namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

constexpr std::uint64_t kSharesNormal = 1024;  // v1 cpu.shares default
constexpr std::uint64_t kSharesLow = 2;        // v1 minimum
constexpr std::uint64_t kWeightNormal = 100;   // v2 cpu.weight default
constexpr std::uint64_t kWeightLow = 1;        // v2 minimum
// Rounds of kill-and-wait before a removal gives up: a member may fork between the read of
// cgroup.procs and its kill, and its child is then caught by the next round.
constexpr int kRemoveRounds = 5;

std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  for (;;) {
    auto end = text.find(separator, start);
    parts.push_back(text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    if (end == std::string_view::npos) return parts;
    start = end + 1;
  }
}

bool hasWord(std::string_view list, std::string_view word, char separator) {
  for (auto item : split(list, separator))
    if (item == word) return true;
  return false;
}

// Writes `text` to a cgroup file. A required file is created if missing (a fake tree in tests;
// cgroupfs makes its files itself, and refuses to create others); an optional one is skipped when
// absent (a kernel without that knob). Returns false with errno set.
bool writeFile(const fs::path& path, std::string_view text, bool optional = false) {
  if (optional && ::access(path.c_str(), F_OK) != 0) return true;
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC | O_TRUNC | (optional ? 0 : O_CREAT), 0644);
  if (fd < 0) return false;
  auto n = ::write(fd, text.data(), text.size());
  int err = errno;
  ::close(fd);
  errno = err;
  return n == static_cast<ssize_t>(text.size());
}

std::string readText(const fs::path& path) { return files::readFile(path).value_or(""); }

std::vector<pid_t> pidsIn(const fs::path& dir) {
  std::vector<pid_t> pids;
  std::istringstream in(readText(dir / "cgroup.procs"));
  pid_t pid = 0;
  while (in >> pid) pids.push_back(pid);
  return pids;
}

// The value of `key` in a flat-keyed file ("oom_kill 3").
std::uint64_t keyedValue(std::string_view text, std::string_view key) {
  for (auto line : split(text, '\n')) {
    auto space = line.find(' ');
    if (space == std::string_view::npos || line.substr(0, space) != key) continue;
    std::uint64_t value = 0;
    auto rest = line.substr(space + 1);
    std::from_chars(rest.data(), rest.data() + rest.size(), value);
    return value;
  }
  return 0;
}

std::string errnoText(const std::string& what, const fs::path& path) {
  return what + " " + path.string() + ": " + std::strerror(errno);
}

// SIGKILLs the members of `dir` (v2: cgroup.kill where the kernel has it) and returns them.
std::vector<pid_t> killMembers(const fs::path& dir) {
  auto pids = pidsIn(dir);
  if (::access((dir / "cgroup.kill").c_str(), F_OK) == 0 && writeFile(dir / "cgroup.kill", "1", true)) return pids;
  for (pid_t pid : pids)
    if (pid > 0) ::kill(pid, SIGKILL);
  return pids;
}

int pidfdOf(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

bool removeDirs(std::vector<fs::path>& dirs) {
  while (!dirs.empty()) {
    if (::rmdir(dirs.back().c_str()) != 0 && errno != ENOENT) return false;
    dirs.pop_back();
  }
  return true;
}

// Blocking: kills what is in `dirs` and removes them, waiting for the members' exits on their
// pidfds (poll), at most `limit`. For the start-up clean-up and destructors, off the event loop's
// hot path. `dirs` is left with what could not be removed.
bool drainAndRemove(std::vector<fs::path>& dirs, std::chrono::milliseconds limit) {
  const auto until = std::chrono::steady_clock::now() + limit;
  for (int round = 0; round < kRemoveRounds; ++round) {
    if (removeDirs(dirs)) return true;
    if (errno != EBUSY) return false;
    std::vector<pollfd> exits;
    for (pid_t pid : killMembers(dirs.front())) {
      int fd = pidfdOf(pid);
      if (fd >= 0) exits.push_back(pollfd{.fd = fd, .events = POLLIN, .revents = 0});
    }
    for (auto& wait : exits) {
      int n = 0;
      do {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
        if (left.count() <= 0) break;
        n = ::poll(&wait, 1, static_cast<int>(left.count()));
      } while (n < 0 && errno == EINTR);
      ::close(wait.fd);
    }
    if (std::chrono::steady_clock::now() >= until) return removeDirs(dirs);
  }
  return removeDirs(dirs);
}

std::vector<fs::path> subdirectories(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec))
    if (it->is_directory(ec)) out.push_back(it->path());
  return out;
}

std::string commOf(pid_t pid) {
  auto text = readText("/proc/" + std::to_string(pid) + "/comm");
  while (!text.empty() && text.back() == '\n') text.pop_back();
  return text;
}

}  // namespace

// ---- Finding the hierarchies ----

CgroupPlaces findCgroups(std::string_view mountinfo, std::string_view procSelfCgroup, const fs::path& prefix) {
  struct Mount {
    std::string root;
    std::string point;
  };
  std::optional<Mount> unifiedMount;
  std::vector<std::pair<Mount, std::string>> v1Mounts;  // mount, its super options (controllers)
  for (auto line : split(mountinfo, '\n')) {
    auto dash = line.find(" - ");
    if (dash == std::string_view::npos) continue;
    auto fields = split(line.substr(0, dash), ' ');
    auto tail = split(line.substr(dash + 3), ' ');
    if (fields.size() < 5 || tail.size() < 3) continue;
    Mount mount{std::string(fields[3]), std::string(fields[4])};
    if (tail[0] == "cgroup2") {
      if (!unifiedMount) unifiedMount = mount;
    } else if (tail[0] == "cgroup") {
      v1Mounts.emplace_back(mount, std::string(tail[2]));
    }
  }
  // Our path in a hierarchy, under the mount point: a container without a cgroup namespace mounts
  // its own subtree (the mount's root), and /proc/self/cgroup shows the path from the real root.
  auto place = [&prefix](const Mount& mount, std::string_view path) -> std::optional<fs::path> {
    std::string_view relative = path;
    if (mount.root != "/") {
      if (!path.starts_with(mount.root)) return std::nullopt;
      relative = path.substr(mount.root.size());
    }
    while (relative.starts_with('/')) relative.remove_prefix(1);
    auto dir = (prefix.empty() ? fs::path("/") : prefix) / fs::path(mount.point).relative_path();
    if (!relative.empty()) dir /= fs::path(relative);
    return dir;
  };
  CgroupPlaces places;
  for (auto line : split(procSelfCgroup, '\n')) {
    auto parts = split(line, ':');
    if (parts.size() < 3) continue;
    auto controllers = parts[1];
    // The path may itself hold ':'.
    auto path = line.substr(parts[0].size() + parts[1].size() + 2);
    if (parts[0] == "0" && controllers.empty()) {
      if (unifiedMount) places.unified = place(*unifiedMount, path);
      continue;
    }
    for (const auto& [mount, options] : v1Mounts) {
      bool same = true;
      for (auto controller : split(controllers, ','))
        if (!hasWord(options, controller, ',')) same = false;
      if (!same) continue;
      auto dir = place(mount, path);
      if (hasWord(controllers, "memory", ',')) places.memory = dir;
      if (hasWord(controllers, "cpu", ',')) places.cpu = dir;
      if (hasWord(controllers, "pids", ',')) places.pids = dir;
      break;
    }
  }
  return places;
}

// ---- One worker's cgroup ----

WorkerCgroup::WorkerCgroup(CgroupVersion version, std::vector<fs::path> dirs)
    : version_(version), dirs_(std::move(dirs)) {}

WorkerCgroup::~WorkerCgroup() {
  if (dirs_.empty()) return;
  if (!drainAndRemove(dirs_, 200ms))
    log::pool()->warn("cgroups: {} still has processes; the next start removes it", dirs_.front().string());
}

Result<std::vector<int>> WorkerCgroup::openProcs() const {
  std::vector<int> fds;
  for (const auto& dir : dirs_) {
    int fd = ::open((dir / "cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
      auto message = errnoText("cannot open", dir / "cgroup.procs");
      for (int open : fds) ::close(open);
      return Error{Errc::SpawnFailed, message};
    }
    fds.push_back(fd);
  }
  return fds;
}

bool WorkerCgroup::setCpuClass(CpuClass cpu) {
  if (dirs_.empty()) return false;
  if (cpu == cpu_) return true;
  const bool v1 = version_ == CgroupVersion::V1;
  const auto& dir = v1 ? dirs_.at(1) : dirs_.front();
  const bool low = cpu == CpuClass::Low;
  const char* weightFile = v1 ? "cpu.shares" : "cpu.weight";
  auto weight = v1 ? (low ? kSharesLow : kSharesNormal) : (low ? kWeightLow : kWeightNormal);
  // The lowest weight, not the idle policy (cpu.idle): measured paired here, a spinner in the
  // idle policy (and a SCHED_IDLE shell loop) cost a neighbour's p99 more than one at nice 19
  // (docs/decisions.md). cpu.idle is cleared in case someone set it: the kernel refuses a weight
  // while a group is idle.
  bool ok = writeFile(dir / "cpu.idle", "0", true);
  ok = writeFile(dir / weightFile, std::to_string(weight)) && ok;
  cpu_ = cpu;
  return ok;
}

int WorkerCgroup::openOomNotifier() const {
  if (dirs_.empty()) return -1;
  const auto& dir = dirs_.front();
  if (version_ == CgroupVersion::V2) {
    int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0) return -1;
    if (::inotify_add_watch(fd, (dir / "memory.events").c_str(), IN_MODIFY) < 0) {
      ::close(fd);
      return -1;
    }
    return fd;
  }
  // v1: "<eventfd> <fd of memory.oom_control>" written to cgroup.event_control; the eventfd counts
  // the OOM events from then on. The control file may be closed once registered.
  int event = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (event < 0) return -1;
  int control = ::open((dir / "memory.oom_control").c_str(), O_RDONLY | O_CLOEXEC);
  bool ok = control >= 0 &&
            writeFile(dir / "cgroup.event_control", std::to_string(event) + " " + std::to_string(control));
  if (control >= 0) ::close(control);
  if (!ok) {
    ::close(event);
    return -1;
  }
  return event;
}

std::uint64_t WorkerCgroup::oomKills() const {
  if (dirs_.empty()) return 0;
  if (version_ == CgroupVersion::V1) return keyedValue(readText(dirs_.front() / "memory.oom_control"), "oom_kill");
  return keyedValue(readText(dirs_.front() / "memory.events"), "oom_kill");
}

void WorkerCgroup::killAll() const {
  if (dirs_.empty()) return;
  // v1 (or v2 before Linux 5.14): one by one. A process forking meanwhile is caught by the next
  // round of remove().
  killMembers(dirs_.front());
}

bool WorkerCgroup::tryRemove() { return removeDirs(dirs_); }

asio::awaitable<bool> WorkerCgroup::remove(asio::any_io_executor executor,
                                           std::chrono::steady_clock::time_point deadline) {
  using Descriptor = asio::posix::stream_descriptor;
  for (int round = 0; round < kRemoveRounds && !dirs_.empty(); ++round) {
    if (tryRemove()) co_return true;
    if (errno != EBUSY || std::chrono::steady_clock::now() >= deadline) co_return false;
    // Busy: processes of the tree are still exiting (the sandbox's own, killed with the worker).
    // Each member's pidfd turns readable at its exit, when it has left the cgroup.
    auto exits = std::make_shared<std::vector<std::unique_ptr<Descriptor>>>();
    for (pid_t pid : killMembers(dirs_.front())) {
      int fd = pidfdOf(pid);
      if (fd >= 0) exits->push_back(std::make_unique<Descriptor>(executor, fd));
    }
    asio::steady_timer limit(executor, deadline);
    limit.async_wait([exits](boost::system::error_code ec) {
      if (ec) return;
      for (auto& exit : *exits) exit->cancel();
    });
    for (auto& exit : *exits) co_await exit->async_wait(Descriptor::wait_read, asio::as_tuple(asio::use_awaitable));
    limit.cancel();
  }
  co_return tryRemove();
}

// ---- The service's cgroups ----

Cgroups::Cgroups(Sources sources) : sources_(std::move(sources)) {}

Cgroups::~Cgroups() {
  // Workers are gone by now; whatever a worker left (it could not be removed in time) goes too.
  for (const auto& own : owns_)
    for (const auto& dir : subdirectories(own))
      if (dir.filename().string().starts_with(ownPrefix_)) {
        std::vector<fs::path> dirs{dir};
        drainAndRemove(dirs, 1000ms);
      }
}

const char* Cgroups::modeName() const {
  if (!version_) return "rlimits";
  return *version_ == CgroupVersion::V1 ? "cgroup-v1" : "cgroup-v2";
}

std::string Cgroups::prepare(CgroupLimits limits, pid_t self) {
  limits_ = limits;
  ownPrefix_ = std::string(kPrefix) + std::to_string(self) + "-w";
  auto mountinfo = files::readFile(sources_.mountinfo);
  auto ours = files::readFile(sources_.procSelfCgroup);
  if (!mountinfo || !ours)
    return "cannot read " + sources_.mountinfo.string() + " or " + sources_.procSelfCgroup.string();
  auto places = findCgroups(*mountinfo, *ours, sources_.prefix);
  // v2 where its memory and cpu controllers reach our cgroup (a v2-only host, a container with a
  // delegated subtree); else v1 (a v1 or hybrid host, where those controllers are v1's).
  std::string v2Failure = "no cgroup2 file system mounted";
  if (places.unified) {
    auto controllers = readText(*places.unified / "cgroup.controllers");
    if (hasWord(text::trim(controllers), "memory", ' ') && hasWord(text::trim(controllers), "cpu", ' ')) {
      v2Failure = prepareV2(*places.unified);
      if (v2Failure.empty()) return {};
    } else {
      v2Failure = "the memory and cpu controllers are not available in " + places.unified->string() +
                  " (cgroup.controllers: \"" + std::string(text::trim(controllers)) + "\")";
    }
  }
  if (places.memory && places.cpu) {
    auto v1Failure = prepareV1(places);
    if (v1Failure.empty()) return {};
    return "cgroup v2: " + v2Failure + "; cgroup v1: " + v1Failure;
  }
  return "cgroup v2: " + v2Failure + "; cgroup v1: no memory and cpu hierarchies of this process";
}

// Whether the service may make cgroups in each of `owns`: a probe directory made and removed.
std::string Cgroups::probe(const std::vector<fs::path>& owns) const {
  for (const auto& own : owns) {
    auto dir = own / (ownPrefix_ + "probe");
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return errnoText("cannot make", dir);
    ::rmdir(dir.c_str());
  }
  return {};
}

std::string Cgroups::prepareV1(const CgroupPlaces& places) {
  std::vector<fs::path> owns{*places.memory, *places.cpu};
  if (places.pids) owns.push_back(*places.pids);
  for (const auto& own : owns) removeStale(own);
  if (auto why = probe(owns); !why.empty()) return why;
  owns_ = std::move(owns);
  v1HasPids_ = places.pids.has_value();
  version_ = CgroupVersion::V1;
  return {};
}

std::string Cgroups::prepareV2(const fs::path& own) {
  removeStale(own);
  const bool pids = hasWord(text::trim(readText(own / "cgroup.controllers")), "pids", ' ');
  const std::string enable = pids ? "+memory +cpu +pids" : "+memory +cpu";
  auto subtree = text::trim(readText(own / "cgroup.subtree_control"));
  if (!hasWord(subtree, "memory", ' ') || !hasWord(subtree, "cpu", ' ') || (pids && !hasWord(subtree, "pids", ' '))) {
    // A cgroup that holds processes cannot give controllers to its children (the root excepted,
    // which has no cgroup.freeze): its processes, the service's, move to a leaf of their own first.
    auto members = pidsIn(own);
    if (!members.empty() && ::access((own / "cgroup.freeze").c_str(), F_OK) == 0) {
      auto leaf = own / kServiceLeaf;
      if (::mkdir(leaf.c_str(), 0755) != 0 && errno != EEXIST) return errnoText("cannot make", leaf);
      for (pid_t pid : members)
        if (!writeFile(leaf / "cgroup.procs", std::to_string(pid)) && errno != ESRCH)
          return errnoText("cannot move process " + std::to_string(pid) + " to", leaf);
      log::app()->info("cgroups: moved the {} process(es) of {} to {}, so that it may hand its controllers to the "
                       "workers' cgroups",
                       members.size(), own.string(), leaf.string());
    }
    if (!writeFile(own / "cgroup.subtree_control", enable))
      return errnoText("cannot enable the controllers (" + enable + ") in", own / "cgroup.subtree_control");
  }
  if (auto why = probe({own}); !why.empty()) return why;
  owns_ = {own};
  v2HasPids_ = pids;
  version_ = CgroupVersion::V2;
  return {};
}

// Worker cgroups are named customcode-<service pid>-w<n>; those of a service no longer running (a
// SIGKILL) are removed.
void Cgroups::removeStale(const fs::path& own) const {
  static const std::string ourComm = commOf(::getpid());
  std::map<pid_t, std::pair<std::size_t, std::size_t>> owners;  // removed, left
  for (const auto& dir : subdirectories(own)) {
    const auto filename = dir.filename().string();
    auto name = std::string_view(filename);
    if (!name.starts_with(kPrefix)) continue;
    name.remove_prefix(kPrefix.size());
    pid_t owner = 0;
    auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), owner);
    if (ec != std::errc{} || owner <= 0 || std::string_view(end, name.data() + name.size() - end).rfind("-w", 0) != 0)
      continue;  // customcode-service, or not ours
    // Stale: its service is gone (or the pid now belongs to another program, or to us).
    if (owner != ::getpid() && ::kill(owner, 0) == 0 && commOf(owner) == ourComm) continue;
    std::vector<fs::path> dirs{dir};
    auto& [removed, left] = owners[owner];
    ++(drainAndRemove(dirs, 1000ms) ? removed : left);
  }
  for (const auto& [owner, counts] : owners)
    log::app()->info("cgroups: removed {} worker cgroup(s) of an instance no longer running (pid {}) from {}{}",
                     counts.first, owner, own.string(),
                     counts.second ? fmt::format(", {} still busy", counts.second) : std::string());
}

Result<std::unique_ptr<WorkerCgroup>> Cgroups::create(CpuClass cpu) {
  if (!version_) throw std::logic_error("Cgroups::create: not enabled");
  const auto name = ownPrefix_ + std::to_string(next_++);
  std::vector<fs::path> dirs;
  auto fail = [&dirs](std::string why) -> Result<std::unique_ptr<WorkerCgroup>> {
    for (auto it = dirs.rbegin(); it != dirs.rend(); ++it) ::rmdir(it->c_str());
    return Error{Errc::SpawnFailed, "cannot make the worker's cgroup: " + why};
  };
  for (const auto& own : owns_) {
    auto dir = own / name;
    if (::mkdir(dir.c_str(), 0755) != 0) return fail(errnoText("mkdir", dir));
    dirs.push_back(dir);
  }
  const auto memory = std::to_string(limits_.memoryMax);
  const auto pids = std::to_string(limits_.pidsMax);
  const auto& top = dirs.front();
  if (*version_ == CgroupVersion::V1) {
    // memsw (memory + swap) after the memory limit: the kernel keeps memsw >= memory.
    if (!writeFile(top / "memory.limit_in_bytes", memory) ||
        !writeFile(top / "memory.memsw.limit_in_bytes", memory, true))
      return fail(errnoText("cannot set the memory limit in", top));
    if (v1HasPids_ && !writeFile(dirs.back() / "pids.max", pids))
      return fail(errnoText("cannot set pids.max in", dirs.back()));
  } else {
    // oom.group: the kernel kills the whole tree at the ceiling, not one process of it.
    if (!writeFile(top / "memory.max", memory) || !writeFile(top / "memory.swap.max", "0", true) ||
        !writeFile(top / "memory.oom.group", "1"))
      return fail(errnoText("cannot set the memory limit in", top));
    if (v2HasPids_ && !writeFile(top / "pids.max", pids)) return fail(errnoText("cannot set pids.max in", top));
  }
  auto cgroup = std::make_unique<WorkerCgroup>(*version_, dirs);
  cgroup->memoryMax_ = limits_.memoryMax;
  if (cpu != CpuClass::Normal && !cgroup->setCpuClass(cpu)) {
    cgroup->dirs_.clear();  // removed by fail()
    return fail(errnoText("cannot set the CPU class in", dirs.size() > 1 ? dirs.at(1) : top));
  }
  return cgroup;
}

}  // namespace customcode::process
