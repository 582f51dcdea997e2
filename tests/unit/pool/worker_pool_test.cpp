#include "pool/worker_pool.hpp"

#include "pool/fake_worker.hpp"
#include "test_loop.hpp"

#include <boost/json.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>

namespace customcode::pool {
namespace {

using namespace std::chrono_literals;
using customcode::testing::callRun;
using customcode::testing::errorOf;
using customcode::testing::fakeWorkerOptions;
using customcode::testing::fakeWorkerSpec;
using customcode::testing::kProcessDeadline;
using customcode::testing::noLongerAChild;
using customcode::testing::TestLoop;
using customcode::testing::waitReaped;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

asio::awaitable<Result<std::shared_ptr<Worker>>> startFakeWorker(asio::any_io_executor executor, WorkerWanted wanted,
                                                                  std::vector<std::string> flags, Metrics* metrics) {
  auto options = fakeWorkerOptions(wanted.workspace);
  options.language = wanted.language;
  options.metrics = metrics;
  co_return Worker::start(executor, fakeWorkerSpec(std::move(flags)), options);
}

WorkerWanted want(std::string workspace, std::uint64_t version = 1,
                  workspace::Language language = workspace::Language::Node) {
  return WorkerWanted{.workspace = std::move(workspace), .language = language, .version = version, .stored = nullptr};
}

config::PoolConfig testConfig() {
  return config::PoolConfig{.maxWorkers = 2,
                            .runTimeout = 50ms,
                            .pythonRunTimeout = 50ms,
                            .idleTimeout = 3600s,
                            .pingTimeout = 500ms,
                            .startupTimeout = kProcessDeadline,
                            .killGrace = 500ms};
}

class WorkerPoolTest : public ::testing::Test {
 protected:
  explicit WorkerPoolTest(config::PoolConfig config = testConfig())
      : pool_(loop_.executor(), config, spawnFunction(), metrics_) {}

  void TearDown() override {
    // Every worker a test started must end up reaped once the pool shuts down.
    loop_.run(pool_.shutdown(100ms), kProcessDeadline);
    for (auto& worker : seen_) {
      EXPECT_TRUE(waitReaped(loop_, *worker)) << worker->pid();
      EXPECT_TRUE(noLongerAChild(worker->pid())) << worker->pid();
    }
  }

  SpawnFunction spawnFunction() {
    return [this](WorkerWanted wanted) {
      ++spawns_;
      versions_.push_back(wanted.version);
      auto flags = flags_[wanted.workspace];
      return startFakeWorker(loop_.executor(), std::move(wanted), std::move(flags), &metrics_);
    };
  }

  // Acquires the worker of `workspace` and remembers it for the checks of TearDown.
  Result<std::shared_ptr<Worker>> acquire(std::string workspace, std::uint64_t version = 1) {
    auto worker = loop_.run(pool_.acquire(want(std::move(workspace), version)), kProcessDeadline + 1s);
    if (worker) remember(*worker);
    return worker;
  }

  std::shared_ptr<Worker> acquireOk(std::string workspace, std::uint64_t version = 1) {
    auto worker = acquire(workspace, version);
    if (!worker) throw std::runtime_error(workspace + ": " + worker.error().message);
    return *worker;
  }

  void remember(const std::shared_ptr<Worker>& worker) {
    if (std::find(seen_.begin(), seen_.end(), worker) == seen_.end()) seen_.push_back(worker);
  }

