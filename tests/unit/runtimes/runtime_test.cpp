#include "runtimes/runtime.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <unistd.h>

namespace customcode::runtimes {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::Not;

config::RuntimeConfig runtimeConfig() {
  config::RuntimeConfig config;
  config.bootstrapDir = "/srv/boot";
  config.nodePath = "/usr/bin/node";
  config.pythonPath = "/usr/bin/python3";
  config.nodeBuiltinModules = {"http", "url"};
  config.pythonBuiltinModules = {"json", "math"};
  config.pythonPackagesWhitelist = {"numpy"};
  config.nodeMaxOldGenerationMb = 64;
  config.logsMaxBytes = 1000;
  config.resultMaxBytes = 2000;
  return config;
}

// SANDBOX=none: the command lines themselves, with the limits but without bubblewrap (whose
// arguments sandbox/sandbox_test.cpp checks).
class RuntimeCommands : public ::testing::Test {
 protected:
  RuntimeCommands() : sandbox_(config::SandboxConfig{.mode = config::SandboxConfig::Mode::None}) {}
  void SetUp() override {
    ASSERT_TRUE(sandbox_.prepare({}).empty());
    ASSERT_FALSE(sandbox_.isolated());
  }
  sandbox::Sandbox sandbox_;
  Runtimes runtimes_{runtimeConfig(), sandbox_};
};

TEST_F(RuntimeCommands, NodeWorker) {
  auto spec = runtimes_.workerCommand(Language::Node, "/data/ws", "/data/ws/functions.js");

  EXPECT_THAT(spec.argv,
              ElementsAre("/usr/bin/node", "--experimental-permission", "--disable-warning=ExperimentalWarning",
                          "--allow-fs-read=/srv/boot/*", "--allow-fs-read=/data/ws/*", "--max-old-space-size=64",
                          "/srv/boot/node/worker.js", "--module", "/data/ws/functions.js", "--builtins", "http,url",
                          "--logs-max", "1000", "--result-max", "2000"));
  EXPECT_THAT(spec.env, ElementsAre("PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", "HOME=/tmp"));
  EXPECT_EQ(spec.cwd, "/data/ws");
  EXPECT_TRUE(spec.limits.dataSize.has_value());  // V8 reserves address space it never uses
  EXPECT_FALSE(spec.limits.addressSpace.has_value());
  EXPECT_FALSE(spec.uid.has_value());
}

TEST_F(RuntimeCommands, PythonWorker) {
  auto spec = runtimes_.workerCommand(Language::Python, "/data/ws", "/data/ws/functions.py");

  EXPECT_THAT(spec.argv, ElementsAre("/usr/bin/python3", "-I", "-X", "utf8", "/srv/boot/python/worker.py", "--module",
                                     "/data/ws/functions.py", "--builtins", "json,math", "--packages", "numpy",
                                     "--logs-max", "1000", "--result-max", "2000"));
  EXPECT_THAT(spec.env, Contains("OPENBLAS_NUM_THREADS=1"));
  EXPECT_TRUE(spec.limits.addressSpace.has_value());
  EXPECT_FALSE(spec.limits.dataSize.has_value());
}

TEST_F(RuntimeCommands, CheckersAndSparesLoadNoModule) {
  auto checker = runtimes_.checkerCommand(Language::Python);
  auto spare = runtimes_.spareCommand(Language::Node);

  EXPECT_THAT(checker.argv, Not(Contains("--module")));
  EXPECT_EQ(checker.argv.back(), "--check-only");
  EXPECT_EQ(checker.cwd, "/srv/boot");
  EXPECT_THAT(spare.argv, Not(Contains("--module")));
  EXPECT_EQ(spare.argv.back(), "--spare");
  auto pythonSpare = runtimes_.spareCommand(Language::Python);
  EXPECT_THAT(pythonSpare.argv, Not(Contains("--module")));
  EXPECT_EQ(pythonSpare.argv.back(), "--spare");
  EXPECT_EQ(pythonSpare.argv[4], "/srv/boot/python/worker.py");
}

TEST_F(RuntimeCommands, TheTableHasARowPerLanguageWithItsTimeout) {
  config::PoolConfig pool;
  pool.runTimeout = std::chrono::milliseconds(111);
  pool.pythonRunTimeout = std::chrono::milliseconds(222);

  pool.spareWorkers = 3;
  pool.pythonSpareWorkers = 4;

  EXPECT_EQ(pool.*traits(Language::Node).runTimeout, std::chrono::milliseconds(111));
  EXPECT_EQ(pool.*traits(Language::Python).runTimeout, std::chrono::milliseconds(222));
  EXPECT_EQ(pool.*traits(Language::Node).spareWorkers, 3u);
  EXPECT_EQ(pool.*traits(Language::Python).spareWorkers, 4u);
  for (auto language : kLanguages) EXPECT_EQ(traits(language).language, language);
}

TEST(RuntimeCommandsWithoutSandbox, NoCommandIsBuiltBeforeTheSandboxIsPrepared) {
  sandbox::Sandbox sandbox(config::SandboxConfig{});
  Runtimes runtimes(runtimeConfig(), sandbox);

  EXPECT_THROW(runtimes.workerCommand(Language::Node, "/data/ws", "/data/ws/functions.js"), std::logic_error);
  EXPECT_THROW(runtimes.checkerCommand(Language::Python), std::logic_error);
}

}  // namespace
}  // namespace customcode::runtimes
