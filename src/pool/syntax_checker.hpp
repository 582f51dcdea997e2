#pragma once

#include "common/errors.hpp"
#include "common/metrics.hpp"
#include "pool/worker_factory.hpp"
#include "pool/worker_pool.hpp"
#include "runtimes/runtime.hpp"
#include "workspace/workspace.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

namespace customcode::pool {

// Compiles functions at save time in long-lived checker workers (one per runtime, started on first
// use, restarted if they die), so that a syntax error is a 400 and never reaches a run.
class SyntaxChecker {
 public:
  // `runtimes` and `factory` are owned by the caller and outlive the checker.
  SyntaxChecker(boost::asio::any_io_executor executor, const runtimes::Runtimes& runtimes, WorkerFactory& factory,
                config::PoolConfig poolConfig);

  // Compiles every function of `workspace` whose runtime is available. Fails with InvalidRequest
  // whose details list each error as {"path", "message", "function", "line", "column"} (line and
  // column of the user's code, from 1), or SpawnFailed / RunTimedOut if no checker answered.
  boost::asio::awaitable<Result<void>> check(const workspace::Workspace& workspace);

  boost::asio::awaitable<void> shutdown();

 private:
  boost::asio::awaitable<Result<std::shared_ptr<Worker>>> spawnChecker(WorkerWanted wanted);

  const runtimes::Runtimes& runtimes_;      // Owned by Server.
  WorkerFactory& factory_;  // Owned by Server.
  Metrics metrics_;           // the checkers' own, not reported
  WorkerPool checkers_;
};

}  // namespace customcode::pool
