#include "app/server.hpp"

#include "common/async.hpp"
#include "common/log.hpp"
#include "process/priority.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <signal.h>


namespace customcode::app {
using namespace std::chrono_literals;

namespace {

// How many spares each runtime keeps (its row of the runtime table names the setting).
std::vector<std::pair<workspace::Language, std::size_t>> spareTargets(const config::PoolConfig& pool) {
  std::vector<std::pair<workspace::Language, std::size_t>> targets;
  for (auto language : runtimes::kLanguages) targets.emplace_back(language, pool.*runtimes::traits(language).spareWorkers);
  return targets;
}

}  // namespace

Server::Server(config::Config config)
    : config_(std::move(config)),
      store_(config_.store),
      npm_(ioc_.get_executor(), fsPool_, store_, config_.npm, metrics_),
      network_(config_.network),
      sandbox_(config_.sandbox),
      runtimes_(config_.runtime, sandbox_),
      factory_(ioc_.get_executor(), fsPool_, store_, runtimes_, spares_, config_, metrics_),
      spares_(ioc_.get_executor(), spareTargets(config_.pool),
              [this](workspace::Language language) { return factory_.startSpare(language); },
              config_.pool.startupTimeout),
      pool_(ioc_.get_executor(), config_.pool,
            [this](pool::WorkerWanted wanted) { return factory_.start(std::move(wanted)); }, metrics_),
      checker_(ioc_.get_executor(), runtimes_, factory_, config_.pool),
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
  problems = prepareNetwork();
  if (!problems.empty()) return problems;
  if (auto warning = runtimes_.detectNodeVersion()) sandbox_.addWarning(*warning);
  if (config_.pool.longRunAfter.count() > 0 && !process::canRaisePriority())
    log::app()->info("no CAP_SYS_NICE: a worker lowered for a long call stays at FUNCTIONS_LONG_RUN_NICE until it "
                     "is replaced");
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
  port_ = *port;
  return problems;
}

std::vector<std::string> Server::prepareNetwork() {
  std::optional<pool::LaunchSpec> probe;
  if (sandbox_.isolated()) {
    pool::LaunchSpec check;
    check.argv = {"/bin/true"};
    check.env = {"PATH=/usr/bin:/bin"};
    check.cwd = "/";
    probe = sandbox_.wrap(std::move(check), pool::SandboxView{});
  }
  // Beside the workspaces but out of every sandbox's view: the rule set names the host's addresses.
  auto dir = store_.root() / ".network";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  std::filesystem::permissions(dir, std::filesystem::perms::owner_all, ec);
  auto problems = network_.prepare(std::move(probe), dir);
  if (!problems.empty()) return problems;
  sandbox_.useNetwork(&network_);
  metrics_.workerNetwork = network::WorkerNetwork::modeName(network_.mode());
  for (const auto& warning : network_.warnings()) sandbox_.addWarning(warning);
  return problems;
}

void Server::run() {
  pool_.start();
  spares_.start();
  spawnLogged(ioc_.get_executor(), startServing(), "start of service");
  signals_.async_wait([this](boost::system::error_code ec, int signal) {
    if (ec) return;
    log::app()->info("received signal {}, shutting down", signal);
    spawnLogged(ioc_.get_executor(), shutdown(), "shutdown");
  });
  ioc_.run();
  log::app()->info("customcode stopped");
}

// Accepting starts once the first spare worker is up (or could not start, or a bound passed): a
// run that arrives sooner would start a worker of its own, about 90 ms, beside the spares'
// starts. The port is bound already, so early connections wait in the backlog, and the
// "listening" line (what scripts and probes wait for) comes now.
asio::awaitable<void> Server::startServing() {
  co_await spares_.waitUntilEachHasOne(kFirstSpareWait);
  listener_.start();
  log::app()->info("customcode listening on {}:{} (storage {})", config_.http.host, port_, store_.root().string());
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
  spares_.shutdown();
  co_await checker_.shutdown();
  co_await pool_.shutdown(config_.pool.killGrace);
  ioc_.stop();
}

}  // namespace customcode::app
