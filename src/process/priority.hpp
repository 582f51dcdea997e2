#pragma once

#include <sys/types.h>

#include <optional>

namespace customcode::process {

// A worker busy with a long call runs at a high nice value, so that the short runs of every
// workspace keep their CPU and latency beside it (docs/decisions.md, "Long calls").

// Sets the nice value of every thread of `root` and of all its descendants (a worker is bwrap,
// its init, the interpreter and the interpreter's threads; Linux keeps a nice value per thread).
// Returns false when a thread could not be changed (lowering a nice value needs CAP_SYS_NICE, or
// an RLIMIT_NICE that allows it); threads that exit meanwhile are not failures.
bool setTreeNice(pid_t root, int nice);

// Whether this process may bring a nice value back down (1 to 0). Probed on a short-lived thread.
bool canRaisePriority();

// The nice value of thread `tid`, or nullopt when it is gone.
std::optional<int> niceOf(pid_t tid);

}  // namespace customcode::process
