#include "app/process_setup.hpp"

#include "common/log.hpp"
#include "process/launcher.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

namespace customcode::app {
using namespace std::chrono_literals;
namespace {

constexpr auto kReapPeriod = 1s;

std::string limitText(rlim_t value) { return value == RLIM_INFINITY ? "unlimited" : std::to_string(value); }

// Fields 3 (state) and 4 (ppid) of /proc/PID/stat; the name before them may hold spaces and
// parentheses, so parse after its last ')'.
bool readStat(const char* pid, char& state, pid_t& ppid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%s/stat", pid);
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buffer[512];
  auto n = ::read(fd, buffer, sizeof buffer - 1);
  ::close(fd);
  if (n <= 0) return false;
  buffer[n] = '\0';
  const char* end = std::strrchr(buffer, ')');
  if (!end) return false;
  int parent = 0;
  if (std::sscanf(end + 1, " %c %d", &state, &parent) != 2) return false;
  ppid = parent;
  return true;
}

}  // namespace

DescriptorLimit raiseDescriptorLimit() {
  DescriptorLimit out;
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) {
    log::app()->warn("cannot read the descriptor limit: {}", std::strerror(errno));
    return out;
  }
  if (limit.rlim_cur < limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) {
      log::app()->info("descriptor limit raised from {} to {} (the hard limit)", limitText(limit.rlim_cur),
                       limitText(raised.rlim_cur));
      limit = raised;
      out.raised = true;
    } else {
      log::app()->warn("cannot raise the descriptor limit from {} to {}: {}", limitText(limit.rlim_cur),
                       limitText(limit.rlim_max), std::strerror(errno));
    }
  } else {
    log::app()->info("descriptor limit: {}", limitText(limit.rlim_cur));
  }
  out.soft = limit.rlim_cur == RLIM_INFINITY ? UINT64_MAX : limit.rlim_cur;
  out.hard = limit.rlim_max == RLIM_INFINITY ? UINT64_MAX : limit.rlim_max;
  return out;
}

Subreaper::Subreaper(boost::asio::any_io_executor executor) : timer_(executor) {}

bool Subreaper::start() {
  if (::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) {
    log::app()->warn("cannot become a child subreaper ({}): a process a function starts may outlive the service",
                     std::strerror(errno));
    return false;
  }
  running_ = true;
  schedule();
  return true;
}

void Subreaper::stop() {
  running_ = false;
  timer_.cancel();
}

void Subreaper::schedule() {
  timer_.expires_after(kReapPeriod);
  timer_.async_wait([this](boost::system::error_code ec) {
    if (ec || !running_) return;
    if (auto reaped = reapOrphans(); reaped > 0) log::app()->debug("reaped {} orphaned process(es)", reaped);
    schedule();
  });
}

std::vector<Subreaper::Child> Subreaper::children() {
  std::vector<Child> out;
  const pid_t self = ::getpid();
  DIR* proc = ::opendir("/proc");
  if (!proc) return out;
  while (auto* entry = ::readdir(proc)) {
    if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
    char state = 0;
    pid_t ppid = 0;
    if (!readStat(entry->d_name, state, ppid) || ppid != self) continue;
    pid_t pid = static_cast<pid_t>(std::stol(entry->d_name));
    out.push_back(Child{.pid = pid, .zombie = state == 'Z'});
  }
  ::closedir(proc);
  return out;
}

std::size_t Subreaper::reapOrphans() {
  // The service's own children (spawnProcess) are reaped by their owners, which a waitpid here
  // must not pre-empt; any other child is an orphan adopted as subreaper.
  process::forgetReapedSpawns();
  std::size_t reaped = 0;
  for (const auto& child : children()) {
    if (!child.zombie || process::spawnedHere(child.pid)) continue;
    int status = 0;
    if (::waitpid(child.pid, &status, WNOHANG) == child.pid) ++reaped;
  }
  return reaped;
}

std::size_t Subreaper::killAllChildren() {
  std::size_t killed = 0;
  // Killing a child can orphan its own children onto us: repeat until none is left.
  for (int round = 0; round < 100; ++round) {
    auto all = children();
    if (all.empty()) break;
    for (const auto& child : all) {
      if (!child.zombie) {
        ::kill(child.pid, SIGKILL);
        ++killed;
      }
    }
    for (const auto& child : all) {
      int status = 0;
      while (::waitpid(child.pid, &status, 0) < 0 && errno == EINTR) {
      }
    }
  }
  if (killed > 0) log::app()->info("killed {} process(es) left behind by workers", killed);
  return killed;
}

}  // namespace customcode::app
