#pragma once

#include "common/log.hpp"

#include <boost/asio/async_result.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <exception>
#include <string>

// GCC 12's coroutines have bugs this code works around, written down once here and referred to
// as "(GCC 12, common/async.hpp)" where they apply:
//   1. A temporary built inside a co_await expression (a lambda, a std::string, an aggregate
//      passed to a coroutine by value or bound to a reference parameter) may be destroyed twice:
//      name it in a variable first, then co_await.
//   2. No co_await inside the operands of ?: (the same double destruction).
//   3. A lambda coroutine's captures are relocated with memcpy, which corrupts captured strings:
//      use member coroutines, or plain completion handlers such as onPool() below.
// Waiting for something that happens once is an Event (common/event.hpp), not a timer set to
// time_point::max() and cancelled.
namespace customcode {

// co_spawn with a completion handler that logs an escaped exception with `what` as context.
template <class Executor, class Awaitable>
void spawnLogged(Executor&& executor, Awaitable&& awaitable, std::string what) {
  boost::asio::co_spawn(std::forward<Executor>(executor), std::forward<Awaitable>(awaitable),
                        [what = std::move(what)](std::exception_ptr error) {
                          if (!error) return;
                          try {
                            std::rethrow_exception(error);
                          } catch (const std::exception& e) {
                            log::app()->error("{} failed: {}", what, e.what());
                          } catch (...) {
                            log::app()->error("{} failed with an unknown exception", what);
                          }
                        });
}

// Runs blocking `work` (disk I/O) on `pool`, then completes on `executor` (the caller's) with its
// result. Deliberately not a coroutine: GCC 12 relocates lambda captures handed to a coroutine by
// value with memcpy, which corrupts captured strings.
template <class F>
auto onPool(boost::asio::thread_pool& pool, boost::asio::any_io_executor executor, F work) {
  using R = decltype(work());
  return boost::asio::async_initiate<decltype(boost::asio::use_awaitable), void(R)>(
      [&pool, executor](auto handler, F work) {
        boost::asio::post(pool, [work = std::move(work), handler = std::move(handler), executor]() mutable {
          R result = work();
          boost::asio::post(executor, [handler = std::move(handler), result = std::move(result)]() mutable {
            std::move(handler)(std::move(result));
          });
        });
      },
      boost::asio::use_awaitable, std::move(work));
}

}  // namespace customcode
