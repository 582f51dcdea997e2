#pragma once

#include "common/errors.hpp"
#include "common/files.hpp"

#include <filesystem>
#include <optional>
#include <string>

// A lock on one workspace that holds across processes, and so across replicas sharing the storage
// directory: an exclusive flock(2) on <root>/.locks/<workspace>.lock, held while the object lives.
// Linux emulates flock with POSIX byte-range locks on NFS, which NFSv4 implements on the server
// (lease-based: the lock of a replica that dies is released when its lease expires); CephFS and
// local file systems implement flock themselves. The lock file is opened read-write because NFS
// refuses an exclusive lock on a file opened read-only.
//
// The lock files live outside the workspace directories: a worker sees its workspace directory,
// and a lock file there could be taken by user code to block every save of its workspace. They
// are never removed (one small file per workspace ever saved): removing one while another process
// waits on it would let two processes hold "the" lock at once.
namespace customcode::workspace {

class WorkspaceLock {
 public:
  // Blocks until the lock is held. Call on the file-system pool. Fails with StorageFailed.
  static Result<WorkspaceLock> acquire(const std::filesystem::path& root, const std::string& name);

  // The lock if no other process (or descriptor) holds it, else nullopt. Never blocks.
  static std::optional<WorkspaceLock> tryAcquire(const std::filesystem::path& root, const std::string& name);

  // The directory of the lock files under `root`.
  static std::filesystem::path directory(const std::filesystem::path& root);

 private:
  explicit WorkspaceLock(files::Fd fd) : fd_(std::move(fd)) {}
  files::Fd fd_;  // closing it releases the lock
};

// An exclusive flock on `path` (created if missing, opened read-write), or nullopt with errno set.
// `wait`: block until it is free; otherwise fail at once (errno EWOULDBLOCK) when it is held.
std::optional<files::Fd> lockFile(const std::filesystem::path& path, bool wait);

}  // namespace customcode::workspace
