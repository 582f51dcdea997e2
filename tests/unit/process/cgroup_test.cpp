#include "process/cgroup.hpp"

#include "process/launcher.hpp"
#include "temp_dir.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>

namespace customcode::process {
namespace {
namespace fs = std::filesystem;

// What a cgroup v1 host (or a hybrid one) shows: one mount per hierarchy, cpu and cpuacct apart.
constexpr const char* kHybridMountinfo =
    "24 1 0:21 / / rw,relatime - ext4 /dev/vda rw\n"
    "30 24 0:26 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755\n"
    "31 30 0:27 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
    "32 30 0:28 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n"
    "33 30 0:29 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "34 30 0:30 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
    "35 30 0:31 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
constexpr const char* kHybridSelf =
    "8:pids:/\n"
    "4:memory:/process_api/b80f\n"
    "2:cpuacct:/\n"
    "1:cpu:/\n"
    "0::/\n";

std::string read(const fs::path& path) {
  std::ifstream in(path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void write(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

TEST(FindCgroups, FindsEachHierarchyOfAHybridHost) {
  auto places = findCgroups(kHybridMountinfo, kHybridSelf);

  EXPECT_EQ(places.memory, fs::path("/sys/fs/cgroup/memory/process_api/b80f"));
  EXPECT_EQ(places.cpu, fs::path("/sys/fs/cgroup/cpu"));
  EXPECT_EQ(places.pids, fs::path("/sys/fs/cgroup/pids"));
  EXPECT_EQ(places.unified, fs::path("/sys/fs/cgroup/unified"));
}

TEST(FindCgroups, MatchesCoMountedControllers) {
  auto places = findCgroups("40 30 0:40 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n",
                            "3:cpu,cpuacct:/system.slice/x.service\n");

  EXPECT_EQ(places.cpu, fs::path("/sys/fs/cgroup/cpu,cpuacct/system.slice/x.service"));
  EXPECT_FALSE(places.memory);
}

TEST(FindCgroups, StripsTheRootOfAContainersMount) {
  // A container without a cgroup namespace: its subtree is mounted at /sys/fs/cgroup, and
  // /proc/self/cgroup names the path from the real root.
  auto places = findCgroups("50 40 0:50 /kubepods/pod1/abc /sys/fs/cgroup ro,nosuid - cgroup2 cgroup2 rw\n",
                            "0::/kubepods/pod1/abc/sub\n");

  EXPECT_EQ(places.unified, fs::path("/sys/fs/cgroup/sub"));
}

TEST(FindCgroups, PrefixesMountPointsForAFakeTree) {
  auto places = findCgroups("35 30 0:31 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n", "0::/a.slice/b\n", "/tmp/fake");

  EXPECT_EQ(places.unified, fs::path("/tmp/fake/sys/fs/cgroup/a.slice/b"));
}

// A fake cgroup tree in a temporary directory: plain files stand for the kernel's.
class FakeTree : public ::testing::Test {
 protected:
  void SetUp() override { root_ = testing::makeTempDir("cgroup-test"); }
  void TearDown() override { fs::remove_all(root_); }

  Cgroups::Sources sources(const std::string& mountinfo, const std::string& self) {
    write(root_ / "mountinfo", mountinfo);
    write(root_ / "self-cgroup", self);
    return Cgroups::Sources{.mountinfo = root_ / "mountinfo", .procSelfCgroup = root_ / "self-cgroup", .prefix = root_ / "fs"};
  }

  fs::path root_;
};

class FakeV2 : public FakeTree {
 protected:
  void SetUp() override {
    FakeTree::SetUp();
    own_ = root_ / "fs/sys/fs/cgroup/app.slice/svc";
    write(own_ / "cgroup.controllers", "cpuset cpu io memory pids\n");
    write(own_ / "cgroup.subtree_control", "\n");
    write(own_ / "cgroup.procs", "4242\n4243\n");
    write(own_ / "cgroup.freeze", "0\n");  // a non-root cgroup
  }
  Cgroups::Sources v2() { return sources("35 30 0:31 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n", "0::/app.slice/svc\n"); }

  fs::path own_;
};

TEST_F(FakeV2, MovesTheServiceToALeafAndHandsTheControllersDown) {
  Cgroups cgroups(v2());

  auto failure = cgroups.prepare(CgroupLimits{.memoryMax = 64 << 20, .pidsMax = 100}, 777);

  ASSERT_EQ(failure, "");
  EXPECT_EQ(cgroups.version(), CgroupVersion::V2);
  EXPECT_STREQ(cgroups.modeName(), "cgroup-v2");
  // Each process of the service's cgroup was written to the leaf (the fake file keeps the last).
  EXPECT_EQ(read(own_ / "customcode-service/cgroup.procs"), "4243");
  EXPECT_EQ(read(own_ / "cgroup.subtree_control"), "+memory +cpu +pids");
  // Worker cgroups go beside the service's leaf, with no parent of their own.
  EXPECT_THAT(cgroups.placesForTest(), ::testing::ElementsAre(own_));
  EXPECT_FALSE(fs::exists(own_ / "customcode-777-wprobe"));
}

TEST_F(FakeV2, LeavesTheRootCgroupsProcessesWhereTheyAre) {
  fs::remove(own_ / "cgroup.freeze");  // the root cgroup may hold processes and give controllers
  Cgroups cgroups(v2());

  ASSERT_EQ(cgroups.prepare({}, 777), "");

  EXPECT_FALSE(fs::exists(own_ / "customcode-service"));
  EXPECT_EQ(read(own_ / "cgroup.subtree_control"), "+memory +cpu +pids");
}

TEST_F(FakeV2, MakesAWorkerCgroupWithTheMemoryCeilingAndTheProcessLimit) {
  Cgroups cgroups(v2());
  ASSERT_EQ(cgroups.prepare(CgroupLimits{.memoryMax = 64 << 20, .pidsMax = 100}, 777), "");

  auto worker = cgroups.create();

  ASSERT_TRUE(worker) << worker.error().message;
  auto dir = own_ / "customcode-777-w0";
  EXPECT_THAT((*worker)->dirsForTest(), ::testing::ElementsAre(dir));
  EXPECT_EQ(read(dir / "memory.max"), std::to_string(64 << 20));
  EXPECT_EQ(read(dir / "memory.oom.group"), "1");
  EXPECT_EQ(read(dir / "pids.max"), "100");
  EXPECT_EQ((*worker)->memoryMax(), 64u << 20);
}

TEST_F(FakeV2, LowersAndRestoresTheCpuWeight) {
  Cgroups cgroups(v2());
  ASSERT_EQ(cgroups.prepare({}, 777), "");
  auto worker = cgroups.create();
  ASSERT_TRUE(worker);
  auto dir = own_ / "customcode-777-w0";
  write(dir / "cpu.idle", "0");

  ASSERT_TRUE((*worker)->setCpuClass(CpuClass::Low));
  EXPECT_EQ(read(dir / "cpu.weight"), "1");
  EXPECT_EQ(read(dir / "cpu.idle"), "0");  // the lowest weight, not the idle policy
  EXPECT_FALSE(fs::exists(dir / "cpu.max"));  // no quota for a long call

  ASSERT_TRUE((*worker)->setCpuClass(CpuClass::Normal));
  EXPECT_EQ(read(dir / "cpu.weight"), "100");
  EXPECT_EQ(read(dir / "cpu.idle"), "0");
  EXPECT_EQ((*worker)->cpuClass(), CpuClass::Normal);
}

TEST_F(FakeV2, MakesAWorkerCgroupInTheLowClassAtOnce) {
  Cgroups cgroups(v2());
  ASSERT_EQ(cgroups.prepare({}, 777), "");

  auto low = cgroups.create(CpuClass::Low);

  ASSERT_TRUE(low) << low.error().message;
  EXPECT_EQ((*low)->cpuClass(), CpuClass::Low);
  EXPECT_EQ(read(own_ / "customcode-777-w0/cpu.weight"), "1");
}

TEST_F(FakeV2, TheOomNotifierWakesWhenMemoryEventsChange) {
  Cgroups cgroups(v2());
  ASSERT_EQ(cgroups.prepare({}, 777), "");
  auto worker = cgroups.create();
  ASSERT_TRUE(worker);
  auto events = own_ / "customcode-777-w0/memory.events";
  write(events, "oom 0\noom_kill 0\n");
  int fd = (*worker)->openOomNotifier();
  ASSERT_GE(fd, 0);
  pollfd quiet{.fd = fd, .events = POLLIN, .revents = 0};
  EXPECT_EQ(::poll(&quiet, 1, 0), 0);

  write(events, "oom 1\noom_kill 1\n");

  pollfd woken{.fd = fd, .events = POLLIN, .revents = 0};
  EXPECT_EQ(::poll(&woken, 1, 1000), 1);
  EXPECT_EQ((*worker)->oomKills(), 1u);
  ::close(fd);
}

TEST_F(FakeV2, CountsTheKernelsOutOfMemoryKills) {
  Cgroups cgroups(v2());
  ASSERT_EQ(cgroups.prepare({}, 777), "");
  auto worker = cgroups.create();
  ASSERT_TRUE(worker);
  EXPECT_EQ((*worker)->oomKills(), 0u);

  write(own_ / "customcode-777-w0/memory.events", "low 0\nhigh 0\nmax 12\noom 2\noom_kill 2\noom_group_kill 1\n");

  EXPECT_EQ((*worker)->oomKills(), 2u);
}

TEST_F(FakeV2, WithoutTheMemoryControllerFallsBackToV1OrFails) {
  write(own_ / "cgroup.controllers", "hugetlb\n");
  Cgroups cgroups(v2());

  auto failure = cgroups.prepare({}, 777);

  EXPECT_THAT(failure, ::testing::HasSubstr("the memory and cpu controllers are not available"));
  EXPECT_THAT(failure, ::testing::HasSubstr("no memory and cpu hierarchies"));
  EXPECT_FALSE(cgroups.enabled());
  EXPECT_STREQ(cgroups.modeName(), "rlimits");
}

class FakeV1 : public FakeTree {
 protected:
  void SetUp() override {
    FakeTree::SetUp();
    base_ = root_ / "fs/sys/fs/cgroup";
    for (const char* dir : {"memory/process_api/b80f", "cpu", "cpuacct", "pids", "unified"})
      fs::create_directories(base_ / dir);
    write(base_ / "unified/cgroup.controllers", "hugetlb\n");
  }
  Cgroups::Sources v1() { return sources(kHybridMountinfo, kHybridSelf); }

  fs::path base_;
};

TEST_F(FakeV1, MakesTheParentInEachHierarchyAndAWorkerCgroupWithItsLimits) {
  Cgroups cgroups(v1());

  ASSERT_EQ(cgroups.prepare(CgroupLimits{.memoryMax = 96 << 20, .pidsMax = 50}, 4321), "");
  auto worker = cgroups.create();

  ASSERT_TRUE(worker) << worker.error().message;
  EXPECT_STREQ(cgroups.modeName(), "cgroup-v1");
  EXPECT_THAT((*worker)->dirsForTest(), ::testing::ElementsAre(base_ / "memory/process_api/b80f/customcode-4321-w0",
                                                               base_ / "cpu/customcode-4321-w0",
                                                               base_ / "pids/customcode-4321-w0"));
  EXPECT_EQ(read(base_ / "memory/process_api/b80f/customcode-4321-w0/memory.limit_in_bytes"), std::to_string(96 << 20));
  EXPECT_EQ(read(base_ / "pids/customcode-4321-w0/pids.max"), "50");

  ASSERT_TRUE((*worker)->setCpuClass(CpuClass::Low));
  EXPECT_EQ(read(base_ / "cpu/customcode-4321-w0/cpu.shares"), "2");
  ASSERT_TRUE((*worker)->setCpuClass(CpuClass::Normal));
  EXPECT_EQ(read(base_ / "cpu/customcode-4321-w0/cpu.shares"), "1024");

  write(base_ / "memory/process_api/b80f/customcode-4321-w0/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n");
  EXPECT_EQ((*worker)->oomKills(), 3u);
}

TEST_F(FakeV1, RegistersAnEventfdForTheOomEvents) {
  Cgroups cgroups(v1());
  ASSERT_EQ(cgroups.prepare({}, 4321), "");
  auto worker = cgroups.create();
  ASSERT_TRUE(worker);
  auto dir = base_ / "memory/process_api/b80f/customcode-4321-w0";
  write(dir / "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n");

  int fd = (*worker)->openOomNotifier();

  ASSERT_GE(fd, 0);
  // "<eventfd> <descriptor of memory.oom_control>", as cgroup.event_control wants it.
  auto line = read(dir / "cgroup.event_control");
  EXPECT_THAT(line, ::testing::StartsWith(std::to_string(fd) + " "));
  ::close(fd);
}

TEST_F(FakeV1, NamesEachWorkerCgroupApart) {
  Cgroups cgroups(v1());
  ASSERT_EQ(cgroups.prepare({}, 4321), "");

  auto first = cgroups.create();
  auto second = cgroups.create();

  ASSERT_TRUE(first);
  ASSERT_TRUE(second);
  EXPECT_NE((*first)->dirsForTest().front(), (*second)->dirsForTest().front());
}

TEST_F(FakeV1, RemovesWhatAnInstanceNoLongerRunningLeftAndKeepsALiveOnes) {
  // A service killed with SIGKILL left its parent and an (empty) worker cgroup; another instance,
  // alive (same program name: a forked copy of this test), keeps its own.
  fs::create_directories(base_ / "memory/process_api/b80f/customcode-2147483000-w3");
  pid_t live = ::fork();
  if (live == 0) {
    ::pause();
    ::_exit(0);
  }
  fs::create_directories(base_ / "memory/process_api/b80f" / ("customcode-" + std::to_string(live) + "-w0"));
  fs::create_directories(base_ / "memory/process_api/b80f/customcode-service");
  Cgroups cgroups(v1());

  ASSERT_EQ(cgroups.prepare({}, 4321), "");

  EXPECT_FALSE(fs::exists(base_ / "memory/process_api/b80f/customcode-2147483000-w3"));
  EXPECT_TRUE(fs::exists(base_ / "memory/process_api/b80f" / ("customcode-" + std::to_string(live) + "-w0")));
  EXPECT_TRUE(fs::exists(base_ / "memory/process_api/b80f/customcode-service"));
  ::kill(live, SIGKILL);
  ::waitpid(live, nullptr, 0);
}

TEST_F(FakeV1, WithoutAWritableHierarchySaysWhy) {
  fs::remove_all(base_ / "cpu");  // mkdir of the probe fails: ENOENT
  Cgroups cgroups(v1());

  auto failure = cgroups.prepare({}, 4321);

  EXPECT_THAT(failure, ::testing::HasSubstr("cannot make"));
  EXPECT_FALSE(cgroups.enabled());
  // Nothing half made is left in the other hierarchies.
  EXPECT_FALSE(fs::exists(base_ / "memory/process_api/b80f/customcode-4321-wprobe"));
}

TEST(JoinCgroups, TheChildWritesItsPidBeforeExec) {
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  LaunchSpec spec;
  spec.argv = {"/bin/true"};
  spec.cwd = "/";
  spec.joinCgroups = {fds[1]};

  auto child = spawnProcess(spec);
  ::close(fds[1]);

  ASSERT_TRUE(child) << child.error().message;
  char buffer[32] = {};
  auto n = ::read(fds[0], buffer, sizeof buffer - 1);
  ::close(fds[0]);
  ::close(child->requests), ::close(child->frames), ::close(child->output);
  ::waitpid(child->pid, nullptr, 0);
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::string(buffer, static_cast<std::size_t>(n)), std::to_string(child->pid));
}

TEST(JoinCgroups, AFailedJoinIsReportedOnTheChildsOutputAfterTheHandOff) {
  // The parent stops waiting before the join (it may wait for an RCU grace period): a failure
  // comes on the output, which the worker reports as why it did not start.
  int readOnly = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(readOnly, 0);
  LaunchSpec spec;
  spec.argv = {"/bin/true"};
  spec.cwd = "/";
  spec.joinCgroups = {readOnly};

  auto child = spawnProcess(spec);
  ::close(readOnly);

  ASSERT_TRUE(child) << child.error().message;
  std::string output;
  char buffer[256];
  for (ssize_t n; (n = ::read(child->output, buffer, sizeof buffer)) > 0;) output.append(buffer, static_cast<std::size_t>(n));
  int status = 0;
  ::waitpid(child->pid, &status, 0);
  ::close(child->requests), ::close(child->frames), ::close(child->output);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 127) << status;
  EXPECT_THAT(output, ::testing::HasSubstr("cannot start /bin/true: joining the worker's cgroup failed: EBADF"));
}

}  // namespace
}  // namespace customcode::process
