#include "workspace/workspace_store.hpp"

#include "common/text.hpp"
#include "workspace/codegen.hpp"
#include "workspace/validation.hpp"

#include "temp_dir.hpp"

#include <boost/json.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

namespace customcode::workspace {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Optional;
using ::testing::UnorderedElementsAre;

std::string readAll(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return std::move(out).str();
}

void writeAll(const fs::path& path, std::string_view content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
}

ino_t inodeOf(const fs::path& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_ino;
}

std::vector<std::string> entriesOf(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) names.push_back(entry.path().filename().string());
  return names;
}

Workspace workspaceOf(std::string name, std::string_view body) {
  auto parsed = parseWorkspace(std::move(name), json::parse(body));
  if (!parsed) throw std::logic_error(parsed.error().message);
  return std::move(*parsed);
}

Workspace hello(std::string name = "ws", std::string_view greeting = "Hello") {
  return workspaceOf(std::move(name), R"({"functions": {"hello": {"code": "return ')" + std::string(greeting) +
                                           R"( ' + name;", "parameters": {"name": {"type": "string", "default": "world"}}}}})");
}

// A store in a fresh temp directory per test.
class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = testing::makeTempDir("customcode-store");
    store_ = std::make_unique<WorkspaceStore>(config::StoreConfig{.root = base_ / "functions"});
    ASSERT_TRUE(store_->open());
    root_ = store_->root();
  }
  void TearDown() override { fs::remove_all(base_); }

  WorkspaceStore& store() { return *store_; }

  fs::path base_;
  fs::path root_;
  std::unique_ptr<WorkspaceStore> store_;
};

TEST_F(StoreTest, OpenCreatesTheRootDirectory) {
  EXPECT_TRUE(fs::is_directory(base_ / "functions"));
  EXPECT_EQ(root_, fs::canonical(base_ / "functions"));
}

TEST_F(StoreTest, LoadReturnsWhatSaveStored) {
  auto saved = store().save(hello());
  ASSERT_TRUE(saved) << saved.error().message;

  auto loaded = store().load("ws");

  ASSERT_TRUE(loaded) << loaded.error().message;
  EXPECT_EQ(loaded->workspace.name, "ws");
  EXPECT_EQ(loaded->workspace.body, hello().body);
  ASSERT_EQ(loaded->workspace.functions.size(), 1u);
  EXPECT_EQ(loaded->workspace.functions[0].code, "return 'Hello ' + name;");
  EXPECT_EQ(loaded->fingerprint, saved->fingerprint);
  EXPECT_EQ(loaded->identity, saved->identity);
  EXPECT_THAT(store().identity("ws"), Optional(saved->identity));
}

TEST_F(StoreTest, SaveWritesTheYamlAndAScriptStampedWithItsFingerprint) {
  auto saved = store().save(hello());
  ASSERT_TRUE(saved);

  auto yaml = readAll(root_ / "ws" / "workspace.yaml");
  auto script = readAll(root_ / "ws" / "functions.js");

  EXPECT_EQ(saved->fingerprint, text::fingerprint(yaml));
  EXPECT_THAT(scriptFingerprint(script), Optional(saved->fingerprint));
  EXPECT_EQ(script, generateNodeModule(hello(), saved->fingerprint));
}

TEST_F(StoreTest, SaveLeavesNoTemporaryFiles) {
  ASSERT_TRUE(store().save(hello()));
  ASSERT_TRUE(store().save(hello("ws", "Hi")));

  EXPECT_THAT(entriesOf(root_ / "ws"), UnorderedElementsAre("workspace.yaml", "functions.js"));
  EXPECT_THAT(entriesOf(root_), ElementsAre("ws"));
}

TEST_F(StoreTest, SaveReplacesThePreviousVersion) {
  auto first = store().save(hello());
  ASSERT_TRUE(first);

  auto second = store().save(hello("ws", "Hi"));
  ASSERT_TRUE(second);

  auto loaded = store().load("ws");
  ASSERT_TRUE(loaded);
  EXPECT_EQ(loaded->workspace.functions[0].code, "return 'Hi ' + name;");
  EXPECT_NE(second->fingerprint, first->fingerprint);
  EXPECT_NE(second->identity, first->identity);
  EXPECT_THAT(scriptFingerprint(readAll(root_ / "ws" / "functions.js")), Optional(second->fingerprint));
}

TEST_F(StoreTest, SaveRemovesTheScriptOfALanguageNoLongerUsed) {
  ASSERT_TRUE(store().save(hello()));

  ASSERT_TRUE(store().save(workspaceOf("ws", R"({"functions": {"f": {"code": "return 1", "language": "python"}}})")));

  EXPECT_FALSE(fs::exists(root_ / "ws" / "functions.js"));
}

TEST_F(StoreTest, LoadOfAnUnknownWorkspaceIsNotFound) {
  auto loaded = store().load("nope");

  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error().code, Errc::WorkspaceNotFound);
  EXPECT_EQ(store().identity("nope"), std::nullopt);
}

