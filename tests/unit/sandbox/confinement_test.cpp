#include "sandbox/confinement.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

namespace customcode::sandbox {
namespace {
namespace fs = std::filesystem;

class ConfinementTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (landlockAbi() < 1) GTEST_SKIP() << "this kernel has no Landlock: the restricted mode is not available here";
    std::string error;
    filter_ = SeccompFilter::compile(error);
    ASSERT_TRUE(filter_) << error;
    char pattern[] = "/tmp/confinement-test-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    allowed_ = pattern;
    std::ofstream(allowed_ / "file") << "allowed";
    char other[] = "/tmp/confinement-other-XXXXXX";
    ASSERT_NE(::mkdtemp(other), nullptr);
    denied_ = other;
    std::ofstream(denied_ / "file") << "denied";
  }
  void TearDown() override {
    std::error_code ec;
    if (!allowed_.empty()) fs::remove_all(allowed_, ec);
    if (!denied_.empty()) fs::remove_all(denied_, ec);
  }

  // Runs `check` in a confined child; returns its exit status (0: every expectation held, else
  // the number of the first that did not).
  int inConfinedChild(const std::function<int()>& check) {
    Confinement confinement;
    confinement.seccomp = filter_;
    confinement.readable = {"/usr", allowed_.string()};
    pid_t pid = ::fork();
    if (pid == 0) {
      if (!Confinement::apply(&confinement)) ::_exit(100);
      ::_exit(check());
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 200 + WTERMSIG(status);
  }

  std::shared_ptr<const SeccompFilter> filter_;
  fs::path allowed_;
  fs::path denied_;
};

TEST_F(ConfinementTest, ReadsOnlyTheAllowedDirectoriesAndWritesNothing) {
  auto allowedFile = (allowed_ / "file").string();
  auto deniedFile = (denied_ / "file").string();
  auto newFile = (allowed_ / "new").string();
  int status = inConfinedChild([&] {
    int fd = ::open(allowedFile.c_str(), O_RDONLY);
    if (fd < 0) return 1;
    ::close(fd);
    if (::open(deniedFile.c_str(), O_RDONLY) >= 0 || errno != EACCES) return 2;
    if (::open("/etc/hostname", O_RDONLY) >= 0) return 3;
    if (::open(newFile.c_str(), O_WRONLY | O_CREAT, 0644) >= 0) return 4;
    if (::open(allowedFile.c_str(), O_WRONLY) >= 0) return 5;
    return 0;
  });
  EXPECT_EQ(status, 0);
  EXPECT_FALSE(fs::exists(allowed_ / "new"));
}

TEST_F(ConfinementTest, SignalsReachOnlyTheOwnProcessGroup) {
  pid_t parent = ::getpid();
  int status = inConfinedChild([parent] {
    if (::kill(parent, 0) == 0 || errno != EPERM) return 1;
    if (::kill(-1, 0) == 0 || errno != EPERM) return 2;
    if (::kill(::getpid(), 0) != 0) return 3;
    if (::kill(0, 0) != 0) return 4;
    return 0;
  });
  EXPECT_EQ(status, 0);
}

TEST_F(ConfinementTest, RefusesNamespacesPtraceAndPrivileges) {
  int status = inConfinedChild([] {
    if (::unshare(CLONE_NEWUSER) == 0 || errno != EPERM) return 1;
    if (::unshare(CLONE_NEWNS) == 0 || errno != EPERM) return 2;
    if (::prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1) return 3;
    if (::syscall(SYS_ptrace, 0 /* PTRACE_TRACEME */, 0, 0, 0) == 0 || errno != EPERM) return 4;
    if (::syscall(SYS_keyctl, 0, -3, 0) == 0 || errno != EPERM) return 5;
    return 0;
  });
  EXPECT_EQ(status, 0);
}

}  // namespace
}  // namespace customcode::sandbox
