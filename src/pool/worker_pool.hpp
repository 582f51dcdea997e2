#pragma once

#include "common/errors.hpp"
#include "common/event.hpp"
#include "common/metrics.hpp"
#include "config/config.hpp"
#include "pool/worker.hpp"
#include "workspace/workspace_store.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace customcode::pool {

// The worker a caller wants: the one of (workspace, language) that runs `version`.
struct WorkerWanted {
  std::string workspace;
  workspace::Language language = workspace::Language::Node;
  std::uint64_t version = 0;
  // The workspace as read when `version` was resolved: a new worker loads exactly this (null for
  // workers that serve no workspace, e.g. syntax checkers).
  std::shared_ptr<const workspace::StoredWorkspace> stored;
  // The previous worker of (workspace, language) was killed stuck in a loop: the new one stays in
  // the lowest CPU weight until a run of it answers quickly (Worker::startLow).
  bool afterStuck = false;
};

// Starts a worker for what is wanted (pool/worker_factory.hpp). The pool waits for its ready frame.
using SpawnFunction = std::function<asio::awaitable<Result<std::shared_ptr<Worker>>>(WorkerWanted wanted)>;

// The supervised workers: at most one live worker per (workspace, language), at most maxWorkers in
// all (the least recently used is retired first), idle ones retired after idleTimeout. Runs on one
// executor (no strand); every method is called from it.
class WorkerPool {
 public:
  WorkerPool(asio::any_io_executor executor, config::PoolConfig config, SpawnFunction spawn, Metrics& metrics);
  ~WorkerPool();

  // Returns a ready worker for (workspace, language) whose code is `version`: the live one if its
  // version matches, otherwise a new one (the old one retires gracefully). Concurrent callers of
  // one version share one spawn, and get its worker even when a save or a newer version
  // superseded it while it started (it then retires once their calls are answered): the outcome
  // does not depend on how saves and runs interleave, and there is no retry to run out of. A
  // worker under suspicion (a run on it timed out) is returned only once its ping has answered.
  // Fails with SpawnFailed (or what `spawn` returned) or ShuttingDown.
  asio::awaitable<Result<std::shared_ptr<Worker>>> acquire(WorkerWanted wanted);

  // Retires every worker of `workspace` (after a save or a delete).
  void retireWorkspace(const std::string& workspace);

  // Starts the idle sweeper and the priority check of long calls (Worker::adjustPriority).
  void start();

  // Retires every worker, waits up to `grace` for them to exit, then kills the rest.
  asio::awaitable<void> shutdown(std::chrono::milliseconds grace);

  std::size_t size() const { return entries_.size(); }
  std::vector<std::string> workspacesForTest() const;  // LRU order, least recent first
  void sweepIdleForTest() { sweepIdle(); }

 private:
  // One spawn, shared by the acquires of its version that arrive while it runs.
  struct Start {
    Event done;  // set when the spawn ends, ready or not (or at shutdown)
    std::optional<Result<std::shared_ptr<Worker>>> result;
  };

  struct Entry {
    std::string key;
    std::string workspace;
    std::uint64_t version = 0;
    std::shared_ptr<Worker> worker;  // null while starting
    std::shared_ptr<Start> start;
    std::list<std::string>::iterator lru;
  };

  void touch(Entry& entry);
  void forgetWhenGone(const std::string& key, const std::shared_ptr<Worker>& worker);
  void evictIfFull();
  void removeEntry(const std::string& key, const char* why);
  void sweepIdle();
  asio::awaitable<void> makeRoom(std::string key);
  void slotFreed();
  asio::awaitable<void> sweepLoop();
  asio::awaitable<void> priorityLoop();

  asio::any_io_executor executor_;
  config::PoolConfig config_;
  SpawnFunction spawn_;
  Metrics& metrics_;  // Owned by Server.
  std::unordered_map<std::string, Entry> entries_;
  std::list<std::string> lru_;  // keys, least recently used first
  std::vector<std::shared_ptr<Worker>> retiring_;
  std::unordered_set<std::string> afterStuck_;  // keys whose last worker exited killed stuck
  std::size_t exiting_ = 0;  // evicted by LRU, not yet reaped: they still hold a slot
  std::shared_ptr<Event> slotFreed_ = std::make_shared<Event>();  // set (and replaced) when one is reaped
  asio::steady_timer sweepTimer_;
  asio::steady_timer priorityTimer_;
  bool stopping_ = false;
  std::shared_ptr<bool> alive_;  // lets worker exit callbacks outlive the pool safely
};

}  // namespace customcode::pool
