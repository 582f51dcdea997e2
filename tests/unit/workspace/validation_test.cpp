#include "workspace/validation.hpp"

#include <boost/json.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>

namespace customcode::workspace {
namespace {

namespace json = boost::json;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

// The "path" of every problem an InvalidRequest error lists.
std::set<std::string> problemPaths(const Error& error) {
  std::set<std::string> paths;
  for (const auto& problem : error.details.as_array())
    paths.insert(std::string(problem.at("path").as_string()));
  return paths;
}

Result<Workspace> parse(std::string_view body, std::string name = "ws") {
  return parseWorkspace(std::move(name), json::parse(body));
}

// ---- Names ----

TEST(WorkspaceName, AcceptsOrdinaryNames) {
  for (const char* name : {"ws", "my-workspace_1", "a.b", "caf\xc3\xa9", "a..b", "UPPER"})
    EXPECT_THAT(workspaceNameProblem(name), IsEmpty()) << name;
}

TEST(WorkspaceName, RejectsTraversalAndSeparators) {
  for (const char* name : {".", "..", "../etc", "..\\x", "a/b", "a\\b", "/abs", ".hidden", "a/../b"})
    EXPECT_THAT(workspaceNameProblem(name), Not(IsEmpty())) << name;
}

TEST(WorkspaceName, RejectsEmptyControlInvalidUtf8AndOverlongNames) {
  EXPECT_THAT(workspaceNameProblem(""), Not(IsEmpty()));
  EXPECT_THAT(workspaceNameProblem(std::string("a\0b", 3)), Not(IsEmpty()));
  EXPECT_THAT(workspaceNameProblem("a\nb"), Not(IsEmpty()));
  EXPECT_THAT(workspaceNameProblem("a\x7f"), Not(IsEmpty()));
  EXPECT_THAT(workspaceNameProblem("a\xff"), Not(IsEmpty()));
  EXPECT_THAT(workspaceNameProblem(std::string(kMaxWorkspaceNameBytes, 'a')), IsEmpty());
  EXPECT_THAT(workspaceNameProblem(std::string(kMaxWorkspaceNameBytes + 1, 'a')), Not(IsEmpty()));
}

TEST(Identifier, AcceptsLettersDigitsAndUnderscores) {
  for (const char* name : {"hello", "_private", "f1", "camelCase", "snake_case", "A"})
    EXPECT_THAT(identifierProblem(name), IsEmpty()) << name;
}

TEST(Identifier, RejectsWhatIsNotAnIdentifier) {
  for (const char* name : {"", "1abc", "a-b", "a b", "a.b", "$x", "caf\xc3\xa9", "a/b", "__proto__", "__init__"})
    EXPECT_THAT(identifierProblem(name), Not(IsEmpty())) << name;
  EXPECT_THAT(identifierProblem(std::string(kMaxFunctionNameBytes + 1, 'a')), Not(IsEmpty()));
}

TEST(Identifier, RejectsReservedWordsOfBothLanguagesAndInjectedNames) {
  for (const char* name : {"function", "return", "await", "class", "null", "undefined", "def", "lambda", "None",
                           "True", "pass", "cache", "require", "console"})
    EXPECT_THAT(identifierProblem(name), HasSubstr("reserved")) << name;
}

// ---- Save bodies ----

TEST(ParseWorkspace, AcceptsTheReadmeExample) {
  auto parsed = parse(R"({"functions": {"hello": {"code": "return 'Hello ' + name;",
                          "parameters": {"name": {"type": "string", "default": "world"}}}}})");

  ASSERT_TRUE(parsed) << parsed.error().message;
  ASSERT_EQ(parsed->functions.size(), 1u);
  const auto& fn = parsed->functions[0];
  EXPECT_EQ(fn.name, "hello");
  EXPECT_EQ(fn.language, Language::Node);
  EXPECT_EQ(fn.code, "return 'Hello ' + name;");
  ASSERT_EQ(fn.parameters.size(), 1u);
  EXPECT_EQ(fn.parameters[0].name, "name");
  EXPECT_EQ(fn.parameters[0].type, "string");
  EXPECT_EQ(fn.parameters[0].defaultValue, json::value("world"));
  EXPECT_EQ(parsed->name, "ws");
}

