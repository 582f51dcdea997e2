#include "config/config.hpp"
#include "config/load_from.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace customcode::config {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::StartsWith;

TEST(HttpConfig, ConnectionLimitAndTimeoutsHaveDocumentedDefaults) {
  auto loaded = loadFrom({});
  ASSERT_THAT(loaded.errors, IsEmpty());
  EXPECT_EQ(loaded.config.http.maxConnections, 0u);  // half the descriptor limit, decided at start-up
  EXPECT_EQ(loaded.config.http.idleTimeout, 75'000ms);
  EXPECT_EQ(loaded.config.http.headerTimeout, 10'000ms);
}

TEST(HttpConfig, ParsesConnectionLimitAndTimeouts) {
  auto loaded = loadFrom({{"HTTP_MAX_CONNECTIONS", "200"}, {"HTTP_IDLE_TIMEOUT", "5000"}, {"HTTP_HEADER_TIMEOUT", "250"}});
  ASSERT_THAT(loaded.errors, IsEmpty());
  EXPECT_EQ(loaded.config.http.maxConnections, 200u);
  EXPECT_EQ(loaded.config.http.idleTimeout, 5000ms);
  EXPECT_EQ(loaded.config.http.headerTimeout, 250ms);
}

TEST(HttpConfig, RefusesBadValuesNamingTheVariable) {
  auto loaded = loadFrom({{"HTTP_MAX_CONNECTIONS", "-1"}, {"HTTP_IDLE_TIMEOUT", "0"}, {"HTTP_HEADER_TIMEOUT", "soon"}});
  EXPECT_THAT(loaded.errors, ElementsAre(StartsWith("HTTP_MAX_CONNECTIONS"), StartsWith("HTTP_IDLE_TIMEOUT"),
                                         StartsWith("HTTP_HEADER_TIMEOUT")));
}

}  // namespace
}  // namespace customcode::config
