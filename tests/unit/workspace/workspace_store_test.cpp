#include "workspace/workspace_store.hpp"

#include "common/text.hpp"
#include "workspace/codegen.hpp"
#include "workspace/validation.hpp"

#include "temp_dir.hpp"

#include <boost/json.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>

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

// Sets the modification time of `path` to `age` ago.
void makeOld(const fs::path& path, std::chrono::seconds age) {
  timespec times[2];
  ::clock_gettime(CLOCK_REALTIME, &times[0]);
  times[0].tv_sec -= age.count();
  times[1] = times[0];
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, 0), 0) << path;
}

bool isOld(const fs::path& path) {
  return fs::file_time_type::clock::now() - fs::last_write_time(path) > std::chrono::minutes(1);
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

  // The content-addressed script of `stored` in `language`.
  fs::path scriptOf(const StoredWorkspace& stored, Language language = Language::Node) {
    return root_ / stored.workspace.name / scriptFileName(language, stored.script(language));
  }

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
  auto script = readAll(scriptOf(*saved));

  EXPECT_EQ(saved->fingerprint, text::fingerprint(yaml));
  EXPECT_THAT(scriptFingerprint(script), Optional(saved->fingerprint));
  EXPECT_EQ(script, generateNodeModule(hello(), saved->fingerprint));
  // Content-addressed: the name is the fingerprint of the text.
  EXPECT_EQ(saved->nodeScript, text::fingerprint(script));
  EXPECT_EQ(saved->pythonScript, 0u);
  EXPECT_EQ(store().load("ws")->nodeScript, saved->nodeScript);
}

TEST_F(StoreTest, SaveLeavesNoTemporaryFiles) {
  auto first = store().save(hello());
  auto second = store().save(hello("ws", "Hi"));
  ASSERT_TRUE(first && second);

  // The first version's script stays for kScriptGrace: a run bound to it may still start a worker.
  EXPECT_THAT(entriesOf(root_ / "ws"), UnorderedElementsAre("workspace.yaml", scriptOf(*first).filename().string(),
                                                            scriptOf(*second).filename().string()));
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
  EXPECT_THAT(scriptFingerprint(readAll(scriptOf(*second))), Optional(second->fingerprint));
  EXPECT_NE(second->nodeScript, first->nodeScript);
}

TEST_F(StoreTest, SaveNeverRewritesAScriptAndRemovesSupersededOnesAfterTheirGrace) {
  auto v1 = store().save(hello());
  auto v2 = store().save(hello("ws", "Hi"));
  ASSERT_TRUE(v1 && v2);
  auto v2Inode = inodeOf(scriptOf(*v2));
  makeOld(scriptOf(*v1), kScriptGrace + std::chrono::minutes(1));
  makeOld(scriptOf(*v2), kScriptGrace - std::chrono::minutes(1));

  auto v3 = store().save(hello("ws", "Hey"));
  ASSERT_TRUE(v3);

  EXPECT_FALSE(fs::exists(scriptOf(*v1)));  // superseded and untouched for longer than the grace
  EXPECT_TRUE(fs::exists(scriptOf(*v2)));   // superseded recently: a run may still be bound to it
  EXPECT_EQ(inodeOf(scriptOf(*v2)), v2Inode);
  EXPECT_TRUE(fs::exists(scriptOf(*v3)));

  // Saving v2's code again reuses its file: refreshed, never rewritten.
  makeOld(scriptOf(*v2), kScriptGrace + std::chrono::minutes(1));
  auto again = store().save(hello("ws", "Hi"));
  ASSERT_TRUE(again);
  EXPECT_EQ(again->nodeScript, v2->nodeScript);
  EXPECT_EQ(inodeOf(scriptOf(*v2)), v2Inode);
  EXPECT_FALSE(isOld(scriptOf(*v2)));
}

TEST_F(StoreTest, SaveRemovesTheScriptOfALanguageNoLongerUsedAfterItsGrace) {
  auto node = store().save(hello());
  ASSERT_TRUE(node);
  makeOld(scriptOf(*node), kScriptGrace + std::chrono::minutes(1));

  auto python = store().save(workspaceOf("ws", R"({"functions": {"f": {"code": "return 1", "language": "python"}}})"));
  ASSERT_TRUE(python);

  EXPECT_FALSE(fs::exists(scriptOf(*node)));
  EXPECT_EQ(python->nodeScript, 0u);
  EXPECT_TRUE(fs::exists(scriptOf(*python, Language::Python)));
}

TEST_F(StoreTest, SaveRemovesScriptsOfTheLayoutBeforeContentAddressing) {
  fs::create_directories(root_ / "ws");
  writeAll(root_ / "ws" / "functions.js", "old layout");
  writeAll(root_ / "ws" / "functions.py", "old layout");

  auto saved = store().save(hello());
  ASSERT_TRUE(saved);

  EXPECT_THAT(entriesOf(root_ / "ws"), UnorderedElementsAre("workspace.yaml", scriptOf(*saved).filename().string()));
}

TEST_F(StoreTest, SyncScriptReturnsTheBoundVersionAndTouchesIt) {
  auto v1 = store().save(hello());
  auto v2 = store().save(hello("ws", "Hi"));
  ASSERT_TRUE(v1 && v2);
  makeOld(scriptOf(*v1), kScriptGrace + std::chrono::minutes(1));

  auto script = store().syncScript(*v1, Language::Node);

  ASSERT_TRUE(script) << script.error().message;
  EXPECT_EQ(script->path, scriptOf(*v1));
  EXPECT_EQ(script->version, v1->nodeScript);
  EXPECT_EQ(script->text, generateNodeModule(hello(), v1->fingerprint));
  EXPECT_FALSE(isOld(scriptOf(*v1)));  // a save now keeps it: a worker is loading it
  ASSERT_TRUE(store().save(hello("ws", "Hey")));
  EXPECT_TRUE(fs::exists(scriptOf(*v1)));
}

