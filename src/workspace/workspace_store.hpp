#pragma once

#include "common/errors.hpp"
#include "common/files.hpp"
#include "config/config.hpp"
#include "workspace/workspace.hpp"
#include "workspace/workspace_lock.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

// The on-disk store: FUNCTIONS_STORAGE_FILESYSTEM_DIRPATH/<workspace>/ holds workspace.yaml (the
// source of truth) and the generated scripts. Every file is written atomically (temp file, fsync,
// rename, fsync of the directory) and workspace.yaml is written last: it is the commit point.
//
// Generated scripts are content-addressed: functions-<fingerprint of the text>.js (or .py). A
// name always holds the same text, so a save never rewrites a script a worker may be loading: a
// run is bound to the version it resolved (the fingerprint), and the worker started for it loads
// that very file whatever saves happen meanwhile, here or on another replica sharing the
// directory. Old scripts are removed by later saves once superseded and untouched for
// kScriptGrace; starting a worker touches its script first (syncScript), so a script in use is
// never collected, and one collected already is written again from the version in memory.
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
  // The version (fingerprint of the generated text) of each language's script; 0 when the
  // workspace has no function in that language.
  std::uint64_t nodeScript = 0;
  std::uint64_t pythonScript = 0;
  std::uint64_t script(Language language) const { return language == Language::Python ? pythonScript : nodeScript; }
};

// A generated script as a worker loads it.
struct ScriptFile {
  std::filesystem::path path;
  std::string text;
  std::uint64_t version = 0;
};

// Superseded scripts untouched for this long are removed by the next save of their workspace.
constexpr std::chrono::minutes kScriptGrace{10};

class WorkspaceStore {
 public:
  explicit WorkspaceStore(config::StoreConfig config);

  // Creates the root directory and removes leftovers of interrupted writes and deletes.
  Result<void> open();

  // Replaces the workspace: generated scripts first, workspace.yaml last, then removes the
  // scripts superseded for kScriptGrace. The caller holds lock(workspace.name). The identity
  // returned is that of the file this call wrote. Fails with StorageFailed.
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

  // Writes the generated scripts of `stored` that are missing or damaged, and refreshes the time
  // of those in place (they are in use again).
  Result<void> syncScripts(const StoredWorkspace& stored);

  // The script of `language` of exactly `stored` (its version is stored.script(language)), for a
  // worker to load, generated from `stored` without reading workspace.yaml again: written when it
  // is missing or damaged (collected since, say), touched otherwise, so that no save collects it
  // while the worker starts. Fails with FunctionNotFound (no function in that language) or
  // StorageFailed.
  Result<ScriptFile> syncScript(const StoredWorkspace& stored, Language language);

  // Removes the scripts of `name` that are not `keep` and were last written or touched more than
  // `grace` ago, and those of the layout before content addressing (functions.js, .py).
  void collectScripts(const std::string& name, const StoredWorkspace& keep, std::chrono::seconds grace = kScriptGrace);

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
