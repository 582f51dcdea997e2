#pragma once

#include "pool/worker.hpp"
#include "test_loop.hpp"

#include <boost/json.hpp>

#include <sys/types.h>
#include <sys/wait.h>

#include <cerrno>
#include <chrono>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

// Helpers for tests that supervise tests/fixtures/fake_worker.py instead of a real runtime.
namespace customcode::testing {

// Python starts in ~50 ms, far more on a loaded machine: process deadlines are generous.
inline constexpr std::chrono::milliseconds kProcessDeadline{10'000};

inline process::LaunchSpec fakeWorkerSpec(std::vector<std::string> flags = {}) {
  process::LaunchSpec spec;
  spec.argv = {CUSTOMCODE_PYTHON, std::string(CUSTOMCODE_FIXTURES_DIR) + "/fake_worker.py"};
  spec.argv.insert(spec.argv.end(), flags.begin(), flags.end());
  spec.env = {"PATH=/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE=1"};
  return spec;
}

inline pool::WorkerOptions fakeWorkerOptions(std::string workspace = "ws") {
  return pool::WorkerOptions{.workspace = std::move(workspace), .pingTimeout = std::chrono::milliseconds(500)};
}

// Runs `fn`. Owns its arguments: Worker::run takes references that must outlive it.
inline boost::asio::awaitable<pool::RunOutcome> callRun(std::shared_ptr<pool::Worker> worker, std::string fn,
                                                        boost::json::object parameters,
                                                        std::chrono::milliseconds timeout) {
  co_return co_await worker->run(fn, boost::json::value(std::move(parameters)), timeout);
}

inline boost::asio::awaitable<bool> callPing(std::shared_ptr<pool::Worker> worker, std::chrono::milliseconds timeout) {
  co_return co_await worker->ping(timeout);
}

// The error code of a run outcome, or nullopt for a success: reads well in EXPECT_EQ.
inline std::optional<Errc> errorOf(const pool::RunOutcome& outcome) {
  if (outcome.ok()) return std::nullopt;
  return outcome.error->code;
}

// The result of a successful run, parsed.
inline boost::json::value resultOf(const pool::RunOutcome& outcome) {
  if (!outcome.ok()) throw std::runtime_error("the run failed: " + outcome.error->message);
  boost::json::parse_options options;
  options.max_depth = pool::kMaxFrameDepth;
  return boost::json::parse(outcome.result, {}, options);
}

// Runs the loop until `worker`'s process is gone and reaped; false if the deadline passed.
inline bool waitReaped(TestLoop& loop, pool::Worker& worker,
                       std::chrono::milliseconds deadline = kProcessDeadline) {
  auto reaped = std::make_shared<bool>(false);
  worker.onExit([reaped] { *reaped = true; });
  return loop.runUntil([&] { return *reaped; }, deadline);
}

// True when `pid` is no child of ours any more: neither running nor a zombie.
inline bool noLongerAChild(pid_t pid) {
  errno = 0;
  return ::waitpid(pid, nullptr, WNOHANG) == -1 && errno == ECHILD;
}

}  // namespace customcode::testing
