#include "process/priority.hpp"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace customcode::process {

namespace {

std::vector<pid_t> childrenOf(pid_t pid, pid_t tid) {
  std::vector<pid_t> children;
  std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/children");
  pid_t child = 0;
  while (in >> child) children.push_back(child);
  return children;
}

bool setNice(pid_t tid, int nice) {
  return ::setpriority(PRIO_PROCESS, static_cast<id_t>(tid), nice) == 0 || errno == ESRCH;
}

}  // namespace

bool setTreeNice(pid_t root, int nice) {
  bool ok = true;
  std::vector<pid_t> pending{root};
  while (!pending.empty()) {
    pid_t pid = pending.back();
    pending.pop_back();
    DIR* tasks = ::opendir(("/proc/" + std::to_string(pid) + "/task").c_str());
    if (!tasks) continue;  // gone
    while (const dirent* entry = ::readdir(tasks)) {
      pid_t tid = 0;
      std::string_view name(entry->d_name);
      if (std::from_chars(name.data(), name.data() + name.size(), tid).ec != std::errc{} || tid <= 0) continue;
      if (!setNice(tid, nice)) ok = false;
      for (pid_t child : childrenOf(pid, tid)) pending.push_back(child);
    }
    ::closedir(tasks);
  }
  return ok;
}

bool canRaisePriority() {
  bool ok = false;
  std::thread probe([&ok] {
    auto self = ::gettid();
    ok = setNice(self, 1) && setNice(self, 0) && niceOf(self) == 0;
  });
  probe.join();
  return ok;
}

std::optional<int> niceOf(pid_t tid) {
  errno = 0;
  int value = ::getpriority(PRIO_PROCESS, static_cast<id_t>(tid));
  if (errno != 0) return std::nullopt;
  return value;
}

}  // namespace customcode::process
