#include "pool/worker_pool.hpp"

#include "common/async.hpp"
#include "common/log.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
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

std::string keyOf(const WorkerWanted& wanted) {
  return wanted.workspace + '\n' + std::string(workspace::languageName(wanted.language));
}

}  // namespace

asio::awaitable<Result<std::shared_ptr<Worker>>> WorkerPool::acquire(WorkerWanted wanted) {
  const std::string key = keyOf(wanted);
  // Each pass either returns or waits for something that ended (a start, a ping, an exit).
  for (;;) {
    if (stopping_) co_return Error{Errc::ShuttingDown, "The service is shutting down"};

    // 1. The live worker, unless it is under suspicion after a timeout (wait for its ping's
    //    verdict rather than queue behind a busy loop), or the start of this version (its worker
    //    is ours too).
    if (auto it = entries_.find(key); it != entries_.end()) {
      Entry& entry = it->second;
      if (!entry.worker && entry.version == wanted.version) {
        auto start = entry.start;
        co_await start->done.wait();
        if (start->result && !*start->result) co_return start->result->error();
        // Taken unless a save retired it between the end of the start and now (it may have closed
        // its input already): then look again, which starts a worker of our own at the latest.
        if (start->result && (**start->result)->accepting()) co_return *start->result;
        continue;  // or set by the shutdown
      }
      if (entry.worker && entry.worker->suspect()) {
        auto worker = entry.worker;
        co_await worker->verdict();
        continue;
      }
      if (entry.worker && entry.worker->accepting() && entry.version == wanted.version) {
        touch(entry);
        co_return entry.worker;
      }
      // Gone, or another version (a newer one, or an older one a run is still bound to): a
      // starting entry is only dropped here; its spawner keeps its worker for its own runs.
      if (entry.worker && entry.worker->killedStuck()) wanted.afterStuck = true;
      removeEntry(key, entry.version == wanted.version ? "worker gone" : "new version");
    }

    // 2. A slot for a new one.
    co_await makeRoom(key);
    if (stopping_ || entries_.contains(key)) continue;  // changed while we waited: look again

    // 3. Start it; callers of this version that come meanwhile wait on `start`.
    if (afterStuck_.erase(key) > 0) wanted.afterStuck = true;
    auto start = std::make_shared<Start>();
    lru_.push_back(key);
    entries_.emplace(key, Entry{.key = key,
                                .workspace = wanted.workspace,
                                .version = wanted.version,
                                .worker = nullptr,
                                .start = start,
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
    bool stillOurs = it != entries_.end() && it->second.start == start;
    if (!ready) {
      ++metrics_.spawnFailures;
      static log::RateLimit failureLog;
      if (auto note = failureLog.admit())
        log::pool()->warn("[ws:{}] cannot start a {} worker: {}{}", wanted.workspace,
                          workspace::languageName(wanted.language), ready.error().message, *note);
      if (stillOurs) {
        lru_.erase(it->second.lru);
        entries_.erase(it);
      }
      metrics_.workersAlive = entries_.size();
      start->result = ready.error();
      start->done.set();
      co_return ready.error();
    }
    auto worker = *spawned;
    start->result = worker;
    start->done.set();
    if (!stillOurs) {
      // Superseded while it started (a save, a delete, another version): it still has the code
      // the runs waiting for it are bound to. They resume before the posted retire() runs, and
      // each has its call in flight by then (nothing suspends between acquire and call), so
      // the worker answers them and then exits.
      retiring_.push_back(worker);
      forgetWhenGone(key, worker);
      asio::post(executor_, [worker] { worker->retire(); });
      co_return worker;
    }
    it->second.worker = worker;
    forgetWhenGone(key, worker);
    metrics_.workersAlive = entries_.size();
    co_return worker;
  }
}

void WorkerPool::forgetWhenGone(const std::string& key, const std::shared_ptr<Worker>& worker) {
  worker->onExit([this, alive = std::weak_ptr<bool>(alive_), key, raw = worker.get()] {
    if (alive.expired()) return;
    ++metrics_.workerExits;
    auto found = entries_.find(key);
    if (found != entries_.end() && found->second.worker.get() == raw) {
      if (raw->killedStuck()) afterStuck_.insert(key);  // for the next worker of the key
      lru_.erase(found->second.lru);
      entries_.erase(found);
    }
    std::erase_if(retiring_, [raw](const auto& w) { return w.get() == raw; });
    metrics_.workersAlive = entries_.size();
  });
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
      auto start = starting->second.start;
      co_await start->done.wait();
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
  for (auto& [key, entry] : entries_) entry.start->done.set();
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
