#pragma once

#include "common/errors.hpp"
#include "process/launcher.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>

// A child process watched from an event loop. Its exit is its pidfd becoming readable: nothing
// polls waitpid and no SIGCHLD handler is installed. The child leads a process group of its own
// (spawnProcess makes it one): killing it is SIGKILL to the whole group, and whatever it left in
// its group is killed when it is reaped (while its zombie still holds the group id).
namespace customcode::process {

namespace asio = boost::asio;

class Child {
 public:
  // Watches `pid`, a child of this process. On failure (no pidfd) the child is killed and reaped.
  static Result<Child> watch(asio::any_io_executor executor, pid_t pid);

  // Kills the group and reaps the child, blocking, unless it is reaped already.
  ~Child();
  Child(Child&&) noexcept = default;
  Child& operator=(Child&&) noexcept = default;

  pid_t pid() const { return state_->pid; }
  bool reaped() const { return state_->reaped; }
  int status() const { return state_->status; }  // as waitpid() reports it, once reaped

  // SIGKILLs the group and the child now (nothing once reaped).
  void kill();

  // Kills the child at `deadline` unless it has been reaped by then; killedAtDeadline() tells.
  void killAt(std::chrono::steady_clock::time_point deadline);
  bool killedAtDeadline() const { return state_->killedAtDeadline; }

  // Waits for the child to exit, kills what is left in its group and reaps it; returns its status.
  // At once when it is reaped already. One waiter at a time.
  asio::awaitable<int> wait();

 private:
  struct State {
    State(asio::any_io_executor executor, pid_t pid, int pidfd);
    pid_t pid;
    asio::posix::stream_descriptor pidfd;
    asio::steady_timer deadline;
    bool reaped = false;
    bool killedAtDeadline = false;
    int status = 0;
    void kill();
    void reap(int options);
  };
  explicit Child(std::shared_ptr<State> state) : state_(std::move(state)) {}

  std::shared_ptr<State> state_;  // shared with the deadline's handler
};

// A started child with the parent's ends of its pipes (see spawnProcess). The caller owns the fds.
struct Started {
  Child child;
  int requests = -1;
  int frames = -1;
  int output = -1;
};

// spawnProcess, then watch. Fails with SpawnFailed.
Result<Started> start(asio::any_io_executor executor, const LaunchSpec& spec);

// What a short command printed (stdout and stderr, first 64 KiB) and how it ended.
struct Finished {
  std::string output;
  int status = 0;         // as waitpid() reports it
  bool timedOut = false;  // killed after `timeout`
};

// Runs `spec` to its end on a loop of its own, blocking the caller: for start-up probes, before
// the service's loop runs. Fails when it cannot be started.
Result<Finished> runToEnd(const LaunchSpec& spec, std::chrono::milliseconds timeout);

// "exited with code 3", "was killed by signal SIGKILL": a waitpid() status in words.
std::string describeStatus(int status);

}  // namespace customcode::process
