#pragma once

#include "common/errors.hpp"
#include "common/files.hpp"
#include "config/config.hpp"
#include "workspace/workspace.hpp"
#include "workspace/workspace_lock.hpp"

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

// The on-disk store: FUNCTIONS_STORAGE_FILESYSTEM_DIRPATH/<workspace>/ holds workspace.yaml (the
// source of truth) and the generated scripts. Every file is written atomically (temp file, fsync,
// rename, fsync of the directory) and workspace.yaml is written last: it is the commit point. A
// generated script carries the fingerprint of the workspace.yaml it came from, so a script left
// newer or older than workspace.yaml by a crash is regenerated before a worker loads it.
//
// All methods block on the disk: call them from the file-system thread pool. They are safe to call
// concurrently for different workspaces. Writes to one workspace are serialised by its
// WorkspaceLock, which also holds between processes sharing the directory (replicas on one
// volume): save() expects the caller to hold it (the npm commit exchanges packages under the same
// lock); remove(), loadSynced() and regenerateAll() take it themselves.
namespace customcode::workspace {

// Identifies one version of workspace.yaml: a rename makes a new inode, a rewrite a new mtime.
struct FileIdentity {
  std::uint64_t device = 0;
  std::uint64_t inode = 0;
  std::int64_t mtimeNs = 0;
  std::int64_t size = 0;
  bool operator==(const FileIdentity&) const = default;
};

struct StoredWorkspace {
  Workspace workspace;
  std::uint64_t fingerprint = 0;  // of the workspace.yaml bytes
  FileIdentity identity;
};

class WorkspaceStore {
 public:
  explicit WorkspaceStore(config::StoreConfig config);

  // Creates the root directory and removes leftovers of interrupted writes and deletes.
  Result<void> open();

  // Replaces the workspace: generated scripts first, workspace.yaml last. The caller holds
  // lock(workspace.name). The identity returned is that of the file this call wrote. Fails with
  // StorageFailed.
  Result<StoredWorkspace> save(const Workspace& workspace);

  // Blocks until this process holds the workspace's cross-process lock. Fails with StorageFailed.
  Result<WorkspaceLock> lock(const std::string& name) const;

  // load() and syncScripts() under the workspace's lock: the scripts on disk then match the
  // workspace.yaml returned, whatever another replica saves at the same time.
  Result<StoredWorkspace> loadSynced(const std::string& name);

  // Reads and validates workspace.yaml. Fails with WorkspaceNotFound or StorageFailed.
  Result<StoredWorkspace> load(const std::string& name) const;

  // Removes the workspace directory, under its lock. Fails with WorkspaceNotFound or StorageFailed.
  Result<void> remove(const std::string& name);

  // The names of the stored workspaces, sorted.
  std::vector<std::string> list() const;

  // The identity of the workspace's current workspace.yaml, or nullopt when there is none.
  std::optional<FileIdentity> identity(const std::string& name) const;

  // Rewrites the generated scripts of `stored` whose fingerprint differs from workspace.yaml
  // (all of them when `force`), and removes the scripts of languages it no longer uses.
  Result<void> syncScripts(const StoredWorkspace& stored, bool force = false);

  // Regenerates the scripts of every workspace (UPDATE_SCRIPTS_ON_STARTUP). Returns how many
  // workspaces were rewritten; problems are logged.
  std::size_t regenerateAll();

  std::filesystem::path directory(const std::string& name) const;
  const std::filesystem::path& root() const { return root_; }

 private:
  std::filesystem::path root_;
  files::Fd rootFd_;  // the root directory, opened once: the per-run stat walks only "NAME/workspace.yaml"
};

// Writes `content` to `path` atomically and returns the identity of the file written. Exposed for
// tests.
Result<FileIdentity> writeFileAtomic(const std::filesystem::path& path, std::string_view content);

}  // namespace customcode::workspace
