#include "pool/spare_pool.hpp"

#include "common/async.hpp"
#include "common/log.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace customcode::pool {

SparePool::SparePool(asio::any_io_executor executor, std::size_t target, Factory factory,
                     std::chrono::milliseconds startupTimeout)
    : executor_(executor), target_(target), factory_(std::move(factory)), startupTimeout_(startupTimeout) {}

void SparePool::start() {
  if (target_ > 0) spawnLogged(executor_, fill(), "spare worker start");
  else settled_.set();
}

std::shared_ptr<Worker> SparePool::take() {
  std::shared_ptr<Worker> spare;
  while (!ready_.empty() && !spare) {
    auto candidate = std::move(ready_.front());
    ready_.pop_front();
    if (candidate->accepting()) spare = std::move(candidate);
  }
  failing_ = false;
  if (!stopped_ && ready_.size() + starting_ < target_ && !refillScheduled_) {
    refillScheduled_ = true;
    spawnLogged(executor_, refillSoon(), "spare worker start");
  }
  return spare;
}

// The replacement starts a little later: forking it holds the loop for a moment, and the spare
// just taken is loading a workspace whose first run is waiting.
asio::awaitable<void> SparePool::refillSoon() {
  asio::steady_timer pause(executor_);
  pause.expires_after(kRefillDelay);
  co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
  refillScheduled_ = false;
  co_await fill();
}

// One spare at a time: starting several at once makes each of them ready later.
asio::awaitable<void> SparePool::fill() {
  while (!stopped_ && !failing_ && ready_.size() + starting_ < target_) {
    auto worker = factory_();
    static log::RateLimit failureLog;  // retried at each take: a burst of cold starts repeats it
    if (!worker) {
      if (auto note = failureLog.admit()) log::pool()->warn("cannot start a spare worker: {}{}", worker.error().message, *note);
      failing_ = true;
      settled_.set();
      co_return;
    }
    ++starting_;
    auto ready = co_await (*worker)->waitReady(startupTimeout_);
    --starting_;
    if (!ready) {
      if (auto note = failureLog.admit())
        log::pool()->warn("a spare worker failed to start: {}{}", ready.error().message, *note);
      failing_ = true;
      settled_.set();
      co_return;
    }
    if (stopped_) {
      (*worker)->kill("the service is shutting down");
      co_return;
    }
    ready_.push_back(std::move(*worker));
    settled_.set();
  }
}

asio::awaitable<void> SparePool::waitUntilOneIsReady(std::chrono::milliseconds limit) {
  co_await settled_.waitFor(limit);
}

void SparePool::shutdown() {
  stopped_ = true;
  settled_.set();
  for (auto& spare : ready_) spare->kill("the service is shutting down");
  ready_.clear();
}

SparePools::SparePools(asio::any_io_executor executor,
                       const std::vector<std::pair<workspace::Language, std::size_t>>& targets, Factory factory,
                       std::chrono::milliseconds startupTimeout) {
  for (const auto& [language, target] : targets) {
    if (target == 0) continue;
    pools_.emplace_back(language, std::make_unique<SparePool>(
                                      executor, target, [factory, language] { return factory(language); }, startupTimeout));
  }
}

SparePool* SparePools::of(workspace::Language language) {
  for (auto& [poolLanguage, pool] : pools_)
    if (poolLanguage == language) return pool.get();
  return nullptr;
}

void SparePools::start() {
  for (auto& entry : pools_) entry.second->start();
}

asio::awaitable<void> SparePools::waitUntilEachHasOne(std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (auto& entry : pools_) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left <= std::chrono::milliseconds(0)) break;
    co_await entry.second->waitUntilOneIsReady(left);
  }
}

void SparePools::shutdown() {
  for (auto& entry : pools_) entry.second->shutdown();
}

}  // namespace customcode::pool
