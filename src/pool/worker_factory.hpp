#pragma once

#include "common/errors.hpp"
#include "common/metrics.hpp"
#include "config/config.hpp"
#include "pool/spare_pool.hpp"
#include "pool/worker.hpp"
#include "pool/worker_pool.hpp"
#include "runtimes/runtime.hpp"
#include "workspace/workspace_store.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>

#include <memory>

namespace customcode::pool {

// The version of a stored workspace a worker of `language` runs: the fingerprint of its generated
// script (workspace/workspace_store.hpp). A worker is bound to the version and the code of one
// read (WorkerWanted::stored).
std::uint64_t versionOf(const workspace::StoredWorkspace& stored, workspace::Language language);

// Starts every kind of worker: the worker of a workspace (taking a spare over when it can), a
// spare, a syntax checker. Knows the store, the runtimes and the spares; the pools only ask it.
// Runs on the event loop; disk work goes to the file-system pool.
class WorkerFactory {
 public:
  // Every argument is owned by the caller and outlives the factory. `spares` may be used only
  // once start() is called (it may be built after the factory).
  WorkerFactory(asio::any_io_executor executor, asio::thread_pool& fsPool, workspace::WorkspaceStore& store,
                const runtimes::Runtimes& runtimes, SparePools& spares, const config::Config& config, Metrics& metrics);

  // Starts the worker of `wanted`, loading exactly wanted.stored (no second read of the store):
  // its generated script of that version (WorkspaceStore::syncScript: touched, or written again if
  // collected or damaged), handed to a spare when one can take it over, else a fresh worker
  // started on that file. The pool waits for it to be ready. Fails with SpawnFailed (the script
  // cannot be written or read: StorageFailed becomes SpawnFailed) or FunctionNotFound.
  asio::awaitable<Result<std::shared_ptr<Worker>>> start(WorkerWanted wanted);

  // A spare worker of `language` (no workspace yet); not ready yet.
  Result<std::shared_ptr<Worker>> startSpare(workspace::Language language);

  // A syntax checker of `language`; not ready yet.
  Result<std::shared_ptr<Worker>> startChecker(workspace::Language language);

  // From now on workspace workers and spares run in cgroups of their own (checkers never run user
  // code and stay out). Owned by the caller; outlives every worker.
  void useCgroups(process::Cgroups* cgroups) { cgroups_ = cgroups; }

 private:
  WorkerOptions options(std::string workspace, workspace::Language language, WorkerRole role) const;
  // Hands `workspace` to a spare worker; nullptr when there is none or it refused.
  asio::awaitable<std::shared_ptr<Worker>> takeOverSpare(workspace::Language language, std::string workspace,
                                                         std::string script, std::filesystem::path scriptPath,
                                                         bool afterStuck);

  asio::any_io_executor executor_;
  asio::thread_pool& fsPool_;
  workspace::WorkspaceStore& store_;
  const runtimes::Runtimes& runtimes_;
  SparePools& spares_;
  const config::Config& config_;
  Metrics& metrics_;
  process::Cgroups* cgroups_ = nullptr;
};

}  // namespace customcode::pool
