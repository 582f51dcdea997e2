#include "config/config.hpp"
#include "config/load_from.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace customcode::config {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

TEST(PlaygroundConfig, IsOnAndServedFromNextToTheBinaryByDefault) {
  auto loaded = loadFrom({});

  ASSERT_THAT(loaded.errors, IsEmpty());
  EXPECT_TRUE(loaded.config.playground.enabled);
  EXPECT_EQ(loaded.config.playground.dir, std::filesystem::path("/opt/customcode/bin/playground"));
}

TEST(PlaygroundConfig, TurnsOffAndMoves) {
  auto loaded = loadFrom({{"PLAYGROUND", " OFF "}, {"PLAYGROUND_DIR", "/srv/playground"}});

  ASSERT_THAT(loaded.errors, IsEmpty());
  EXPECT_FALSE(loaded.config.playground.enabled);
  EXPECT_EQ(loaded.config.playground.dir, std::filesystem::path("/srv/playground"));
}

TEST(PlaygroundConfig, NamesABadValue) {
  auto loaded = loadFrom({{"PLAYGROUND", "maybe"}, {"PLAYGROUND_DIR", " "}});

  EXPECT_THAT(loaded.errors, ElementsAre(HasSubstr("PLAYGROUND: must be on or off, got \"maybe\""),
                                         HasSubstr("PLAYGROUND_DIR: must not be empty")));
}

}  // namespace
}  // namespace customcode::config
