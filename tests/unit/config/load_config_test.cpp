#include "config/config.hpp"
#include "config/load_from.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>

namespace customcode::config {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;

TEST(LoadConfig, UsesTheDefaultsWhenNothingIsSet) {
  auto loaded = loadFrom({});

  ASSERT_THAT(loaded.errors, IsEmpty());
  const auto& c = loaded.config;
  EXPECT_EQ(c.http.port, 4000);
  EXPECT_EQ(c.http.host, "0.0.0.0");
  EXPECT_EQ(c.http.requestMaxSize, 1024u * 1024u);
  EXPECT_EQ(c.store.root, std::filesystem::path("data/functions/"));
  EXPECT_FALSE(c.store.updateScriptsOnStartup);
  EXPECT_EQ(c.pool.maxWorkers, 500u);
  EXPECT_EQ(c.pool.runTimeout, 20'000ms);
  EXPECT_EQ(c.pool.idleTimeout, 3600s);
  EXPECT_EQ(c.runtime.nodePath, std::filesystem::path("/usr/bin/node"));
  EXPECT_EQ(c.runtime.pythonPath, std::filesystem::path("/usr/bin/python3"));
  EXPECT_EQ(c.runtime.nodeMaxOldGenerationMb, 100u);
  EXPECT_EQ(c.runtime.bootstrapDir, std::filesystem::path("/opt/customcode/bin/runtimes"));
  EXPECT_EQ(c.runtime.nodeBuiltinModules, Config{}.runtime.nodeBuiltinModules);
  EXPECT_EQ(c.runtime.pythonBuiltinModules, defaultPythonBuiltinModules());
  EXPECT_EQ(c.runtime.pythonPackagesWhitelist, defaultPythonPackagesWhitelist());
  EXPECT_EQ(c.log.level, "info");
  EXPECT_EQ(c.pool.longRunAfter, 50ms);
  EXPECT_EQ(c.pool.longRunNice, 19);
}

TEST(LoadConfig, ParsesEveryVariable) {
  auto loaded = loadFrom({
      {"PORT", "8080"},
      {"HOST", " 127.0.0.1 "},
      {"REQUEST_MAX_SIZE", "10kb"},
      {"SHUTDOWN_TIMEOUT", "2500"},
      {"FUNCTIONS_STORAGE_FILESYSTEM_DIRPATH", "/tmp/fns"},
      {"UPDATE_SCRIPTS_ON_STARTUP", "Yes"},
      {"FUNCTIONS_WORKERS_MAX_LRU", "3"},
      {"FUNCTIONS_RUN_TIMEOUT", "150"},
      {"PYTHON_FUNCTIONS_RUN_TIMEOUT", "250"},
      {"INACTIVE_NODE_WORKER_DELETION_TIMEOUT", "60"},
      {"WORKER_PING_TIMEOUT", "40"},
      {"WORKER_STARTUP_TIMEOUT", "3000"},
      {"NODE_PATH_BINARY", "/usr/local/bin/node"},
      {"PYTHON_PATH_BINARY", "/usr/local/bin/python3"},
      {"NODE_BUILTIN_MODULES", "fs, path"},
      {"NODE_WORKER_MAX_OLD_GENERATION_SIZE_MB", "64MB"},
      {"PYTHON_BUILTIN_MODULES", "json,math"},
      {"PYTHON_PACKAGES_WHITELIST_IMPORT", "numpy"},
      {"PYTHON_API_URL", "http://api:9000"},
      {"FUNCTIONS_LOGS_MAX_SIZE", "1kb"},
      {"FUNCTIONS_RESULT_MAX_SIZE", "2mb"},
      {"LOG_LEVEL", "DEBUG"},
      {"FUNCTIONS_LONG_RUN_AFTER", "0"},
      {"FUNCTIONS_LONG_RUN_NICE", "5"},
      {"FUNCTIONS_SPARE_WORKERS", "0"},
      {"PYTHON_FUNCTIONS_SPARE_WORKERS", "3"},
  });

  ASSERT_THAT(loaded.errors, IsEmpty());
  const auto& c = loaded.config;
  EXPECT_EQ(c.http.port, 8080);
  EXPECT_EQ(c.http.host, "127.0.0.1");
  EXPECT_EQ(c.http.requestMaxSize, 10u * 1024u);
  EXPECT_EQ(c.http.shutdownGrace, 2500ms);
  EXPECT_EQ(c.store.root, std::filesystem::path("/tmp/fns"));
  EXPECT_TRUE(c.store.updateScriptsOnStartup);
  EXPECT_EQ(c.pool.spareWorkers, 0u);
  EXPECT_EQ(c.pool.pythonSpareWorkers, 3u);
  EXPECT_EQ(c.pool.maxWorkers, 3u);
  EXPECT_EQ(c.pool.runTimeout, 150ms);
  EXPECT_EQ(c.pool.pythonRunTimeout, 250ms);
  EXPECT_EQ(c.pool.idleTimeout, 60s);
  EXPECT_EQ(c.pool.pingTimeout, 40ms);
  EXPECT_EQ(c.pool.startupTimeout, 3000ms);
  EXPECT_EQ(c.runtime.nodePath, std::filesystem::path("/usr/local/bin/node"));
  EXPECT_EQ(c.runtime.pythonPath, std::filesystem::path("/usr/local/bin/python3"));
  EXPECT_THAT(c.runtime.nodeBuiltinModules, ElementsAre("fs", "path"));
  EXPECT_EQ(c.runtime.nodeMaxOldGenerationMb, 64u);
  EXPECT_THAT(c.runtime.pythonBuiltinModules, ElementsAre("json", "math"));
  EXPECT_THAT(c.runtime.pythonPackagesWhitelist, ElementsAre("numpy"));
  EXPECT_EQ(c.runtime.pythonApiUrl, "http://api:9000");
  EXPECT_EQ(c.runtime.logsMaxBytes, 1024u);
  EXPECT_EQ(c.runtime.resultMaxBytes, 2u * 1024u * 1024u);
  EXPECT_EQ(c.log.level, "debug");
  EXPECT_EQ(c.pool.longRunAfter, 0ms);
  EXPECT_EQ(c.pool.longRunNice, 5);
}

TEST(LoadConfig, AcceptsPortZeroAndFalseFlags) {
  auto loaded = loadFrom({{"PORT", "0"}, {"UPDATE_SCRIPTS_ON_STARTUP", "false"}});

  ASSERT_THAT(loaded.errors, IsEmpty());
  EXPECT_EQ(loaded.config.http.port, 0);
  EXPECT_FALSE(loaded.config.store.updateScriptsOnStartup);
}

TEST(LoadConfig, AcceptsABareNumberOfMegabytesForTheNodeHeap) {
  auto loaded = loadFrom({{"NODE_WORKER_MAX_OLD_GENERATION_SIZE_MB", "256"}});

  ASSERT_THAT(loaded.errors, IsEmpty());
  EXPECT_EQ(loaded.config.runtime.nodeMaxOldGenerationMb, 256u);
}

TEST(LoadConfig, NamesTheVariableAndTheValueOfABadSetting) {
  auto loaded = loadFrom({{"FUNCTIONS_RUN_TIMEOUT", "abc"}});

  ASSERT_THAT(loaded.errors, ElementsAre(StartsWith("FUNCTIONS_RUN_TIMEOUT: ")));
  EXPECT_THAT(loaded.errors[0], HasSubstr("positive"));
  EXPECT_THAT(loaded.errors[0], HasSubstr("got \"abc\""));
}

TEST(LoadConfig, CollectsEveryBadValue) {
  const std::map<std::string, std::string> bad = {
      {"PORT", "70000"},
      {"HOST", "  "},
      {"REQUEST_MAX_SIZE", "lots"},
      {"SHUTDOWN_TIMEOUT", "-5"},
      {"FUNCTIONS_STORAGE_FILESYSTEM_DIRPATH", ""},
      {"UPDATE_SCRIPTS_ON_STARTUP", "maybe"},
      {"FUNCTIONS_WORKERS_MAX_LRU", "0"},
      {"FUNCTIONS_RUN_TIMEOUT", "1.5"},
      {"PYTHON_FUNCTIONS_RUN_TIMEOUT", "0"},
      {"INACTIVE_NODE_WORKER_DELETION_TIMEOUT", "soon"},
      {"WORKER_PING_TIMEOUT", "10ms"},
      {"WORKER_STARTUP_TIMEOUT", ""},
      {"NODE_PATH_BINARY", " "},
      {"PYTHON_PATH_BINARY", ""},
      {"NODE_WORKER_MAX_OLD_GENERATION_SIZE_MB", "8"},
      {"FUNCTIONS_LOGS_MAX_SIZE", "0"},
      {"FUNCTIONS_RESULT_MAX_SIZE", "1tb"},
      {"LOG_LEVEL", "loud"},
      {"PYTHON_FUNCTIONS_SPARE_WORKERS", "65"},
  };

  auto loaded = loadFrom(bad);

  EXPECT_EQ(loaded.errors.size(), bad.size());
  for (const auto& [name, value] : bad) {
    auto prefix = name + ": ";
    auto found = std::any_of(loaded.errors.begin(), loaded.errors.end(),
                             [&](const std::string& e) { return e.starts_with(prefix); });
    EXPECT_TRUE(found) << "no error names " << name;
  }
}

TEST(LoadConfig, KeepsTheDefaultOfAVariableThatFailedToParse) {
  auto loaded = loadFrom({{"PORT", "http"}});

  EXPECT_EQ(loaded.errors.size(), 1u);
  EXPECT_EQ(loaded.config.http.port, 4000);
}

}  // namespace
}  // namespace customcode::config

