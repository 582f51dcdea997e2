#pragma once

#include <linux/filter.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

// What confines a worker when namespaces are not available (SANDBOX=restricted, or the fallback
// of SANDBOX=auto; docs/security.md): no_new_privs, a Landlock rule set that limits the files the
// worker may read to the system directories, its bootstrap and its own workspace (and lets it
// write none), and a seccomp filter that refuses what functions never need (ptrace, mount,
// namespaces, bpf, keyrings, perf, module loading, ...) and signals to anything but the worker's
// own process group. Built in the service, applied in the child between fork and exec.
namespace customcode::sandbox {

// A seccomp filter compiled once (libseccomp), in which the child writes its own pid before it
// loads it.
class SeccompFilter {
 public:
  // Compiles the filter; an empty filter and the reason when libseccomp cannot.
  static std::shared_ptr<const SeccompFilter> compile(std::string& error);

  const std::vector<sock_filter>& program() const { return program_; }

 private:
  std::vector<sock_filter> program_;
};

// Landlock's file system ABI on this kernel: 0 when it has none (or it is disabled).
int landlockAbi();

// One worker's confinement, applied in the child after fork and before the uid switch: it may
// only make system calls (async-signal-safe).
struct Confinement {
  std::shared_ptr<const SeccompFilter> seccomp;
  bool landlock = true;
  // Read (and execute) allowed beneath each, write nowhere but /dev/null.
  std::vector<std::string> readable;
  std::vector<std::string> readableFiles;  // single files (e.g. a few of /etc)

  // In the child: no_new_privs, Landlock, then seccomp. Returns false with errno set.
  static bool apply(const void* self);
};

}  // namespace customcode::sandbox
