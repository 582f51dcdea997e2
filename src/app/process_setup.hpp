#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <cstdint>
#include <sys/types.h>
#include <vector>

// What the service sets up about itself as a process, beside its objects: its descriptor limit,
// and that no process a worker started outlives it.
namespace customcode::app {

struct DescriptorLimit {
  std::uint64_t soft = 0;  // in force after raising
  std::uint64_t hard = 0;
  bool raised = false;     // the soft limit was below the hard one and is now equal to it
};

// Raises RLIMIT_NOFILE's soft limit to its hard limit, as common servers do, and logs the figure.
DescriptorLimit raiseDescriptorLimit();

// The service as a child subreaper (PR_SET_CHILD_SUBREAPER): a process a worker started that
// outlives its worker (a daemon, a child in a new session) becomes the service's child rather
// than init's (with bubblewrap, the sandbox's own processes when a worker's bwrap dies). Such
// orphans that exit are reaped periodically, and every one still running is killed when the
// service stops, whatever the sandbox mode. The service's own children (workers, npm, checkers)
// are reaped by their owners: the orphans are the children process::spawnProcess did not start.
class Subreaper {
 public:
  explicit Subreaper(boost::asio::any_io_executor executor);

  // Becomes the subreaper and starts the periodic reaping. Returns false (and logs) when the
  // kernel refuses.
  bool start();
  void stop();

  // SIGKILLs every child still running and reaps it, until none is left. Call when every worker
  // is gone (they are children too), as the service exits.
  static std::size_t killAllChildren();

  // Reaps the orphans that have exited. Returns how many.
  static std::size_t reapOrphans();

  // The pids of the service's children (from /proc), with whether each has exited (a zombie).
  struct Child {
    pid_t pid = 0;
    bool zombie = false;
  };
  static std::vector<Child> children();

 private:
  void schedule();

  boost::asio::steady_timer timer_;
  bool running_ = false;
};

}  // namespace customcode::app
