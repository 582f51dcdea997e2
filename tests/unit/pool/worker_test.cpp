#include "pool/worker.hpp"

#include "pool/fake_worker.hpp"
#include "process/priority.hpp"
#include "test_loop.hpp"

#include <boost/json.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <optional>

namespace customcode::pool {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;
using customcode::testing::callPing;
using customcode::testing::callRun;
using customcode::testing::errorOf;
using customcode::testing::resultOf;
using customcode::testing::fakeWorkerOptions;
using customcode::testing::fakeWorkerSpec;
using customcode::testing::kProcessDeadline;
using customcode::testing::noLongerAChild;
using customcode::testing::TestLoop;
using customcode::testing::waitReaped;
using ::testing::HasSubstr;
using ::testing::SizeIs;

class WorkerTest : public ::testing::Test {
 protected:
  // Starts the fake worker with `flags`; does not wait for it to be ready.
  std::shared_ptr<Worker> launch(std::vector<std::string> flags = {}, WorkerOptions options = fakeWorkerOptions()) {
    auto started = Worker::start(loop_.executor(), fakeWorkerSpec(std::move(flags)), std::move(options));
    if (!started) throw std::runtime_error(started.error().message);
    return *started;
  }

  // Starts the fake worker and waits for its ready frame.
  std::shared_ptr<Worker> launchReady(WorkerOptions options = fakeWorkerOptions()) {
    auto worker = launch({}, std::move(options));
    auto ready = loop_.run(worker->waitReady(kProcessDeadline), kProcessDeadline + 1s);
    if (!ready) throw std::runtime_error(ready.error().message);
    return worker;
  }