  TestLoop loop_;
  Metrics metrics_;
  int spawns_ = 0;
  std::vector<std::uint64_t> versions_;
  std::map<std::string, std::vector<std::string>> flags_;  // fake worker flags by workspace
  std::vector<std::shared_ptr<Worker>> seen_;
  WorkerPool pool_;
};

TEST_F(WorkerPoolTest, ReusesTheLiveWorkerOfAWorkspace) {
  auto first = acquireOk("a");

  auto second = acquireOk("a");

  EXPECT_EQ(second, first);
  EXPECT_EQ(spawns_, 1);
  EXPECT_EQ(pool_.size(), 1u);
}

TEST_F(WorkerPoolTest, KeepsOneWorkerPerWorkspaceAndRuntime) {
  auto fake = acquireOk("a");

  auto other = loop_.run(pool_.acquire(want("a", 1, workspace::Language::Python)), kProcessDeadline + 1s);

  ASSERT_TRUE(other);
  remember(*other);
  EXPECT_NE(*other, fake);
  EXPECT_EQ(pool_.size(), 2u);
}

TEST_F(WorkerPoolTest, ConcurrentAcquiresShareOneSpawn) {
  auto first = loop_.start(pool_.acquire(want("a")));
  auto second = loop_.start(pool_.acquire(want("a")));

  ASSERT_TRUE(loop_.runUntil([&] { return first->done && second->done; }, kProcessDeadline));

  ASSERT_TRUE(*first->value);
  ASSERT_TRUE(*second->value);
  remember(**first->value);
  EXPECT_EQ(**first->value, **second->value);
  EXPECT_EQ(spawns_, 1);
}

TEST_F(WorkerPoolTest, RetiresLeastRecentlyUsedWorkerWhenFull) {
  auto a = acquireOk("a");
  acquireOk("b");

  acquireOk("c");

  EXPECT_THAT(pool_.workspacesForTest(), ElementsAre("b", "c"));
  EXPECT_EQ(metrics_.evictionsLru, 1u);
  EXPECT_FALSE(a->accepting());
  ASSERT_TRUE(waitReaped(loop_, *a));
  EXPECT_TRUE(noLongerAChild(a->pid()));
}

TEST_F(WorkerPoolTest, UsingAWorkerMakesItTheMostRecent) {
  acquireOk("a");
  auto b = acquireOk("b");
  acquireOk("a");

  acquireOk("c");

  EXPECT_THAT(pool_.workspacesForTest(), ElementsAre("a", "c"));
  EXPECT_FALSE(b->accepting());
}

TEST_F(WorkerPoolTest, NewVersionSpawnsANewWorkerAndRetiresTheOld) {
  auto old = acquireOk("a", 1);

  auto fresh = acquireOk("a", 2);

  EXPECT_NE(fresh, old);
  EXPECT_NE(fresh->pid(), old->pid());
  EXPECT_EQ(pool_.size(), 1u);
  EXPECT_TRUE(fresh->accepting());
  EXPECT_FALSE(old->accepting());
  ASSERT_TRUE(waitReaped(loop_, *old));
  EXPECT_TRUE(noLongerAChild(old->pid()));
  EXPECT_EQ(acquireOk("a", 2), fresh);
}

TEST_F(WorkerPoolTest, RetireWorkspaceMakesTheNextAcquireSpawn) {
  auto old = acquireOk("a");
  acquireOk("b");

  pool_.retireWorkspace("a");

  EXPECT_THAT(pool_.workspacesForTest(), ElementsAre("b"));
  EXPECT_NE(acquireOk("a"), old);
  EXPECT_EQ(spawns_, 3);
}

// What a run does: acquire the worker of its version, then call it at once.
asio::awaitable<RunOutcome> acquireAndEcho(WorkerPool& pool, std::string workspace, std::uint64_t version,
                                           std::vector<std::shared_ptr<Worker>>& seen) {
  auto worker = co_await pool.acquire(want(std::move(workspace), version));
  if (!worker) {
    RunOutcome failed;
    failed.error = worker.error();
    co_return failed;
  }
  seen.push_back(*worker);
  boost::json::object parameters;
  parameters["v"] = version;
  co_return co_await callRun(*worker, "echo", std::move(parameters), kProcessDeadline);
}

TEST_F(WorkerPoolTest, AWorkerSupersededWhileItStartsServesItsRunsThenRetires) {
  flags_["a"] = {"--ready-delay", "200"};
  auto first = loop_.start(acquireAndEcho(pool_, "a", 1, seen_));
  auto second = loop_.start(acquireAndEcho(pool_, "a", 1, seen_));
  ASSERT_TRUE(loop_.runUntil([&] { return spawns_ == 1; }, kProcessDeadline));
  loop_.context().poll();  // the second run gets going too: it waits for the first one's start

  pool_.retireWorkspace("a");  // e.g. a save while the first runs start the worker
  ASSERT_TRUE(loop_.runUntil([&] { return first->done && second->done; }, 2 * kProcessDeadline));

  // Both runs were answered by the one worker of their version: no error, no second start.
  for (auto* run : {&first, &second}) {
    ASSERT_TRUE((*run)->value);
    EXPECT_EQ(errorOf(*(*run)->value), std::nullopt) << (*run)->value->error->message;
  }
  EXPECT_EQ(spawns_, 1);
  ASSERT_EQ(seen_.size(), 2u);
  EXPECT_EQ(seen_[0], seen_[1]);
  // Then it retires: it was not the pool's worker any more.
  ASSERT_TRUE(waitReaped(loop_, *seen_[0]));
  EXPECT_THAT(pool_.workspacesForTest(), IsEmpty());
}

TEST_F(WorkerPoolTest, RunsBoundToTwoVersionsEachGetTheirOwnCode) {
  flags_["a"] = {"--ready-delay", "200"};
  auto older = loop_.start(acquireAndEcho(pool_, "a", 1, seen_));
  ASSERT_TRUE(loop_.runUntil([&] { return spawns_ == 1; }, kProcessDeadline));
  auto newer = loop_.start(acquireAndEcho(pool_, "a", 2, seen_));  // a save landed meanwhile

  ASSERT_TRUE(loop_.runUntil([&] { return older->done && newer->done; }, 2 * kProcessDeadline));

  ASSERT_TRUE(older->value && newer->value);
  EXPECT_EQ(errorOf(*older->value), std::nullopt) << older->value->error->message;
  EXPECT_EQ(errorOf(*newer->value), std::nullopt) << newer->value->error->message;
  EXPECT_THAT(versions_, ElementsAre(1u, 2u));
  // The pool keeps the newer one; the older one goes once its run is answered.
  ASSERT_EQ(seen_.size(), 2u);
  EXPECT_NE(seen_[0], seen_[1]);
  auto kept = acquireOk("a", 2);
  EXPECT_EQ(spawns_, 2);
  EXPECT_THAT(pool_.workspacesForTest(), ElementsAre("a"));
  auto olderWorker = seen_[0] == kept ? seen_[1] : seen_[0];
  ASSERT_TRUE(waitReaped(loop_, *olderWorker));
}

TEST_F(WorkerPoolTest, ReplacesAWorkerThatDied) {
  auto first = acquireOk("a");
  auto crash = loop_.run(callRun(first, "crash", {}, kProcessDeadline), kProcessDeadline + 1s);
  ASSERT_EQ(errorOf(crash), Errc::WorkerDied);
  ASSERT_TRUE(waitReaped(loop_, *first));

  auto second = acquireOk("a");

  EXPECT_NE(second->pid(), first->pid());
  EXPECT_EQ(pool_.size(), 1u);
  EXPECT_EQ(metrics_.workerExits, 1u);
}

TEST_F(WorkerPoolTest, ReportsASpawnFailureAndRetriesOnTheNextAcquire) {
  flags_["broken"] = {"--fatal", "syntax error in functions.js"};

  auto first = acquire("broken");
  auto second = acquire("broken");

  ASSERT_FALSE(first);
  EXPECT_EQ(first.error().code, Errc::SpawnFailed);
  EXPECT_THAT(first.error().message, HasSubstr("syntax error in functions.js"));
  ASSERT_FALSE(second);
  EXPECT_EQ(spawns_, 2);
  EXPECT_EQ(metrics_.spawnFailures, 2u);
  EXPECT_EQ(pool_.size(), 0u);
}

TEST_F(WorkerPoolTest, ATimedOutRunOnAWorkerThatNoLongerAnswersGetsItKilled) {
  auto worker = acquireOk("a");

  auto spin = loop_.run(callRun(worker, "spin", {}, 50ms));

  ASSERT_EQ(errorOf(spin), Errc::RunTimedOut);
  ASSERT_TRUE(waitReaped(loop_, *worker));
  EXPECT_EQ(metrics_.killsStuck, 1u);
  EXPECT_TRUE(noLongerAChild(worker->pid()));
  EXPECT_NE(acquireOk("a")->pid(), worker->pid());
}

TEST_F(WorkerPoolTest, ATimedOutRunOnAWorkerThatStillAnswersKeepsIt) {
  auto worker = acquireOk("a");

  auto hang = loop_.run(callRun(worker, "hang", {}, 50ms));

  ASSERT_EQ(errorOf(hang), Errc::RunTimedOut);
  ASSERT_TRUE(loop_.runUntil([&] { return worker->inFlight() == 1; }, 1s));  // the ping is out
  // The fake answers in order, so once this reply is in, the pong has been handled too.
  auto echo = loop_.run(callRun(worker, "echo", {{"n", 1}}, kProcessDeadline), kProcessDeadline + 1s);
  ASSERT_TRUE(loop_.runUntil([&] { return worker->inFlight() == 0; }, kProcessDeadline));

  EXPECT_EQ(errorOf(echo), std::nullopt);
  EXPECT_EQ(metrics_.killsStuck, 0u);
  EXPECT_EQ(worker->state(), Worker::State::Ready);
  EXPECT_EQ(acquireOk("a"), worker);
}

TEST_F(WorkerPoolTest, IdleSweepKeepsRecentlyUsedWorkers) {
  acquireOk("a");

  pool_.sweepIdleForTest();

  EXPECT_THAT(pool_.workspacesForTest(), ElementsAre("a"));
  EXPECT_EQ(metrics_.evictionsIdle, 0u);
}

TEST_F(WorkerPoolTest, ShutdownKillsWorkersThatDoNotExitWithinTheGrace) {
  auto calm = acquireOk("a");
  auto stuck = acquireOk("b");
  auto spin = loop_.run(callRun(stuck, "spin", {}, 50ms));
  ASSERT_EQ(errorOf(spin), Errc::RunTimedOut);

  loop_.run(pool_.shutdown(100ms), kProcessDeadline);

  EXPECT_EQ(pool_.size(), 0u);
  EXPECT_EQ(calm->state(), Worker::State::Dead);
  EXPECT_EQ(stuck->state(), Worker::State::Dead);
  ASSERT_TRUE(waitReaped(loop_, *calm));
  ASSERT_TRUE(waitReaped(loop_, *stuck));
  EXPECT_TRUE(noLongerAChild(calm->pid()));
  EXPECT_TRUE(noLongerAChild(stuck->pid()));
  auto after = loop_.run(pool_.acquire(want("a")));
  ASSERT_FALSE(after);
  EXPECT_EQ(after.error().code, Errc::ShuttingDown);
}

// With an idle timeout of zero every worker without a call in flight is idle.
class IdleWorkerPoolTest : public WorkerPoolTest {
 protected:
  static config::PoolConfig idleConfig() {
    auto config = testConfig();
    config.idleTimeout = 0s;
    return config;
  }
  IdleWorkerPoolTest() : WorkerPoolTest(idleConfig()) {}
};

TEST_F(IdleWorkerPoolTest, IdleSweepRetiresIdleWorkersButNotBusyOnes) {
  auto idle = acquireOk("a");
  auto busy = acquireOk("b");
  auto call = loop_.start(callRun(busy, "hang", {}, 60s));
  ASSERT_TRUE(loop_.runUntil([&] { return busy->inFlight() == 1; }, 1s));

  pool_.sweepIdleForTest();

  EXPECT_THAT(pool_.workspacesForTest(), ElementsAre("b"));
  EXPECT_EQ(metrics_.evictionsIdle, 1u);
  ASSERT_TRUE(waitReaped(loop_, *idle));
  EXPECT_TRUE(busy->accepting());
  busy->kill("end of test");
  ASSERT_TRUE(loop_.runUntil([&] { return call->done; }, kProcessDeadline));
}

TEST_F(IdleWorkerPoolTest, SweeperRetiresIdleWorkersOnItsOwn) {
  pool_.start();
  auto worker = acquireOk("a");

  ASSERT_TRUE(waitReaped(loop_, *worker));

  EXPECT_THAT(pool_.workspacesForTest(), IsEmpty());
  EXPECT_GE(metrics_.evictionsIdle, 1u);
}

}  // namespace
}  // namespace customcode::pool
