#include "pool/worker_pool.hpp"

#include "common/async.hpp"
#include "common/log.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>

namespace customcode::pool {
using namespace std::chrono_literals;
using asio::as_tuple;
using asio::use_awaitable;

WorkerPool::WorkerPool(asio::any_io_executor executor, config::PoolConfig config, SpawnFunction spawn,
                       Metrics& metrics)
    : executor_(executor),
      config_(config),
      spawn_(std::move(spawn)),
      metrics_(metrics),
      sweepTimer_(executor),
      priorityTimer_(executor),
      alive_(std::make_shared<bool>(true)) {}

WorkerPool::~WorkerPool() { *alive_ = false; }

void WorkerPool::start() {
  spawnLogged(executor_, sweepLoop(), "idle worker sweeper");
  if (config_.longRunAfter.count() > 0) spawnLogged(executor_, priorityLoop(), "worker priority check");
}

namespace {

// A run's acquire loops only when what it found changed under it while it waited (a save retired
// the worker being started, say): a few passes, then it gives up.
constexpr int kMaxPasses = 5;

std::string keyOf(const WorkerWanted& wanted) {
  return wanted.workspace + '\n' + std::string(workspace::languageName(wanted.language));
}

}  // namespace

asio::awaitable<Result<std::shared_ptr<Worker>>> WorkerPool::acquire(WorkerWanted wanted) {
  const std::string key = keyOf(wanted);
  for (int pass = 0; pass < kMaxPasses; ++pass) {
    if (stopping_) co_return Error{Errc::ShuttingDown, "The service is shutting down"};

    // 1. The live worker, unless it is starting (wait for that start) or under suspicion after a
    //    timeout (wait for its ping's verdict rather than queue behind a busy loop).
    if (auto it = entries_.find(key); it != entries_.end()) {
      Entry& entry = it->second;
      if (!entry.worker) {
        auto started = entry.started;
        co_await started->wait();
        continue;
      }
      if (entry.worker->suspect()) {
        auto worker = entry.worker;
        co_await worker->verdict();
        continue;
      }
      if (entry.worker->accepting() && entry.version == wanted.version) {
        touch(entry);
        co_return entry.worker;
      }
      removeEntry(key, entry.version == wanted.version ? "worker gone" : "new version");
    }

    // 2. A slot for a new one.
    co_await makeRoom(key);
    if (stopping_ || entries_.contains(key)) continue;  // another caller started it while we waited

    // 3. Start it; callers that come meanwhile wait on `started`.
    auto started = std::make_shared<Event>();
    lru_.push_back(key);
    entries_.emplace(key, Entry{.key = key,
                                .workspace = wanted.workspace,
                                .version = wanted.version,
                                .worker = nullptr,
                                .started = started,
                                .lru = std::prev(lru_.end())});
    ++metrics_.spawns;
    auto spawned = co_await spawn_(wanted);
    // No co_await inside ?: here (GCC 12, common/async.hpp).
    Result<void> ready = spawned ? Result<void>() : Result<void>(spawned.error());
    if (spawned) {
      auto waited = co_await (*spawned)->waitReady(config_.startupTimeout);
      ready = std::move(waited);
    }

    auto it = entries_.find(key);
    bool stillOurs = it != entries_.end() && it->second.started == started;
    if (!ready) {
      ++metrics_.spawnFailures;
      if (stillOurs) {
        lru_.erase(it->second.lru);
        entries_.erase(it);
      }
      started->set();
      metrics_.workersAlive = entries_.size();
      co_return ready.error();
    }
    auto worker = *spawned;
    if (!stillOurs) {
      // Retired while starting (a save or a delete): this worker has stale code.
      worker->retire();
      started->set();
      continue;
    }
    it->second.worker = worker;
    worker->onExit([this, alive = std::weak_ptr<bool>(alive_), key, raw = worker.get()] {
      if (alive.expired()) return;
      ++metrics_.workerExits;
      auto found = entries_.find(key);
      if (found != entries_.end() && found->second.worker.get() == raw) {
        lru_.erase(found->second.lru);
        entries_.erase(found);
      }
      std::erase_if(retiring_, [raw](const auto& w) { return w.get() == raw; });
      metrics_.workersAlive = entries_.size();
    });
    metrics_.workersAlive = entries_.size();
    started->set();
    co_return worker;
  }
  co_return Error{Errc::SpawnFailed, "The worker could not be started: the workspace keeps changing"};
}

// At most maxWorkers processes, counting those still starting and those evicted but not yet gone.
// When every slot is starting, waits for a start; an evicted idle worker exits at once, a busy one
// finishes its runs first, so that wait is bounded (past the bound the new worker starts anyway).
asio::awaitable<void> WorkerPool::makeRoom(std::string key) {
  const auto exitBound = std::chrono::steady_clock::now() + config_.killGrace + 100ms;
  while (!stopping_ && !entries_.contains(key)) {
    evictIfFull();
    if (entries_.size() >= config_.maxWorkers) {
      auto starting = std::find_if(entries_.begin(), entries_.end(), [](const auto& e) { return !e.second.worker; });
      if (starting == entries_.end()) co_return;
      auto started = starting->second.started;
      co_await started->wait();
      continue;
    }
    if (entries_.size() + exiting_ < config_.maxWorkers) co_return;
    auto freed = slotFreed_;
    if (!co_await freed->waitUntil(exitBound)) co_return;
  }
}

void WorkerPool::slotFreed() {
  --exiting_;
  auto freed = std::exchange(slotFreed_, std::make_shared<Event>());
  freed->set();
}

void WorkerPool::touch(Entry& entry) { lru_.splice(lru_.end(), lru_, entry.lru); }

void WorkerPool::evictIfFull() {
  auto it = lru_.begin();
  while (entries_.size() >= config_.maxWorkers && it != lru_.end()) {
    auto key = *it++;
    auto& entry = entries_.at(key);
    if (!entry.worker) continue;  // starting: its spawner holds it
    ++metrics_.evictionsLru;
    ++exiting_;
    entry.worker->onExit([this, alive = std::weak_ptr<bool>(alive_)] {
      if (!alive.expired()) slotFreed();
    });
    removeEntry(key, "least recently used");
  }
}

void WorkerPool::removeEntry(const std::string& key, const char* why) {
  auto it = entries_.find(key);
  if (it == entries_.end()) return;
  if (auto worker = it->second.worker) {
    log::pool()->info("[ws:{}][pid {}] retiring {} worker: {}", worker->workspace(), worker->pid(),
                      worker->label(), why);
    worker->retire();
    if (worker->state() != Worker::State::Dead) retiring_.push_back(worker);
  }
  lru_.erase(it->second.lru);
  entries_.erase(it);
  metrics_.workersAlive = entries_.size();
}

void WorkerPool::retireWorkspace(const std::string& workspace) {
  std::vector<std::string> keys;
  for (const auto& [key, entry] : entries_)
    if (entry.workspace == workspace) keys.push_back(key);
  for (const auto& key : keys) removeEntry(key, "workspace changed");
}

void WorkerPool::sweepIdle() {
  auto now = std::chrono::steady_clock::now();
  std::vector<std::string> idle;
  for (const auto& [key, entry] : entries_)
    if (entry.worker && entry.worker->inFlight() == 0 && now - entry.worker->lastUsed() >= config_.idleTimeout)
      idle.push_back(key);
  for (const auto& key : idle) {
    ++metrics_.evictionsIdle;
    removeEntry(key, "idle");
  }
}

asio::awaitable<void> WorkerPool::sweepLoop() {
  auto period = std::clamp<std::chrono::milliseconds>(
      std::chrono::duration_cast<std::chrono::milliseconds>(config_.idleTimeout) / 4, 50ms, 1000ms);
  while (!stopping_) {
    sweepTimer_.expires_after(period);
    auto [ec] = co_await sweepTimer_.async_wait(as_tuple(use_awaitable));
    if (ec || stopping_) break;
    sweepIdle();
  }
}

asio::awaitable<void> WorkerPool::priorityLoop() {
  // Often enough that a busy loop is lowered soon after longRunAfter; the check itself only looks
  // at the workers with calls in flight.
  auto period = std::clamp<std::chrono::milliseconds>(config_.longRunAfter / 2, 10ms, 100ms);
  while (!stopping_) {
    priorityTimer_.expires_after(period);
    auto [ec] = co_await priorityTimer_.async_wait(as_tuple(use_awaitable));
    if (ec || stopping_) break;
    for (auto& [key, entry] : entries_)
      if (entry.worker && (entry.worker->inFlight() > 0 || entry.worker->lowered())) entry.worker->adjustPriority();
    for (auto& worker : retiring_)
      if (worker->inFlight() > 0 || worker->lowered()) worker->adjustPriority();
  }
}

asio::awaitable<void> WorkerPool::shutdown(std::chrono::milliseconds grace) {
  stopping_ = true;
  sweepTimer_.cancel();
  priorityTimer_.cancel();
  std::vector<std::shared_ptr<Worker>> all = retiring_;
  for (auto& [key, entry] : entries_)
    if (entry.worker) all.push_back(entry.worker);
  for (auto& [key, entry] : entries_) entry.started->set();
  for (auto& worker : all) worker->retire();
  entries_.clear();
  lru_.clear();
  const auto deadline = std::chrono::steady_clock::now() + grace;
  for (auto& worker : all) co_await worker->waitExit(deadline);
  for (auto& worker : all)
    if (worker->state() != Worker::State::Dead) worker->kill("the service is shutting down");
  for (auto& worker : all) co_await worker->waitExit(std::chrono::steady_clock::time_point::max());
  metrics_.workersAlive = 0;
}

std::vector<std::string> WorkerPool::workspacesForTest() const {
  std::vector<std::string> out;
  for (const auto& key : lru_) out.push_back(key.substr(0, key.find('\n')));
  return out;
}

}  // namespace customcode::pool
