#include "deps/scanner.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace customcode::deps {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// ---- findModuleSpecifiers ----

TEST(FindModuleSpecifiers, FindsRequireWithSingleAndDoubleQuotes) {
  EXPECT_THAT(findModuleSpecifiers("const a = require('is-number');\nconst b = require(\"lodash/fp\");"),
              ElementsAre("is-number", "lodash/fp"));
}

TEST(FindModuleSpecifiers, FindsScopedPackages) {
  EXPECT_THAT(findModuleSpecifiers("const is = require('@sindresorhus/is');"), ElementsAre("@sindresorhus/is"));
}

TEST(FindModuleSpecifiers, FindsDynamicImport) {
  EXPECT_THAT(findModuleSpecifiers("const { default: x } = await import('chalk');"), ElementsAre("chalk"));
}

TEST(FindModuleSpecifiers, AllowsSpacesCommentsAndATemplateLiteralWithoutSubstitution) {
  EXPECT_THAT(findModuleSpecifiers("require ( /* why */ `uuid` )"), ElementsAre("uuid"));
}

TEST(FindModuleSpecifiers, AcceptsImportOptionsAfterTheSpecifier) {
  EXPECT_THAT(findModuleSpecifiers("await import('data-pkg', { with: { type: 'json' } })"), ElementsAre("data-pkg"));
}

TEST(FindModuleSpecifiers, IgnoresLineAndBlockComments) {
  EXPECT_THAT(findModuleSpecifiers("// require('a')\n/* require('b')\n require('c') */\nreturn 1;"), IsEmpty());
}

TEST(FindModuleSpecifiers, IgnoresRequireInsideStrings) {
  EXPECT_THAT(findModuleSpecifiers("const s = \"require('a')\"; const t = 'x require(\"b\")';"), IsEmpty());
}

TEST(FindModuleSpecifiers, IgnoresRequireInTemplateTextButFindsItInSubstitutions) {
  EXPECT_THAT(findModuleSpecifiers("const s = `require('a') ${require('b').x} require('c')`;"), ElementsAre("b"));
}

TEST(FindModuleSpecifiers, KeepsScanningAfterNestedTemplateSubstitutions) {
  EXPECT_THAT(findModuleSpecifiers("const s = `${ {a: `${1}`}.a }`; require('after');"), ElementsAre("after"));
}

TEST(FindModuleSpecifiers, IgnoresQuotesInsideRegularExpressionLiterals) {
  EXPECT_THAT(findModuleSpecifiers("const re = /'[\"]/g; const x = require('real');"), ElementsAre("real"));
}

TEST(FindModuleSpecifiers, TreatsSlashAfterAValueAsDivision) {
  EXPECT_THAT(findModuleSpecifiers("const half = total / 2; const y = require('y') / 2;"), ElementsAre("y"));
}

TEST(FindModuleSpecifiers, IgnoresMemberCallsNamedRequire) {
  EXPECT_THAT(findModuleSpecifiers("loader.require('a'); obj.import('b');"), IsEmpty());
}

TEST(FindModuleSpecifiers, IgnoresComputedArguments) {
  EXPECT_THAT(findModuleSpecifiers("require(name); require('a' + b); require(`x${y}`);"), IsEmpty());
}

TEST(FindModuleSpecifiers, IgnoresIdentifiersThatOnlyContainRequire) {
  EXPECT_THAT(findModuleSpecifiers("myrequire('a'); requireX('b'); _import('c');"), IsEmpty());
}

TEST(FindModuleSpecifiers, ReturnsEveryOccurrenceInOrder) {
  EXPECT_THAT(findModuleSpecifiers("require('b'); require('a'); require('b');"), ElementsAre("b", "a", "b"));
}

// ---- packageOf ----

TEST(PackageOf, TakesTheFirstSegmentOfAnUnscopedSpecifier) {
  EXPECT_EQ(packageOf("lodash/fp/map"), "lodash");
  EXPECT_EQ(packageOf("is-number"), "is-number");
}

