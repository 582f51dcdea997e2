#include "http/router.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace customcode::http {
namespace {

using ::testing::HasSubstr;

Route matched(bhttp::verb method, std::string_view target) {
  auto route = matchRoute(method, target);
  if (!route) throw std::runtime_error(std::string(target) + ": " + route.error().message);
  return *route;
}

Errc refused(bhttp::verb method, std::string_view target) {
  auto route = matchRoute(method, target);
  if (route) throw std::runtime_error(std::string(target) + " matched");
  return route.error().code;
}

TEST(Router, MatchesEveryRoute) {
  EXPECT_EQ(matched(bhttp::verb::get, "/sys/healthcheck").kind, RouteKind::Healthcheck);
  EXPECT_EQ(matched(bhttp::verb::head, "/sys/healthcheck").kind, RouteKind::Healthcheck);
  EXPECT_EQ(matched(bhttp::verb::get, "/metrics").kind, RouteKind::Metrics);
  EXPECT_EQ(matched(bhttp::verb::get, "/v2/functions").kind, RouteKind::ListWorkspaces);
  EXPECT_EQ(matched(bhttp::verb::post, "/v2/functions/ws").kind, RouteKind::SaveWorkspace);
  EXPECT_EQ(matched(bhttp::verb::get, "/v2/functions/ws").kind, RouteKind::GetWorkspace);
  EXPECT_EQ(matched(bhttp::verb::delete_, "/v2/functions/ws").kind, RouteKind::DeleteWorkspace);
  auto run = matched(bhttp::verb::post, "/v2/functions/ws/run/hello");
  EXPECT_EQ(run.kind, RouteKind::Run);
  EXPECT_EQ(run.workspace, "ws");
  EXPECT_EQ(run.function, "hello");
}

TEST(Router, IgnoresTheQueryAndOneTrailingSlash) {
  auto run = matched(bhttp::verb::post, "/v2/functions/ws/run/hello/?x=1#y");
  EXPECT_EQ(run.kind, RouteKind::Run);
  EXPECT_EQ(run.function, "hello");
  EXPECT_EQ(matched(bhttp::verb::get, "/v2/functions/?a=b").kind, RouteKind::ListWorkspaces);
}

TEST(Router, DecodesSegmentsAfterSplittingThem) {
  auto save = matched(bhttp::verb::post, "/v2/functions/my%20ws");
  EXPECT_EQ(save.workspace, "my ws");
  // An encoded slash stays inside its segment: name validation refuses it later.
  auto slash = matched(bhttp::verb::post, "/v2/functions/a%2Fb");
  EXPECT_EQ(slash.workspace, "a/b");
}

TEST(Router, RefusesAMalformedEscape) {
  EXPECT_EQ(refused(bhttp::verb::post, "/v2/functions/a%2"), Errc::InvalidRequest);
  EXPECT_EQ(refused(bhttp::verb::post, "/v2/functions/a%zz"), Errc::InvalidRequest);
}

TEST(Router, UnknownPathsAreNotFound) {
  EXPECT_EQ(refused(bhttp::verb::get, "/"), Errc::RouteNotFound);
  EXPECT_EQ(refused(bhttp::verb::get, "nothing"), Errc::RouteNotFound);
  EXPECT_EQ(refused(bhttp::verb::get, "/v1/functions"), Errc::RouteNotFound);
  EXPECT_EQ(refused(bhttp::verb::post, "/v2/functions/ws/walk/hello"), Errc::RouteNotFound);
  EXPECT_EQ(refused(bhttp::verb::post, "/v2/functions/ws/run/hello/again"), Errc::RouteNotFound);
}

TEST(Router, AKnownPathWithAnotherMethodListsTheAllowedOnes) {
  auto run = matchRoute(bhttp::verb::get, "/v2/functions/ws/run/hello");
  ASSERT_FALSE(run);
  EXPECT_EQ(run.error().code, Errc::MethodNotAllowed);
  EXPECT_THAT(run.error().message, HasSubstr("POST"));
  auto workspace = matchRoute(bhttp::verb::put, "/v2/functions/ws");
  ASSERT_FALSE(workspace);
  EXPECT_EQ(workspace.error().code, Errc::MethodNotAllowed);
  EXPECT_THAT(workspace.error().message, HasSubstr("GET, POST, DELETE"));
  EXPECT_EQ(refused(bhttp::verb::post, "/metrics"), Errc::MethodNotAllowed);
}

}  // namespace
}  // namespace customcode::http
