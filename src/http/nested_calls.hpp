#pragma once

#include "common/metrics.hpp"
#include "pool/worker.hpp"
#include "pool/worker_pool.hpp"
#include "runtimes/runtime.hpp"

#include <boost/asio/awaitable.hpp>

namespace customcode::http {

namespace asio = boost::asio;

// Serves the calls between the languages of a workspace (pool::CallHandler): a JavaScript function
// that awaits a Python one, or the reverse. The callee runs on the workspace's worker of its
// language, of the version the outer run is bound to, through the same WorkerPool::acquire a run
// takes (so the worker is started if needed), within what is left of the outer run's deadline:
// a cold start counts against it, and the callee's own language timeout does not apply. Calls
// nest at most kMaxDepth deep. Every failure but a timeout comes back as the error the caller
// raises, naming the function where it was raised. Runs on the event loop.
class NestedCalls : public pool::CallHandler {
 public:
  static constexpr unsigned kMaxDepth = 16;

  // Both are owned by Server and outlive every run.
  NestedCalls(pool::WorkerPool& pool, const runtimes::Runtimes& runtimes, Metrics& metrics)
      : pool_(pool), runtimes_(runtimes), metrics_(metrics) {}

  asio::awaitable<pool::RunOutcome> call(pool::NestedCall call) override;

 private:
  pool::WorkerPool& pool_;
  const runtimes::Runtimes& runtimes_;
  Metrics& metrics_;
};

}  // namespace customcode::http
