#include "deps/npm_installer.hpp"
#include "workspace/workspace_lock.hpp"

#include "temp_dir.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

namespace customcode::deps {
namespace {

namespace fs = std::filesystem;
using ::testing::UnorderedElementsAre;

std::vector<std::string> stagingEntries(const fs::path& root) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(root))
    if (entry.path().filename().string().starts_with(".staging-")) names.push_back(entry.path().filename().string());
  return names;
}

class NpmLeftoversTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = testing::makeTempDir("customcode-npm");
    store_ = std::make_unique<workspace::WorkspaceStore>(config::StoreConfig{.root = base_});
    ASSERT_TRUE(store_->open());
    installer_ = std::make_unique<NpmInstaller>(io_.get_executor(), fsPool_, *store_, config::NpmConfig{}, metrics_);
  }
  void TearDown() override { fs::remove_all(base_); }

  fs::path staging(const std::string& name) {
    auto dir = store_->root() / (".staging-" + name);
    fs::create_directories(dir / "node_modules" / "pkg");
    return dir;
  }

  fs::path base_;
  boost::asio::io_context io_;
  boost::asio::thread_pool fsPool_{1};
  Metrics metrics_;
  std::unique_ptr<workspace::WorkspaceStore> store_;
  std::unique_ptr<NpmInstaller> installer_;
};

TEST_F(NpmLeftoversTest, RemovesAStagingDirectoryThatNoProcessHolds) {
  auto dir = staging("ws-crashed");
  std::ofstream(dir / ".in-use").put('\n');

  installer_->removeLeftovers();

  EXPECT_TRUE(stagingEntries(store_->root()).empty());
}

TEST_F(NpmLeftoversTest, KeepsAStagingDirectoryThatAnotherReplicaIsInstallingInto) {
  auto dir = staging("ws-busy");
  auto inUse = workspace::lockFile(dir / ".in-use", false);  // as the other replica's prepare() does
  ASSERT_TRUE(inUse);

  installer_->removeLeftovers();

  EXPECT_THAT(stagingEntries(store_->root()), UnorderedElementsAre(".staging-ws-busy"));
  EXPECT_TRUE(fs::exists(dir / "node_modules" / "pkg"));
}

TEST_F(NpmLeftoversTest, KeepsAStagingDirectoryBeingCreatedAndRemovesAnOldOneWithoutLockFile) {
  staging("ws-new");
  auto old = staging("ws-old");
  fs::last_write_time(old, fs::file_time_type::clock::now() - std::chrono::hours(1));

  installer_->removeLeftovers();

  EXPECT_THAT(stagingEntries(store_->root()), UnorderedElementsAre(".staging-ws-new"));
}

}  // namespace
}  // namespace customcode::deps
