#include "common/event.hpp"

#include "test_loop.hpp"

#include <gtest/gtest.h>

namespace customcode {
namespace {

using namespace std::chrono_literals;
using customcode::testing::TestLoop;

boost::asio::awaitable<bool> waitThenReport(Event& event, std::chrono::milliseconds limit) {
  co_return co_await event.waitFor(limit);
}

TEST(Event, WakesEveryWaiterWhenSet) {
  TestLoop loop;
  Event event;
  auto first = loop.start(waitThenReport(event, 60s));
  auto second = loop.start(waitThenReport(event, 60s));
  loop.context().poll();  // both are parked
  ASSERT_FALSE(first->done);
  ASSERT_FALSE(second->done);

  event.set();

  ASSERT_TRUE(loop.runUntil([&] { return first->done && second->done; }));
  EXPECT_TRUE(*first->value);
  EXPECT_TRUE(*second->value);
}

TEST(Event, AWaitAfterSetReturnsAtOnce) {
  TestLoop loop;
  Event event;
  event.set();

  EXPECT_TRUE(loop.run(waitThenReport(event, 60s), 1s));
  EXPECT_TRUE(event.isSet());
}

TEST(Event, WaitForReportsTheLimitPassing) {
  TestLoop loop;
  Event event;

  EXPECT_FALSE(loop.run(waitThenReport(event, 20ms)));
  EXPECT_FALSE(event.isSet());
}

TEST(Event, SettingTwiceIsHarmless) {
  TestLoop loop;
  Event event;
  auto waiter = loop.start(waitThenReport(event, 60s));
  loop.context().poll();

  event.set();
  event.set();

  ASSERT_TRUE(loop.runUntil([&] { return waiter->done; }));
  EXPECT_TRUE(*waiter->value);
}

}  // namespace
}  // namespace customcode