TEST_F(StoreTest, SyncScriptWritesTheBoundVersionAgainWhenItIsGoneOrDamaged) {
  auto v1 = store().save(hello());
  auto v2 = store().save(hello("ws", "Hi"));
  ASSERT_TRUE(v1 && v2);

  fs::remove(scriptOf(*v1));
  auto collected = store().syncScript(*v1, Language::Node);
  ASSERT_TRUE(collected) << collected.error().message;
  EXPECT_EQ(collected->version, v1->nodeScript);  // still the run's version, not the current one
  EXPECT_EQ(collected->path, scriptOf(*v1));
  EXPECT_EQ(readAll(scriptOf(*v1)), generateNodeModule(hello(), v1->fingerprint));

  writeAll(scriptOf(*v2), "damaged");
  auto damaged = store().syncScript(*v2, Language::Node);
  ASSERT_TRUE(damaged) << damaged.error().message;
  EXPECT_EQ(damaged->version, v2->nodeScript);
  EXPECT_EQ(readAll(scriptOf(*v2)), generateNodeModule(hello("ws", "Hi"), v2->fingerprint));
  EXPECT_EQ(damaged->text, readAll(scriptOf(*v2)));
}

TEST_F(StoreTest, SyncScriptOfALanguageTheVersionDoesNotUseIsNotFound) {
  auto node = store().save(hello());
  ASSERT_TRUE(node);

  auto script = store().syncScript(*node, Language::Python);

  ASSERT_FALSE(script);
  EXPECT_EQ(script.error().code, Errc::FunctionNotFound);
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
  auto script = scriptOf(*saved);
  auto expected = readAll(script);
  writeAll(script, generateNodeModule(hello("ws", "Old"), saved->fingerprint + 1));

  ASSERT_TRUE(store().syncScripts(*saved));

  EXPECT_EQ(readAll(script), expected);
}

TEST_F(StoreTest, SyncScriptsRegeneratesAMissingOrHeaderlessScript) {
  auto saved = store().save(hello());
  ASSERT_TRUE(saved);
  auto script = scriptOf(*saved);
  auto expected = readAll(script);

  fs::remove(script);
  ASSERT_TRUE(store().syncScripts(*saved));
  EXPECT_EQ(readAll(script), expected);

  writeAll(script, "module.exports = () => ({});\n");
  ASSERT_TRUE(store().syncScripts(*saved));
  EXPECT_EQ(readAll(script), expected);
}

TEST_F(StoreTest, SyncScriptsLeavesAnUpToDateScriptInPlace) {
  auto saved = store().save(hello());
  ASSERT_TRUE(saved);
  auto script = scriptOf(*saved);
  auto before = inodeOf(script);

  ASSERT_TRUE(store().syncScripts(*saved));
  EXPECT_EQ(inodeOf(script), before);
}

TEST_F(StoreTest, RegenerateAllRewritesEveryWorkspaceScript) {
  auto a = store().save(hello("a"));
  auto b = store().save(hello("b"));
  ASSERT_TRUE(a && b);
  auto expectedA = readAll(scriptOf(*a));
  writeAll(scriptOf(*a), "stale");
  fs::remove(scriptOf(*b));

  EXPECT_EQ(store().regenerateAll(), 2u);

  EXPECT_EQ(readAll(scriptOf(*a)), expectedA);
  EXPECT_TRUE(fs::exists(scriptOf(*b)));
}

TEST_F(StoreTest, OpenRemovesLeftoversOfInterruptedWrites) {
  auto saved = store().save(hello());
  ASSERT_TRUE(saved);
  fs::create_directories(root_ / ".trash-123-4-5" / "inner");
  writeAll(root_ / ".trash-123-4-5" / "inner" / "workspace.yaml", "x");
  writeAll(root_ / "ws" / ".workspace.yaml.tmp-1-2-3", "half written");
  writeAll(root_ / "ws" / ".functions.js.tmp-1-2-4", "half written");

  WorkspaceStore reopened(config::StoreConfig{.root = root_});
  ASSERT_TRUE(reopened.open());

  EXPECT_THAT(entriesOf(root_), UnorderedElementsAre(".locks", "ws"));
  EXPECT_THAT(entriesOf(root_ / "ws"), UnorderedElementsAre("workspace.yaml", scriptOf(*saved).filename().string()));
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
  auto script = readAll(scriptOf(*loaded));
  EXPECT_EQ(script, generateScript(Language::Node, loaded->workspace, loaded->fingerprint));
  for (const auto& entry : entriesOf(root_ / "ws"))  // superseded scripts stay for kScriptGrace
    EXPECT_TRUE(entry == "workspace.yaml" || (entry.starts_with("functions-") && entry.ends_with(".js"))) << entry;
}

TEST_F(StoreTest, LoadSyncedRewritesADamagedScript) {
  auto saved = store().save(hello("ws", "Hello"));
  ASSERT_TRUE(saved);
  auto expected = readAll(scriptOf(*saved));
  writeAll(scriptOf(*saved), "// damaged");

  auto synced = store().loadSynced("ws");

  ASSERT_TRUE(synced);
  EXPECT_EQ(readAll(scriptOf(*synced)), expected);
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