TEST(ParseWorkspace, KeepsTheBodyAsSaved) {
  auto body = json::parse(R"({"functions": {"f": {"code": "return 1", "description": "one"}},
                               "disableNpmRegistry": true})");

  auto parsed = parseWorkspace("ws", body);

  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_EQ(json::value(parsed->body), body);
  EXPECT_TRUE(parsed->disableNpmRegistry);
}

TEST(ParseWorkspace, KeepsFunctionsInBodyOrderAndReadsTheirLanguage) {
  auto parsed = parse(R"({"functions": {"b": {"code": "return 2"}, "a": {"code": "return 1", "language": "python"},
                          "c": {"code": "", "language": "nodejs", "parameters": null}}})");

  ASSERT_TRUE(parsed) << parsed.error().message;
  ASSERT_EQ(parsed->functions.size(), 3u);
  EXPECT_EQ(parsed->functions[0].name, "b");
  EXPECT_EQ(parsed->functions[1].name, "a");
  EXPECT_EQ(parsed->functions[1].language, Language::Python);
  EXPECT_EQ(parsed->functions[2].language, Language::Node);
  EXPECT_TRUE(parsed->uses(Language::Python));
  EXPECT_NE(parsed->find("c"), nullptr);
  EXPECT_EQ(parsed->find("d"), nullptr);
}

TEST(ParseWorkspace, ListsEveryProblemWithItsPath) {
  auto parsed = parse(R"({
    "functions": {
      "ok": {"code": "return 1"},
      "1bad": {"code": "return 1"},
      "noCode": {},
      "wrongCode": {"code": 42},
      "badLang": {"code": "", "language": "ruby"},
      "extra": {"code": "", "colour": "red"},
      "params": {"code": "", "parameters": {
        "p": {"type": "float"},
        "q": {},
        "r": {"type": "string", "description": 5},
        "s": {"type": "string", "unknown": 1},
        "class": {"type": "string"},
        "t": "string"
      }},
      "paramsNotObject": {"code": "", "parameters": [1]}
    },
    "disableNpmRegistry": "yes",
    "dependencies": {"left-pad": 1},
    "extraKey": 1
  })");

  ASSERT_FALSE(parsed);
  EXPECT_EQ(parsed.error().code, Errc::InvalidRequest);
  EXPECT_EQ(problemPaths(parsed.error()),
            (std::set<std::string>{"functions.1bad", "functions.noCode.code", "functions.wrongCode.code",
                                   "functions.badLang.language", "functions.extra.colour",
                                   "functions.params.parameters.p.type", "functions.params.parameters.q.type",
                                   "functions.params.parameters.r.description",
                                   "functions.params.parameters.s.unknown", "functions.params.parameters.class",
                                   "functions.params.parameters.t", "functions.paramsNotObject.parameters",
                                   "disableNpmRegistry", "dependencies.left-pad", "extraKey"}));
  EXPECT_THAT(parsed.error().message, HasSubstr("15 problems"));
}

TEST(ParseWorkspace, NamesTheOnlyProblemInTheMessage) {
  auto parsed = parse(R"({"functions": {"f": {"code": 1}}})");

  ASSERT_FALSE(parsed);
  EXPECT_THAT(parsed.error().message, HasSubstr("functions.f.code must be a string, got number"));
}

TEST(ParseWorkspace, RequiresFunctionsAndAnObjectBody) {
  auto missing = parse(R"({})");
  ASSERT_FALSE(missing);
  EXPECT_EQ(problemPaths(missing.error()), std::set<std::string>{"functions"});

  for (const char* body : {"[]", "\"x\"", "1", "null", "true"}) {
    auto parsed = parse(body);
    ASSERT_FALSE(parsed) << body;
    EXPECT_EQ(parsed.error().code, Errc::InvalidRequest);
  }
  auto notObject = parse(R"({"functions": []})");
  ASSERT_FALSE(notObject);
  EXPECT_EQ(problemPaths(notObject.error()), std::set<std::string>{"functions"});
}

