#include "process/child.hpp"

#include "common/async.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

namespace customcode::process {
namespace {

constexpr std::size_t kMaxFinishedOutput = 64 * 1024;

}  // namespace

Child::State::State(asio::any_io_executor executor, pid_t pid, int fd)
    : pid(pid), pidfd(executor, fd), deadline(executor) {}

void Child::State::kill() {
  if (reaped) return;
  ::kill(-pid, SIGKILL);
  ::kill(pid, SIGKILL);
}

void Child::State::reap(int options) {
  ::kill(-pid, SIGKILL);  // what the child left in its group; the zombie keeps the group id ours
  pid_t got;
  do got = ::waitpid(pid, &status, options);
  while (got < 0 && errno == EINTR);
  if (got == pid || (got < 0 && errno == ECHILD)) reaped = true;
}

Result<Child> Child::watch(asio::any_io_executor executor, pid_t pid) {
  int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) {
    int err = errno;
    ::kill(-pid, SIGKILL);
    ::kill(pid, SIGKILL);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    return Error{Errc::SpawnFailed,
                 std::string("cannot watch the child process (pidfd_open, Linux 5.3 or later): ") + std::strerror(err)};
  }
  return Child(std::make_shared<State>(executor, pid, fd));
}

// No call on the timer or the pidfd here: the child may be destroyed with its io_context, whose
// services are shut down by then.
Child::~Child() {
  if (!state_ || state_->reaped) return;
  state_->kill();
  state_->reap(0);
}

void Child::kill() { state_->kill(); }

void Child::killAt(std::chrono::steady_clock::time_point deadline) {
  if (state_->reaped) return;
  state_->deadline.expires_at(deadline);
  state_->deadline.async_wait([weak = std::weak_ptr<State>(state_)](boost::system::error_code ec) {
    auto state = weak.lock();
    if (ec || !state || state->reaped) return;
    state->killedAtDeadline = true;
    state->kill();
  });
}

asio::awaitable<int> Child::wait() {
  auto state = state_;
  while (!state->reaped) {
    // A pidfd is readable once the process has exited; waitpid then returns at once.
    auto [ec] =
        co_await state->pidfd.async_wait(asio::posix::descriptor_base::wait_read, asio::as_tuple(asio::use_awaitable));
    if (ec == asio::error::operation_aborted) throw boost::system::system_error(ec);
    state->reap(ec ? 0 : WNOHANG);
  }
  state->deadline.cancel();  // its handler would do nothing now; it must not keep the loop busy
  co_return state->status;
}

Result<Started> start(asio::any_io_executor executor, const LaunchSpec& spec) {
  auto pipes = spawnProcess(spec);
  if (!pipes) return pipes.error();
  auto child = Child::watch(executor, pipes->pid);
  if (!child) {
    for (int fd : {pipes->requests, pipes->frames, pipes->output}) ::close(fd);
    return child.error();
  }
  return Started{
      .child = std::move(*child), .requests = pipes->requests, .frames = pipes->frames, .output = pipes->output};
}

namespace {

asio::awaitable<void> collect(Started& started, Finished& finished, std::chrono::milliseconds timeout) {
  started.child.killAt(std::chrono::steady_clock::now() + timeout);
  asio::posix::stream_descriptor output(co_await asio::this_coro::executor, started.output);
  std::array<char, 4096> buffer;
  for (;;) {
    auto [ec, n] = co_await output.async_read_some(asio::buffer(buffer), asio::as_tuple(asio::use_awaitable));
    if (finished.output.size() < kMaxFinishedOutput) finished.output.append(buffer.data(), n);
    if (ec) break;
  }
  finished.status = co_await started.child.wait();
  finished.timedOut = started.child.killedAtDeadline();
}

}  // namespace

Result<Finished> runToEnd(const LaunchSpec& spec, std::chrono::milliseconds timeout) {
  asio::io_context loop(1);
  auto started = start(loop.get_executor(), spec);
  if (!started) return started.error();
  ::close(started->requests);
  ::close(started->frames);
  Finished finished;
  std::exception_ptr failure;
  asio::co_spawn(loop, collect(*started, finished, timeout), [&failure](std::exception_ptr e) { failure = e; });
  loop.run();
  if (failure) std::rethrow_exception(failure);
  return finished;
}

std::string describeStatus(int status) {
  if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const char* name = sigabbrev_np(WTERMSIG(status));
    return "was killed by signal " + (name ? std::string("SIG") + name : std::to_string(WTERMSIG(status)));
  }
  return "ended with status " + std::to_string(status);
}

}  // namespace customcode::process
