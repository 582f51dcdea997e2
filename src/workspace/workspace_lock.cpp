#include "workspace/workspace_lock.hpp"

#include "common/log.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

namespace customcode::workspace {
namespace fs = std::filesystem;

std::optional<files::Fd> lockFile(const fs::path& path, bool wait) {
  files::Fd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd) return std::nullopt;
  int rc;
  do rc = ::flock(fd.get(), LOCK_EX | (wait ? 0 : LOCK_NB));
  while (rc != 0 && errno == EINTR);
  if (rc != 0) return std::nullopt;
  return fd;
}

fs::path WorkspaceLock::directory(const fs::path& root) { return root / ".locks"; }

Result<WorkspaceLock> WorkspaceLock::acquire(const fs::path& root, const std::string& name) {
  auto dir = directory(root);
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    int err = errno;
    log::store()->error("cannot create {}: {}", dir.string(), std::strerror(err));
    return Error{Errc::StorageFailed, std::string("Storage failed: cannot create the lock directory (") +
                                          std::strerror(err) + ")"};
  }
  auto fd = lockFile(dir / (name + ".lock"), true);
  if (!fd) {
    int err = errno;
    log::store()->error("[ws:{}] cannot lock {}: {}", name, (dir / (name + ".lock")).string(), std::strerror(err));
    return Error{Errc::StorageFailed, std::string("Storage failed: cannot lock the workspace (") +
                                          std::strerror(err) + ")"};
  }
  return WorkspaceLock(std::move(*fd));
}

std::optional<WorkspaceLock> WorkspaceLock::tryAcquire(const fs::path& root, const std::string& name) {
  auto dir = directory(root);
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return std::nullopt;
  auto fd = lockFile(dir / (name + ".lock"), false);
  if (!fd) return std::nullopt;
  return WorkspaceLock(std::move(*fd));
}

}  // namespace customcode::workspace
