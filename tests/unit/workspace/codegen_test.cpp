#include "workspace/codegen.hpp"
#include "workspace/workspace_of.hpp"

#include "workspace/validation.hpp"

#include <boost/json.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <stdexcept>

namespace customcode::workspace {
namespace {

namespace json = boost::json;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::Optional;
using ::testing::StartsWith;

TEST(Codegen, WrapsEachFunctionInAnAsyncFunctionOfItsParameters) {
  auto ws = workspaceOf(R"({"functions": {"hello": {"code": "return 'Hello ' + name;",
                            "parameters": {"name": {"type": "string"}, "n": {"type": "integer"}}}}})");

  auto module = generateNodeModule(ws, 0x1234);

  EXPECT_THAT(module, HasSubstr("module.exports = function (cache, require, console, __customcode_stub) {\n"));
  EXPECT_THAT(module, HasSubstr("async function hello({name, n} = {}) {\nreturn 'Hello ' + name;\n}\n"));
  EXPECT_THAT(module, HasSubstr("return { hello };\n};\n"));
}

TEST(Codegen, WritesDefaultsAsJsonLiterals) {
  auto ws = workspaceOf(R"({"functions": {"f": {"code": "return 1", "parameters": {
                            "s": {"type": "string", "default": "it's \"quoted\"\n"},
                            "o": {"type": "object", "default": {"a": [1, true, null]}},
                            "x": {"type": "number", "default": -2},
                            "z": {"type": "string", "default": null},
                            "plain": {"type": "string"}}}}})");

  auto module = generateNodeModule(ws, 1);

  EXPECT_THAT(module, HasSubstr(R"(async function f({s = "it's \"quoted\"\n", o = {"a":[1,true,null]}, x = -2, z = null, plain} = {}))"));
}

TEST(Codegen, ExportsEveryNodeFunctionAndSkipsPythonOnes) {
  auto ws = workspaceOf(R"j({"functions": {"a": {"code": "return 1"}, "py": {"code": "return 2", "language": "python"},
                            "b": {"code": "return await a()"}}})j");

  auto module = generateNodeModule(ws, 1);

  EXPECT_THAT(module, HasSubstr("async function a({} = {}) {\nreturn 1\n}\n"));
  EXPECT_THAT(module, HasSubstr("async function b({} = {}) {\nreturn await a()\n}\n"));
  EXPECT_THAT(module, Not(HasSubstr("function py")));
  EXPECT_THAT(module, HasSubstr("return { a, b };"));
}

TEST(Codegen, BindsEachPythonFunctionToAStubAfterTheFunctionsWithoutExportingIt) {
  auto ws = workspaceOf(R"j({"functions": {"a": {"code": "return await py({x: 1})"},
                            "py": {"code": "return x", "language": "python", "parameters": {"x": {}}},
                            "b": {"code": "return 2"}}})j");

  auto module = generateNodeModule(ws, 1);

  // After the last function: the lines of the user's code keep their numbers.
  EXPECT_THAT(module, HasSubstr("async function b({} = {}) {\nreturn 2\n}\nconst py = __customcode_stub(\"py\");\n"
                                "return { a, b };"));
}

TEST(Codegen, GivesNoStubToAPythonNameThatJavaScriptReserves) {
  // Valid Python function names that JavaScript reserves or the module binds itself.
  auto ws = workspaceOf(R"({"functions": {"a": {"code": "return 1"},
                            "new": {"code": "return 2", "language": "python"},
                            "require": {"code": "return 3", "language": "python"},
                            "ok": {"code": "return 4", "language": "python"}}})");

  auto module = generateNodeModule(ws, 1);

  EXPECT_THAT(module, Not(HasSubstr("const new")));
  EXPECT_THAT(module, Not(HasSubstr("const require")));
  EXPECT_THAT(module, HasSubstr("const ok = __customcode_stub(\"ok\");\n"));
}

TEST(Codegen, PutsTheUserCodeOnLinesOfItsOwn) {
  auto ws = workspaceOf(R"({"functions": {"f": {"code": "// last line is a comment"}}})");

  auto module = generateNodeModule(ws, 1);

  // A trailing line comment must not swallow the closing brace.
  EXPECT_THAT(module, HasSubstr("// last line is a comment\n}\n"));
}

TEST(Codegen, StartsWithAHeaderCarryingTheFingerprint) {
  auto ws = workspaceOf(R"({"functions": {"f": {"code": "return 1"}}})");

  auto module = generateNodeModule(ws, 0xdeadbeef01234567ull);

  EXPECT_THAT(module, StartsWith("// customcode generated script; source fingerprint deadbeef01234567 "));
  EXPECT_THAT(scriptFingerprint(module), Optional(0xdeadbeef01234567ull));
}

TEST(Codegen, ReadsBackSmallAndLargeFingerprints) {
  auto ws = workspaceOf(R"({"functions": {"f": {"code": "return 1"}}})");

  for (std::uint64_t fp : {std::uint64_t{0}, std::uint64_t{1}, ~std::uint64_t{0}})
    EXPECT_THAT(scriptFingerprint(generateNodeModule(ws, fp)), Optional(fp));
}

TEST(Codegen, FindsNoFingerprintInAScriptWithoutAHeader) {
  EXPECT_EQ(scriptFingerprint(""), std::nullopt);
  EXPECT_EQ(scriptFingerprint("module.exports = {};\n"), std::nullopt);
  EXPECT_EQ(scriptFingerprint("// customcode generated script; source fingerprint 12"), std::nullopt);
  EXPECT_EQ(scriptFingerprint("// customcode generated script; source fingerprint zzzzzzzzzzzzzzzz\n"), std::nullopt);
  // Only the first line counts: user code cannot forge a header further down.
  EXPECT_EQ(scriptFingerprint("// edited by hand\n// customcode generated script; source fingerprint "
                              "0000000000000001 (x)\n"),
            std::nullopt);
}

TEST(Codegen, GeneratesNodeScriptsByLanguageAndNamesTheirFiles) {
  auto ws = workspaceOf(R"({"functions": {"f": {"code": "return 1"}}})");

  EXPECT_EQ(generateScript(Language::Node, ws, 7), generateNodeModule(ws, 7));
  EXPECT_EQ(scriptFileName(Language::Node), "functions.js");
  EXPECT_EQ(scriptFileName(Language::Python), "functions.py");
}

TEST(Codegen, NamesContentAddressedScriptsByVersionAndReadsTheVersionBack) {
  EXPECT_EQ(scriptFileName(Language::Node, 0x12abULL), "functions-00000000000012ab.js");
  EXPECT_EQ(scriptFileName(Language::Python, ~0ULL), "functions-ffffffffffffffff.py");
  EXPECT_EQ(scriptVersion("functions-00000000000012ab.js", Language::Node), std::optional<std::uint64_t>(0x12ab));
  EXPECT_EQ(scriptVersion("functions-00000000000012ab.js", Language::Python), std::nullopt);
  for (auto name : {"functions.js", "functions-12ab.js", "functions-00000000000012AB.js", "functions-00000000000012ab.js.tmp",
                    ".functions-00000000000012ab.js.tmp-1-2-3", "functions-000000000000zzzz.js"})
    EXPECT_EQ(scriptVersion(name, Language::Node), std::nullopt) << name;
}

}  // namespace
}  // namespace customcode::workspace
