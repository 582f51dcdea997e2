#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <vector>

namespace customcode {

// A one-shot event for coroutines on one executor (no strand): wait() suspends until set(), and
// returns at once after it; set() wakes every waiter. It cannot be reset: a condition that comes
// and goes gets a fresh Event each time (see WorkerPool's slotFreed_).
//
// Each waiter parks on a steady_timer of its own that set() cancels, so the waiting is done by the
// event loop and nothing polls. The Event must outlive its waiters (its owner is kept alive by
// the coroutines that wait on it, or destroyed with the loop).
class Event {
 public:
  Event() = default;
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  void set() {
    if (set_) return;
    set_ = true;
    for (auto* waiter : waiters_) waiter->cancel();
  }

  bool isSet() const { return set_; }

  boost::asio::awaitable<void> wait() { co_await waitUntil(std::chrono::steady_clock::time_point::max()); }

  // True when the event was set, false when `limit` passed first.
  // Not a coroutine itself: it hands back waitUntil's, so a wait costs one coroutine frame.
  boost::asio::awaitable<bool> waitFor(std::chrono::steady_clock::duration limit) {
    return waitUntil(std::chrono::steady_clock::now() + limit);
  }

  boost::asio::awaitable<bool> waitUntil(std::chrono::steady_clock::time_point deadline) {
    if (set_) co_return true;
    boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, deadline);
    waiters_.push_back(&timer);
    co_await timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    std::erase(waiters_, &timer);
    co_return set_;
  }

 private:
  bool set_ = false;
  std::vector<boost::asio::steady_timer*> waiters_;
};

}  // namespace customcode
