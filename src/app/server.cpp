#include "app/server.hpp"

#include "common/async.hpp"
#include "common/log.hpp"
#include "process/priority.hpp"

#include <boost/asio/co_spawn.hpp>

#include <signal.h>
#include <unistd.h>


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
      playground_(config_.playground),
      api_(http::Api::Dependencies{.loop = ioc_.get_executor(),
                                   .fsPool = fsPool_,
                                   .store = store_,
                                   .pool = pool_,
                                   .checker = checker_,
                                   .npm = npm_,
                                   .runtimes = runtimes_,
                                   .metrics = metrics_,
                                   .playground = playground_},
           config_),
      listener_(ioc_.get_executor(), config_.http, api_, metrics_),
      subreaper_(ioc_.get_executor()),
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
  // What every worker binds: the staged bootstrap (under the data root, so reaching it means
  // reaching the workspaces too).
  problems = sandbox_.prepare({*staged});
  if (!problems.empty()) return problems;
  problems = prepareNetwork();
  if (!problems.empty()) return problems;
  problems = prepareCgroups();
  if (!problems.empty()) return problems;
  metrics_.isolation = sandbox::isolationName(sandbox_.isolation());
  api_.setIsolation(metrics_.isolation);
  if (auto warning = runtimes_.detectNodeVersion()) sandbox_.addWarning(*warning);
  if (config_.pool.longRunAfter.count() > 0 && !process::canRaisePriority())
    log::app()->info("no CAP_SYS_NICE: a worker lowered for a long call stays at FUNCTIONS_LONG_RUN_NICE until it "
                     "is replaced");
  for (const auto& warning : sandbox_.warnings()) {
    log::app()->warn("!!! {}", warning);
    api_.addHealthWarning(warning);
  }
  if (config_.store.updateScriptsOnStartup) store_.regenerateAll();
  if (auto warning = playground_.load()) log::app()->warn("{}", *warning);
  else if (playground_.enabled()) log::app()->info("playground at /playground/ ({})", config_.playground.dir.string());
  auto port = listener_.open();
  if (!port) {
    problems.push_back(port.error().message);
    return problems;
  }
  port_ = *port;
  return problems;
}

std::vector<std::string> Server::prepareNetwork() {
  // Workers may join the namespace when nothing of them has capabilities over it: bubblewrap's
  // own user namespace has none; a restricted worker of a root service has a uid of its own. A
  // restricted worker of another service shares its uid, which owns the holder's user namespace
  // (and so every capability over the network namespace), so it stays out.
  std::optional<process::LaunchSpec> probe;
  std::string whyNoProbe = "workers are not sandboxed (see SANDBOX), so they could leave any namespace";
  const bool restricted = sandbox_.isolation() == sandbox::Isolation::Restricted;
  if (restricted && ::geteuid() != 0)
    whyNoProbe = "restricted workers of a service that is not root share its uid, which would have every capability "
                 "over the workers' network namespace (see docs/security.md)";
  if (sandbox_.isolated() || (restricted && ::geteuid() == 0)) {
    process::LaunchSpec check;
    check.argv = {"/bin/true"};
    check.env = {"PATH=/usr/bin:/bin"};
    check.cwd = "/";
    probe = sandbox_.wrap(std::move(check), sandbox::SandboxView{});
  }
  // Beside the workspaces but out of every sandbox's view: the rule set names the host's addresses.
  auto dir = store_.root() / ".network";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  std::filesystem::permissions(dir, std::filesystem::perms::owner_all, ec);
  auto problems = network_.prepare(std::move(probe), dir, std::move(whyNoProbe));
  if (!problems.empty()) return problems;
  sandbox_.useNetwork(&network_);
  metrics_.workerNetwork = network::WorkerNetwork::modeName(network_.mode());
  for (const auto& warning : network_.warnings()) sandbox_.addWarning(warning);
  return problems;
}

std::vector<std::string> Server::prepareCgroups() {
  using Mode = config::SandboxConfig::Cgroups;
  const auto& sandbox = config_.sandbox;
  std::string failure = "WORKER_CGROUPS=off";
  if (sandbox.cgroups != Mode::Off) {
    failure = sandbox.testNoCgroups
                  ? "cgroups refused by WORKER_CGROUPS_TEST_UNAVAILABLE (a test switch)"
                  : cgroups_.prepare(
                        process::CgroupLimits{.memoryMax = sandbox.memoryMaxBytes, .pidsMax = kWorkerCgroupPids},
                        ::getpid());
  }
  metrics_.resources = cgroups_.modeName();
  api_.setResources(metrics_.resources);
  if (cgroups_.enabled()) {
    factory_.useCgroups(&cgroups_);
    log::app()->info("resources: a cgroup per worker ({}, beside the service in {}): memory ceiling {} MiB for its "
                     "whole process tree, {} processes, a CPU class (long calls idle)",
                     cgroups_.modeName(), cgroups_.placesForTest().front().string(),
                     sandbox.memoryMaxBytes / (1024 * 1024), kWorkerCgroupPids);
    return {};
  }
  if (sandbox.cgroups == Mode::On) return {"WORKER_CGROUPS=on: cannot make the workers' cgroups: " + failure};
  sandbox_.addWarning("resources: workers run without cgroups (" + failure +
                      "): their memory is bounded per process (rlimits), not for the whole tree (no tmpfs, no "
                      "child processes counted), and a long call is lowered by its nice value only");
  return {};
}

void Server::run() {
  subreaper_.start();
  pool_.start();
  spares_.start();
  spawnLogged(ioc_.get_executor(), startServing(), "start of service");
  signals_.async_wait([this](boost::system::error_code ec, int signal) {
    if (ec) return;
    log::app()->info("received signal {}, shutting down", signal);
    spawnLogged(ioc_.get_executor(), shutdown(), "shutdown");
  });
  ioc_.run();
  // The workers are gone; what they started and left behind (SANDBOX=none) goes with the service.
  Subreaper::killAllChildren();
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
  // Named, not a temporary in the co_await expression (GCC 12, common/async.hpp).
  const auto deadline = std::chrono::steady_clock::now() + config_.http.shutdownGrace;
  const bool drained = co_await listener_.waitDrained(deadline);
  if (!drained)
    log::app()->warn("{} request(s) still in flight after the shutdown timeout", listener_.requestsInFlight());
  spares_.shutdown();
  co_await checker_.shutdown();
  co_await pool_.shutdown(config_.pool.killGrace);
  subreaper_.stop();
  ioc_.stop();
}

}  // namespace customcode::app
