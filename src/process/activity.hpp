#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>

// What a process tree is doing, read from /proc: how much CPU it has used and whether any of its
// processes is running. The worker uses two looks a few milliseconds apart to tell a worker stuck
// in a loop (running, burning CPU) from one whose event loop is only slow to answer.
namespace customcode::process {

struct TreeActivity {
  std::chrono::nanoseconds cpu{};  // user + system time of the root and its descendants
  bool running = false;            // some process of the tree is running or runnable ('R')
};

// Looks at `root` and every descendant it still has (by parent links). Empty when `root` is gone.
// Reads every /proc/<pid>/stat once: about a millisecond for a few hundred processes.
std::optional<TreeActivity> lookAtTree(pid_t root);

// True when the tree looks stuck between two looks `elapsed` apart: a process ran at both looks,
// or the tree used at least half a CPU over the interval.
bool looksBusy(const TreeActivity& before, const TreeActivity& after, std::chrono::nanoseconds elapsed);

}  // namespace customcode::process
