#pragma once

#include "common/event.hpp"
#include "pool/worker.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

namespace customcode::pool {

// A few pre-started workers that belong to no workspace yet. A new workspace takes one over by
// sending it its module, so its cold start is a compile rather than an interpreter start in a
// fresh sandbox. Runs on one executor (no strand).
class SparePool {
 public:
  using Factory = std::function<Result<std::shared_ptr<Worker>>()>;  // starts one; not yet ready

  SparePool(asio::any_io_executor executor, std::size_t target, Factory factory,
            std::chrono::milliseconds startupTimeout);

  // Starts filling the pool up to its target.
  void start();

  // A ready spare, or nullptr when none is ready; starts a replacement either way.
  std::shared_ptr<Worker> take();

  // Returns once a spare is ready, none can come (no target, a start failed, shut down), or
  // `limit` has passed.
  asio::awaitable<void> waitUntilOneIsReady(std::chrono::milliseconds limit);

  // Kills the spares and stops refilling.
  void shutdown();

 private:
  static constexpr std::chrono::milliseconds kRefillDelay{20};

  asio::awaitable<void> fill();
  asio::awaitable<void> refillSoon();

  asio::any_io_executor executor_;
  std::size_t target_;
  Factory factory_;
  std::chrono::milliseconds startupTimeout_;
  std::deque<std::shared_ptr<Worker>> ready_;
  std::size_t starting_ = 0;
  bool failing_ = false;  // the last start failed: wait for the next take() before retrying
  bool stopped_ = false;
  bool refillScheduled_ = false;
  Event settled_;  // a spare became ready, or none can come
};

// The spare pools of every language that keeps spare workers, one pool each.
class SparePools {
 public:
  using Factory = std::function<Result<std::shared_ptr<Worker>>(workspace::Language)>;

  // `targets`: how many spares to keep ready, per language (languages left out keep none).
  SparePools(asio::any_io_executor executor, const std::vector<std::pair<workspace::Language, std::size_t>>& targets,
             Factory factory, std::chrono::milliseconds startupTimeout);

  // The pool of `language`; nullptr when that language keeps no spares.
  SparePool* of(workspace::Language language);

  void start();
  // Returns once every pool has a spare ready (or none can come), or `limit` has passed.
  asio::awaitable<void> waitUntilEachHasOne(std::chrono::milliseconds limit);
  void shutdown();

 private:
  std::vector<std::pair<workspace::Language, std::unique_ptr<SparePool>>> pools_;
};

}  // namespace customcode::pool