TEST_F(StoreTest, LoadOfCorruptYamlIsAStorageFailure) {
  ASSERT_TRUE(store().save(hello()));
  writeAll(root_ / "ws" / "workspace.yaml", "functions: {hello: [unclosed\n");

  auto loaded = store().load("ws");

  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error().code, Errc::StorageFailed);
}

TEST_F(StoreTest, LoadOfYamlThatIsNotAValidWorkspaceIsAStorageFailure) {
  ASSERT_TRUE(store().save(hello()));
  writeAll(root_ / "ws" / "workspace.yaml", "functions:\n  \"1bad\":\n    code: 5\n");

  auto loaded = store().load("ws");

  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error().code, Errc::StorageFailed);
}

TEST_F(StoreTest, ListReturnsStoredWorkspacesSorted) {
  for (auto name : {"b", "a", "c"}) ASSERT_TRUE(store().save(hello(name)));
  fs::create_directory(root_ / "no-yaml");
  fs::create_directory(root_ / ".hidden");
  writeAll(root_ / ".hidden" / "workspace.yaml", "functions: {}\n");
  writeAll(root_ / "stray-file", "x");

  EXPECT_THAT(store().list(), ElementsAre("a", "b", "c"));
}

TEST_F(StoreTest, RemoveDeletesTheWorkspaceDirectory) {
  ASSERT_TRUE(store().save(hello("a")));
  ASSERT_TRUE(store().save(hello("b")));

  auto removed = store().remove("a");

  ASSERT_TRUE(removed) << removed.error().message;
  EXPECT_EQ(store().load("a").error().code, Errc::WorkspaceNotFound);
  EXPECT_THAT(store().list(), ElementsAre("b"));
  EXPECT_THAT(entriesOf(root_), UnorderedElementsAre(".locks", "b"));  // no trash left behind
}

TEST_F(StoreTest, RemoveOfAnUnknownWorkspaceIsNotFound) {
  auto removed = store().remove("nope");

  ASSERT_FALSE(removed);
  EXPECT_EQ(removed.error().code, Errc::WorkspaceNotFound);
}

TEST_F(StoreTest, SyncScriptsRegeneratesAStaleScript) {
  auto saved = store().save(hello());
  ASSERT_TRUE(saved);
  auto script = root_ / "ws" / "functions.js";
  auto expected = readAll(script);
  writeAll(script, generateNodeModule(hello("ws", "Old"), saved->fingerprint + 1));

  ASSERT_TRUE(store().syncScripts(*saved));

  EXPECT_EQ(readAll(script), expected);
}

TEST_F(StoreTest, SyncScriptsRegeneratesAMissingOrHeaderlessScript) {
  auto saved = store().save(hello());
  ASSERT_TRUE(saved);
  auto script = root_ / "ws" / "functions.js";
  auto expected = readAll(script);

  fs::remove(script);
  ASSERT_TRUE(store().syncScripts(*saved));
  EXPECT_EQ(readAll(script), expected);

  writeAll(script, "module.exports = () => ({});\n");
  ASSERT_TRUE(store().syncScripts(*saved));
  EXPECT_EQ(readAll(script), expected);
}

TEST_F(StoreTest, SyncScriptsLeavesAnUpToDateScriptAloneUnlessForced) {
  auto saved = store().save(hello());
  ASSERT_TRUE(saved);
  auto script = root_ / "ws" / "functions.js";
  auto before = inodeOf(script);

  ASSERT_TRUE(store().syncScripts(*saved));
  EXPECT_EQ(inodeOf(script), before);

  ASSERT_TRUE(store().syncScripts(*saved, /*force=*/true));
  EXPECT_NE(inodeOf(script), before);  // rewritten by a rename
}

TEST_F(StoreTest, RegenerateAllRewritesEveryWorkspaceScript) {
  ASSERT_TRUE(store().save(hello("a")));
  ASSERT_TRUE(store().save(hello("b")));
  auto expectedA = readAll(root_ / "a" / "functions.js");
  writeAll(root_ / "a" / "functions.js", "stale");
  fs::remove(root_ / "b" / "functions.js");

  EXPECT_EQ(store().regenerateAll(), 2u);

  EXPECT_EQ(readAll(root_ / "a" / "functions.js"), expectedA);
  EXPECT_TRUE(fs::exists(root_ / "b" / "functions.js"));
}

