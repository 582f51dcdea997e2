#include "app/server.hpp"

#include "common/async.hpp"
#include "common/files.hpp"
#include "common/log.hpp"
#include "pool/priority.hpp"
#include "workspace/codegen.hpp"

#include <boost/json.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <signal.h>
#include <unistd.h>


namespace customcode::app {
using namespace std::chrono_literals;

Server::Server(config::Config config)
    : config_(std::move(config)),
      store_(config_.store),
      npm_(ioc_.get_executor(), fsPool_, store_, config_.npm, metrics_),
      network_(config_.network),
      sandbox_(config_.sandbox),
      runtimes_(config_.runtime),
      pool_(ioc_.get_executor(), config_.pool,
            [this](std::string workspace, std::string runtime, std::uint64_t version) {
              return spawnWorker(std::move(workspace), std::move(runtime), version);
            },
            metrics_),
      spares_(ioc_.get_executor(), config_.pool.spareWorkers,
              [this] {
                return pool::Worker::start(ioc_.get_executor(), runtimes_.spareCommand(runtimes::kNode),
                                           workerOptions("-", "nodejs spare"));
              },
              config_.pool.startupTimeout),
      checker_(ioc_.get_executor(), runtimes_, config_.pool),
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
  runtimes_.useSandbox(&sandbox_);
  metrics_.isolation = pool::isolationName(sandbox_.isolation());
  api_.setIsolation(metrics_.isolation);
  if (auto warning = runtimes_.detectNodeVersion()) sandbox_.addWarning(*warning);
  if (config_.pool.longRunAfter.count() > 0 && !pool::canRaisePriority())
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
  std::optional<pool::LaunchSpec> probe;
  std::string whyNoProbe = "workers are not sandboxed (see SANDBOX), so they could leave any namespace";
  const bool restricted = sandbox_.isolation() == pool::Isolation::Restricted;
  if (restricted && ::geteuid() != 0)
    whyNoProbe = "restricted workers of a service that is not root share its uid, which would have every capability "
                 "over the workers' network namespace (see docs/security.md)";
  if (sandbox_.isolated() || (restricted && ::geteuid() == 0)) {
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
  auto problems = network_.prepare(std::move(probe), dir, std::move(whyNoProbe));
  if (!problems.empty()) return problems;
  sandbox_.useNetwork(&network_);
  metrics_.workerNetwork = network::WorkerNetwork::modeName(network_.mode());
  for (const auto& warning : network_.warnings()) sandbox_.addWarning(warning);
  return problems;
}

asio::awaitable<Result<std::shared_ptr<pool::Worker>>> Server::spawnWorker(std::string workspace, std::string runtime,
                                                                           std::uint64_t version) {
  // The script of the version the run is bound to (store_.scriptFor); a named lambda: GCC 12
  // corrupts a lambda temporary built inside a co_await expression.
  auto language = workspace::parseLanguage(runtime);
  auto dir = store_.directory(workspace);
  // A Node workspace without npm packages can be handed to a spare worker (a spare's sandbox
  // cannot see any workspace directory).
  const bool spareCandidate = runtime == runtimes::kNode && config_.pool.spareWorkers > 0;
  auto locate = [this, workspace, language = *language, version, dir, spareCandidate] {
    std::error_code ec;
    bool toSpare = spareCandidate && !std::filesystem::exists(dir / "node_modules", ec);
    return std::make_pair(store_.scriptFor(workspace, language, version), toSpare);
  };
  auto located = co_await onPool(fsPool_, ioc_.get_executor(), std::move(locate));
  auto& script = located.first;
  if (!script) {
    if (script.error().code != Errc::StorageFailed) co_return script.error();
    co_return Error{Errc::SpawnFailed, "The worker could not be started: " + script.error().message};
  }
  if (located.second) {
    auto spare = co_await takeOverSpare(workspace, std::move(script->text), script->path);
    if (spare) co_return spare;
  }
  auto spec = runtimes_.workerCommand(runtime, dir, script->path);
  co_return pool::Worker::start(ioc_.get_executor(), spec, workerOptions(workspace, runtime));
}

asio::awaitable<std::shared_ptr<pool::Worker>> Server::takeOverSpare(std::string workspace, std::string script,
                                                                     std::filesystem::path scriptPath) {
  auto spare = spares_.take();
  if (!spare) co_return nullptr;
  std::string members = "\"filename\":" + boost::json::serialize(boost::json::string(scriptPath.string())) +
                        ",\"source\":" + boost::json::serialize(boost::json::string(script));
  auto reply = co_await spare->call("load", members, config_.pool.startupTimeout);
  const auto* ok = reply.frame.if_contains("ok");
  if (reply.status != pool::ReplyStatus::Replied || !ok || !ok->is_bool() || !ok->get_bool()) {
    log::pool()->warn("[ws:{}][pid {}] a spare worker could not load the workspace; starting a new one", workspace,
                      spare->pid());
    spare->kill("it could not load the workspace");
    co_return nullptr;
  }
  spare->assign(workspace, std::string(runtimes::kNode));
  log::pool()->info("[ws:{}][pid {}] spare worker took over the workspace", workspace, spare->pid());
  co_return spare;
}

pool::WorkerOptions Server::workerOptions(std::string workspace, std::string runtime) const {
  return pool::WorkerOptions{.workspace = std::move(workspace),
                             .runtime = std::move(runtime),
                             .maxFrameBytes = config_.runtime.resultMaxBytes + config_.runtime.logsMaxBytes + 1024 * 1024,
                             .logsMaxBytes = config_.runtime.logsMaxBytes,
                             .killGrace = config_.pool.killGrace,
                             .longRunAfter = config_.pool.longRunAfter,
                             .longRunNice = config_.pool.longRunNice};
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
  co_await spares_.waitUntilOneIsReady(kFirstSpareWait);
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
  subreaper_.stop();
  ioc_.stop();
}

}  // namespace customcode::app
