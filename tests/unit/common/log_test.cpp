#include "common/log.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace customcode::log {
namespace {

using namespace std::chrono_literals;
using ::testing::Optional;

TEST(RateLimit, LetsABurstThroughThenCountsWhatItLeavesOut) {
  RateLimit limit(1000ms, 3);
  const auto start = RateLimit::Clock::time_point{} + 1h;
  for (int i = 0; i < 3; ++i) EXPECT_THAT(limit.admit(start + std::chrono::milliseconds(i)), Optional(std::string()));
  const auto before = linesLeftOut();
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(limit.admit(start + 10ms), std::nullopt);
  EXPECT_EQ(linesLeftOut() - before, 1000u);
  // The next window: the first line says how many were left out, the ones after it do not.
  EXPECT_THAT(limit.admit(start + 1000ms), Optional(std::string(" (1000 similar messages left out)")));
  EXPECT_THAT(limit.admit(start + 1001ms), Optional(std::string()));
}

TEST(RateLimit, SaysOneMessageInTheSingular) {
  RateLimit limit(100ms, 1);
  const auto start = RateLimit::Clock::time_point{} + 1h;
  EXPECT_THAT(limit.admit(start), Optional(std::string()));
  EXPECT_EQ(limit.admit(start + 1ms), std::nullopt);
  EXPECT_THAT(limit.admit(start + 100ms), Optional(std::string(" (1 similar message left out)")));
}

TEST(RateLimit, AFloodLogsAFewLinesPerWindow) {
  RateLimit limit(1000ms, 5);
  const auto start = RateLimit::Clock::time_point{} + 1h;
  std::size_t logged = 0;
  // A million attempts over ten seconds (e.g. an accept loop failing).
  for (int i = 0; i < 1'000'000; ++i)
    if (limit.admit(start + std::chrono::microseconds(i * 10))) ++logged;
  EXPECT_EQ(logged, 50u);
}

}  // namespace
}  // namespace customcode::log
