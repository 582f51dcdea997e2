#include "workspace/workspace_lock.hpp"

#include "temp_dir.hpp"

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>

namespace customcode::workspace {
namespace {

namespace fs = std::filesystem;

class WorkspaceLockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = testing::makeTempDir("customcode-lock");
  }
  void TearDown() override { fs::remove_all(root_); }

  fs::path root_;
};

// A child process that takes the lock of `name`, reports it on a pipe, and holds it until the
// parent closes its end of a second pipe.
class Holder {
 public:
  Holder(const fs::path& root, const std::string& name) {
    int ready[2], release[2];
    if (::pipe(ready) != 0 || ::pipe(release) != 0) std::abort();
    pid_ = ::fork();
    if (pid_ == 0) {
      ::close(ready[0]);
      ::close(release[1]);
      auto lock = WorkspaceLock::acquire(root, name);
      char byte = lock ? 'y' : 'n';
      if (::write(ready[1], &byte, 1) != 1) ::_exit(2);
      while (::read(release[0], &byte, 1) > 0) {
      }
      ::_exit(0);
    }
    ::close(ready[1]);
    ::close(release[0]);
    release_ = release[1];
    char byte = 0;
    held_ = ::read(ready[0], &byte, 1) == 1 && byte == 'y';
    ::close(ready[0]);
  }
  ~Holder() { release(); }

  bool held() const { return held_; }
  void release() {
    if (release_ < 0) return;
    ::close(release_);
    release_ = -1;
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }

 private:
  pid_t pid_ = -1;
  int release_ = -1;
  bool held_ = false;
};

TEST_F(WorkspaceLockTest, IsExclusiveBetweenProcesses) {
  Holder holder(root_, "ws");
  ASSERT_TRUE(holder.held());

  EXPECT_FALSE(WorkspaceLock::tryAcquire(root_, "ws"));

  holder.release();
  EXPECT_TRUE(WorkspaceLock::tryAcquire(root_, "ws"));
}

TEST_F(WorkspaceLockTest, AcquireSucceedsOnceTheHolderHasReleased) {
  Holder holder(root_, "ws");
  ASSERT_TRUE(holder.held());
  holder.release();

  EXPECT_TRUE(WorkspaceLock::acquire(root_, "ws"));
}

TEST_F(WorkspaceLockTest, LocksOfDifferentWorkspacesAreIndependent) {
  Holder holder(root_, "a");
  ASSERT_TRUE(holder.held());

  EXPECT_TRUE(WorkspaceLock::tryAcquire(root_, "b"));
}

TEST_F(WorkspaceLockTest, IsExclusiveBetweenTwoDescriptorsOfOneProcess) {
  auto first = WorkspaceLock::acquire(root_, "ws");
  ASSERT_TRUE(first);

  EXPECT_FALSE(WorkspaceLock::tryAcquire(root_, "ws"));
}

TEST_F(WorkspaceLockTest, ReleasesWhenDestroyed) {
  { auto held = WorkspaceLock::acquire(root_, "ws"); ASSERT_TRUE(held); }

  EXPECT_TRUE(WorkspaceLock::tryAcquire(root_, "ws"));
}

TEST_F(WorkspaceLockTest, LockFilesLiveOutsideTheWorkspaceDirectory) {
  auto held = WorkspaceLock::acquire(root_, "ws");
  ASSERT_TRUE(held);

  EXPECT_TRUE(fs::exists(root_ / ".locks" / "ws.lock"));
  EXPECT_FALSE(fs::exists(root_ / "ws"));
}

}  // namespace
}  // namespace customcode::workspace