TEST(ParseWorkspace, ReportsABadWorkspaceNameWithTheBodyProblems) {
  auto parsed = parse(R"({"functions": {"f": {}}})", "..");

  ASSERT_FALSE(parsed);
  EXPECT_EQ(problemPaths(parsed.error()), (std::set<std::string>{"workspace", "functions.f.code"}));
}

TEST(ParseWorkspace, TypeChecksDefaults) {
  struct Case {
    const char* type;
    const char* goodDefault;
    const char* badDefault;
  };
  for (auto [type, good, bad] : {Case{"string", "\"x\"", "1"}, Case{"number", "1.5", "\"1\""},
                                 Case{"integer", "3", "3.5"}, Case{"integer", "4.0", "true"},
                                 Case{"boolean", "false", "0"}, Case{"object", "{}", "[]"},
                                 Case{"array", "[1]", "{}"}}) {
    auto body = [&](const char* value) {
      return std::string(R"({"functions": {"f": {"code": "", "parameters": {"p": {"type": ")") + type +
             R"(", "default": )" + value + "}}}}}";
    };
    auto accepted = parse(body(good));
    EXPECT_TRUE(accepted) << type << " " << good;
    auto rejected = parse(body(bad));
    ASSERT_FALSE(rejected) << type << " " << bad;
    EXPECT_EQ(problemPaths(rejected.error()), std::set<std::string>{"functions.f.parameters.p.default"});
    EXPECT_THAT(rejected.error().message, HasSubstr(std::string("must be of type ") + type));
  }
}

TEST(ParseWorkspace, AcceptsANullDefaultOfAnyType) {
  auto parsed = parse(R"({"functions": {"f": {"code": "", "parameters": {"p": {"type": "integer", "default": null}}}}})");

  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_EQ(parsed->functions[0].parameters[0].defaultValue, json::value(nullptr));
}

TEST(ParseWorkspace, LeavesAMissingDefaultUnset) {
  auto parsed = parse(R"({"functions": {"f": {"code": "", "parameters": {"p": {"type": "array"}}}}})");

  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_FALSE(parsed->functions[0].parameters[0].defaultValue.has_value());
}

// ---- Run bodies ----

TEST(ParseRunBody, ReturnsTheParameters) {
  auto parsed = parseRunBody(json::parse(R"({"parameters": {"a": 1, "b": [true]}})"));

  ASSERT_TRUE(parsed);
  EXPECT_EQ(*parsed, (json::object{{"a", 1}, {"b", json::array{true}}}));
}

TEST(ParseRunBody, TreatsAMissingBodyOrParametersAsNone) {
  for (const char* body : {"null", "{}", R"({"parameters": null})"}) {
    auto parsed = parseRunBody(json::parse(body));
    ASSERT_TRUE(parsed) << body;
    EXPECT_TRUE(parsed->empty()) << body;
  }
}

TEST(ParseRunBody, RejectsWrongShapesWithPaths) {
  auto notObject = parseRunBody(json::parse("[1]"));
  ASSERT_FALSE(notObject);
  EXPECT_EQ(notObject.error().code, Errc::InvalidRequest);

  auto bad = parseRunBody(json::parse(R"({"parameters": 5, "other": 1})"));
  ASSERT_FALSE(bad);
  EXPECT_EQ(problemPaths(bad.error()), (std::set<std::string>{"parameters", "other"}));
}

TEST(InvalidRequest, CarriesOneProblem) {
  auto error = invalidRequest("workspace", "must not be empty");

  EXPECT_EQ(error.code, Errc::InvalidRequest);
  EXPECT_EQ(problemPaths(error), std::set<std::string>{"workspace"});
  EXPECT_THAT(error.message, HasSubstr("workspace must not be empty"));
}

}  // namespace
}  // namespace customcode::workspace
