#include "config/config.hpp"
#include "config/load_from.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <string>

namespace customcode::config {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

TEST(NpmConfig, DefaultsToNpmsOwnRegistryAndACacheUnderTheStorage) {
  auto loaded = loadFrom({});

  EXPECT_THAT(loaded.errors, IsEmpty());
  EXPECT_EQ(loaded.config.npm.registry, "");
  EXPECT_EQ(loaded.config.npm.cacheDir, "");
  EXPECT_EQ(loaded.config.npm.installTimeout, 120'000ms);
  EXPECT_EQ(loaded.config.npm.npmPath, "/usr/bin/npm");
}

TEST(NpmConfig, ReadsRegistryTimeoutAndCache) {
  auto loaded = loadFrom({{"NPM_CONFIG_REGISTRY", "https://npm.example.test/"},
                             {"NPM_INSTALL_TIMEOUT", "5000"},
                             {"NPM_CACHE_DIRECTORY", "/var/cache/npm"}});

  EXPECT_THAT(loaded.errors, IsEmpty());
  EXPECT_EQ(loaded.config.npm.registry, "https://npm.example.test/");
  EXPECT_EQ(loaded.config.npm.installTimeout, 5'000ms);
  EXPECT_EQ(loaded.config.npm.cacheDir, "/var/cache/npm");
}

TEST(NpmConfig, RefusesARegistryThatIsNotAnHttpUrl) {
  auto loaded = loadFrom({{"NPM_CONFIG_REGISTRY", "file:///etc"}});

  EXPECT_THAT(loaded.errors, ElementsAre(HasSubstr("NPM_CONFIG_REGISTRY: must be an http(s) URL")));
}

}  // namespace
}  // namespace customcode::config
