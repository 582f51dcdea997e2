#pragma once

#include "common/errors.hpp"
#include "common/files.hpp"
#include "common/metrics.hpp"
#include "config/config.hpp"
#include "deps/packages.hpp"
#include "workspace/workspace.hpp"
#include "workspace/workspace_store.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>

#include <filesystem>
#include <memory>
#include <string>

// npm installs of a workspace's packages, at save time and never on the run path (docs/npm.md).
//
// npm runs in a staging directory next to the workspaces (<root>/.staging-<ws>-<id>/), never in the
// live workspace directory, so a failed or timed-out install leaves the previous version in
// service untouched. On success, node_modules, package.json and package-lock.json are exchanged
// with the workspace's (renameat2 RENAME_EXCHANGE: no moment without a node_modules) just before
// workspace.yaml is committed, and exchanged back if that commit fails. The exchange and the save
// happen under the workspace's cross-process lock (workspace/workspace_lock.hpp), so two replicas
// installing the same workspace at once each install into their own staging directory and commit
// one after the other: the packages in place always belong to the workspace.yaml in place.
namespace customcode::deps {

// What prepare() left for commit(): a staging directory to exchange with the workspace's, or
// nothing when the workspace's packages are already right.
struct StagedPackages {
  std::filesystem::path staging;  // empty: nothing to change
  // A lock on <staging>/.in-use, held while the staging directory is in use: removeLeftovers() of
  // a replica starting meanwhile leaves the directory alone.
  std::shared_ptr<files::Fd> inUse;
  PackageSet packages;
  bool ranNpm = false;
};

class NpmInstaller {
 public:
  // `store` and `metrics` are owned by Server. `loop` is the event loop (npm is a child process
  // watched from it); `fsPool` does the disk work.
  NpmInstaller(boost::asio::any_io_executor loop, boost::asio::thread_pool& fsPool, workspace::WorkspaceStore& store,
               config::NpmConfig config, Metrics& metrics);

  // Removes the staging directories of saves interrupted by a crash, leaving those that a running
  // replica sharing the directory is using. Call once after the store is open, before serving.
  void removeLeftovers();

  // Brings the packages `workspace` needs into a staging directory, running npm when the package
  // set differs from the installed package.json (or node_modules is missing), and not at all when
  // it is the same. A workspace with disableNpmRegistry, or with no packages, needs none: any
  // installed ones are removed at commit. Leaves the workspace directory untouched. The caller
  // holds the workspace's write lock until commit() or discard(). Fails with InvalidRequest (a bad
  // package name or range), PackageNotFound (npm E404 or ETARGET), PackageInstallFailed (any other
  // npm failure, npm missing, the NPM_INSTALL_TIMEOUT expired: npm is killed) or StorageFailed.
  boost::asio::awaitable<Result<StagedPackages>> prepare(workspace::Workspace workspace);

  // Blocking: call on the file-system pool. Takes the workspace's lock, exchanges the staged
  // packages into the workspace directory, saves `workspace` with the store (workspace.yaml last: the commit point), then
  // removes the staging directory, which holds the previous packages. If the save fails the
  // exchange is undone, so the previous version keeps its packages.
  Result<workspace::StoredWorkspace> commit(const workspace::Workspace& workspace, const StagedPackages& staged);

  // Blocking: removes a staging directory that will not be committed.
  void discard(const StagedPackages& staged) const;

  // The npm cache directory in use (NPM_CACHE_DIRECTORY or <storage root>/.npm-cache).
  std::filesystem::path cacheDirectory() const;

 private:
  struct Plan;
  Result<Plan> plan(const std::string& name, const PackageSet& packages) const;
  boost::asio::awaitable<Result<void>> runNpm(std::string workspace, std::filesystem::path dir, PackageSet packages);
  Result<void> exchange(const std::string& name, const std::filesystem::path& staging) const;

  boost::asio::any_io_executor loop_;
  boost::asio::thread_pool& fsPool_;   // Owned by Server.
  workspace::WorkspaceStore& store_;   // Owned by Server.
  config::NpmConfig config_;
  Metrics& metrics_;                   // Owned by Server.
};

// Turns npm's output into the error a client sees: E404 and ETARGET become PackageNotFound naming
// the package, anything else PackageInstallFailed; both quote npm's error lines (trimmed).
// Exposed for tests.
Error npmFailure(std::string_view output, const PackageSet& packages);

}  // namespace customcode::deps
