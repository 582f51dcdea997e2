#pragma once

#include "app/process_setup.hpp"
#include "common/metrics.hpp"
#include "config/config.hpp"
#include "deps/npm_installer.hpp"
#include "http/handlers.hpp"
#include "http/listener.hpp"
#include "network/worker_network.hpp"
#include "sandbox/sandbox.hpp"
#include "pool/spare_pool.hpp"
#include "pool/worker_factory.hpp"
#include "pool/worker_pool.hpp"
#include "process/cgroup.hpp"
#include "runtimes/runtime.hpp"
#include "pool/syntax_checker.hpp"
#include "workspace/workspace_store.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/thread_pool.hpp>

#include <memory>
#include <string>
#include <vector>

namespace customcode::app {

namespace asio = boost::asio;

// Builds and owns every object of the service, in dependency order; they are destroyed in
// reverse. run() blocks until SIGTERM or SIGINT has drained the service.
class Server {
 public:
  explicit Server(config::Config config);
  ~Server();

  // Checks the runtimes, opens the store, binds the port. Returns every problem found; the caller
  // prints them and exits non-zero.
  std::vector<std::string> prepare();

  // Serves until a signal, then drains: stops accepting, lets requests in flight finish within
  // SHUTDOWN_TIMEOUT, retires and kills the workers.
  void run();

 private:
  static constexpr std::chrono::milliseconds kFirstSpareWait{2000};
  // Processes and threads of one worker's tree in its cgroup: the sandbox's own processes
  // (bubblewrap, its init, prlimit) and twice the interpreter's RLIMIT_NPROC.
  static constexpr std::uint64_t kWorkerCgroupPids = 128;

  // Sets up the workers' network (after the sandbox, before any worker starts).
  std::vector<std::string> prepareNetwork();
  // Makes the workers' cgroups where WORKER_CGROUPS allows it; problems when it is `on` and fails.
  std::vector<std::string> prepareCgroups();
  asio::awaitable<void> startServing();
  asio::awaitable<void> shutdown();

  config::Config config_;
  std::uint16_t port_ = 0;  // bound in prepare()
  boost::asio::io_context ioc_{1};
  boost::asio::thread_pool fsPool_{2};
  Metrics metrics_;
  workspace::WorkspaceStore store_;
  deps::NpmInstaller npm_;
  network::WorkerNetwork network_;  // outlives every worker
  sandbox::Sandbox sandbox_;
  process::Cgroups cgroups_;  // outlives every worker (each removes its cgroup from it)
  runtimes::Runtimes runtimes_;
  pool::WorkerFactory factory_;
  pool::SparePools spares_;
  pool::WorkerPool pool_;
  pool::SyntaxChecker checker_;
  http::Playground playground_;
  http::Api api_;
  http::Listener listener_;
  Subreaper subreaper_;
  boost::asio::signal_set signals_;
};

}  // namespace customcode::app
