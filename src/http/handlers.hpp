#pragma once

#include "common/errors.hpp"
#include "common/event.hpp"
#include "common/metrics.hpp"
#include "config/config.hpp"
#include "deps/npm_installer.hpp"
#include "http/nested_calls.hpp"
#include "http/playground.hpp"
#include "http/types.hpp"
#include "pool/worker_factory.hpp"
#include "pool/worker_pool.hpp"
#include "runtimes/runtime.hpp"
#include "pool/syntax_checker.hpp"
#include "workspace/workspace_store.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>

#include <deque>
#include <memory>
#include <string>
#include <unordered_map>

namespace customcode::http {

namespace asio = boost::asio;

// Serialises the saves and deletes of one workspace. Runs on the event loop.
class KeyedMutex {
 public:
  class Guard {
   public:
    Guard(KeyedMutex* owner, std::string key) : owner_(owner), key_(std::move(key)) {}
    Guard(Guard&& other) noexcept : owner_(std::exchange(other.owner_, nullptr)), key_(std::move(other.key_)) {}
    Guard(const Guard&) = delete;
    ~Guard() {
      if (owner_) owner_->unlock(key_);
    }

   private:
    KeyedMutex* owner_;
    std::string key_;
  };

  asio::awaitable<Guard> lock(std::string key);

 private:
  void unlock(const std::string& key);
  std::unordered_map<std::string, std::deque<std::shared_ptr<Event>>> waiters_;
};

// The HTTP API. Owns no object of its own beyond caches; runs on the event loop and sends disk
// work to the file-system pool.
class Api {
 public:
  struct Dependencies {
    asio::any_io_executor loop;
    asio::thread_pool& fsPool;
    workspace::WorkspaceStore& store;
    pool::WorkerPool& pool;
    pool::SyntaxChecker& checker;
    deps::NpmInstaller& npm;
    const runtimes::Runtimes& runtimes;
    Metrics& metrics;
    const Playground& playground;
  };
  Api(Dependencies deps, const config::Config& config);

  asio::awaitable<Response> handle(Request request);

  // Health details (e.g. a sandbox warning) added to /sys/healthcheck.
  void addHealthWarning(std::string warning) { healthWarnings_.push_back(std::move(warning)); }
  // The worker isolation in effect, reported by the health check (bwrap, restricted, none).
  void setIsolation(std::string isolation) { isolation_ = std::move(isolation); }
  // How workers' resources are bounded, reported by the health check (cgroup-v1, cgroup-v2, rlimits).
  void setResources(std::string resources) { resources_ = std::move(resources); }

 private:
  asio::awaitable<Response> save(const Request& request, std::string workspace);
  asio::awaitable<Response> get(const Request& request, std::string workspace);
  asio::awaitable<Response> remove(const Request& request, std::string workspace);
  asio::awaitable<Response> list(const Request& request);
  asio::awaitable<Response> run(const Request& request, std::string workspace, std::string function);
  asio::awaitable<void> warm(pool::WorkerWanted wanted);
  // The worker of `language` for the version of the workspace read in `stored`.
  static pool::WorkerWanted wanted(const std::shared_ptr<const workspace::StoredWorkspace>& stored,
                                   workspace::Language language);
  Response healthcheck(const Request& request) const;
  Response metrics(const Request& request) const;

  // The stored workspace, re-read when its workspace.yaml changed (another replica may have saved
  // it). Fails with WorkspaceNotFound or StorageFailed.
  asio::awaitable<Result<std::shared_ptr<const workspace::StoredWorkspace>>> current(const std::string& name);

  Dependencies deps_;
  const config::Config& config_;  // Owned by Server.
  KeyedMutex writes_;
  NestedCalls nestedCalls_;
  std::unordered_map<std::string, std::shared_ptr<const workspace::StoredWorkspace>> cache_;
  std::vector<std::string> healthWarnings_;
  std::string isolation_ = "none";
  std::string resources_ = "rlimits";
};

}  // namespace customcode::http
