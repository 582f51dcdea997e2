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