  TestLoop loop_;
};

// ---- Starting ----

TEST_F(WorkerTest, BecomesReadyAfterTheReadyFrame) {
  auto worker = launch();
  EXPECT_EQ(worker->state(), Worker::State::Starting);
  EXPECT_FALSE(worker->accepting());

  auto ready = loop_.run(worker->waitReady(kProcessDeadline), kProcessDeadline + 1s);

  ASSERT_TRUE(ready) << ready.error().message;
  EXPECT_EQ(worker->state(), Worker::State::Ready);
  EXPECT_TRUE(worker->accepting());
  EXPECT_GT(worker->pid(), 0);
}

TEST_F(WorkerTest, FailsToStartWhenTheReadyFrameDoesNotComeInTime) {
  auto worker = launch({"--no-ready"});

  auto ready = loop_.run(worker->waitReady(300ms));

  ASSERT_FALSE(ready);
  EXPECT_EQ(ready.error().code, Errc::SpawnFailed);
  EXPECT_THAT(ready.error().message, HasSubstr("did not start within 300 ms"));
  ASSERT_TRUE(waitReaped(loop_, *worker));
  EXPECT_EQ(worker->state(), Worker::State::Dead);
  EXPECT_TRUE(noLongerAChild(worker->pid()));
}

TEST_F(WorkerTest, FailsToStartWithTheMessageOfAFatalFrame) {
  auto worker = launch({"--fatal", "cannot load functions.js"});

  auto ready = loop_.run(worker->waitReady(kProcessDeadline), kProcessDeadline + 1s);

  ASSERT_FALSE(ready);
  EXPECT_EQ(ready.error().code, Errc::SpawnFailed);
  EXPECT_THAT(ready.error().message, HasSubstr("cannot load functions.js"));
  ASSERT_TRUE(waitReaped(loop_, *worker));
  EXPECT_TRUE(noLongerAChild(worker->pid()));
}

TEST_F(WorkerTest, FailsToStartWithTheExitStatusAndOutputOfAnEarlyExit) {
  auto worker = launch({"--exit-at-start", "2"});

  auto ready = loop_.run(worker->waitReady(kProcessDeadline), kProcessDeadline + 1s);

  ASSERT_FALSE(ready);
  EXPECT_EQ(ready.error().code, Errc::SpawnFailed);
  EXPECT_THAT(ready.error().message, HasSubstr("exited with code 2"));
  EXPECT_THAT(ready.error().message, HasSubstr("fake worker failed to load"));
}

TEST_F(WorkerTest, StartFailsWhenTheInterpreterIsMissing) {
  auto spec = fakeWorkerSpec();
  spec.argv[0] = "/nonexistent/python3";

  auto started = Worker::start(loop_.executor(), spec, fakeWorkerOptions());

  ASSERT_FALSE(started);
  EXPECT_EQ(started.error().code, Errc::SpawnFailed);
  EXPECT_THAT(started.error().message, HasSubstr("/nonexistent/python3"));
}

// ---- Calls ----

TEST_F(WorkerTest, AnswersACall) {
  auto worker = launchReady();
  json::object parameters{{"a", 1}, {"s", "x"}, {"list", json::array{true, nullptr}}};

  auto reply = loop_.run(callRun(worker, "echo", parameters, kProcessDeadline), kProcessDeadline + 1s);

  ASSERT_EQ(errorOf(reply), std::nullopt);
  EXPECT_EQ(resultOf(reply), parameters);
  EXPECT_TRUE(reply.logs.empty());
  EXPECT_EQ(worker->inFlight(), 0u);
}

TEST_F(WorkerTest, AnswersAPingWithAPong) {
  auto worker = launchReady();

  auto reply = loop_.run(callPing(worker, kProcessDeadline), kProcessDeadline + 1s);

  EXPECT_TRUE(reply);
}

TEST_F(WorkerTest, MatchesConcurrentAnswersToTheirCalls) {
  auto worker = launchReady();

  auto slow = loop_.start(callRun(worker, "slow", {{"delayMs", 200}, {"tag", "slow"}}, kProcessDeadline));
  auto fast = loop_.start(callRun(worker, "echo", {{"tag", "fast"}}, kProcessDeadline));
  ASSERT_TRUE(loop_.runUntil([&] { return fast->done; }, kProcessDeadline));
  EXPECT_FALSE(slow->done);
  ASSERT_TRUE(loop_.runUntil([&] { return slow->done; }, kProcessDeadline));

  ASSERT_EQ(errorOf(*fast->value), std::nullopt);
  ASSERT_EQ(errorOf(*slow->value), std::nullopt);
  EXPECT_EQ(resultOf(*fast->value).at("tag"), "fast");
  EXPECT_EQ(resultOf(*slow->value).at("tag"), "slow");
}

TEST_F(WorkerTest, CollectsLogsPerCall) {
  auto worker = launchReady();

  auto first = loop_.start(callRun(worker, "log", {{"messages", json::array{"a1", "a2"}}}, kProcessDeadline));
  auto second = loop_.start(callRun(worker, "log", {{"messages", json::array{"b1"}}}, kProcessDeadline));
  ASSERT_TRUE(loop_.runUntil([&] { return first->done && second->done; }, kProcessDeadline));

  ASSERT_EQ(errorOf(*first->value), std::nullopt);
  ASSERT_EQ(errorOf(*second->value), std::nullopt);
  const auto& logs = first->value->logs;
  ASSERT_THAT(logs, SizeIs(2));
  EXPECT_EQ(logs[0], (json::object{{"level", "log"}, {"message", "a1"}, {"timestamp", "2024-01-01T00:00:00.000Z"}}));
  EXPECT_EQ(logs[1].at("message"), "a2");
  ASSERT_THAT(second->value->logs, SizeIs(1));
  EXPECT_EQ(second->value->logs[0].at("message"), "b1");
}

TEST_F(WorkerTest, CutsTheLogsOfACallPastTheLimit) {
  auto options = fakeWorkerOptions();
  options.logsMaxBytes = 10;
  auto worker = launchReady(options);

  auto reply = loop_.run(callRun(worker, "log", {{"messages", json::array{"12345", "67890", "abc", "def"}}},
                                 kProcessDeadline),
                         kProcessDeadline + 1s);

  ASSERT_EQ(errorOf(reply), std::nullopt);
  ASSERT_THAT(reply.logs, SizeIs(3));
  EXPECT_EQ(reply.logs[1].at("message"), "67890");
  EXPECT_EQ(reply.logs[2].at("level"), "warn");
  EXPECT_THAT(std::string(reply.logs[2].at("message").as_string()), HasSubstr("logs truncated"));
}

TEST_F(WorkerTest, TimesOutQuicklyAndKeepsServing) {
  auto worker = launchReady();

  auto reply = loop_.run(callRun(worker, "hang", {}, 50ms));

  EXPECT_EQ(errorOf(reply), Errc::RunTimedOut);
  EXPECT_GE(reply.elapsed, 50ms);
  EXPECT_LT(reply.elapsed, 2s);  // wide margin for a loaded machine; the point is "not the worker's pace"
  // The timed-out call is forgotten; the ping that asks whether the worker is stuck is answered.
  ASSERT_TRUE(loop_.runUntil([&] { return !worker->suspect(); }, kProcessDeadline));
  EXPECT_EQ(worker->inFlight(), 0u);
  EXPECT_TRUE(worker->accepting());
  auto next = loop_.run(callRun(worker, "echo", {{"n", 2}}, kProcessDeadline), kProcessDeadline + 1s);
  ASSERT_EQ(errorOf(next), std::nullopt);
  EXPECT_EQ(resultOf(next).at("n"), 2);
}

TEST_F(WorkerTest, DropsTheLateAnswerOfATimedOutCall) {
  auto worker = launchReady();
  auto late = loop_.run(callRun(worker, "slow", {{"delayMs", 300}, {"tag", "late"}}, 30ms));
  ASSERT_EQ(errorOf(late), Errc::RunTimedOut);

  // Pending while the late answer arrives: it must not be taken for this call's answer.
  auto reply = loop_.run(callRun(worker, "slow", {{"delayMs", 800}, {"tag", "current"}}, kProcessDeadline),
                         kProcessDeadline + 1s);

  ASSERT_EQ(errorOf(reply), std::nullopt);
  EXPECT_EQ(resultOf(reply).at("tag"), "current");
}

TEST_F(WorkerTest, IgnoresMalformedFramesAndOutputOnStdout) {
  auto worker = launchReady();

  auto garbage = loop_.run(callRun(worker, "garbage", {{"n", 1}}, kProcessDeadline), kProcessDeadline + 1s);
  auto noisy = loop_.run(callRun(worker, "noisy", {{"n", 2}}, kProcessDeadline), kProcessDeadline + 1s);

  ASSERT_EQ(errorOf(garbage), std::nullopt);
  EXPECT_EQ(resultOf(garbage).at("n"), 1);
  ASSERT_EQ(errorOf(noisy), std::nullopt);
  EXPECT_EQ(resultOf(noisy).at("n"), 2);
  EXPECT_EQ(worker->state(), Worker::State::Ready);
}

// ---- Failures ----

TEST_F(WorkerTest, FailsEveryCallInFlightWhenTheWorkerCrashes) {
  auto worker = launchReady();
  auto pid = worker->pid();

  auto hanging = loop_.start(callRun(worker, "hang", {}, 60s));
  auto crashing = loop_.start(callRun(worker, "crash", {{"code", 3}}, 60s));
  ASSERT_TRUE(loop_.runUntil([&] { return hanging->done && crashing->done; }, kProcessDeadline));

  for (const auto& reply : {*hanging->value, *crashing->value}) {
    EXPECT_EQ(errorOf(reply), Errc::WorkerDied);
    EXPECT_THAT(reply.error->message, HasSubstr("exited with code 3"));
  }
  ASSERT_TRUE(waitReaped(loop_, *worker));
  EXPECT_EQ(worker->state(), Worker::State::Dead);
  EXPECT_TRUE(noLongerAChild(pid));
}

TEST_F(WorkerTest, RefusesCallsOnceDead) {
  auto worker = launchReady();
  loop_.run(callRun(worker, "crash", {}, kProcessDeadline), kProcessDeadline + 1s);
  ASSERT_TRUE(waitReaped(loop_, *worker));

  auto reply = loop_.run(callRun(worker, "echo", {}, kProcessDeadline), 1s);

  EXPECT_EQ(errorOf(reply), Errc::WorkerDied);
  EXPECT_THAT(reply.error->message, HasSubstr("not running"));
}

TEST_F(WorkerTest, KillFailsCallsInFlightWithTheReason) {
  auto worker = launchReady();
  auto hanging = loop_.start(callRun(worker, "hang", {}, 60s));
  ASSERT_TRUE(loop_.runUntil([&] { return worker->inFlight() == 1; }, 1s));

  worker->kill("killed by the test");
  ASSERT_TRUE(loop_.runUntil([&] { return hanging->done; }, kProcessDeadline));

  EXPECT_EQ(errorOf(*hanging->value), Errc::WorkerDied);
  EXPECT_EQ(hanging->value->error->message, "Function \"hang\" failed: killed by the test");
  ASSERT_TRUE(waitReaped(loop_, *worker));
  EXPECT_TRUE(noLongerAChild(worker->pid()));
}

TEST_F(WorkerTest, KillsAWorkerThatSendsAnOversizedFrame) {
  auto options = fakeWorkerOptions();
  options.maxFrameBytes = 1024;
  auto worker = launchReady(options);

  auto reply = loop_.run(callRun(worker, "echo", {{"big", std::string(4096, 'x')}}, kProcessDeadline),
                         kProcessDeadline + 1s);

  EXPECT_EQ(errorOf(reply), Errc::WorkerDied);
  EXPECT_THAT(reply.error->message, HasSubstr("over 1024 bytes"));
  ASSERT_TRUE(waitReaped(loop_, *worker));
  EXPECT_TRUE(noLongerAChild(worker->pid()));
}

// ---- Retiring ----

TEST_F(WorkerTest, RetiredIdleWorkerExitsWhenItsInputEnds) {
  auto options = fakeWorkerOptions();
  options.killGrace = 60s;  // so an exit within the deadline is the worker's own, not a kill
  auto worker = launchReady(options);

  worker->retire();

  EXPECT_FALSE(worker->accepting());
  ASSERT_TRUE(waitReaped(loop_, *worker));
  EXPECT_TRUE(noLongerAChild(worker->pid()));
}

TEST_F(WorkerTest, RetiredWorkerFinishesItsCallsInFlightFirst) {
  auto options = fakeWorkerOptions();
  options.killGrace = 60s;
  auto worker = launchReady(options);
  auto slow = loop_.start(callRun(worker, "slow", {{"delayMs", 100}, {"tag", "x"}}, kProcessDeadline));
  ASSERT_TRUE(loop_.runUntil([&] { return worker->inFlight() == 1; }, 1s));

  worker->retire();
  ASSERT_TRUE(loop_.runUntil([&] { return slow->done; }, kProcessDeadline));

  ASSERT_EQ(errorOf(*slow->value), std::nullopt);
  EXPECT_EQ(resultOf(*slow->value).at("tag"), "x");
  ASSERT_TRUE(waitReaped(loop_, *worker));
}

TEST_F(WorkerTest, RetiredWorkerThatIgnoresItsInputIsKilledAfterTheGrace) {
  auto options = fakeWorkerOptions();
  options.killGrace = 100ms;
  auto worker = launchReady(options);
  // Spinning: it never reads its input again, so it cannot notice the end of it.
  auto spin = loop_.run(callRun(worker, "spin", {}, 50ms));
  ASSERT_EQ(errorOf(spin), Errc::RunTimedOut);

  worker->retire();

  ASSERT_TRUE(waitReaped(loop_, *worker));
  EXPECT_TRUE(noLongerAChild(worker->pid()));
}

// ---- Priority of long calls ----

TEST_F(WorkerTest, ALongCallLowersTheWorkerUntilItEnds) {
  auto options = fakeWorkerOptions();
  options.longRunAfter = 50ms;
  options.longRunNice = 19;
  auto worker = launchReady(options);
  auto slow = loop_.start(callRun(worker, "slow", {{"delayMs", 600}}, 5000ms));
  auto since = std::chrono::steady_clock::now();
  ASSERT_TRUE(loop_.runUntil([&] { return std::chrono::steady_clock::now() - since >= 150ms; }));
  ASSERT_FALSE(slow->done);

  worker->adjustPriority();

  EXPECT_TRUE(worker->lowered());
  EXPECT_EQ(process::niceOf(worker->pid()), 19);
  ASSERT_TRUE(loop_.runUntil([&] { return slow->done; }));
  EXPECT_EQ(errorOf(*slow->value), std::nullopt);
  if (process::canRaisePriority()) {
    EXPECT_FALSE(worker->lowered());
    EXPECT_EQ(process::niceOf(worker->pid()), 0);
  } else {
    EXPECT_EQ(process::niceOf(worker->pid()), 19);  // without CAP_SYS_NICE it stays lowered
  }
}

TEST_F(WorkerTest, AShortCallDoesNotLowerTheWorker) {
  auto options = fakeWorkerOptions();
  options.longRunAfter = 50ms;
  auto worker = launchReady(options);
  auto quick = loop_.start(callRun(worker, "slow", {{"delayMs", 5}}, 5000ms));
  worker->adjustPriority();
  ASSERT_TRUE(loop_.runUntil([&] { return quick->done; }));
  worker->adjustPriority();

  EXPECT_FALSE(worker->lowered());
  EXPECT_EQ(process::niceOf(worker->pid()), 0);
}

TEST_F(WorkerTest, AWorkerLoweredByALongCallIsRaisedOnceItAnswersAgain) {
  auto options = fakeWorkerOptions();
  options.longRunAfter = 20ms;
  auto worker = launchReady(options);
  auto spin = loop_.start(callRun(worker, "slow", {{"delayMs", 400}}, 100ms));
  auto since = std::chrono::steady_clock::now();
  ASSERT_TRUE(loop_.runUntil([&] { return std::chrono::steady_clock::now() - since >= 50ms; }));
  worker->adjustPriority();
  ASSERT_TRUE(worker->lowered());
  ASSERT_TRUE(loop_.runUntil([&] { return spin->done; }));
  ASSERT_EQ(errorOf(*spin->value), Errc::RunTimedOut);

  if (!process::canRaisePriority()) return;
  auto pong = loop_.run(callPing(worker, 5000ms));
  ASSERT_TRUE(pong);
  worker->adjustPriority();
  EXPECT_FALSE(worker->lowered());
}

TEST_F(WorkerTest, AWorkerAskedWhetherItIsStuckHasTheNormalPriority) {
  if (!process::canRaisePriority()) GTEST_SKIP() << "raising a priority back needs CAP_SYS_NICE";
  auto options = fakeWorkerOptions();
  options.longRunAfter = 20ms;
  options.pingTimeout = 3000ms;
  auto worker = launchReady(options);
  // Blocked and idle for 800 ms: the run times out at 100 ms, the ping is not answered, and the
  // worker is not spinning, so it keeps the rest of the ping timeout.
  auto blocked = loop_.start(callRun(worker, "block", {{"delayMs", 800}}, 100ms));
  ASSERT_TRUE(loop_.runUntil([&] { return blocked->done && worker->suspect(); }));
  ASSERT_EQ(errorOf(*blocked->value), Errc::RunTimedOut);
  worker->adjustPriority();
  // Lowered, on a busy machine an idle worker could not answer the ping in time.
  EXPECT_FALSE(worker->lowered());
  ASSERT_TRUE(loop_.runUntil([&] { return !worker->suspect(); }));
  EXPECT_TRUE(worker->accepting());
  EXPECT_FALSE(worker->lowered());
}

TEST(WorkerLifetime, TearingDownTheLoopKillsAndReapsTheWorker) {
  pid_t pid = -1;
  {
    TestLoop loop;
    auto started = Worker::start(loop.executor(), fakeWorkerSpec(), fakeWorkerOptions());
    ASSERT_TRUE(started);
    auto ready = loop.run((*started)->waitReady(kProcessDeadline), kProcessDeadline + 1s);
    ASSERT_TRUE(ready);
    pid = (*started)->pid();
  }

  EXPECT_TRUE(noLongerAChild(pid));
}

}  // namespace
}  // namespace customcode::pool
