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

TEST(PythonCodegen, HoldsTheCodeAsOneEscapedStringNeverReindented) {
  auto ws = workspaceOf(R"({"functions": {"f": {"language": "python",
                            "code": "s = \"\"\"a\n\t    b\\n\"\"\"\nreturn s"}}})");

  auto module = generatePythonModule(ws, 1);

  EXPECT_THAT(module, HasSubstr(R"("name": "f",)"));
  EXPECT_THAT(module, HasSubstr(R"("code": "s = \"\"\"a\n\t    b\\n\"\"\"\nreturn s",)"));
}

TEST(PythonCodegen, WritesParametersWithTheirDefaultsAsJsonText) {
  auto ws = workspaceOf(R"({"functions": {"f": {"language": "python", "code": "return 1", "parameters": {
                            "o": {"type": "object", "default": {"a": [1, true, null]}},
                            "s": {"type": "string", "default": "it's"},
                            "plain": {"type": "string"}}}}})");

  auto module = generatePythonModule(ws, 1);

  // JSON's true and null are not Python literals: the default stays JSON text, parsed by the worker.
  EXPECT_THAT(module, HasSubstr(R"("parameters": [("o", "{\"a\":[1,true,null]}"), ("s", "\"it's\""), ("plain", None), ],)"));
}

TEST(PythonCodegen, HoldsOnlyPythonFunctions) {
  auto ws = workspaceOf(R"({"functions": {"js": {"code": "return 1"},
                            "py": {"code": "return 2", "language": "python"}}})");

  auto module = generatePythonModule(ws, 1);

  EXPECT_THAT(module, HasSubstr(R"("name": "py")"));
  EXPECT_THAT(module, Not(HasSubstr(R"("name": "js")")));
  EXPECT_THAT(module, HasSubstr("FUNCTIONS = [\n"));
}

TEST(PythonCodegen, ListsTheJavaScriptFunctionsItMayCallWithTheirParameters) {
  auto ws = workspaceOf(R"({"functions": {"py": {"code": "return 2", "language": "python"},
                            "jsMul": {"code": "return a * b", "parameters": {"a": {}, "b": {"default": 3}}},
                            "$x": {"code": "return 1"},
                            "None": {"code": "return 1"}}})");

  auto module = generatePythonModule(ws, 1);

  EXPECT_THAT(module, HasSubstr("CALLS = [\n    (\"jsMul\", [\"a\", \"b\", ]),\n]\n"));
  EXPECT_THAT(module, Not(HasSubstr("$x")));  // not a Python name
  EXPECT_THAT(module, Not(HasSubstr("\"None\"")));  // reserved in Python
}

TEST(PythonCodegen, HasNoCallsWithoutJavaScriptFunctions) {
  auto ws = workspaceOf(R"({"functions": {"py": {"code": "return 2", "language": "python"}}})");

  EXPECT_THAT(generatePythonModule(ws, 1), Not(HasSubstr("CALLS")));
}

TEST(PythonCodegen, StartsWithAHeaderCarryingTheFingerprint) {
  auto ws = workspaceOf(R"({"functions": {"f": {"code": "return 1", "language": "python"}}})");

  auto module = generateScript(Language::Python, ws, 0xdeadbeef01234567ull);

  EXPECT_EQ(module, generatePythonModule(ws, 0xdeadbeef01234567ull));
  EXPECT_THAT(module, StartsWith("# customcode generated script; source fingerprint deadbeef01234567 "));
  EXPECT_THAT(scriptFingerprint(module), Optional(0xdeadbeef01234567ull));
}

}  // namespace
}  // namespace customcode::workspace
