// What NestedCalls refuses before it asks the pool for a worker: a call nested deeper than the
// limit, a function the outer run's version of the workspace does not have. The calls that do run
// are tested end to end (tests/e2e/test_cross_language.py) and, on the workers' side, by the
// bootstrap contract test.
#include "http/nested_calls.hpp"

#include "pool/fake_worker.hpp"
#include "test_loop.hpp"
#include "workspace/workspace_of.hpp"
#include "workspace/workspace_store.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace customcode::http {
namespace {

using customcode::testing::TestLoop;
using ::testing::HasSubstr;

class NestedCallsTest : public ::testing::Test {
 protected:
  NestedCallsTest()
      : sandbox_(config::SandboxConfig{.mode = config::SandboxConfig::Mode::None}),
        runtimes_(runtimeConfig(), sandbox_),
        pool_(loop_.executor(), config::PoolConfig{}, spawnFunction(), metrics_),
        calls_(pool_, runtimes_, metrics_) {}
  ~NestedCallsTest() override { loop_.run(pool_.shutdown(std::chrono::milliseconds(100))); }

  static config::RuntimeConfig runtimeConfig() {
    config::RuntimeConfig config;
    config.bootstrapDir = CUSTOMCODE_BOOTSTRAP_DIR;  // both languages available
    return config;
  }

  pool::SpawnFunction spawnFunction() {
    return [this](pool::WorkerWanted) -> asio::awaitable<Result<std::shared_ptr<pool::Worker>>> {
      ++spawns_;
      co_return Error{Errc::SpawnFailed, "no worker in this test"};
    };
  }

  // A call of `function` at `depth` from a run bound to a workspace with a Python function
  // "pyFn" and a JavaScript function "jsFn".
  static asio::awaitable<pool::RunOutcome> callAt(NestedCalls& calls, std::string function, unsigned depth) {
    auto stored = std::make_shared<workspace::StoredWorkspace>();
    stored->workspace = workspace::workspaceOf(
        R"({"functions": {"pyFn": {"code": "return 1", "language": "python"}, "jsFn": {"code": "return 1;"}}})");
    pool::NestedCall call{.function = std::move(function),
                          .parameters = {},
                          .scope = {},
                          .caller = "nodejs",
                          .cancel = std::make_shared<pool::Cancellation>()};
    call.scope.stored = stored;
    call.scope.depth = depth;
    call.scope.deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    co_return co_await calls.call(std::move(call));
  }

  TestLoop loop_;
  Metrics metrics_;
  sandbox::Sandbox sandbox_;
  runtimes::Runtimes runtimes_;
  pool::WorkerPool pool_;
  NestedCalls calls_;
  int spawns_ = 0;
};

TEST_F(NestedCallsTest, RefusesACallDeeperThanTheLimitWithoutStartingAWorker) {
  auto outcome = loop_.run(callAt(calls_, "pyFn", NestedCalls::kMaxDepth + 1));

  ASSERT_TRUE(outcome.error);
  EXPECT_EQ(outcome.error->code, Errc::FunctionFailed);
  const auto& details = outcome.error->details.as_object();
  EXPECT_EQ(details.at("name"), "CallDepthError");
  EXPECT_THAT(std::string(details.at("message").as_string()), HasSubstr("deeper than 16"));
  EXPECT_EQ(details.at("function"), "pyFn");
  EXPECT_EQ(spawns_, 0);
  EXPECT_EQ(metrics_.nestedCalls, 0u);
}

TEST_F(NestedCallsTest, AsksThePoolForACallAtTheLimit) {
  auto outcome = loop_.run(callAt(calls_, "pyFn", NestedCalls::kMaxDepth));

  // It got as far as starting the callee's worker (which this test refuses).
  ASSERT_TRUE(outcome.error);
  EXPECT_EQ(outcome.error->details.as_object().at("name"), "WorkerStartError");
  EXPECT_EQ(spawns_, 1);
  EXPECT_EQ(metrics_.nestedCalls, 1u);
}

TEST_F(NestedCallsTest, RefusesAFunctionTheRunsVersionDoesNotHave) {
  auto outcome = loop_.run(callAt(calls_, "gone", 1));

  ASSERT_TRUE(outcome.error);
  EXPECT_EQ(outcome.error->details.as_object().at("name"), "ReferenceError");
  EXPECT_EQ(outcome.error->details.as_object().at("function"), "gone");
  EXPECT_EQ(spawns_, 0);
}

}  // namespace
}  // namespace customcode::http
