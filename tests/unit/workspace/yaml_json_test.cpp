#include "workspace/yaml_json.hpp"

#include <boost/json.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <limits>
#include <stdexcept>

namespace customcode::workspace {
namespace {

namespace json = boost::json;
using ::testing::HasSubstr;

json::value roundTrip(const json::value& value) { return yamlToJson(jsonToYaml(value)); }

// Boost.JSON compares int64 1 and uint64 1 as different; a round trip must keep the kind too.
void expectSameKindsAndValues(const json::value& got, const json::value& want) {
  ASSERT_EQ(got.kind(), want.kind()) << json::serialize(got) << " vs " << json::serialize(want);
  EXPECT_EQ(got, want);
}

TEST(YamlJson, KeepsStringsThatLookLikeOtherScalars) {
  for (const char* s : {"true", "false", "True", "null", "~", "", "1", "-1", "1.5", "0x10", "1e3", "yes", "no",
                        "on", ".inf", ".nan", "- item", "key: value", "#comment", "'quoted'", "\"dq\"", "{}",
                        "[]", "&anchor", "*alias", "!tag", "%directive", "@at", "`tick", "|", ">", "  padded  "}) {
    json::value value = json::string(s);
    expectSameKindsAndValues(roundTrip(value), value);
  }
}

TEST(YamlJson, KeepsMultiLineCodeExactly) {
  for (const char* code : {
           "const a = 1;\nreturn a;",
           "const a = 1;\nreturn a;\n",
           "line with trailing spaces   \nnext",
           "trailing tab\t\nnext",
           "\tleading tab\n\tsecond",
           "  indented first line\nsecond",
           "\n\nleading blank lines",
           "trailing blank lines\n\n\n",
           "windows\r\nline\r\nends\r\n",
           "lone\rcarriage return",
           "if (x) {\n  return 'a: b # not a comment';\n}\n",
           "a\n\n\nb",
           "unicode \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\nline 2",
           "control \x01 byte\nand \x7f",
           "ends with space ",
           "\n",
           "   ",
           "next line \xc2\x85 (NEL)\nline 2",
           "line separator \xe2\x80\xa8 and paragraph \xe2\x80\xa9\nline 2",
           "\xef\xbb\xbf byte order mark\nline 2",
           "nel only \xc2\x85",
           "--- document marker\n...\n---",
           "# hash first\nline 2",
       }) {
    json::value value = json::string(code);
    expectSameKindsAndValues(roundTrip(value), value);
  }
}

TEST(YamlJson, KeepsNumbersAndTheirKinds) {
  for (const json::value& value : {json::value(0), json::value(-42), json::value(std::numeric_limits<std::int64_t>::max()),
                                   json::value(std::numeric_limits<std::int64_t>::min()),
                                   json::value(std::numeric_limits<std::uint64_t>::max()), json::value(1.5),
                                   json::value(-0.25), json::value(1.0), json::value(0.1), json::value(1e300),
                                   json::value(1.7976931348623157e308), json::value(5e-324), json::value(123456789.123456789)}) {
    expectSameKindsAndValues(roundTrip(value), value);
  }
}

TEST(YamlJson, KeepsBooleansAndNull) {
  for (const json::value& value : {json::value(true), json::value(false), json::value(nullptr)})
    expectSameKindsAndValues(roundTrip(value), value);
}

TEST(YamlJson, KeepsNestedObjectsArraysAndEmptyContainers) {
  auto value = json::parse(R"({
    "functions": {
      "hello": {"code": "return 'Hello ' + name;\n", "parameters": {"name": {"type": "string", "default": "world"}}},
      "weird key: # with symbols": {"code": ""}
    },
    "empty object": {}, "empty array": [], "empty string": "",
    "nested": [[1, [2, []]], {"a": {"b": {"c": null}}}, [{"x": "true"}, {"y": 1}]],
    "": "empty key",
    "caf\u00e9": "\u00fcn\u00efc\u00f6d\u00e9 \ud83d\ude00"
  })");

  auto back = roundTrip(value);

  EXPECT_EQ(back, value) << jsonToYaml(value);
}

TEST(YamlJson, KeepsObjectKeyOrder) {
  auto value = json::parse(R"({"z": 1, "a": 2, "m": 3})");

  auto back = roundTrip(value);

  ASSERT_TRUE(back.is_object());
  std::vector<std::string> keys;
  for (const auto& [key, item] : back.as_object()) keys.emplace_back(key);
  EXPECT_EQ(keys, (std::vector<std::string>{"z", "a", "m"}));
}

TEST(YamlJson, WritesReadableCodeAsABlockLiteral) {
  auto yaml = jsonToYaml(json::object{{"code", "const a = 1;\nreturn a;"}});

  EXPECT_THAT(yaml, HasSubstr("|"));
  EXPECT_THAT(yaml, HasSubstr("\n  const a = 1;\n  return a;"));
}

TEST(YamlJson, ReadsHandWrittenYaml) {
  auto value = yamlToJson("functions:\n  hello:\n    code: return 1\n    count: 3\n    on: true\n    none: ~\n");

  EXPECT_EQ(value, json::parse(R"({"functions": {"hello": {"code": "return 1", "count": 3, "on": true, "none": null}}})"));
}

TEST(YamlJson, ThrowsOnYamlThatDoesNotParse) {
  EXPECT_THROW(yamlToJson("a: [1, 2\nb: {"), std::runtime_error);
  EXPECT_THROW(yamlToJson("\"unterminated"), std::runtime_error);
}

}  // namespace
}  // namespace customcode::workspace