TEST(LoadConfig, ParsesTheSandboxModesAndItsTestSwitch) {
  auto restricted = customcode::config::loadFrom({{"SANDBOX", "restricted"}, {"SANDBOX_TEST_NO_NAMESPACES", "yes"}});
  ASSERT_TRUE(restricted.errors.empty());
  EXPECT_EQ(restricted.config.sandbox.mode, customcode::config::SandboxConfig::Mode::Restricted);
  EXPECT_TRUE(restricted.config.sandbox.testNoNamespaces);
  EXPECT_FALSE(customcode::config::loadFrom({}).config.sandbox.testNoNamespaces);

  auto bad = customcode::config::loadFrom({{"SANDBOX", "chroot"}, {"SANDBOX_TEST_NO_NAMESPACES", "maybe"}});
  ASSERT_EQ(bad.errors.size(), 2u);
  EXPECT_NE(bad.errors[0].find("SANDBOX"), std::string::npos);
  EXPECT_NE(bad.errors[1].find("SANDBOX_TEST_NO_NAMESPACES"), std::string::npos);
}

TEST(LoadConfig, ParsesWorkerCgroupsAndItsTestSwitch) {
  using Cgroups = customcode::config::SandboxConfig::Cgroups;
  auto defaults = customcode::config::loadFrom({});
  EXPECT_EQ(defaults.config.sandbox.cgroups, Cgroups::Auto);
  EXPECT_FALSE(defaults.config.sandbox.testNoCgroups);
  EXPECT_EQ(customcode::config::loadFrom({{"WORKER_CGROUPS", "on"}}).config.sandbox.cgroups, Cgroups::On);
  EXPECT_EQ(customcode::config::loadFrom({{"WORKER_CGROUPS", " OFF "}}).config.sandbox.cgroups, Cgroups::Off);
  EXPECT_TRUE(customcode::config::loadFrom({{"WORKER_CGROUPS_TEST_UNAVAILABLE", "yes"}}).config.sandbox.testNoCgroups);

  auto bad = customcode::config::loadFrom({{"WORKER_CGROUPS", "v1"}});
  ASSERT_EQ(bad.errors.size(), 1u);
  EXPECT_NE(bad.errors[0].find("WORKER_CGROUPS: must be auto, on or off"), std::string::npos) << bad.errors[0];
}
