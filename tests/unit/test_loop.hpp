#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <variant>

namespace customcode::testing {

// Owns an io_context for one test. run() drives one coroutine to completion within a deadline;
// start() + runUntil() drive several at once. Background coroutines (worker readers) keep running
// between calls, and whatever is still pending is destroyed with the loop.
class TestLoop {
 public:
  static constexpr std::chrono::milliseconds kDefaultDeadline{10'000};

  template <class T>
  struct Task {
    bool done = false;
    std::optional<T> value;
    std::exception_ptr error;
  };

  boost::asio::any_io_executor executor() { return ioc_.get_executor(); }
  boost::asio::io_context& context() { return ioc_; }

  // Starts `awaitable` on the loop; the returned task completes as the loop runs.
  template <class T>
  std::shared_ptr<Task<T>> start(boost::asio::awaitable<T> awaitable) {
    auto task = std::make_shared<Task<T>>();
    boost::asio::co_spawn(ioc_, std::move(awaitable), [task](std::exception_ptr error, T value) {
      task->done = true;
      task->error = error;
      if (!error) task->value.emplace(std::move(value));
    });
    return task;
  }

  std::shared_ptr<Task<std::monostate>> start(boost::asio::awaitable<void> awaitable) {
    auto task = std::make_shared<Task<std::monostate>>();
    boost::asio::co_spawn(ioc_, std::move(awaitable), [task](std::exception_ptr error) {
      task->done = true;
      task->error = error;
      if (!error) task->value.emplace();
    });
    return task;
  }

  // Runs the loop until `done()` holds; false if the deadline passed first.
  bool runUntil(const std::function<bool()>& done, std::chrono::milliseconds deadline = kDefaultDeadline) {
    auto until = std::chrono::steady_clock::now() + deadline;
    while (!done()) {
      if (std::chrono::steady_clock::now() >= until) return false;
      if (ioc_.stopped()) ioc_.restart();
      // A short slice so that `done` is checked again even when nothing is ready.
      ioc_.run_one_for(std::chrono::milliseconds(5));
    }
    return true;
  }

  // Runs `awaitable` to completion and returns its value (rethrowing what it threw). Throws
  // std::runtime_error if it is not done within `deadline`.
  template <class T>
  T run(boost::asio::awaitable<T> awaitable, std::chrono::milliseconds deadline = kDefaultDeadline) {
    auto task = start(std::move(awaitable));
    if (!runUntil([&] { return task->done; }, deadline))
      throw std::runtime_error("TestLoop: the coroutine did not finish within " +
                               std::to_string(deadline.count()) + " ms");
    if (task->error) std::rethrow_exception(task->error);
    if constexpr (!std::is_void_v<T>) return std::move(*task->value);
  }

 private:
  boost::asio::io_context ioc_;
};

}  // namespace customcode::testing