TEST(PackageOf, TakesTwoSegmentsOfAScopedSpecifier) {
  EXPECT_EQ(packageOf("@scope/pkg/sub/path"), "@scope/pkg");
  EXPECT_EQ(packageOf("@scope/pkg"), "@scope/pkg");
}

TEST(PackageOf, ExcludesBuiltinsWithAndWithoutTheNodePrefix) {
  EXPECT_EQ(packageOf("fs"), std::nullopt);
  EXPECT_EQ(packageOf("fs/promises"), std::nullopt);
  EXPECT_EQ(packageOf("node:crypto"), std::nullopt);
  EXPECT_EQ(packageOf("node:test"), std::nullopt);
}

TEST(PackageOf, ExcludesRelativeAndAbsolutePaths) {
  EXPECT_EQ(packageOf("./local"), std::nullopt);
  EXPECT_EQ(packageOf("../up"), std::nullopt);
  EXPECT_EQ(packageOf("/etc/passwd"), std::nullopt);
}

TEST(PackageOf, TreatsAnUnprefixedTestAsAPackage) { EXPECT_EQ(packageOf("test"), "test"); }

// ---- packageNameProblem ----

TEST(PackageNameProblem, AcceptsOrdinaryScopedAndLegacyNames) {
  for (auto name : {"is-number", "lodash.merge", "@sindresorhus/is", "@types/node", "JSONStream", "a~b", "7zip"})
    EXPECT_EQ(packageNameProblem(name), "") << name;
}

TEST(PackageNameProblem, RefusesShellAndPathCharacters) {
  for (auto name : {"a b", "a;rm", "$(x)", "a/b", "a\\b", "x@1", "a`b`", "a\nb", "caf\xc3\xa9"})
    EXPECT_THAT(packageNameProblem(name), HasSubstr("may only contain")) << name;
}

TEST(PackageNameProblem, RefusesLeadingDotUnderscoreOrDash) {
  for (auto name : {".hidden", "_private", "--registry=http://evil"})
    EXPECT_THAT(packageNameProblem(name), HasSubstr("must not start with")) << name;
}

TEST(PackageNameProblem, RefusesEmptyOverlongAndReservedNames) {
  EXPECT_THAT(packageNameProblem(""), HasSubstr("empty"));
  EXPECT_THAT(packageNameProblem(std::string(215, 'a')), HasSubstr("at most 214"));
  EXPECT_EQ(packageNameProblem(std::string(214, 'a')), "");
  EXPECT_THAT(packageNameProblem("node_modules"), HasSubstr("reserved"));
}

TEST(PackageNameProblem, RefusesBuiltinModules) {
  EXPECT_THAT(packageNameProblem("fs"), HasSubstr("builtin"));
  EXPECT_THAT(packageNameProblem("child_process"), HasSubstr("builtin"));
}

TEST(PackageNameProblem, RefusesMalformedScopes) {
  for (auto name : {"@", "@scope", "@scope/", "@/pkg", "@scope/pkg/extra", "@.s/p"})
    EXPECT_NE(packageNameProblem(name), "") << name;
}

// ---- versionRangeProblem ----

TEST(VersionRangeProblem, AcceptsSemverRangesAndDistTags) {
  for (auto range : {"*", "^1.2.3", "~1.2", ">=1.0.0 <3", "1.x || 2.x", "7.0.0", "latest", "1.0.0-beta.1", "1.2.3 - 2"})
    EXPECT_EQ(versionRangeProblem(range), "") << range;
}

TEST(VersionRangeProblem, RefusesSourcesOtherThanTheRegistry) {
  for (auto range : {"file:../../etc", "git+ssh://git@github.com/a/b.git", "https://x.test/p.tgz", "user/repo",
                     "github:user/repo", "npm:other@1", "1.0.0; rm -rf /", "-1"})
    EXPECT_THAT(versionRangeProblem(range), HasSubstr("semver range")) << range;
}

TEST(VersionRangeProblem, RefusesAnEmptyRange) { EXPECT_THAT(versionRangeProblem(""), HasSubstr("empty")); }

}  // namespace
}  // namespace customcode::deps
