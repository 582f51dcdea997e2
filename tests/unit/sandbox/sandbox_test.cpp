// The bubblewrap command line of a worker. These tests need bubblewrap to work on this machine
// (SANDBOX=bwrap): they assert the isolated mode rather than fall back.
#include "sandbox/sandbox.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <filesystem>

namespace customcode::sandbox {
namespace {

namespace fs = std::filesystem;
using ::testing::Contains;
using ::testing::ElementsAre;

// The position of `items` as a contiguous run in `argv`, or npos.
std::size_t find(const std::vector<std::string>& argv, std::vector<std::string> items) {
  auto it = std::search(argv.begin(), argv.end(), items.begin(), items.end());
  return it == argv.end() ? std::string::npos : static_cast<std::size_t>(it - argv.begin());
}

class BubblewrapArguments : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("customcode-sandbox-" + std::to_string(::getpid()));
    fs::create_directories(dir_ / "ws");
    fs::permissions(dir_, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                              fs::perms::others_read | fs::perms::others_exec);
    auto problems = sandbox_.prepare({dir_});
    ASSERT_TRUE(problems.empty()) << problems.front();
    ASSERT_TRUE(sandbox_.isolated());
  }
  void TearDown() override { fs::remove_all(dir_); }

  LaunchSpec wrapped() {
    LaunchSpec spec;
    spec.argv = {"/usr/bin/node", "worker.js"};
    spec.env = {"PATH=/usr/bin:/bin", "LANG=C.UTF-8"};
    spec.cwd = dir_ / "ws";
    return sandbox_.wrap(spec, SandboxView{.readOnly = {dir_ / "ws"}, .memory = SandboxView::Memory::Data});
  }

  fs::path dir_;
  Sandbox sandbox_{config::SandboxConfig{.mode = config::SandboxConfig::Mode::Bwrap, .tmpMaxBytes = 4096}};
};

TEST_F(BubblewrapArguments, StartsWithBwrapAndEndsWithTheCommandUnderPrlimit) {
  auto spec = wrapped();

  EXPECT_EQ(spec.argv.front(), "/usr/bin/bwrap");
  auto separator = find(spec.argv, {"--", "/usr/bin/prlimit"});
  ASSERT_NE(separator, std::string::npos);
  std::vector<std::string> tail(spec.argv.begin() + static_cast<long>(separator) + 1, spec.argv.end());
  EXPECT_THAT(tail, ElementsAre("/usr/bin/prlimit", "--nproc=" + std::to_string(Sandbox::kMaxProcesses), "--",
                                "/usr/bin/node", "worker.js"));
}

TEST_F(BubblewrapArguments, UnsharesEverythingButTheNetworkAndDropsCapabilities) {
  auto argv = wrapped().argv;

  for (const char* flag : {"--unshare-user", "--unshare-ipc", "--unshare-pid", "--unshare-uts", "--die-with-parent",
                           "--new-session", "--clearenv"})
    EXPECT_THAT(argv, Contains(flag));
  EXPECT_NE(find(argv, {"--cap-drop", "ALL"}), std::string::npos);
}

TEST_F(BubblewrapArguments, PassesOnlyTheGivenEnvironment) {
  auto argv = wrapped().argv;

  EXPECT_NE(find(argv, {"--setenv", "PATH", "/usr/bin:/bin"}), std::string::npos);
  EXPECT_NE(find(argv, {"--setenv", "LANG", "C.UTF-8"}), std::string::npos);
  EXPECT_EQ(std::count(argv.begin(), argv.end(), "--setenv"), 2);
}

TEST_F(BubblewrapArguments, BindsTheWorkspaceReadOnlyOverAPrivateTmpAndStartsInIt) {
  auto spec = wrapped();
  const auto& argv = spec.argv;
  auto ws = (dir_ / "ws").string();
  // Bound from the workspace itself, or (a root service) from the mount point onto which the
  // child's private mount namespace binds it first.
  auto source = ws;
  for (const auto& [from, onto] : spec.privateBinds)
    if (from == dir_ / "ws") source = onto.string();
  if (::geteuid() != 0) {
    EXPECT_TRUE(spec.privateBinds.empty());
  }

  auto tmp = find(argv, {"--tmpfs", "/tmp"});
  auto bind = find(argv, {"--ro-bind", source, ws});
  ASSERT_NE(tmp, std::string::npos);
  ASSERT_NE(bind, std::string::npos);
  EXPECT_LT(tmp, bind);  // a workspace under /tmp is bound over the tmpfs
  EXPECT_NE(find(argv, {"--size", "4096", "--tmpfs", "/tmp"}), std::string::npos);
  EXPECT_NE(find(argv, {"--chdir", ws, "--"}), std::string::npos);
  EXPECT_NE(find(argv, {"--remount-ro", "/"}), std::string::npos);
  EXPECT_EQ(find(argv, {"--bind"}), std::string::npos);  // nothing writable from the host
}

TEST_F(BubblewrapArguments, RunsAsTheSandboxUserWhenTheServiceIsRoot) {
  auto spec = wrapped();

  if (::geteuid() == 0) {
    EXPECT_EQ(spec.uid, Sandbox::kSandboxUid);
    EXPECT_EQ(spec.gid, Sandbox::kSandboxGid);
  } else {
    EXPECT_FALSE(spec.uid.has_value());
  }
  EXPECT_EQ(spec.limits.openFiles, Sandbox::kMaxOpenFiles);
  EXPECT_FALSE(spec.limits.processes.has_value());  // set inside the sandbox, by prlimit
}

}  // namespace
}  // namespace customcode::sandbox
