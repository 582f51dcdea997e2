#include "process/activity.hpp"

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

namespace customcode::process {
namespace {

using namespace std::chrono_literals;

// A child that runs `body` in a grandchild and waits for it, as bubblewrap holds the runtime. Both
// are in a process group of their own (made by the child before it forks), which stop() kills.
pid_t forkTree(void (*body)()) {
  pid_t pid = fork();
  if (pid == 0) {
    ::setpgid(0, 0);
    pid_t inner = fork();
    if (inner == 0) {
      body();
      _exit(0);
    }
    waitpid(inner, nullptr, 0);
    _exit(0);
  }
  return pid;
}

void spin() {
  volatile unsigned long n = 0;
  for (;;) n = n + 1;
}
void sleepLong() { ::sleep(30); }

void stop(pid_t pid) {
  ::kill(-pid, SIGKILL);
  ::kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
}

TreeActivity twoLooks(pid_t pid, bool& busy) {
  auto before = lookAtTree(pid);
  auto started = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(60ms);
  auto after = lookAtTree(pid);
  EXPECT_TRUE(before && after);
  busy = looksBusy(*before, *after, std::chrono::steady_clock::now() - started);
  return *after;
}

// Waits (at most 10 s) until the tree of `pid` looks as `wanted` says.
bool waitForTree(pid_t pid, bool (*wanted)(const TreeActivity&)) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (auto activity = lookAtTree(pid); activity && wanted(*activity)) return true;
    std::this_thread::sleep_for(5ms);
  }
  return false;
}

TEST(ActivityTest, AGrandchildSpinningMakesTheTreeBusy) {
  pid_t pid = forkTree(spin);
  ASSERT_GT(pid, 0);
  ::setpgid(pid, pid);  // also from here, so that stop() finds the group whoever runs first
  // The grandchild's CPU time shows in the tree once it has spun for a few clock ticks.
  const bool spun = waitForTree(pid, [](const TreeActivity& a) { return a.cpu >= 30ms; });
  bool busy = false;
  twoLooks(pid, busy);
  stop(pid);
  EXPECT_TRUE(spun);
  EXPECT_TRUE(busy);
}

TEST(ActivityTest, ASleepingTreeIsNotBusy) {
  pid_t pid = forkTree(sleepLong);
  ASSERT_GT(pid, 0);
  ::setpgid(pid, pid);
  const bool settled = waitForTree(pid, [](const TreeActivity& a) { return !a.running; });
  bool busy = true;
  auto after = twoLooks(pid, busy);
  stop(pid);
  EXPECT_TRUE(settled);
  EXPECT_FALSE(busy);
  EXPECT_LT(after.cpu, 30ms);
}

TEST(ActivityTest, AGoneProcessHasNoActivity) {
  pid_t pid = fork();
  if (pid == 0) _exit(0);
  waitpid(pid, nullptr, 0);
  EXPECT_FALSE(lookAtTree(pid).has_value());
}

TEST(ActivityTest, HalfACpuOverTheIntervalIsBusy) {
  TreeActivity before{.cpu = 100ms, .running = false};
  TreeActivity after{.cpu = 126ms, .running = false};
  EXPECT_TRUE(looksBusy(before, after, 50ms));
  after.cpu = 120ms;
  EXPECT_FALSE(looksBusy(before, after, 50ms));
  after.running = true;
  EXPECT_FALSE(looksBusy(before, after, 50ms));  // running at one look only
  before.running = true;
  EXPECT_TRUE(looksBusy(before, after, 50ms));
}

}  // namespace
}  // namespace customcode::process
