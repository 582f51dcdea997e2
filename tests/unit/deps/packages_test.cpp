#include "deps/npm_installer.hpp"
#include "deps/packages.hpp"
#include "workspace/validation.hpp"

#include <boost/json.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace customcode::deps {
namespace {

namespace json = boost::json;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

workspace::Workspace parse(std::string_view body) {
  auto parsed = workspace::parseWorkspace("ws", json::parse(body));
  if (!parsed) throw std::runtime_error(parsed.error().message);
  return *parsed;
}

TEST(RequiredPackages, CollectsThePackagesOfNodeFunctionsWithTheLatestRange) {
  auto ws = parse(R"({"functions": {
    "a": {"language": "nodejs", "code": "const n = require('is-number'); const f = require('fs'); return n(1);"},
    "b": {"language": "nodejs", "code": "const is = (await import('@sindresorhus/is/dist')).default; require('./x');"}}})");

  auto packages = requiredPackages(ws);

  ASSERT_TRUE(packages) << packages.error().message;
  EXPECT_THAT(*packages, UnorderedElementsAre(Pair("@sindresorhus/is", "*"), Pair("is-number", "*")));
}

TEST(RequiredPackages, PinsRangesAndAddsPackagesListedOnlyInDependencies) {
  auto ws = parse(R"({"functions": {"a": {"language": "nodejs", "code": "return require('is-number')(1);"}},
    "dependencies": {"is-number": "^7.0.0", "left-pad": "1.3.0"}})");

  auto packages = requiredPackages(ws);

  ASSERT_TRUE(packages) << packages.error().message;
  EXPECT_THAT(*packages, UnorderedElementsAre(Pair("is-number", "^7.0.0"), Pair("left-pad", "1.3.0")));
}

TEST(RequiredPackages, IgnoresPythonFunctions) {
  auto ws = parse(R"({"functions": {"p": {"language": "python", "code": "x = require('nope')\nreturn x"}}})");

  auto packages = requiredPackages(ws);

  ASSERT_TRUE(packages);
  EXPECT_THAT(*packages, IsEmpty());
}

TEST(RequiredPackages, RefusesABadNameInTheCodeWithItsPath) {
  auto ws = parse(R"j({"functions": {"a": {"language": "nodejs", "code": "require('bad name; rm -rf /')"}}})j");

  auto packages = requiredPackages(ws);

  ASSERT_FALSE(packages);
  EXPECT_EQ(packages.error().code, Errc::InvalidRequest);
  EXPECT_THAT(packages.error().message, HasSubstr("functions.a.code"));
}

TEST(RequiredPackages, RefusesAGitRangeInDependencies) {
  auto ws = parse(R"({"functions": {}, "dependencies": {"x": "git+https://example.test/x.git"}})");

  auto packages = requiredPackages(ws);

  ASSERT_FALSE(packages);
  EXPECT_THAT(packages.error().message, HasSubstr("dependencies.x"));
}

TEST(Manifest, RoundTripsTheDependencies) {
  PackageSet packages{{"@s/p", "^1.0.0"}, {"is-number", "*"}};

  auto read = manifestDependencies(manifestJson(packages));

  ASSERT_TRUE(read);
  EXPECT_EQ(*read, packages);
}

TEST(Manifest, RejectsAPackageJsonThatIsNotAnObject) { EXPECT_EQ(manifestDependencies("[1]"), std::nullopt); }

constexpr std::string_view kNpm404 =
    "npm error code E404\n"
    "npm error 404 Not Found - GET https://registry.example/no-such-pkg-xyz - Not found\n"
    "npm error 404\n"
    "npm error 404  The requested resource 'no-such-pkg-xyz@*' could not be found or you do not have permission "
    "to access it.\n"
    "npm error 404\n"
    "npm error 404 Note that you can also install from a\n"
    "npm error 404 tarball, folder, http url, or git url.\n"
    "npm error A complete log of this run can be found in: /tmp/cache/_logs/x-debug-0.log\n";

TEST(NpmFailure, TurnsE404IntoPackageNotFoundNamingThePackage) {
  auto error = npmFailure(kNpm404, {{"is-number", "*"}, {"no-such-pkg-xyz", "*"}});

  EXPECT_EQ(error.code, Errc::PackageNotFound);
  EXPECT_THAT(error.message, HasSubstr("\"no-such-pkg-xyz\" was not found"));
  EXPECT_THAT(error.message, HasSubstr("404 Not Found - GET https://registry.example/no-such-pkg-xyz"));
  EXPECT_THAT(error.message, ::testing::Not(HasSubstr("complete log")));
  EXPECT_EQ(error.details.at("package"), "no-such-pkg-xyz");
}

TEST(NpmFailure, FindsAScopedPackageInTheRegistryUrl) {
  auto error = npmFailure("npm error code E404\nnpm error 404 Not Found - GET https://r.test/@acme%2fnope - Not found\n",
                          {{"@acme/nope", "*"}});

  EXPECT_EQ(error.details.at("package"), "@acme/nope");
}

TEST(NpmFailure, TurnsETargetIntoPackageNotFound) {
  auto error = npmFailure("npm error code ETARGET\nnpm error notarget No matching version found for is-number@^99.\n",
                          {{"is-number", "^99"}});

  EXPECT_EQ(error.code, Errc::PackageNotFound);
  EXPECT_THAT(error.message, HasSubstr("\"is-number\""));
}

TEST(NpmFailure, TurnsNetworkErrorsIntoInstallFailuresQuotingNpm) {
  auto error = npmFailure(
      "npm error code ECONNREFUSED\nnpm error errno ECONNREFUSED\n"
      "npm error FetchError: request to http://127.0.0.1:9/is-number failed, reason: connect ECONNREFUSED\n",
      {{"is-number", "*"}});

  EXPECT_EQ(error.code, Errc::PackageInstallFailed);
  EXPECT_THAT(error.message, HasSubstr("is-number"));
  EXPECT_THAT(error.message, HasSubstr("connect ECONNREFUSED"));
}

TEST(NpmFailure, TrimsALongMessage) {
  std::string output = "npm error code EOTHER\nnpm error " + std::string(5000, 'x') + "\n";

  auto error = npmFailure(output, {{"a", "*"}});

  EXPECT_LT(error.message.size(), 1000u);
}

}  // namespace
}  // namespace customcode::deps
