#include "process/child.hpp"

#include "test_loop.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <boost/asio/read_until.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

namespace customcode::process {
namespace {

using namespace std::chrono_literals;
using customcode::testing::TestLoop;
using ::testing::HasSubstr;

LaunchSpec shell(std::string script) {
  LaunchSpec spec;
  spec.argv = {"/bin/sh", "-c", std::move(script)};
  spec.env = {"PATH=/usr/bin:/bin"};
  spec.cwd = "/";
  return spec;
}

Started startOk(TestLoop& loop, const LaunchSpec& spec) {
  auto started = start(loop.executor(), spec);
  if (!started) throw std::runtime_error(started.error().message);
  ::close(started->requests);
  ::close(started->frames);
  return std::move(*started);
}

// Whether `pid` is alive and not a zombie.
bool running(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  auto close = line.rfind(')');
  return close != std::string::npos && line.size() > close + 2 && line[close + 2] != 'Z';
}

TEST(Child, WaitReturnsTheExitStatusOnceItExits) {
  TestLoop loop;
  auto started = startOk(loop, shell("exit 3"));
  ::close(started.output);

  int status = loop.run(started.child.wait());

  EXPECT_TRUE(started.child.reaped());
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 3);
  EXPECT_EQ(describeStatus(status), "exited with code 3");
}

TEST(Child, ADeadlineKillsTheChild) {
  TestLoop loop;
  auto started = startOk(loop, shell("exec sleep 30"));
  ::close(started.output);

  started.child.killAt(std::chrono::steady_clock::now() + 50ms);
  int status = loop.run(started.child.wait());

  EXPECT_TRUE(started.child.killedAtDeadline());
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
  EXPECT_EQ(describeStatus(status), "was killed by signal SIGKILL");
}

TEST(Child, ReapingKillsWhatTheChildLeftInItsGroup) {
  TestLoop loop;
  auto started = startOk(loop, shell("sleep 30 & echo $!"));
  boost::asio::posix::stream_descriptor output(loop.executor(), started.output);
  std::string text;
  boost::system::error_code ec;
  // One line: the background sleep keeps the output open, so no reading to its end.
  boost::asio::read_until(output, boost::asio::dynamic_buffer(text), '\n', ec);
  ASSERT_FALSE(ec) << ec.message();
  pid_t left = std::stoi(text);
  ASSERT_TRUE(running(left));

  loop.run(started.child.wait());

  EXPECT_TRUE(loop.runUntil([&] { return !running(left); }));
}

TEST(Child, DestroyingAnUnreapedChildKillsAndReapsIt) {
  pid_t pid = -1;
  {
    TestLoop loop;
    auto started = startOk(loop, shell("exec sleep 30"));
    ::close(started.output);
    pid = started.child.pid();
    ASSERT_TRUE(running(pid));
  }
  errno = 0;
  EXPECT_EQ(::waitpid(pid, nullptr, WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD);
}

TEST(Child, RunToEndCollectsTheOutputAndTheStatus) {
  auto finished = runToEnd(shell("echo out; echo err >&2; exit 2"), 10s);

  ASSERT_TRUE(finished);
  EXPECT_FALSE(finished->timedOut);
  EXPECT_THAT(finished->output, HasSubstr("out\n"));
  EXPECT_THAT(finished->output, HasSubstr("err\n"));
  EXPECT_EQ(WEXITSTATUS(finished->status), 2);
}

TEST(Child, RunToEndKillsACommandPastItsTimeout) {
  auto finished = runToEnd(shell("echo started; exec sleep 30"), 100ms);

  ASSERT_TRUE(finished);
  EXPECT_TRUE(finished->timedOut);
  EXPECT_THAT(finished->output, HasSubstr("started"));
}

TEST(Child, StartFailsWithTheReasonWhenExecFails) {
  TestLoop loop;
  LaunchSpec spec;
  spec.argv = {"/nonexistent/interpreter"};

  auto started = start(loop.executor(), spec);

  ASSERT_FALSE(started);
  EXPECT_EQ(started.error().code, Errc::SpawnFailed);
  EXPECT_THAT(started.error().message, HasSubstr("exec failed"));
}

}  // namespace
}  // namespace customcode::process
