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

TEST(Identifier, AcceptsLettersDigitsAndUnderscoresInBothLanguages) {
  for (auto language : {Language::Node, Language::Python})
    for (const char* name : {"hello", "_private", "f1", "camelCase", "snake_case", "A", "match"})
      EXPECT_THAT(identifierProblem(name, language), IsEmpty()) << name;
}

TEST(Identifier, AcceptsDollarAndDunderNamesInJavaScriptOnly) {
  for (const char* name : {"$x", "get$", "$", "__init__", "__proto"}) {
    EXPECT_THAT(identifierProblem(name, Language::Node), IsEmpty()) << name;
    EXPECT_THAT(identifierProblem(name, Language::Python), Not(IsEmpty())) << name;
  }
}

TEST(Identifier, RejectsWhatIsNotAnIdentifier) {
  for (auto language : {Language::Node, Language::Python}) {
    for (const char* name : {"", "1abc", "a-b", "a b", "a.b", "caf\xc3\xa9", "a/b"})
      EXPECT_THAT(identifierProblem(name, language), Not(IsEmpty())) << name;
    EXPECT_THAT(identifierProblem(std::string(kMaxFunctionNameBytes + 1, 'a'), language), Not(IsEmpty()));
  }
}

TEST(Identifier, RejectsTheReservedWordsAndInjectedNamesOfItsOwnLanguage) {
  for (const char* name : {"function", "return", "await", "class", "null", "undefined", "new", "this", "cache",
                           "require", "console", "__proto__", "__customcode_stub"})
    EXPECT_THAT(identifierProblem(name, Language::Node), HasSubstr("reserved word in JavaScript")) << name;
  for (const char* name : {"def", "lambda", "None", "True", "pass", "return", "await", "class", "cache"})
    EXPECT_THAT(identifierProblem(name, Language::Python), HasSubstr("reserved word in Python")) << name;
}

TEST(Identifier, AcceptsTheReservedWordsOfTheOtherLanguage) {
  for (const char* name : {"pass", "def", "lambda", "from", "is", "not", "None"})
    EXPECT_THAT(identifierProblem(name, Language::Node), IsEmpty()) << name;
  for (const char* name : {"function", "new", "this", "null", "undefined", "delete", "require", "console"})
    EXPECT_THAT(identifierProblem(name, Language::Python), IsEmpty()) << name;
}

TEST(Identifier, CouldBeAFunctionNameInEitherLanguage) {
  for (const char* name : {"hello", "$x", "pass", "function", "__init__"})
    EXPECT_TRUE(couldBeFunctionName(name)) << name;
  for (const char* name : {"", "a-b", "1a", "return", "class", "cache"})
    EXPECT_FALSE(couldBeFunctionName(name)) << name;
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
      "extra": {"code": "", "langauge": "python"},
      "params": {"code": "", "parameters": {
        "p": {"type": "float"},
        "r": {"type": "string", "description": 5},
        "s": {"type": "string", "defualt": 1},
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
                                   "functions.badLang.language", "functions.extra.langauge",
                                   "functions.params.parameters.p.type",
                                   "functions.params.parameters.r.description",
                                   "functions.params.parameters.s.defualt", "functions.params.parameters.class",
                                   "functions.params.parameters.t", "functions.paramsNotObject.parameters",
                                   "disableNpmRegistry", "dependencies.left-pad", "extraKey"}));
  EXPECT_THAT(parsed.error().message, HasSubstr("14 problems"));
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

TEST(ParseWorkspace, AcceptsAnyDefaultWhateverTheType) {
  // The webhook tutorial's `data: {type: object, default: [...]}` among them.
  for (const char* type : {"string", "number", "integer", "boolean", "object", "array"}) {
    for (const char* value : {"\"x\"", "1.5", "3", "true", "{\"a\": [1]}", "[{\"name\": \"n\"}]"}) {
      auto parsed = parse(std::string(R"({"functions": {"f": {"code": "", "parameters": {"p": {"type": ")") +
                          type + R"(", "default": )" + value + "}}}}}");
      ASSERT_TRUE(parsed) << type << " " << value << ": " << parsed.error().message;
      EXPECT_EQ(parsed->functions[0].parameters[0].defaultValue, json::parse(value));
    }
  }
}

TEST(ParseWorkspace, AcceptsAParameterWithoutAType) {
  auto parsed = parse(R"({"functions": {"f": {"code": "", "parameters": {"p": {}, "q": {"default": 1}}}}})");

  ASSERT_TRUE(parsed) << parsed.error().message;
  ASSERT_EQ(parsed->functions[0].parameters.size(), 2u);
  EXPECT_EQ(parsed->functions[0].parameters[0].type, "");
  EXPECT_EQ(parsed->functions[0].parameters[1].defaultValue, json::value(1));
}

TEST(ParseWorkspace, AcceptsAndKeepsForeignKeysOfFunctionsAndParameters) {
  auto body = json::parse(R"({"functions": {"f": {"code": "", "name": "F", "title": "t", "parameters": {
      "p": {"type": "object", "title": "P", "required": true, "enum": [1], "items": {"type": "string"},
            "properties": {"a": {"type": "string"}}, "examples": [{}], "description": null}}}}})");

  auto parsed = parseWorkspace("ws", body);

  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_EQ(json::value(parsed->body), body);
}

TEST(ParseWorkspace, RefusesMisspeltKeysNamingTheKnownOne) {
  auto parsed = parse(R"({"functions": {"f": {"code": "", "paramters": {}, "parameters": {
      "p": {"Type": "string", "defaults": 1, "descripton": ""}, "q": {"tpye": "string", "note": "kept"}}}}})");

  ASSERT_FALSE(parsed);
  EXPECT_EQ(problemPaths(parsed.error()),
            (std::set<std::string>{"functions.f.paramters", "functions.f.parameters.p.Type",
                                   "functions.f.parameters.p.defaults", "functions.f.parameters.p.descripton",
                                   "functions.f.parameters.q.tpye"}));
  EXPECT_THAT(json::serialize(parsed.error().details), HasSubstr(R"(did you mean \"parameters\"?)"));
}

TEST(ParseWorkspace, ChecksNamesAgainstTheFunctionsLanguage) {
  auto good = parse(R"({"functions": {
      "$js": {"code": "", "parameters": {"$p": {}, "pass": {}}},
      "pass": {"code": ""},
      "function": {"code": "", "language": "python", "parameters": {"new": {}, "this": {}}}}})");
  ASSERT_TRUE(good) << good.error().message;

  auto bad = parse(R"({"functions": {
      "$py": {"code": "", "language": "python"},
      "f": {"code": "", "language": "python", "parameters": {"lambda": {}, "$q": {}}},
      "g": {"code": "", "parameters": {"new": {}}}}})");
  ASSERT_FALSE(bad);
  EXPECT_EQ(problemPaths(bad.error()),
            (std::set<std::string>{"functions.$py", "functions.f.parameters.lambda", "functions.f.parameters.$q",
                                   "functions.g.parameters.new"}));
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
