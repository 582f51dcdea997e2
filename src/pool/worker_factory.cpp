#include "pool/worker_factory.hpp"

#include "common/async.hpp"
#include "common/log.hpp"
#include "common/text.hpp"

namespace customcode::pool {

std::uint64_t versionOf(const workspace::StoredWorkspace& stored, workspace::Language language) {
  return stored.script(language);
}

WorkerFactory::WorkerFactory(asio::any_io_executor executor, asio::thread_pool& fsPool,
                             workspace::WorkspaceStore& store, const runtimes::Runtimes& runtimes, SparePools& spares,
                             const config::Config& config, Metrics& metrics)
    : executor_(executor),
      fsPool_(fsPool),
      store_(store),
      runtimes_(runtimes),
      spares_(spares),
      config_(config),
      metrics_(metrics) {}

WorkerOptions WorkerFactory::options(std::string workspace, workspace::Language language, WorkerRole role) const {
  return WorkerOptions{
      .workspace = std::move(workspace),
      .language = language,
      .role = role,
      .pingTimeout = config_.pool.pingTimeout,
      .maxFrameBytes = config_.runtime.resultMaxBytes + config_.runtime.logsMaxBytes + 1024 * 1024,
      .logsMaxBytes = config_.runtime.logsMaxBytes,
      .killGrace = config_.pool.killGrace,
      .longRunAfter = role == WorkerRole::Check ? std::chrono::milliseconds(0) : config_.pool.longRunAfter,
      .longRunNice = config_.pool.longRunNice,
      .metrics = role == WorkerRole::Check ? nullptr : &metrics_,
      .cgroups = role == WorkerRole::Check ? nullptr : cgroups_};
}

asio::awaitable<Result<std::shared_ptr<Worker>>> WorkerFactory::start(WorkerWanted wanted) {
  if (!wanted.stored) throw std::logic_error("WorkerFactory::start: no workspace to load");
  const auto language = wanted.language;
  auto dir = store_.directory(wanted.workspace);
  // A workspace without packages of its own can be handed to a spare worker (a spare's sandbox
  // cannot see any workspace directory): it gets the same text a fresh worker would read.
  const bool spareCandidate = spares_.of(language) != nullptr;
  const auto packages = runtimes::traits(language).packagesDirectory;
  // The script of exactly the version the run resolved (wanted.stored, no second read of
  // workspace.yaml), written if a save collected it meanwhile, and touched so that no save
  // collects it while the worker starts. A named lambda (GCC 12, common/async.hpp).
  auto locate = [&store = store_, stored = wanted.stored, language, dir, spareCandidate, packages] {
    std::error_code ec;
    bool toSpare = spareCandidate && (packages.empty() || !std::filesystem::exists(dir / packages, ec));
    return std::make_pair(store.syncScript(*stored, language), toSpare);
  };
  auto located = co_await onPool(fsPool_, executor_, std::move(locate));
  auto& script = located.first;
  if (!script) {
    if (script.error().code != Errc::StorageFailed) co_return script.error();
    co_return Error{Errc::SpawnFailed, "The worker could not be started: " + script.error().message};
  }
  if (script->version != wanted.version)
    throw std::logic_error("WorkerFactory::start: the script is not the version wanted");
  if (located.second) {
    auto spare = co_await takeOverSpare(language, wanted.workspace, std::move(script->text), script->path,
                                        wanted.afterStuck);
    if (spare) co_return spare;
  }
  auto started = Worker::start(executor_, runtimes_.workerCommand(language, dir, script->path),
                               options(wanted.workspace, language, WorkerRole::Serve));
  if (started && wanted.afterStuck) (*started)->startLow();
  co_return started;
}

asio::awaitable<std::shared_ptr<Worker>> WorkerFactory::takeOverSpare(workspace::Language language,
                                                                      std::string workspace, std::string script,
                                                                      std::filesystem::path scriptPath,
                                                                      bool afterStuck) {
  auto* pool = spares_.of(language);
  auto spare = pool ? pool->take() : nullptr;
  if (!spare) co_return nullptr;
  if (afterStuck) spare->startLow();
  const auto filename = scriptPath.string();  // named (GCC 12, common/async.hpp)
  if (!co_await spare->load(workspace, filename, script, config_.pool.startupTimeout)) {
    log::pool()->warn("[ws:{}][pid {}] a spare worker could not load the workspace; starting a new one", workspace,
                      spare->pid());
    spare->kill("it could not load the workspace");
    co_return nullptr;
  }
  log::pool()->info("[ws:{}][pid {}] spare worker took over the workspace", workspace, spare->pid());
  co_return spare;
}

Result<std::shared_ptr<Worker>> WorkerFactory::startSpare(workspace::Language language) {
  return Worker::start(executor_, runtimes_.spareCommand(language), options("-", language, WorkerRole::Spare));
}

Result<std::shared_ptr<Worker>> WorkerFactory::startChecker(workspace::Language language) {
  return Worker::start(executor_, runtimes_.checkerCommand(language), options("-", language, WorkerRole::Check));
}

}  // namespace customcode::pool