TEST_F(StoreTest, OpenRemovesLeftoversOfInterruptedWrites) {
  ASSERT_TRUE(store().save(hello()));
  fs::create_directories(root_ / ".trash-123-4-5" / "inner");
  writeAll(root_ / ".trash-123-4-5" / "inner" / "workspace.yaml", "x");
  writeAll(root_ / "ws" / ".workspace.yaml.tmp-1-2-3", "half written");
  writeAll(root_ / "ws" / ".functions.js.tmp-1-2-4", "half written");

  WorkspaceStore reopened(config::StoreConfig{.root = root_});
  ASSERT_TRUE(reopened.open());

  EXPECT_THAT(entriesOf(root_), UnorderedElementsAre(".locks", "ws"));
  EXPECT_THAT(entriesOf(root_ / "ws"), UnorderedElementsAre("workspace.yaml", "functions.js"));
  EXPECT_TRUE(reopened.load("ws"));
}

TEST_F(StoreTest, OpenKeepsTheTempFilesOfAWorkspaceThatAnotherReplicaIsWriting) {
  ASSERT_TRUE(store().save(hello()));
  writeAll(root_ / "ws" / ".workspace.yaml.tmp-1-2-3", "being written");
  auto writing = store().lock("ws");  // another descriptor: as good as another process for flock
  ASSERT_TRUE(writing);

  WorkspaceStore reopened(config::StoreConfig{.root = root_});
  ASSERT_TRUE(reopened.open());

  EXPECT_TRUE(fs::exists(root_ / "ws" / ".workspace.yaml.tmp-1-2-3"));
}

TEST_F(StoreTest, SaveReturnsTheIdentityOfTheYamlItWrote) {
  auto saved = store().save(hello());
  ASSERT_TRUE(saved);

  EXPECT_THAT(store().identity("ws"), Optional(saved->identity));
}

TEST_F(StoreTest, AFileReplacedByAnotherReplicaHasAnotherIdentity) {
  WorkspaceStore other(config::StoreConfig{.root = root_});
  ASSERT_TRUE(other.open());
  auto mine = store().save(hello("ws", "Hello"));
  ASSERT_TRUE(mine);

  auto theirs = other.save(hello("ws", "Hi"));
  ASSERT_TRUE(theirs);

  EXPECT_NE(mine->identity, theirs->identity);
  EXPECT_THAT(store().identity("ws"), Optional(theirs->identity));
}

TEST_F(StoreTest, ConcurrentSavesThroughTwoStoresLeaveOneWholeVersion) {
  // Two stores on one directory, as two replicas on one volume; each save holds the workspace's
  // lock as the npm commit does. Every version has two functions with the same greeting.
  WorkspaceStore other(config::StoreConfig{.root = root_});
  ASSERT_TRUE(other.open());
  auto version = [](std::string greeting) {
    return workspaceOf("ws", R"({"functions": {"a": {"code": "return ')" + greeting + R"(';"},
                                               "b": {"code": "return ')" + greeting + R"(';"}}})");
  };
  auto saveMany = [&](WorkspaceStore& into, std::string prefix) {
    for (int i = 0; i < 50; ++i) {
      auto held = into.lock("ws");
      ASSERT_TRUE(held);
      ASSERT_TRUE(into.save(version(prefix + std::to_string(i))));
    }
  };

  std::thread first([&] { saveMany(store(), "first"); });
  std::thread second([&] { saveMany(other, "second"); });
  first.join();
  second.join();

  auto loaded = store().load("ws");
  ASSERT_TRUE(loaded);
  const auto& functions = loaded->workspace.body.at("functions").as_object();
  EXPECT_EQ(functions.at("a").at("code"), functions.at("b").at("code"));
  auto script = readAll(root_ / "ws" / "functions.js");
  EXPECT_EQ(script, generateScript(Language::Node, loaded->workspace, loaded->fingerprint));
  EXPECT_THAT(entriesOf(root_ / "ws"), UnorderedElementsAre("workspace.yaml", "functions.js"));
}

TEST_F(StoreTest, LoadSyncedBringsAScriptLeftByAnotherVersionInLine) {
  auto saved = store().save(hello("ws", "Hello"));
  ASSERT_TRUE(saved);
  auto expected = readAll(root_ / "ws" / "functions.js");
  writeAll(root_ / "ws" / "functions.js", "// from another version");

  auto synced = store().loadSynced("ws");

  ASSERT_TRUE(synced);
  EXPECT_EQ(readAll(root_ / "ws" / "functions.js"), expected);
}

TEST_F(StoreTest, WriteFileAtomicReplacesContentWithoutLeavingTempFiles) {
  auto path = base_ / "file.txt";
  writeAll(path, "old");

  ASSERT_TRUE(writeFileAtomic(path, "new content"));

  EXPECT_EQ(readAll(path), "new content");
  EXPECT_THAT(entriesOf(base_), UnorderedElementsAre("file.txt", "functions"));
}

TEST_F(StoreTest, WriteFileAtomicFailsWithStorageFailedInAMissingDirectory) {
  auto written = writeFileAtomic(base_ / "missing" / "file.txt", "x");

  ASSERT_FALSE(written);
  EXPECT_EQ(written.error().code, Errc::StorageFailed);
}

}  // namespace
}  // namespace customcode::workspace
