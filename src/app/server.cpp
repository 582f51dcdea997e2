#include "app/server.hpp"

#include "common/async.hpp"
#include "common/log.hpp"
#include "workspace/codegen.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <signal.h>

namespace customcode::app {
using namespace std::chrono_literals;

Server::Server(config::Config config)
    : config_(std::move(config)),
      store_(config_.store),
      npm_(ioc_.get_executor(), fsPool_, store_, config_.npm, metrics_),
      sandbox_(config_.sandbox),
      runtimes_(config_.runtime),
      pool_(ioc_.get_executor(), config_.pool,
            [this](std::string workspace, std::string runtime) { return spawnWorker(std::move(workspace), std::move(runtime)); },
            metrics_),
      checker_(ioc_.get_executor(), runtimes_, config_.pool),
      api_(http::Api::Dependencies{.loop = ioc_.get_executor(),
                                   .fsPool = fsPool_,
                                   .store = store_,
                                   .pool = pool_,
                                   .checker = checker_,
                                   .npm = npm_,
                                   .runtimes = runtimes_,
                                   .metrics = metrics_},
           config_),
      listener_(ioc_.get_executor(), config_.http, api_),
      signals_(ioc_, SIGTERM, SIGINT) {}

Server::~Server() { fsPool_.join(); }

std::vector<std::string> Server::prepare() {
  std::vector<std::string> problems = runtimes_.startupProblems();
  if (auto opened = store_.open(); !opened)
    problems.push_back("FUNCTIONS_STORAGE_FILESYSTEM_DIRPATH: " + opened.error().message);
  if (!problems.empty()) return problems;
  npm_.removeLeftovers();
  auto staged = runtimes_.stageBootstrap(store_.root());
  if (!staged) return {"FUNCTIONS_STORAGE_FILESYSTEM_DIRPATH: " + staged.error().message};
  // Before any worker or checker starts: every command goes through the sandbox.
  problems = sandbox_.prepare({store_.root(), *staged});
  if (!problems.empty()) return problems;
  runtimes_.useSandbox(&sandbox_);
  for (const auto& warning : sandbox_.warnings()) {
    log::app()->warn("!!! {}", warning);
    api_.addHealthWarning(warning);
  }
  if (config_.store.updateScriptsOnStartup) store_.regenerateAll();
  auto port = listener_.open();
  if (!port) {
    problems.push_back(port.error().message);
    return problems;
  }
  log::app()->info("customcode listening on {}:{} (storage {})", config_.http.host, *port, store_.root().string());
  return problems;
}

asio::awaitable<Result<std::shared_ptr<pool::Worker>>> Server::spawnWorker(std::string workspace, std::string runtime) {
  // Bring the generated script in line with workspace.yaml first (a crash mid-save, an upgrade).
  // A named lambda: GCC 12 corrupts a lambda temporary built inside a co_await expression.
  auto sync = [this, workspace]() -> Result<void> {
    auto stored = store_.load(workspace);
    if (!stored) return stored.error();
    return store_.syncScripts(*stored);
  };
  auto synced = co_await onPool(fsPool_, ioc_.get_executor(), std::move(sync));
  if (!synced) co_return synced.error();
  auto language = workspace::parseLanguage(runtime);
  auto dir = store_.directory(workspace);
  auto spec = runtimes_.workerCommand(runtime, dir, dir / std::string(workspace::scriptFileName(*language)));
  co_return pool::Worker::start(ioc_.get_executor(), spec,
                                pool::WorkerOptions{.workspace = workspace,
                                                    .runtime = runtime,
                                                    .maxFrameBytes = config_.runtime.resultMaxBytes +
                                                                     config_.runtime.logsMaxBytes + 1024 * 1024,
                                                    .logsMaxBytes = config_.runtime.logsMaxBytes,
                                                    .killGrace = config_.pool.killGrace});
}

void Server::run() {
  pool_.start();
  listener_.start();
  signals_.async_wait([this](boost::system::error_code ec, int signal) {
    if (ec) return;
    log::app()->info("received signal {}, shutting down", signal);
    spawnLogged(ioc_.get_executor(), shutdown(), "shutdown");
  });
  ioc_.run();
  log::app()->info("customcode stopped");
}

asio::awaitable<void> Server::shutdown() {
  listener_.stopAccepting();
  asio::steady_timer wait(ioc_.get_executor());
  auto deadline = std::chrono::steady_clock::now() + config_.http.shutdownGrace;
  while (listener_.requestsInFlight() > 0 && std::chrono::steady_clock::now() < deadline) {
    wait.expires_after(10ms);
    co_await wait.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  if (listener_.requestsInFlight() > 0)
    log::app()->warn("{} request(s) still in flight after the shutdown timeout", listener_.requestsInFlight());
  co_await checker_.shutdown();
  co_await pool_.shutdown(config_.pool.killGrace);
  ioc_.stop();
}

}  // namespace customcode::app
